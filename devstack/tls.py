"""The local stack's encrypted Postgres and Redis, beside the plain ones, and the CA they share.

The stack makes itself a CA and a server certificate for 127.0.0.1 and localhost (in
.stack/tls, made once, keys 0600), then runs a second Postgres cluster (.stack/postgres-tls,
`stack_tls_postgres_port`) that takes only TLS connections (hostssl; hostnossl is rejected) and
a second Redis (.stack/redis-tls) listening only on its TLS port (`port 0`,
`stack_tls_redis_port`). Invariant: `up` returns once each answers over TLS verified against the
stack's CA with the host name checked (sslmode=verify-full, rediss://); each server reads its own
copy of the key, owned by its service user, as Postgres insists.

For development and the tests only; production servers come with certificates of their own
(docs/security.md).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pydantic import SecretStr

from devstack.postgres import Postgres
from devstack.probes import ProbeResult, probe_postgres, probe_redis
from devstack.proc import owned_dir, service_user
from devstack.redis_server import Redis
from devstack.service import LocalService
from stream.settings import Settings

HOSTS = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A new self-signed CA in `folder`: (certificate, key), PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "ca.pem", folder / "ca-key.pem"
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def ensure_certificates(folder: Path) -> Certificates:
    """The stack's CA and its server certificate for HOSTS, made once."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    made = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    if made.ca.exists() and made.cert.exists() and made.key.exists():
        return made
    ca_path, ca_key_path = make_ca(folder, "Aurora Features local stack CA")
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]  # an EC key, as made above
    )
    _write_private(
        made.key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    made.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return made


def _write_private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_bytes(data)


def _own_copy(source: Path, folder: Path, user_name: str) -> Path:
    """A copy of `source` in `folder`, readable only by the service's user."""
    user = service_user(user_name)
    copy = folder / source.name
    shutil.copyfile(source, copy)
    copy.chmod(0o600)
    if user:
        os.chown(copy, user.pw_uid, user.pw_gid)
    return copy


def tls_settings(base: Settings) -> Settings:
    """`base` with Postgres and Redis on the stack's TLS servers, verified against its CA."""
    ca = base.stack_dir.resolve() / "tls" / "ca.pem"
    pg = base.postgres
    auth = quote(pg.user, safe="") + (f":{quote(pg.password, safe='')}" if pg.password else "")
    port, database = base.stack_tls_postgres_port, quote(pg.database)
    return base.model_copy(
        update={
            "postgres_dsn": SecretStr(f"postgresql://{auth}@127.0.0.1:{port}/{database}"),
            "postgres_sslmode": "verify-full",
            "postgres_sslrootcert": ca,
            "redis_url": SecretStr(f"rediss://127.0.0.1:{base.stack_tls_redis_port}/0"),
            "redis_cluster": False,
            "redis_ssl_ca_file": ca,
        }
    )


class TlsPostgres(Postgres):
    """A second Postgres cluster that accepts TLS connections only."""

    name = "postgres-tls"
    folder = "postgres-tls"

    def prepare(self) -> None:
        super().prepare()
        certs = ensure_certificates(self.root / "tls")
        self.cert = _own_copy(certs.cert, self.pgdata, "postgres")
        self.key = _own_copy(certs.key, self.pgdata, "postgres")
        # Loopback only; local socket for the stack's own set-up; TCP only over TLS.
        hba = self.pgdata / "pg_hba.conf"
        hba.write_text(
            "local all all trust\n"
            "hostssl all all 127.0.0.1/32 trust\n"
            "hostnossl all all 0.0.0.0/0 reject\n"
        )

    def listen(self) -> tuple[str, int]:
        return "127.0.0.1", self.settings.stack_tls_postgres_port

    def server_options(self) -> list[str]:
        # A tenth of the main cluster's buffers: it holds the TLS tests' few rows, beside it.
        return [
            "-c",
            "shared_buffers=128MB",
            "-c",
            "ssl=on",
            "-c",
            f"ssl_cert_file={self.cert}",
            "-c",
            f"ssl_key_file={self.key}",
        ]

    def superuser_conninfo(self) -> str:
        # The local socket: TCP would need TLS before the stack has checked it works.
        sockets = self.root / self.folder / "run"
        return f"host={sockets} port={self.listen()[1]} dbname=postgres user=postgres"

    def probe(self) -> ProbeResult:
        return probe_postgres(tls_settings(self.settings))


class TlsRedis(Redis):
    """A second Redis that listens on its TLS port only."""

    name = "redis-tls"

    def spawn(self) -> int:
        certs = ensure_certificates(self.root / "tls")
        user = "redis"
        folder = owned_dir(self.root / "redis-tls", service_user(user))
        extra = [
            f"tls-port {self.settings.stack_tls_redis_port}",
            f"tls-cert-file {_own_copy(certs.cert, folder, user)}",
            f"tls-key-file {_own_copy(certs.key, folder, user)}",
            f"tls-ca-cert-file {_own_copy(certs.ca, folder, user)}",
            # Clients prove who they are with a password or an ACL user, not a certificate.
            "tls-auth-clients no",
        ]
        # port 0: no plain-text listener at all.
        return self.start_server(folder, "127.0.0.1", 0, extra)

    def probe(self) -> ProbeResult:
        return probe_redis(tls_settings(self.settings))


def tls_services(settings: Settings) -> list[LocalService]:
    return [TlsPostgres(settings), TlsRedis(settings)]
