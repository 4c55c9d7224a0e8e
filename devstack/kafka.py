"""Apache Kafka 4.0 in KRaft mode, one combined broker+controller, run from Maven Central's jars."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from devstack.errors import StackError
from devstack.proc import ensure_debian_package
from devstack.service import LocalService
from stream.settings import Settings

logger = logging.getLogger(__name__)


def new_cluster_id() -> str:
    """A random cluster id as Kafka's `Uuid.randomUuid()` makes one: URL-safe base64 of 16 bytes.

    Like Kafka, it never starts with "-": the storage tool's argument parser takes such an id for
    an option and fails the format (1 fresh stack in 64 did).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


_LOG4J2 = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: org.apache.kafka.clients
        level: WARN
"""


SASL_USER = "aurora"


@dataclass(frozen=True)
class SecureListener:
    """The local broker's SASL_SSL listener, for trying the settings production uses."""

    host: str
    port: int
    username: str
    password: str
    cafile: Path

    def settings(self, base: Settings) -> Settings:
        """`base` pointed at this listener with SASL_SSL and PLAIN."""
        from pydantic import SecretStr

        return base.model_copy(
            update={
                "kafka_bootstrap_servers": f"{self.host}:{self.port}",
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "PLAIN",
                "kafka_sasl_username": self.username,
                "kafka_sasl_password": SecretStr(self.password),
                "kafka_ssl_cafile": self.cafile,
            }
        )


def secure_port(settings: Settings) -> int:
    return settings.kafka_controller_port + 1


def secure_listener(settings: Settings) -> SecureListener | None:
    """The SASL_SSL listener of a local stack started from these settings; None without one."""
    tls = settings.stack_dir.resolve() / "kafka" / "tls"
    try:
        secret = json.loads((tls / "secrets.json").read_text())
    except FileNotFoundError:
        return None
    host = settings.kafka_servers[0][0]
    return SecureListener(
        host, secure_port(settings), SASL_USER, secret["sasl_password"], tls / "broker.pem"
    )


class Kafka(LocalService):
    name = "kafka"

    @property
    def home(self) -> Path:
        return self.root / "kafka"

    def prepare(self) -> None:
        java = ensure_debian_package("openjdk-17-jre-headless", lambda: shutil.which("java"))
        self._fetch_jars()
        host, port = self.settings.kafka_servers[0]
        tls = self._ensure_tls(host)
        config = self.home / "server.properties"
        config.write_text(self._server_properties(host, port, tls))
        config.chmod(0o600)  # it holds the local listener's passwords
        (self.home / "log4j2.yaml").write_text(_LOG4J2)
        if not (self.home / "data" / "meta.properties").exists():
            cluster_id = new_cluster_id()
            logger.info("formatting Kafka storage, cluster id %s", cluster_id)
            self._run_tool(
                java, ["kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}"]
            )

    def spawn(self) -> int:
        java = shutil.which("java") or "java"
        argv = [
            java,
            "-Xms256m",
            "-Xmx1g",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.yaml'}",
            "-cp",
            f"{self.home / 'libs'}/*",
            "kafka.Kafka",
            str(self.home / "server.properties"),
        ]
        return self.popen(argv, cwd=self.home)

    def _fetch_jars(self) -> None:
        pom = files("devstack").joinpath("kafka-pom.xml")
        pom_text = pom.read_text()
        stamp = self.home / "libs" / ".pom-sha256"
        digest = hashlib.sha256(pom_text.encode()).hexdigest()
        if stamp.exists() and stamp.read_text() == digest:
            return
        mvn = ensure_debian_package("maven", lambda: shutil.which("mvn"))
        libs = self.home / "libs"
        shutil.rmtree(libs, ignore_errors=True)
        libs.mkdir(parents=True)
        pom_copy = self.home / "pom.xml"
        pom_copy.write_text(pom_text)
        logger.info("resolving the Kafka broker jars from Maven Central into %s", libs)
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom_copy),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={libs}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(
                f"mvn could not resolve the Kafka jars:\n{result.stdout}{result.stderr}"
            )
        stamp.write_text(digest)

    def _run_tool(self, java: str, args: list[str]) -> None:
        argv = [
            java,
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.yaml'}",
            "-cp",
            f"{self.home / 'libs'}/*",
            *args,
            "-c",
            str(self.home / "server.properties"),
        ]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"{args[0]} failed:\n{result.stdout}{result.stderr}")

    def _ensure_tls(self, host: str) -> dict[str, str]:
        """A self-signed broker certificate and the SASL password, made once, kept 0600."""
        tls = self.home / "tls"
        secrets_file = tls / "secrets.json"
        if secrets_file.exists():
            saved: dict[str, str] = json.loads(secrets_file.read_text())
            return saved
        keytool = shutil.which("keytool") or "keytool"
        tls.mkdir(parents=True, exist_ok=True)
        tls.chmod(0o700)
        made = {
            "keystore_password": secrets.token_urlsafe(18),
            "sasl_password": secrets.token_urlsafe(18),
        }
        keystore, pem = tls / "broker.p12", tls / "broker.pem"
        names = {"IP:127.0.0.1", "DNS:localhost"}
        names.add(f"IP:{host}" if host.replace(".", "").isdigit() else f"DNS:{host}")
        for argv in (
            ["-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048",
             "-validity", "3650", "-dname", f"CN={host}", "-ext", "SAN=" + ",".join(sorted(names)),
             "-keystore", str(keystore), "-storetype", "PKCS12"],
            ["-exportcert", "-rfc", "-alias", "broker", "-keystore", str(keystore),
             "-file", str(pem)],
        ):  # fmt: skip
            result = subprocess.run(
                [keytool, *argv, "-storepass", made["keystore_password"], "-noprompt"],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise StackError(f"keytool failed:\n{result.stdout}{result.stderr}")
        secrets_file.write_text(json.dumps(made))
        secrets_file.chmod(0o600)
        return made

    def _server_properties(self, host: str, port: int, tls: dict[str, str]) -> str:
        controller = self.settings.kafka_controller_port
        secure = secure_port(self.settings)
        data = self.home / "data"
        keystore = self.home / "tls" / "broker.p12"
        jaas = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_{SASL_USER}="{tls["sasl_password"]}";'
        )
        # Single node: every internal topic must make do with one replica. The SASL_SSL listener
        # lets the tests use the security settings production uses, against a real broker.
        return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller},SASL_SSL://{host}:{secure}
advertised.listeners=PLAINTEXT://{host}:{port},SASL_SSL://{host}:{secure}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
inter.broker.listener.name=PLAINTEXT
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config={jaas}
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location={keystore}
listener.name.sasl_ssl.ssl.keystore.password={tls["keystore_password"]}
log.dirs={data}
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
"""
