"""One way to reach ClickHouse: the embedded chDB engine, or an HTTP server when configured.

Both are clickhouse-connect clients, so every sink and query runs the same code against both.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from clickhouse_connect import get_client
from clickhouse_connect.driver import options
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    OperationalError,
    ProgrammingError,
)

from sinks.exceptions import SinkError, StoreInUseError, TransientSinkError
from sinks.settings import StorageSettings

# How chDB says a store is held by another process (it prints it before it raises).
_LOCKED = b"Cannot lock file"
DSN_FORM = "http://user:password@host:port/database (or https://)"


def _check_dsn(dsn: str) -> None:
    """A URL the driver can read, or a one-line error that quotes none of it: the password
    is in there, and a malformed URL (a '/' in the password) puts it where the host or the
    port should be."""
    try:
        parts = urlsplit(dsn)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise SinkError(
            f"VTOPS_CLICKHOUSE_URL: not a URL of the form {DSN_FORM} (percent-encode a '/', "
            "'@' or ':' in the user name or password)"
        )


def connect(storage: StorageSettings) -> Client:
    """A client for the configured store; the database itself is made by the migrations."""
    # The driver imports pandas (installed with chDB) on its first insert, to tell DataFrames
    # from rows; we only ever insert rows, and pandas costs a worker ~45 MB of RSS and a
    # second-long import in its first checkpoint (issue 20). Said absent, it is never imported.
    options.pd = options.pd_time_test = None
    if storage.clickhouse_url is not None:
        dsn = storage.clickhouse_url.get_secret_value()
        _check_dsn(dsn)
        try:
            return get_client(dsn=dsn, database="default")
        except (OperationalError, DatabaseError) as error:
            # The DSN holds the password: say where, never how.
            raise TransientSinkError(
                f"ClickHouse server unreachable: {type(error).__name__}"
            ) from None
        except Exception as error:
            raise SinkError(
                f"VTOPS_CLICKHOUSE_URL: the driver refused it ({type(error).__name__})"
            ) from None
    path = storage.clickhouse_path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    try:
        with _engine_stderr_held():
            return get_client(interface="chdb", path=str(path))
    except ProgrammingError as error:
        if "EmbeddedServer" in str(error):
            raise StoreInUseError(
                f"the embedded ClickHouse store at {path} is in use by another process "
                "(a running `vtops worker`, or `vtops clickhouse start`?); stop it first, or "
                "set VTOPS_CLICKHOUSE_URL (`vtops clickhouse status` shows the local server's)"
            ) from None
        raise SinkError(f"cannot open the embedded ClickHouse store at {path}: {error}") from None


@contextmanager
def _engine_stderr_held() -> Iterator[None]:
    """Standard error while the engine opens a store, written after it without ClickHouse's
    raw `Code: 76 … Cannot lock file` line, which it prints when the store is in use, before
    the error we raise in the city's terms. Held at the file descriptor: chDB writes there
    from C++, past Python's sys.stderr; anything else written meanwhile is kept."""
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.readlines() if _LOCKED not in line]
            if kept:
                os.write(2, b"".join(kept))


def classify(error: Exception) -> SinkError:
    """Sort a driver error into transient (retry the batch) and terminal (stop and say why)."""
    if isinstance(error, SinkError):
        return error
    if isinstance(error, OperationalError | OSError | TimeoutError):
        return TransientSinkError(f"{type(error).__name__}: {error}")
    if isinstance(error, DatabaseError) and not isinstance(error, ProgrammingError):
        text = str(error)
        # Server-side overload and memory limits pass; schema and type errors do not.
        if any(code in text for code in ("TOO_MANY_PARTS", "MEMORY_LIMIT", "TIMEOUT", "NETWORK")):
            return TransientSinkError(text)
    return SinkError(f"{type(error).__name__}: {error}")
