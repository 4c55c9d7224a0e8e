"""The local stack's OpenID Connect provider: node-oidc-provider on loopback, in .stack/oidc.

The npm package is pinned by devstack/oidc/package-lock.json and installed with `npm ci` into
.stack/oidc on first use (again when the lock file changes). Its signing key (an RSA JWK) and
the initial access token that registers clients are made once and kept there, mode 0600.
Invariant: `up` returns only once the discovery document answers with this issuer; tokens it
issues are RS256 JWTs for AUDIENCE, carrying the client's roles where Feast reads them
(resource_access.<settings.feast_oidc_client_id>.roles).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.errors import MissingToolError, StackError
from devstack.probes import ProbeResult
from devstack.service import LocalService
from stream.settings import Settings

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).resolve().parent / "oidc"
FILES = ("package.json", "package-lock.json", "provider.mjs")
# The resource server the tokens are for: the feature server.
AUDIENCE = "urn:aurora:feature-server"


def issuer(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.stack_oidc_port}"


def discovery_url(settings: Settings) -> str:
    return f"{issuer(settings)}/.well-known/openid-configuration"


def probe_oidc(settings: Settings) -> ProbeResult:
    try:
        with urllib.request.urlopen(discovery_url(settings), timeout=3) as response:  # noqa: S310 - loopback
            document = json.loads(response.read())
    except (OSError, ValueError) as exc:
        return ProbeResult(False, f"no discovery document at {discovery_url(settings)}: {exc}")
    if document.get("issuer") != issuer(settings):
        return ProbeResult(False, f"issuer {document.get('issuer')!r}, not {issuer(settings)!r}")
    return ProbeResult(True, f"issuer {document['issuer']}")


class OidcProvider(LocalService):
    name = "oidc"

    @property
    def home(self) -> Path:
        return self.root / "oidc"

    def prepare(self) -> None:
        node = shutil.which("node")
        npm = shutil.which("npm")
        if not node or not npm:
            raise MissingToolError("node", "install Node.js 20.19 or newer, with npm")
        self.node = node
        self.home.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            shutil.copyfile(SOURCE / name, self.home / name)
        lock = hashlib.sha256((SOURCE / "package-lock.json").read_bytes()).hexdigest()
        stamp = self.home / "node_modules" / ".aurora-lock"
        if not stamp.exists() or stamp.read_text() != lock:
            logger.info("installing oidc-provider with npm ci in %s", self.home)
            result = subprocess.run(
                [npm, "ci", "--omit=dev", "--no-audit", "--no-fund"],
                cwd=self.home,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise StackError(f"npm ci failed in {self.home}:\n{result.stdout}{result.stderr}")
            stamp.write_text(lock)

    def spawn(self) -> int:
        config = {
            "issuer": issuer(self.settings),
            "host": "127.0.0.1",
            "port": self.settings.stack_oidc_port,
            "audience": AUDIENCE,
            "rolesClientId": self.settings.feast_oidc_client_id,
            "initialAccessToken": _secret(self.home / "initial-access-token"),
            "jwks": {"keys": [_signing_key(self.home / "signing-key.json")]},
        }
        path = self.home / "config.json"
        path.touch(mode=0o600)
        path.write_text(json.dumps(config))
        return self.popen([self.node, "provider.mjs", str(path)], cwd=self.home)

    def probe(self) -> ProbeResult:
        return probe_oidc(self.settings)


@dataclass(frozen=True)
class Client:
    """A registered client: its credentials, and the roles its tokens carry."""

    client_id: str
    client_secret: str
    roles: tuple[str, ...]


class LocalOidc:
    """The running provider, as the tests and benchmarks use it: register clients, get tokens."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.stack_dir.resolve() / "oidc"

    def up(self) -> LocalOidc:
        OidcProvider(self.settings).up()
        return self

    def feature_server_settings(self, base: Settings) -> Settings:
        """`base` with the feature server enforcing permissions on this provider's tokens."""
        return base.model_copy(
            update={
                "feast_auth": "oidc",
                "feast_oidc_discovery_url": discovery_url(self.settings),
                "feast_oidc_client_id": self.settings.feast_oidc_client_id,
                "feast_oidc_audience": AUDIENCE,
                "feast_oidc_issuer": issuer(self.settings),
            }
        )

    def register(self, roles: list[str], token_ttl_s: int | None = None) -> Client:
        """A new client whose tokens carry `roles` (and live `token_ttl_s`, 600 s by default)."""
        body: dict[str, Any] = {
            "grant_types": ["client_credentials"],
            "response_types": [],
            "redirect_uris": [],
            "token_endpoint_auth_method": "client_secret_basic",
            "roles": roles,
        }
        if token_ttl_s is not None:
            body["access_token_ttl"] = token_ttl_s
        iat = (self.home / "initial-access-token").read_text().strip()
        made = _post(
            f"{issuer(self.settings)}/reg",
            json.dumps(body).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {iat}"},
        )
        return Client(made["client_id"], made["client_secret"], tuple(roles))

    def token(self, client: Client) -> str:
        """An access token from the client-credentials grant."""
        basic = base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()
        answer = _post(
            f"{issuer(self.settings)}/token",
            f"grant_type=client_credentials&resource={AUDIENCE}".encode(),
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": f"Basic {basic}",
            },
        )
        token: str = answer["access_token"]
        return token


def _post(url: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise StackError(
            f"{url} answered {exc.code}: {exc.read().decode(errors='replace')}"
        ) from exc
    return answer


def _secret(path: Path) -> str:
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _signing_key(path: Path) -> dict[str, str]:
    """The provider's RSA key as a private JWK, made once."""
    if path.exists():
        key: dict[str, str] = json.loads(path.read_text())
        return key
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = private.private_numbers()
    public = numbers.public_numbers

    def b64(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    key = {
        "kty": "RSA",
        "kid": secrets.token_hex(8),
        "alg": "RS256",
        "use": "sig",
        "n": b64(public.n),
        "e": b64(public.e),
        "d": b64(numbers.d),
        "p": b64(numbers.p),
        "q": b64(numbers.q),
        "dp": b64(numbers.dmp1),
        "dq": b64(numbers.dmq1),
        "qi": b64(numbers.iqmp),
    }
    path.touch(mode=0o600)
    path.write_text(json.dumps(key))
    return key
