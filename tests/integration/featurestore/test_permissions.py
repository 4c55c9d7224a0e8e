"""Feature-level access control, over HTTP: Feast's feature server with AURORA_FEAST_AUTH=oidc,
the permissions of feature_repo/permissions.py, and tokens from the local stack's real OpenID
Connect provider (devstack/oidc.py).

Nothing about the token check is replaced: the server fetches the provider's discovery document
and keys and verifies each token as in production. Rows are set through Feast directly (no
server), then read and pushed through the server with each role's token.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import jwt
import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from feast import FeatureStore
from feast.data_source import PushMode

from devstack.oidc import LocalOidc
from stream.settings import Settings
from tests.integration.helpers import feature_server, snapshot_rows

pytestmark = pytest.mark.integration

ENERGY = "aurora-serving-energy_prediction_v1"
DASHBOARD = "aurora-serving-wellness_dashboard_v1"
REQUEST_DATA = {"current_hour": [14], "day_of_week": [3], "is_weekend": [0]}

Call = Callable[..., tuple[int, Any]]


@pytest.fixture(scope="module")
def oidc(settings: Settings) -> LocalOidc:
    return LocalOidc(settings).up()


@pytest.fixture(scope="module")
def server(oidc: LocalOidc, feast_settings: Settings) -> Iterator[str]:
    with feature_server(oidc.feature_server_settings(feast_settings)) as base:
        yield base


@pytest.fixture(scope="module")
def tokens(oidc: LocalOidc) -> dict[str, str]:
    """A token per role, each from a client registered with only that role."""
    roles = [ENERGY, DASHBOARD, "aurora-trainer", "aurora-ingestor", "aurora-admin"]
    return {role: oidc.token(oidc.register([role])) for role in roles}


def call(base: str, path: str, body: dict[str, Any], token: str | None) -> tuple[int, Any]:
    """POST `body` as JSON; the status and the decoded answer, refusals included."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(  # noqa: S310 - loopback URL built by the test
        f"{base}{path}", data=json.dumps(body).encode(), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            answer = json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")
        # Feast's handler sends its error detail, itself a JSON document, as a JSON string.
        if isinstance(answer, str) and answer.startswith("{"):
            answer = json.loads(answer)
        return exc.code, answer


def values(answer: dict[str, Any]) -> dict[str, Any]:
    names = answer["metadata"]["feature_names"]
    return dict(zip(names, (r["values"][0] for r in answer["results"]), strict=True))


def read_service(base: str, service: str, user: str, token: str | None) -> tuple[int, Any]:
    return call(
        base,
        "/get-online-features",
        {"feature_service": service, "entities": {"user_id": [user], **REQUEST_DATA}},
        token,
    )


def read_refs(base: str, refs: list[str], user: str, token: str | None) -> tuple[int, Any]:
    return call(
        base, "/get-online-features", {"features": refs, "entities": {"user_id": [user]}}, token
    )


@pytest.fixture
def user(feature_store: FeatureStore, user_ids: Callable[[int], list[str]]) -> str:
    """A user with a row in every view, written through Feast, not through the server."""
    (one,) = user_ids(1)
    at = datetime.now(UTC)
    for n, (view, source) in enumerate(
        [
            ("user_activity_features", "user_activity_push"),
            ("sleep_features", "sleep_push"),
            ("exercise_features", "exercise_push"),
            ("social_features", "social_push"),
            ("integration_features", "integration_push"),
        ]
    ):
        feature_store.push(source, snapshot_rows(view, [one], at, 10.0 + n), to=PushMode.ONLINE)
    return one


def test_a_serving_role_reads_its_service_and_its_views(
    server: str, tokens: dict[str, str], user: str
) -> None:
    status, answer = read_service(server, "energy_prediction_v1", user, tokens[ENERGY])
    assert status == 200, answer
    got = values(answer)
    assert got["avg_energy_7d"] is not None
    assert 1 <= got["predicted_energy"] <= 10
    status, answer = read_refs(
        server, ["sleep_features:avg_sleep_duration_7d"], user, tokens[ENERGY]
    )
    assert status == 200, answer
    assert values(answer)["avg_sleep_duration_7d"] is not None


