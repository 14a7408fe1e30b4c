"""Brokers of a test's own, beside the session's shared one: a test that stops a broker or
needs other listeners starts one on free ports with its own data directory."""

from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from city.settings import KafkaSettings
from sinks.settings import StorageSettings
from vtops.kafka import LocalBroker

HOST = "127.0.0.1"
SCRAM_USER = "vtops-city"
SCRAM_PASSWORD = "sc4am-Secret"  # a test broker's; never a real one
_STORE_PASSWORD = "test-store"


def free_ports(count: int) -> int:
    """The first of `count` consecutive ports nothing listens on (the local broker's
    controller takes its port + 1)."""
    for base in range(21_000, 60_000, 97):
        if all(_free(base + n) for n in range(count)):
            return base
    raise RuntimeError("no free block of ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def own_broker(data_dir: Path) -> LocalBroker:
    """A PLAINTEXT broker like the session's, on free ports, stopped by the caller."""
    port = free_ports(2)
    return LocalBroker(
        KafkaSettings(kafka_bootstrap=f"{HOST}:{port}"), StorageSettings(data_dir=data_dir)
    )


@dataclass(frozen=True)
class TlsListeners:
    plaintext: str  # for readiness probes and to show that TLS is required on the others
    ssl: str
    sasl_ssl: str  # SCRAM-SHA-512, user SCRAM_USER
    ca_file: Path  # PEM of the CA that signed the broker's certificate (for 127.0.0.1)


class TlsBroker(LocalBroker):
    """The local broker with two more listeners: SSL, and SASL_SSL with SCRAM-SHA-512, both
    with a certificate of a CA made for it by keytool."""

    def __init__(self, data_dir: Path) -> None:
        port = free_ports(4)  # PLAINTEXT, CONTROLLER, SSL, SASL_SSL
        super().__init__(
            KafkaSettings(kafka_bootstrap=f"{HOST}:{port}"), StorageSettings(data_dir=data_dir)
        )
        self.listeners = TlsListeners(
            plaintext=f"{HOST}:{port}",
            ssl=f"{HOST}:{port + 2}",
            sasl_ssl=f"{HOST}:{port + 3}",
            ca_file=self.root / "tls" / "ca.pem",
        )

    def _write_config(self) -> None:
        super()._write_config()
        keystore = _make_certificates(self.root / "tls")
        listeners = self.listeners
        controller = f"{HOST}:{int(listeners.plaintext.rpartition(':')[2]) + 1}"
        extra = {
            "listeners": f"PLAINTEXT://{listeners.plaintext},CONTROLLER://{controller},"
            f"SSL://{listeners.ssl},SASL_SSL://{listeners.sasl_ssl}",
            "advertised.listeners": f"PLAINTEXT://{listeners.plaintext},"
            f"SSL://{listeners.ssl},SASL_SSL://{listeners.sasl_ssl}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
            "SSL:SSL,SASL_SSL:SASL_SSL",
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(keystore),
            "ssl.keystore.password": _STORE_PASSWORD,
            "ssl.key.password": _STORE_PASSWORD,
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
        }
        # Later keys win in a Java properties file.
        with self.properties_file.open("a") as properties:
            properties.writelines(f"{key}={value}\n" for key, value in extra.items())

    def _format_options(self) -> list[str]:
        """The SCRAM user goes into the cluster's first metadata (KRaft)."""
        scram = f"SCRAM-SHA-512=[name={SCRAM_USER},password={SCRAM_PASSWORD}]"
        return [*super()._format_options(), "--add-scram", scram]


def _make_certificates(directory: Path) -> Path:
    """A CA (its PEM at directory/ca.pem) and the broker's keystore with a certificate it
    signed for 127.0.0.1 and localhost; the keystore's path."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    ca, broker = directory / "ca.p12", directory / "broker.p12"
    store = ["-storetype", "PKCS12", "-storepass", _STORE_PASSWORD, "-keypass", _STORE_PASSWORD]
    steps = [
        ["-genkeypair", "-alias", "ca", "-dname", "CN=vtops test CA", "-keyalg", "RSA",
         "-keysize", "2048", "-validity", "2", "-ext", "bc:c", "-keystore", str(ca), *store],
        ["-exportcert", "-rfc", "-alias", "ca", "-keystore", str(ca), "-file",
         str(directory / "ca.pem"), *store],
        ["-genkeypair", "-alias", "broker", "-dname", f"CN={HOST}", "-keyalg", "RSA",
         "-keysize", "2048", "-validity", "2", "-keystore", str(broker), *store],
        ["-certreq", "-alias", "broker", "-keystore", str(broker), "-file",
         str(directory / "broker.csr"), *store],
        ["-gencert", "-rfc", "-alias", "ca", "-keystore", str(ca), "-infile",
         str(directory / "broker.csr"), "-outfile", str(directory / "broker.pem"),
         "-ext", f"SAN=ip:{HOST},dns:localhost", "-validity", "2", *store],
        ["-importcert", "-noprompt", "-alias", "ca", "-file", str(directory / "ca.pem"),
         "-keystore", str(broker), *store],
        ["-importcert", "-noprompt", "-alias", "broker", "-file", str(directory / "broker.pem"),
         "-keystore", str(broker), *store],
    ]  # fmt: skip
    for step in steps:
        subprocess.run(["keytool", *step], capture_output=True, text=True, check=True)
    return broker
