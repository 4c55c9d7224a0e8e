"""One settings object, read from AURORA_* environment variables, for every component."""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


@dataclass(frozen=True)
class PostgresParts:
    """A Postgres DSN split into the fields Feast's config and psycopg want separately."""

    host: str
    port: int
    database: str
    user: str
    password: str


@dataclass(frozen=True)
class RedisParts:
    """A Redis URL split into the fields the local stack and Feast's connection string need.

    `nodes` holds every host:port the URL names, `host` and `port` the first; `cluster` says
    whether they are nodes of a Redis Cluster (the client then finds the others itself)."""

    host: str
    port: int
    db: int
    password: str
    ssl: bool
    username: str = ""
    nodes: tuple[tuple[str, int], ...] = ()
    cluster: bool = False


class Settings(BaseSettings):
    """Endpoints and knobs. Defaults point at the local stack that `make up` starts."""

    model_config = SettingsConfigDict(env_prefix="AURORA_", frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    # Only the local stack uses this: the KRaft controller listener of the single-node broker.
    kafka_controller_port: int = 19093

    # Kafka's security. SASL_SSL (TLS, then a user name and password) is what managed Kafka
    # services ask for; the CA file verifies the brokers' certificates (the system's CAs when
    # unset). Every Kafka client here (worker, producer, admin, replay) uses these.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_cafile: Path | None = None

    # Topics are "<prefix>.<event type>" (aurora.activity, ...) plus "<prefix>.dlq".
    topic_prefix: str = "aurora"
    topic_partitions: int = 4
    topic_replication_factor: int = 1

    postgres_dsn: SecretStr = SecretStr("postgresql://aurora@127.0.0.1:15432/aurora")
    # "prefer" matches libpq: TLS when the server offers it. Production sets verify-full.
    postgres_sslmode: SslMode = "prefer"
    # The CA that signed the server's certificate, for verify-ca and verify-full (libpq's default,
    # ~/.postgresql/root.crt, when unset). The worker, Feast's stores and the registry all use it.
    postgres_sslrootcert: Path | None = None

    # One Redis, or a Redis Cluster: a URL naming several nodes (redis://host:port,host:port/0)
    # is one, and redis_cluster says so of a URL naming one node (a cluster's configuration
    # endpoint). The worker, replay, status and Feast (feature_store.yaml) all follow it.
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:16379/0")
    redis_cluster: bool = False
    # The CA that signed the servers' certificates for rediss:// (the system's CAs when unset);
    # the host name is checked against the certificate either way.
    redis_ssl_ca_file: Path | None = None

    # Feast: the project namespaces every key in Redis; the SQL registry (in Postgres) lets several
    # workers and feature servers share one registry, the file registry suits one machine.
    feast_project: str = "aurora_features"
    feast_registry_type: Literal["file", "sql"] = "file"
    feast_registry_path: str = "data/registry.db"
    postgres_schema: str = "public"
    feast_repo_path: Path = Field(default_factory=lambda: _default_repo_path())

    # Who may read what through Feast's servers (`feast serve`): no_auth answers anyone, as
    # `make demo` and a local `feast serve` expect; oidc makes every request carry a bearer token
    # from the OpenID Connect provider below and enforces the permissions of
    # feature_repo/permissions.py on the roles in it (docs/security.md).
    feast_auth: Literal["no_auth", "oidc"] = "no_auth"
    # The provider's discovery document (https://idp/.well-known/openid-configuration).
    feast_oidc_discovery_url: str = ""
    # Roles are read from the token's resource_access.<client id>.roles (Keycloak's shape) and
    # its top-level roles claim (Entra ID's).
    feast_oidc_client_id: str = "aurora-feature-server"
    # When set, a token must name this audience / issuer; empty skips that check (Feast's default).
    feast_oidc_audience: str = ""
    feast_oidc_issuer: str = ""
    # The CA that signed the provider's certificate, when it is not one the system trusts.
    feast_oidc_ca_file: Path | None = None

    # The Faust worker. Every worker with the same app id shares the partitions of one group.
    worker_app_id: str = "aurora-features"
    # Workers `python -m stream worker` starts and supervises, one process (and core) each.
    worker_processes: int = Field(default=1, ge=1)
    # Where the worker keeps user states: aurora:// is a local store on disk (SQLite, one per
    # worker slot) that holds the changelog up to known offsets, so a restart reads only the
    # changelog's tail; memory:// keeps every record in RAM and rereads the whole changelog on
    # start (docs/decisions/0021-compact-state.md).
    worker_store: Literal["aurora://", "memory://"] = "aurora://"
    # The local stores' folder: a slot per worker of this machine (stream/worker/slots.py). A
    # cache, not the truth (that is the changelog): losing it costs one full read on start.
    worker_state_dir: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "aurora-features-state"
    )
    # This worker's slot and Kafka group instance id; empty takes the lowest free slot of the
    # machine, `<app id>-<host>-<n>`. Set it to a stable name where hosts are not (a pod name).
    worker_instance_id: str = ""
    # Static group membership (KIP-345): a restarted worker gets its partitions back at once,
    # without a rebalance or waiting out its old session. A stopped one's partitions move to
    # the others only after worker_session_timeout_s.
    worker_static_membership: bool = True
    # User states decoded in memory at most, least recently used dropped first; the store
    # holds them all. At 30 days of history a state takes about 26 KB of RSS (the soak), so
    # the default bounds a worker's states at about 5 GB (docs/decisions/0021-compact-state.md).
    worker_state_cache: int = Field(default=200_000, ge=1)
    # A fetch, and so a batch, holds this many events at most. A batch is written as soon as the
    # writer is free; the batches taken while it writes are written together next. Each fetch
    # costs a hand-off from the consumer thread and a batch's bookkeeping: 5,000 sustained about
    # 4% more than 2,000 did, and 10,000 no more than 5,000 (docs/decisions/0015-*).
    worker_batch_max: int = 5000
    # Events taken and not yet written at most; past this the consumer waits (backpressure).
    # A write's time varies from one flush to the next (Postgres, the other core's load): a
    # queue of several fetches keeps the event loop busy through a slow one. 24,000 sustained
    # a tenth more than 8,000 did (docs/decisions/0015-*), for about 80 MB more at peak.
    worker_queue_max: int = Field(default=24_000, ge=1)
    # A flush waits, up to worker_flush_wait_s after its oldest batch came, until it holds this
    # many events: each flush has a fixed cost (a push per view, the changelog records of every
    # state it changed), so fewer, larger flushes leave more of both cores to consuming. Only
    # while the consumer is this many events behind: at the log's end a wait only delays rows.
    worker_flush_min: int = Field(default=10_000, ge=0)
    worker_flush_wait_s: float = Field(default=0.2, ge=0.0)
    # Events stamped more than this ahead of the worker's clock go to the dead-letter topic.
    event_max_ahead_s: float = 86_400.0
    # How often idle users' rows are recomputed so windows decay with time.
    worker_sweep_interval_s: float = 300.0
    # How long the group waits for a silent worker before its partitions move to another.
    worker_session_timeout_s: float = 30.0
    # Unread events and nothing consumed or in flight for this long: the worker reads again
    # from the committed offsets (stream/worker/watchdog.py).
    worker_stall_after_s: float = 30.0
    # The worker's log level (`--loglevel` sets it too); its writer process logs at the same.
    worker_loglevel: Literal["crit", "error", "warn", "info", "debug"] = "info"
    # Prometheus metrics at http://<host>:<port>/metrics; 0 turns them off. A second worker on
    # the same machine finds the port taken and runs without (it says so in its log).
    worker_metrics_port: int = 9464
    # Faust's web server (metrics, health); 0 turns it off.
    worker_web_port: int = 0

    # History in Postgres: the archive and the snapshot tables have a partition a day, made this
    # many days ahead (stream/ops/partitions.py). Days older than a retention are dropped whole;
    # unset keeps everything. The archive keeps at least the longest window and a day, which a
    # replay reads before its range, unless archive_retention_force says to drop them anyway.
    archive_retention_days: int | None = Field(default=None, ge=1)
    snapshot_retention_days: int | None = Field(default=None, ge=1)
    archive_retention_force: bool = False
    partition_days_ahead: int = Field(default=7, ge=1)
    # How often the worker's writer process makes the days ahead and drops expired ones; 0: never
    # (then run `python -m stream partitions` on a schedule, as the tables' owner).
    worker_partition_every_s: float = Field(default=3600.0, ge=0.0)

    # Where the local stack keeps jars, data, pid files and logs (git-ignored).
    stack_dir: Path = Path(".stack")
    # auto: Docker Compose when a Docker engine answers, the local stack otherwise.
    stack_mode: Literal["auto", "docker", "local"] = "auto"
    # Seconds `make up` waits for each service before it fails with the log's tail.
    stack_timeout_s: float = 120.0
    # The local stack's Redis Cluster: three masters on loopback, at this port and the next two.
    # `make up REDIS_CLUSTER=1` starts it beside the single Redis (as does a redis_url naming
    # it); the tests and benchmarks that compare the two start it themselves.
    stack_redis_cluster: bool = False
    stack_redis_cluster_port: int = Field(default=17000, ge=1, le=65535 - 2 - 10000)
    # The local stack's encrypted Postgres and Redis, beside the plain ones: a CA and server
    # certificates the stack makes for itself, Postgres taking only TLS (hostssl) and Redis only
    # its TLS port. `make up TLS=1` starts them; the tests that use them start them themselves.
    stack_tls: bool = False
    stack_tls_postgres_port: int = Field(default=15433, ge=1, le=65535)
    stack_tls_redis_port: int = Field(default=16380, ge=1, le=65535)
    # The local stack's OpenID Connect provider (devstack/oidc/), for the feature server's
    # permissions: `make up OIDC=1`, or the tests and benchmarks that need it.
    stack_oidc: bool = False
    stack_oidc_port: int = Field(default=15480, ge=1, le=65535)

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _servers_have_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"bootstrap server {server!r} is not host:port")
        return value

    @field_validator("postgres_dsn")
    @classmethod
    def _dsn_is_postgres_url(cls, value: SecretStr) -> SecretStr:
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise ValueError("postgres_dsn must look like postgresql://user:password@host:port/db")
        return value

    @field_validator("redis_url")
    @classmethod
    def _url_is_redis_url(cls, value: SecretStr) -> SecretStr:
        parse_redis_url(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _cluster_has_db_zero(self) -> Settings:
        redis = self.redis
        if redis.cluster and redis.db != 0:
            raise ValueError(
                f"redis_url names a Redis Cluster, which has only database 0, not {redis.db}"
            )
        return self

    @model_validator(mode="after")
    def _archive_outlives_the_windows(self) -> Settings:
        from stream.catalog import LONGEST_WINDOW

        keep, need = self.archive_retention_days, LONGEST_WINDOW.days + 1
        if keep is not None and keep < need and not self.archive_retention_force:
            raise ValueError(
                f"AURORA_ARCHIVE_RETENTION_DAYS={keep} would drop archived events the "
                f"{LONGEST_WINDOW.days}-day windows of a replay still read: keep at least {need} "
                "days, or set AURORA_ARCHIVE_RETENTION_FORCE=true to drop them anyway"
            )
        return self

    @model_validator(mode="after")
    def _oidc_has_provider(self) -> Settings:
        if self.feast_auth == "oidc" and not self.feast_oidc_discovery_url:
            raise ValueError("feast_auth oidc needs AURORA_FEAST_OIDC_DISCOVERY_URL")
        return self

    @model_validator(mode="after")
    def _sasl_has_credentials(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password.get_secret_value()
        ):
            raise ValueError(
                f"kafka_security_protocol {self.kafka_security_protocol} needs "
                "AURORA_KAFKA_SASL_USERNAME and AURORA_KAFKA_SASL_PASSWORD"
            )
        return self

    def to_env(self) -> dict[str, str]:
        """The AURORA_* variables that reproduce these settings in a child process (secrets too)."""
        env = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            plain = value.get_secret_value() if isinstance(value, SecretStr) else value
            env[f"AURORA_{name.upper()}"] = str(plain)
        return env

    def kafka_client_config(self) -> dict[str, Any]:
        """Security keyword arguments for kafka-python's clients (empty for PLAINTEXT)."""
        protocol = self.kafka_security_protocol
        if protocol == "PLAINTEXT":
            return {}
        config: dict[str, Any] = {"security_protocol": protocol}
        if protocol.endswith("SSL") and self.kafka_ssl_cafile is not None:
            config["ssl_cafile"] = str(self.kafka_ssl_cafile)
        if protocol.startswith("SASL_"):
            config["sasl_mechanism"] = self.kafka_sasl_mechanism
            config["sasl_plain_username"] = self.kafka_sasl_username
            config["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        return config

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context aiokafka and Faust take, verifying brokers against the CA file."""
        if not self.kafka_security_protocol.endswith("SSL"):
            return None
        cafile = str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None
        return ssl.create_default_context(cafile=cafile)

    def faust_credentials(self) -> Any:
        """The `broker_credentials` for Faust's app (None for PLAINTEXT)."""
        import faust

        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            return faust.SASLCredentials(
                username=self.kafka_sasl_username,
                password=self.kafka_sasl_password.get_secret_value(),
                ssl_context=self.kafka_ssl_context(),
                mechanism=self.kafka_sasl_mechanism,
            )
        if protocol == "SSL":
            return faust.SSLCredentials(self.kafka_ssl_context())
        return None

    def aiokafka_client_config(self) -> dict[str, Any]:
        """Security keyword arguments for aiokafka's clients (empty for PLAINTEXT)."""
        config = self.kafka_client_config()
        config.pop("ssl_cafile", None)
        context = self.kafka_ssl_context()
        if context is not None:
            config["ssl_context"] = context
        return config

    def topic_for(self, event_type: str) -> str:
        return f"{self.topic_prefix}.{event_type}"

    @property
    def dlq_topic(self) -> str:
        return f"{self.topic_prefix}.dlq"

    @property
    def kafka_servers(self) -> list[tuple[str, int]]:
        """Bootstrap servers as (host, port) pairs."""
        pairs = []
        for server in self.kafka_bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            pairs.append((host, int(port)))
        return pairs

    @property
    def postgres(self) -> PostgresParts:
        parts = urlsplit(self.postgres_dsn.get_secret_value())
        return PostgresParts(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            database=unquote(parts.path.lstrip("/")) or "postgres",
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
        )

    @property
    def redis(self) -> RedisParts:
        parts = parse_redis_url(self.redis_url.get_secret_value())
        if self.redis_cluster and not parts.cluster:
            return replace(parts, cluster=True)
        return parts

    @property
    def stack_redis_cluster_ports(self) -> list[int]:
        first = self.stack_redis_cluster_port
        return [first, first + 1, first + 2]

    def on_stack_redis_cluster(self) -> Settings:
        """These settings with the online store on the local stack's Redis Cluster (the
        password of redis_url, if any, is the cluster's too)."""
        password = self.redis.password
        auth = f":{quote(password, safe='')}@" if password else ""
        nodes = ",".join(f"127.0.0.1:{port}" for port in self.stack_redis_cluster_ports)
        return self.model_copy(
            update={"redis_url": SecretStr(f"redis://{auth}{nodes}/0"), "redis_cluster": True}
        )

    def postgres_conninfo(self, database: str | None = None) -> str:
        """A libpq connection string for psycopg, with the sslmode applied."""
        pg = self.postgres
        fields = {
            "host": pg.host,
            "port": str(pg.port),
            "dbname": database or pg.database,
            "user": pg.user,
            "sslmode": self.postgres_sslmode,
        }
        if pg.password:
            fields["password"] = pg.password
        if self.postgres_sslrootcert is not None:
            fields["sslrootcert"] = str(self.postgres_sslrootcert)
        return " ".join(f"{key}={_quote_conninfo(value)}" for key, value in fields.items())


def parse_redis_url(url: str) -> RedisParts:
    """redis[s]://[[user]:password@]host[:port][,host[:port]...][/db]; several hosts are the
    nodes of a Redis Cluster. Raises ValueError saying what is wrong."""
    form = "redis_url must look like redis://[:password@]host:port[,host:port...]/db"
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("redis", "rediss"):
        raise ValueError(form)
    netloc, _, path = rest.partition("/")
    path = path.split("?", 1)[0]
    userinfo, _, hosts = netloc.rpartition("@")
    username, _, password = (unquote(part) for part in userinfo.partition(":"))
    nodes: list[tuple[str, int]] = []
    for node in hosts.split(","):
        host, port = _host_port(node.strip())
        if not host:
            raise ValueError(f"{form}; {node!r} names no host")
        nodes.append((host, port))
    db = path.strip("/")
    if db and not db.isdigit():
        raise ValueError(f"{form}; the database {db!r} is not a number")
    first_host, first_port = nodes[0]
    return RedisParts(
        host=first_host,
        port=first_port,
        db=int(db) if db else 0,
        password=password,
        ssl=scheme == "rediss",
        username=username,
        nodes=tuple(nodes),
        cluster=len(nodes) > 1,
    )


def _host_port(node: str) -> tuple[str, int]:
    if node.startswith("["):  # an IPv6 address: [::1]:6379
        host, _, after = node[1:].partition("]")
        port = after.removeprefix(":")
    else:
        host, sep, port = node.rpartition(":")
        if not sep:
            host, port = node, ""
    if port and not port.isdigit():
        raise ValueError(f"redis_url: the port of {node!r} is not a number")
    return host, int(port) if port else 6379


def project_folder(name: str) -> Path:
    """A top-level folder of the project (feature_repo, schemas).

    A source checkout keeps it beside the stream package; an installed copy runs from a folder
    that has it (the Docker image's /app).
    """
    beside = Path(__file__).resolve().parent.parent / name
    return beside if beside.is_dir() else Path(name).resolve()


def _default_repo_path() -> Path:
    return project_folder("feature_repo")


def _quote_conninfo(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


@cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
