"""Push sources, one per feature view, each over the Postgres table of that view's snapshots."""

from stream.catalog import view
from stream.featurestore.definitions import push_source

user_activity_push = push_source(view("user_activity_features"))
sleep_push = push_source(view("sleep_features"))
exercise_push = push_source(view("exercise_features"))
social_push = push_source(view("social_features"))
integration_push = push_source(view("integration_features"))
