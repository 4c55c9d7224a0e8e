"""Apache Kafka 4.0 in KRaft mode, one combined broker+controller, run from Maven Central's jars."""

from __future__ import annotations

import base64
import hashlib
import logging
import shutil
import subprocess
import uuid
from importlib.resources import files
from pathlib import Path

from devstack.errors import StackError
from devstack.proc import ensure_debian_package
from devstack.service import LocalService

logger = logging.getLogger(__name__)

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


class Kafka(LocalService):
    name = "kafka"

    @property
    def home(self) -> Path:
        return self.root / "kafka"

    def prepare(self) -> None:
        java = ensure_debian_package("openjdk-17-jre-headless", lambda: shutil.which("java"))
        self._fetch_jars()
        host, port = self.settings.kafka_servers[0]
        config = self.home / "server.properties"
        config.write_text(self._server_properties(host, port))
        (self.home / "log4j2.yaml").write_text(_LOG4J2)
        if not (self.home / "data" / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            logger.info("formatting Kafka storage, cluster id %s", cluster_id)
            self._run_tool(java, ["kafka.tools.StorageTool", "format", "-t", cluster_id])

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

    def _server_properties(self, host: str, port: int) -> str:
        controller = self.settings.kafka_controller_port
        data = self.home / "data"
        # Single node: every internal topic must make do with one replica.
        return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
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
