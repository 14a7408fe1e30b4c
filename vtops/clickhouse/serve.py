"""The local ClickHouse server's own process: `python -m vtops.clickhouse.serve ROOT DATA_DIR`.

chDB's engine is ClickHouse's `clickhouse-local`, which opens HTTP and native listeners only
inside a query run by `chdb._chdb.query` (the module-level call; `chdb.connect()` never starts
listeners), and only for as long as that query runs, once per process. So the process runs one
query: start the listeners, write the ports they got to ROOT/ports.tsv, then block without
CPU on reading the named pipe ROOT/stop.fifo until `LocalClickHouse.stop` writes a line to it.
Ports and the listen host come from ROOT/config.xml: clickhouse-local reads `config.xml` from
its working directory. See ../shared/research/clickhouse-server.md for how this was found.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vtops.clickhouse.server_config import PORTS_FILE, STOP_PIPE

# The HTTP interface answers in its default format, which is the query's: clickhouse-connect's
# version check needs TabSeparated (CSV makes it fail).
HTTP_FORMAT = "TabSeparated"


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("\\", "\\\\").replace("'", "\\'") + "'"


def serving_query(root: Path) -> str:
    return "; ".join(
        (
            "SYSTEM START LISTEN HTTP",
            "SYSTEM START LISTEN TCP",
            "SELECT getServerPort('http_port'), getServerPort('tcp_port') "
            f"INTO OUTFILE {_quoted(root / PORTS_FILE)} TRUNCATE FORMAT TabSeparated",
            f"SELECT count() FROM file({_quoted(root / STOP_PIPE)}, 'LineAsString')",
        )
    )


def main(argv: list[str]) -> int:
    root, data_dir = Path(argv[1]).resolve(), Path(argv[2]).resolve()
    os.chdir(root)  # before chDB loads: it reads config.xml from here, even at import
    from chdb import _chdb

    _chdb.query(serving_query(root), HTTP_FORMAT, path=str(data_dir))  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
