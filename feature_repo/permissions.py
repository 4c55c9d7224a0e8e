"""Who may do what through Feast's servers: the roles a bearer token carries, and their rights.

Invariant: a right exists only if a Permission here grants it (Feast denies whatever no
permission matches), and a serving role's views are read off its feature service in
feature_services.py, never listed a second time. Feast enforces these only where
feature_store.yaml's `auth:` is oidc (AURORA_FEAST_AUTH=oidc); with no_auth, the default, they
are registered and the servers answer anyone (docs/security.md).

| role                            | may                                                         |
|---------------------------------|-------------------------------------------------------------|
| aurora-trainer                  | read every view and service offline (historical features)   |
| aurora-serving-<feature service>| read that service, and only its views, online               |
| aurora-ingestor                 | push rows to the views, online and offline                  |
| aurora-admin                    | create, update and delete objects: `feast apply`            |
"""

import re
from typing import Any

from feast import FeatureService, FeatureView, OnDemandFeatureView
from feast.permissions.action import CRUD, AuthzedAction
from feast.permissions.permission import Permission
from feast.permissions.policy import RoleBasedPolicy
from feature_services import (
    energy_prediction_v1,
    mood_prediction_v1,
    wellness_dashboard_v1,
)

TRAINER = "aurora-trainer"
INGESTOR = "aurora-ingestor"
ADMIN = "aurora-admin"
# The services apps read online; ml_training_v1 is read offline, by the trainer.
ONLINE_SERVICES = (energy_prediction_v1, mood_prediction_v1, wellness_dashboard_v1)
# What a request can name: a service (read whole), or views (read by feature reference).
# Any: Feast annotates `types` as instances of the classes it takes.
_READABLE: list[Any] = [FeatureService, FeatureView, OnDemandFeatureView]


def serving_role(service: FeatureService) -> str:
    return f"aurora-serving-{service.name}"


def serving_permission(service: FeatureService) -> Permission:
    """The service's role reads the service and its views online, and nothing else."""
    names = [service.name, *(projection.name for projection in service.feature_view_projections)]
    return Permission(
        name=f"{service.name}_online",
        types=_READABLE,
        # Feast full-matches each pattern: escaped, a name is itself and no other.
        name_patterns=[re.escape(name) for name in names],
        actions=[AuthzedAction.READ_ONLINE, AuthzedAction.DESCRIBE],
        policy=RoleBasedPolicy(roles=[serving_role(service)]),
    )


# One module-level name per permission: `feast apply` registers the Permission objects it finds
# among a module's attributes, not inside containers.
energy_prediction_v1_online = serving_permission(energy_prediction_v1)
mood_prediction_v1_online = serving_permission(mood_prediction_v1)
wellness_dashboard_v1_online = serving_permission(wellness_dashboard_v1)

training_offline = Permission(
    name="training_offline",
    types=_READABLE,
    actions=[AuthzedAction.READ_OFFLINE, AuthzedAction.DESCRIBE],
    policy=RoleBasedPolicy(roles=[TRAINER]),
)

# The worker writes Redis and Postgres directly; this covers pushes through the feature server
# (`/push`), which Feast checks against every view fed by the push source.
ingestion_push = Permission(
    name="ingestion_push",
    types=[FeatureView],  # type: ignore[list-item]  # Feast annotates types as instances
    actions=[AuthzedAction.WRITE_ONLINE, AuthzedAction.WRITE_OFFLINE],
    policy=RoleBasedPolicy(roles=[INGESTOR]),
)

# Enforced by Feast's registry server (`feast serve_registry`); with a file or SQL registry,
# whoever can write the registry applies, so guard it by file or database grants as well.
administration = Permission(
    name="administration",
    actions=CRUD,
    policy=RoleBasedPolicy(roles=[ADMIN]),
)
