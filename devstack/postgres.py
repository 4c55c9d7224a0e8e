"""PostgreSQL from Debian's package, run as the postgres user, its cluster in .stack/postgres."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
from psycopg import sql

from devstack.errors import StackError
from devstack.probes import ProbeResult
from devstack.proc import ensure_debian_package, owned_dir, pid_alive, service_user, terminate
from devstack.service import LocalService

logger = logging.getLogger(__name__)

MIN_VERSION = 15
# Sized for the worker's write load, which is all appends: each event is a raw_events row and
# about one snapshot row, and every one of them lands in a random leaf of a uuid or user_id
# index. With 256 MB of shared buffers and 1 GB of WAL, the backends evicted and re-read index
# pages and most checkpoints came from WAL volume, each followed by full-page images of every
# page touched again. Measured side by side (bench_ingest, 400k events over 60 days, on a 12M-row
# archive): Postgres fell from 45 and 42 to 33 and 37 us of CPU an event
# (docs/decisions/0016-postgres-sized-for-appends.md).
# max_wal_size is a ceiling, not space taken up front.
_TUNING = [
    arg
    for setting in (
        "max_connections=200",
        "shared_buffers=1GB",
        "max_wal_size=8GB",
        "checkpoint_timeout=15min",
        "wal_compression=lz4",
    )
    for arg in ("-c", setting)
]


def _find_bindir() -> str | None:
    candidates = []
    for postgres in Path("/usr/lib/postgresql").glob("*/bin/postgres"):
        version = postgres.parent.parent.name
        if version.isdigit() and int(version) >= MIN_VERSION:
            candidates.append((int(version), str(postgres.parent)))
    return max(candidates)[1] if candidates else None


class Postgres(LocalService):
    name = "postgres"
    folder = "postgres"

    def prepare(self) -> None:
        self.bindir = Path(ensure_debian_package("postgresql", _find_bindir))
        self.user = service_user("postgres")
        base = owned_dir(self.root / self.folder, self.user)
        self.pgdata = base / "data"
        self.sockets = base / "run"
        for folder in (self.sockets,):
            folder.mkdir(exist_ok=True)
            if self.user:
                os.chown(folder, self.user.pw_uid, self.user.pw_gid)
        if not (self.pgdata / "PG_VERSION").exists():
            logger.info("initialising a PostgreSQL cluster in %s", self.pgdata)
            # Loopback only and trust: this cluster is a developer's and CI's, never a server's.
            self._run_as_postgres(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            )

    def listen(self) -> tuple[str, int]:
        """The address and port the server listens on."""
        pg = self.settings.postgres
        return pg.host, pg.port

    def server_options(self) -> list[str]:
        """Server settings beyond the tuning every cluster of the stack has."""
        return []

    def spawn(self) -> int:
        host, port = self.listen()
        argv = [
            str(self.bindir / "postgres"),
            "-D",
            str(self.pgdata),
            "-c",
            f"listen_addresses={host}",
            "-c",
            f"port={port}",
            "-c",
            f"unix_socket_directories={self.sockets}",
            *_TUNING,
            *self.server_options(),
        ]
        ids = {"user": self.user.pw_uid, "group": self.user.pw_gid} if self.user else {}
        return self.popen(argv, cwd=self.pgdata, **ids)

    def wait(self) -> ProbeResult:
        self.wait_for(self._superuser_probe)
        self._bootstrap()
        return super().wait()

    def stop(self, pid: int) -> None:
        # SIGINT is Postgres's "fast" shutdown: it does not wait for clients to disconnect.
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 60
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            terminate(pid, self.name)

    def superuser_conninfo(self) -> str:
        pg = self.settings.postgres
        return f"host={pg.host} port={pg.port} dbname=postgres user=postgres sslmode=disable"

    def _superuser_probe(self) -> ProbeResult:
        try:
            psycopg.connect(self.superuser_conninfo(), connect_timeout=3).close()
        except psycopg.Error as exc:
            return ProbeResult(False, str(exc).strip())
        return ProbeResult(True, "accepting connections")

    def _bootstrap(self) -> None:
        """Create the role and database named in the DSN when they are missing."""
        pg = self.settings.postgres
        conn = psycopg.connect(self.superuser_conninfo())
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (pg.user,))
                if cur.fetchone() is None:
                    # The local admin role owns the database and may create the least-privilege
                    # roles and throwaway test databases.
                    # A literal, not a parameter: psycopg 3 binds parameters on the server,
                    # and CREATE ROLE takes none.
                    cur.execute(
                        sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                            sql.Identifier(pg.user), sql.Literal(pg.password or None)
                        )
                    )
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (pg.database,))
                if cur.fetchone() is None:
                    cur.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(
                            sql.Identifier(pg.database), sql.Identifier(pg.user)
                        )
                    )
        finally:
            conn.close()

    def _run_as_postgres(self, argv: list[str]) -> None:
        ids = {"user": self.user.pw_uid, "group": self.user.pw_gid} if self.user else {}
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            **ids,  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            raise StackError(f"{Path(argv[0]).name} failed:\n{result.stdout}{result.stderr}")
