"""Connections to a local server: the superuser's through the unix socket, an application's over
TCP with a password."""

from __future__ import annotations

import ssl

import pg8000.exceptions
import pg8000.native

from stackrun.local.postgres.common import ADMIN_ROLE, LocalDatabaseError, LocalServer, describe
from stackrun.local.postgres.data_folder import socket_folder


def admin_connect(server: LocalServer) -> pg8000.native.Connection:
    """The cluster superuser's connection, through the unix socket."""
    sock = socket_folder(server.data_dir) / f".s.PGSQL.{server.port}"
    try:
        return pg8000.native.Connection(
            user=ADMIN_ROLE, unix_sock=str(sock), database="postgres", timeout=30
        )
    except (pg8000.exceptions.InterfaceError, pg8000.exceptions.DatabaseError) as exc:
        raise LocalDatabaseError(
            f"cannot connect to local PostgreSQL for {server.data_dir} through {sock}: "
            f"{describe(exc)}"
        ) from exc


def connect(
    server: LocalServer,
    db_name: str,
    username: str,
    password: str,
    ssl_context: ssl.SSLContext | bool = False,
) -> pg8000.native.Connection:
    """A TCP connection with a password, made as an ordinary client (an application) makes it
    (``ssl_context``: pg8000's, ``False`` for plain TCP)."""
    try:
        return pg8000.native.Connection(
            user=username,
            password=password,
            host=server.host,
            port=server.port,
            database=db_name,
            ssl_context=ssl_context,
        )
    except (pg8000.exceptions.InterfaceError, pg8000.exceptions.DatabaseError, ssl.SSLError) as exc:
        raise LocalDatabaseError(
            f"cannot connect to database {db_name!r} as {username!r} on local PostgreSQL "
            f"{server.host}:{server.port}: {describe(exc)}"
        ) from exc
