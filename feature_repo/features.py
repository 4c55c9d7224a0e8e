"""The five feature views; names, fields, types and TTLs come from stream/catalog.py."""

from data_sources import (
    exercise_push,
    integration_push,
    sleep_push,
    social_push,
    user_activity_push,
)
from entities import user

from stream.catalog import view
from stream.featurestore.definitions import feature_view

user_activity_features = feature_view(view("user_activity_features"), user, user_activity_push)
sleep_features = feature_view(view("sleep_features"), user, sleep_push)
exercise_features = feature_view(view("exercise_features"), user, exercise_push)
social_features = feature_view(view("social_features"), user, social_push)
integration_features = feature_view(view("integration_features"), user, integration_push)
