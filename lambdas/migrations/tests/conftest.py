"""Test fixtures: a fresh PostgreSQL database per test, on the server named by
FLEET_TEST_DATABASE_URL (postgresql://user:password@host:port/dbname; the user needs CREATEDB).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, unquote, urlsplit

import pg8000.native
import pytest

URL_ENV = "FLEET_TEST_DATABASE_URL"


@dataclass(frozen=True)
class Db:
    host: str
    port: int
    user: str
    password: str | None
    database: str
    sslmode: str = "disable"

    def connect(self) -> pg8000.native.Connection:
        return pg8000.native.Connection(
            user=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=self.database,
            ssl_context=self.sslmode != "disable",
        )


def _server() -> Db:
    url = os.environ.get(URL_ENV)
    if not url:
        pytest.fail(
            f"{URL_ENV} is not set. These tests need a real PostgreSQL server: set it to "
            "postgresql://user:password@127.0.0.1:5432/postgres for a user with CREATEDB "
            "(each test creates and drops its own database). See README.md, 'Tests'.",
            pytrace=False,
        )
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not parts.username:
        pytest.fail(f"{URL_ENV} must look like postgresql://user:password@host:port/dbname")
    query = parse_qs(parts.query)
    return Db(
        host=parts.hostname,
        port=parts.port or 5432,
        user=unquote(parts.username),
        password=unquote(parts.password) if parts.password is not None else None,
        database=unquote(parts.path.lstrip("/")) or "postgres",
        sslmode=query.get("sslmode", ["disable"])[0],
    )


@pytest.fixture
def db() -> Db:
    """A brand-new, empty database (dropped afterwards); ``db.connect()`` opens connections."""
    server = _server()
    name = f"fleet_mig_test_{uuid.uuid4().hex[:12]}"
    admin = server.connect()
    try:
        admin.run(f"CREATE DATABASE {pg8000.native.identifier(name)}")
    finally:
        admin.close()
    try:
        yield replace(server, database=name)
    finally:
        admin = server.connect()
        try:
            admin.run(f"DROP DATABASE IF EXISTS {pg8000.native.identifier(name)} WITH (FORCE)")
        finally:
            admin.close()


@pytest.fixture
def conn(db: Db):
    connection = db.connect()
    try:
        yield connection
    finally:
        connection.close()
