"""The broker's jars: fetched from Maven Central by `infra/kafka/pom.xml` into `target/lib`.

`LocalBroker` calls `ensure` before every start; it costs nothing once the jars are present.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

from city.exceptions import BrokerError

logger = logging.getLogger(__name__)

INSTALL_HINT = "install them with `apt-get install openjdk-17-jre-headless maven`"


def default_kafka_home() -> Path:
    """The folder holding pom.xml: `$VTOPS_KAFKA_HOME`, else `infra/kafka` of this checkout."""
    override = os.environ.get("VTOPS_KAFKA_HOME")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "infra" / "kafka"


class BrokerJars:
    def __init__(self, home: Path) -> None:
        self.pom = home / "pom.xml"
        self.lib_dir = home / "target" / "lib"
        self._stamp = self.lib_dir / ".pom.sha256"

    def ready(self) -> bool:
        """The jars are fetched, and for the current pom (an edited pom fetches again)."""
        return (
            any(self.lib_dir.glob("kafka_2.13-*.jar"))
            and self._stamp.is_file()
            and self._stamp.read_text().strip() == self._pom_digest()
        )

    def ensure(self) -> bool:
        """Fetch the jars with Maven unless ready; True if it fetched. May take minutes."""
        if self.ready():
            return False
        self._pom_digest()  # a missing pom says so before Maven does, less clearly
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(f"Maven (`mvn`) is needed to fetch the Kafka jars; {INSTALL_HINT}")
        staging = self.lib_dir.with_name("lib.partial")
        shutil.rmtree(staging, ignore_errors=True)
        command = [
            mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(self.pom),
            "dependency:copy-dependencies", f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]  # fmt: skip
        logger.info("fetching kafka jars pom=%s", self.pom)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise BrokerError(
                f"Maven could not fetch the Kafka jars (exit {result.returncode}):\n{tail}"
            )
        # Swap in the new set whole, so stale jars (an old slf4j-api, say) never linger.
        (staging / ".pom.sha256").write_text(self._pom_digest())
        shutil.rmtree(self.lib_dir, ignore_errors=True)
        staging.rename(self.lib_dir)
        return True

    def _pom_digest(self) -> str:
        if not self.pom.is_file():
            raise BrokerError(
                f"no {self.pom}: set VTOPS_KAFKA_HOME to the folder holding the broker's pom.xml"
            )
        return hashlib.sha256(self.pom.read_bytes()).hexdigest()
