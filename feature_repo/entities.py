"""The one entity: an Aurora Life user."""

from feast import Entity, ValueType

user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.STRING,
    description="An Aurora Life user; user_id is the app's opaque account id.",
    owner="ml-platform@aurora.life",
)
