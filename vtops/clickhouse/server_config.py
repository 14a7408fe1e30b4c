"""The local ClickHouse server's config.xml and users.xml, written at every start.

Listeners on 127.0.0.1 only. Users come from users.xml (and users.d/*.xml beside it, merged by
ClickHouse): clickhouse-local has no writable user storage, whatever `user_directories` says, so
users, roles and grants made by SQL are refused there (ACCESS_STORAGE_FOR_INSERTION_NOT_FOUND).
"""

from __future__ import annotations

CONFIG_FILE = "config.xml"
USERS_FILE = "users.xml"
USERS_DIR = "users.d"
LOG_FILE = "server.log"
PORTS_FILE = "ports.tsv"  # "HTTP\tTCP\n", written by the server once it listens
STOP_PIPE = "stop.fifo"  # a line written here stops the server

_USERS = """<clickhouse>
  <profiles><default/></profiles>
  <quotas><default/></quotas>
  <users>
    <!-- The pipeline's user: no password, reachable from this host only. -->
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
</clickhouse>
"""


def server_config(http_port: int, tcp_port: int) -> str:
    """Port 0 asks for a free port; that needs exactly one listen host, which this is."""
    return f"""<clickhouse>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <log-level>warning</log-level>
  <logger><level>warning</level><log>{LOG_FILE}</log><errorlog>{LOG_FILE}</errorlog></logger>
  <user_directories><users_xml><path>{USERS_FILE}</path></users_xml></user_directories>
</clickhouse>
"""


def users_config() -> str:
    return _USERS
