"""The real PostgreSQL servers of the local target, from the machine's binaries, on loopback.

``lifecycle`` creates, starts, reconfigures and stops a server and sets up its master user and
database. Two users: ``behind_rds`` (after a database stack with --local, the server behind the
emulated RDS instance) and ``for_tests`` (the server the lambdas' tests use).
"""

from stackrun.local.postgres.lifecycle import (
    ADMIN_ROLE,
    DEFAULT_HOST,
    LocalDatabaseError,
    LocalServer,
    ServerTLS,
    connect,
    ensure_database,
    ensure_server,
    server_status,
    stop_all,
    stop_server,
)

__all__ = [
    "ADMIN_ROLE",
    "DEFAULT_HOST",
    "LocalDatabaseError",
    "LocalServer",
    "ServerTLS",
    "connect",
    "ensure_database",
    "ensure_server",
    "server_status",
    "stop_all",
    "stop_server",
]
