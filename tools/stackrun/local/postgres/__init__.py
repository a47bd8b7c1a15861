"""The real PostgreSQL servers of the local target, from the machine's binaries, on loopback.

``lifecycle`` creates, starts, reconfigures and stops a server (its docstring tells the data
folder's layout, the authentication rules and why the server never runs as root); ``roles``
sets up the master user and its database as RDS does; ``connections`` connects to a server.
Two users: ``behind_rds`` (after a database stack with --local, the server behind the emulated
RDS instance) and ``for_tests`` (the server the lambdas' tests use).
"""

from stackrun.local.postgres.common import (
    ADMIN_ROLE,
    DEFAULT_HOST,
    LocalDatabaseError,
    LocalServer,
    ServerTLS,
)
from stackrun.local.postgres.connections import connect
from stackrun.local.postgres.lifecycle import (
    ensure_cluster,
    ensure_server,
    server_status,
    stop_all,
    stop_server,
)
from stackrun.local.postgres.roles import ensure_database

__all__ = [
    "ADMIN_ROLE",
    "DEFAULT_HOST",
    "LocalDatabaseError",
    "LocalServer",
    "ServerTLS",
    "connect",
    "ensure_cluster",
    "ensure_database",
    "ensure_server",
    "server_status",
    "stop_all",
    "stop_server",
]
