"""The local broker's configuration files, rendered from the bootstrap address and data dir.

Single-node KRaft in combined mode with a static quorum (`controller.quorum.voters`), so the
storage is formatted without `--standalone`. The controller listens on the broker port + 1.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path


def cluster_id() -> str:
    """Kafka's own cluster-id form: a random UUID as 22 url-safe base64 chars, not led by '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def server_properties(host: str, port: int, log_dir: Path) -> str:
    controller = f"{host}:{port + 1}"
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{controller}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{controller}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "6",
        # One broker: every internal topic must live with a single replica.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Workers join at once in tests and the demo; do not hold the first rebalance 3 s.
        "group.initial.rebalance.delay.ms": "0",
    }
    lines = ["# Written by `vtops kafka start` on every start; edits here are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def log4j2_properties() -> str:
    """Broker logs to `${kafka.logs.dir}/server.log` (rolled at 100 MB), nothing to the console."""
    return """\
# Written by `vtops kafka start`; kafka.logs.dir is set on the java command line.
status = warn
name = vtops-kafka
appender.server.type = RollingFile
appender.server.name = server
appender.server.fileName = ${sys:kafka.logs.dir}/server.log
appender.server.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.server.layout.type = PatternLayout
appender.server.layout.pattern = [%d] %p %m (%c)%n
appender.server.policies.type = Policies
appender.server.policies.size.type = SizeBasedTriggeringPolicy
appender.server.policies.size.size = 100MB
appender.server.strategy.type = DefaultRolloverStrategy
appender.server.strategy.max = 5
rootLogger.level = INFO
rootLogger.appenderRef.server.ref = server
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""
