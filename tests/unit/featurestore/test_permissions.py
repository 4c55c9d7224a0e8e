"""The permission catalog (feature_repo/permissions.py), decided by Feast's own enforcer: each
role may do its job on the objects it names, and is refused everything else."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from feast import FeatureService, FeatureView, OnDemandFeatureView
from feast.errors import FeastPermissionError
from feast.permissions.action import ALL_ACTIONS, AuthzedAction
from feast.permissions.enforcer import enforce_policy
from feast.permissions.permission import Permission
from feast.permissions.user import User

from stream.settings import project_folder


@pytest.fixture(scope="module")
def repo() -> Iterator[dict[str, ModuleType]]:
    """The repository's modules, imported by bare name as `feast apply` imports them."""
    folder = str(project_folder("feature_repo"))
    sys.path.insert(0, folder)
    try:
        import feature_services
        import features
        import on_demand
        import permissions

        yield {
            "permissions": permissions,
            "services": feature_services,
            "features": features,
            "on_demand": on_demand,
        }
    finally:
        sys.path.remove(folder)


def _of(module: ModuleType, kind: type) -> list[Any]:
    return [v for v in vars(module).values() if isinstance(v, kind)]


def _allowed(
    repo: dict[str, ModuleType], roles: list[str], obj: Any, action: AuthzedAction
) -> bool:
    rules = _of(repo["permissions"], Permission)
    try:
        enforce_policy(rules, User("someone", roles), [obj], [action])
    except FeastPermissionError:
        return False
    return True


def _objects(repo: dict[str, ModuleType]) -> list[Any]:
    return [
        *_of(repo["services"], FeatureService),
        *(v for v in _of(repo["features"], FeatureView)),
        *_of(repo["on_demand"], OnDemandFeatureView),
    ]


def test_every_service_is_served_online_or_is_the_training_one(
    repo: dict[str, ModuleType],
) -> None:
    permissions = repo["permissions"]
    online = {s.name for s in permissions.ONLINE_SERVICES}
    every = {s.name for s in _of(repo["services"], FeatureService)}
    assert every - online == {"ml_training_v1"}
    registered = {p.name for p in _of(permissions, Permission)}
    assert {f"{name}_online" for name in online} <= registered


def test_a_serving_role_reads_its_service_and_its_views_online_only(
    repo: dict[str, ModuleType],
) -> None:
    permissions = repo["permissions"]
    for service in permissions.ONLINE_SERVICES:
        roles = [permissions.serving_role(service)]
        mine = {service.name, *(p.name for p in service.feature_view_projections)}
        for obj in _objects(repo):
            for action in ALL_ACTIONS:
                expected = obj.name in mine and action in (
                    AuthzedAction.READ_ONLINE,
                    AuthzedAction.DESCRIBE,
                )
                assert _allowed(repo, roles, obj, action) == expected, (
                    service.name,
                    obj.name,
                    action,
                )


def test_the_dashboard_role_cannot_read_the_energy_prediction(
    repo: dict[str, ModuleType],
) -> None:
    # The one case stated outright, beside the exhaustive table above: views differ by service.
    permissions = repo["permissions"]
    on_demand = repo["on_demand"]
    dashboard = [permissions.serving_role(repo["services"].wellness_dashboard_v1)]
    energy = on_demand.energy_prediction_features
    assert not _allowed(repo, dashboard, energy, AuthzedAction.READ_ONLINE)
    assert _allowed(
        repo, dashboard, on_demand.wellness_composite_features, AuthzedAction.READ_ONLINE
    )


@pytest.mark.parametrize(
    ("role", "granted"),
    [
        ("aurora-trainer", {AuthzedAction.READ_OFFLINE, AuthzedAction.DESCRIBE}),
        (
            "aurora-admin",
            {
                AuthzedAction.CREATE,
                AuthzedAction.DESCRIBE,
                AuthzedAction.UPDATE,
                AuthzedAction.DELETE,
            },
        ),
        ("nobody-we-know", set()),
    ],
)
def test_the_other_roles_do_exactly_their_job(
    repo: dict[str, ModuleType], role: str, granted: set[AuthzedAction]
) -> None:
    for obj in _objects(repo):
        for action in ALL_ACTIONS:
            assert _allowed(repo, [role], obj, action) == (action in granted), (
                role,
                obj.name,
                action,
            )


def test_only_the_ingestor_pushes_and_only_to_views(repo: dict[str, ModuleType]) -> None:
    permissions = repo["permissions"]
    others = [
        permissions.TRAINER,
        permissions.ADMIN,
        *(permissions.serving_role(s) for s in permissions.ONLINE_SERVICES),
    ]
    for view in _of(repo["features"], FeatureView):
        for action in (AuthzedAction.WRITE_ONLINE, AuthzedAction.WRITE_OFFLINE):
            assert _allowed(repo, [permissions.INGESTOR], view, action)
            assert not any(_allowed(repo, [role], view, action) for role in others)
        assert not _allowed(repo, [permissions.INGESTOR], view, AuthzedAction.READ_ONLINE)
        assert not _allowed(repo, [permissions.INGESTOR], view, AuthzedAction.UPDATE)