@pytest.mark.parametrize(
    ("role", "request_kind", "target"),
    [
        # Another service's on-demand views, whole and by reference.
        (DASHBOARD, "service", "energy_prediction_v1"),
        (ENERGY, "service", "wellness_dashboard_v1"),
        (ENERGY, "refs", "integration_features:avg_steps_7d"),
        (ENERGY, "refs", "social_features:posts_7d"),
        # Training reads offline only; the ingestor writes and never reads.
        ("aurora-trainer", "service", "ml_training_v1"),
        ("aurora-ingestor", "refs", "user_activity_features:avg_energy_7d"),
    ],
)
def test_a_role_outside_a_service_gets_403_saying_what_was_refused(
    server: str, tokens: dict[str, str], user: str, role: str, request_kind: str, target: str
) -> None:
    if request_kind == "service":
        status, answer = read_service(server, target, user, tokens[role])
    else:
        status, answer = read_refs(server, [target], user, tokens[role])
    assert status == 403, answer
    assert answer["class"] == "FeastPermissionError"
    # Either "Permission <name> denied execution of ['READ_ONLINE'] to <kind>:<object>: ..."
    # (a permission names the object, not the role) or "No permissions defined to manage
    # [READ_ONLINE] on <kind>/<object>" (none names it).
    assert "READ_ONLINE" in answer["message"].upper()
    assert target.split(":")[0] in answer["message"]


def test_the_features_exist_so_a_refusal_is_about_the_role(
    server: str, tokens: dict[str, str], user: str
) -> None:
    # The refused references above are real features: the dashboard role reads them.
    refs = ["integration_features:avg_steps_7d", "social_features:posts_7d"]
    status, answer = read_refs(server, refs, user, tokens[DASHBOARD])
    assert status == 200, answer


def test_no_token_an_expired_one_and_a_forged_one_get_401(
    server: str, oidc: LocalOidc, tokens: dict[str, str], user: str
) -> None:
    status, answer = read_service(server, "energy_prediction_v1", user, None)
    assert status == 401, answer

    short = oidc.register([ENERGY], token_ttl_s=1)
    expiring = oidc.token(short)
    status, answer = read_service(server, "energy_prediction_v1", user, expiring)
    assert status == 200, answer  # the same token, while it lived
    # Feast allows 10 s of clock skew past `exp`.
    time.sleep(13)
    status, answer = read_service(server, "energy_prediction_v1", user, expiring)
    assert status == 401, answer
    assert "expired" in json.dumps(answer)

    # Same claims, same key id, another key: what someone without the provider's key can make.
    real = tokens[ENERGY]
    claims = jwt.decode(real, options={"verify_signature": False})
    header = jwt.get_unverified_header(real)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": header["kid"]})
    status, answer = read_service(server, "energy_prediction_v1", user, forged)
    assert status == 401, answer
    # Unsigned, with roles granting everything.
    claims["resource_access"]["aurora-feature-server"]["roles"] = [DASHBOARD, ENERGY]
    unsigned = jwt.encode(claims, key="", algorithm="none")
    status, answer = read_service(server, "wellness_dashboard_v1", user, unsigned)
    assert status == 401, answer


def _push_body(user: str, base: float) -> dict[str, Any]:
    rows = snapshot_rows("user_activity_features", [user], datetime.now(UTC), base)
    rows["event_timestamp"] = rows["event_timestamp"].map(pd.Timestamp.isoformat)
    return {"push_source_name": "user_activity_push", "df": rows.to_dict(orient="list")}


def test_only_the_ingestor_pushes_and_a_denied_push_writes_nothing(
    server: str, tokens: dict[str, str], user: str, feature_store: FeatureStore
) -> None:
    def stored() -> dict[str, Any]:
        return feature_store.get_online_features(
            features=["user_activity_features:avg_energy_7d"], entity_rows=[{"user_id": user}]
        ).to_dict()

    before = stored()
    for role in (ENERGY, DASHBOARD, "aurora-trainer", "aurora-admin"):
        status, answer = call(server, "/push", _push_body(user, 500.0), tokens[role])
        assert status == 403, (role, answer)
        assert "WRITE_ONLINE" in answer["message"]
        assert stored() == before, role
    status, answer = call(server, "/push", _push_body(user, 500.0), None)
    assert status == 401, answer
    assert stored() == before

    # The same push with the ingestor's token lands: the refusals above were the roles'.
    status, answer = call(server, "/push", _push_body(user, 500.0), tokens["aurora-ingestor"])
    assert status == 200, answer
    after = stored()
    assert after != before
    assert after["avg_energy_7d"][0] == pytest.approx(
        _push_body(user, 500.0)["df"]["avg_energy_7d"][0]
    )
