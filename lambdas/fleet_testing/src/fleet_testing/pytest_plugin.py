"""pytest fixtures for the functions' tests: a real PostgreSQL database with the schema, the
Secrets Manager secret in moto's in-process mock, the ``DB_*`` environment, reset caches, and
the powertools log captured through ``capsys``.

Use them from a package's ``tests/conftest.py``::

    from fleet_testing.pytest_plugin import fleet_api_env, fleet_database, fleet_logs

    __all__ = ["fleet_api_env", "fleet_database", "fleet_logs"]

The database server comes from ``FLEET_TEST_DATABASE_URL``
(``postgresql://user:password@host:port/db``, a user with CREATEDB). Without it the tests fail
with a message saying so; they never skip. Each test module gets a fresh database (created,
migrated with ``fleet_migrations.runner.apply_migrations``, dropped at the end) and each test
starts on empty tables.

fleet-testing's dependencies bring what they need (pytest, boto3, moto, fleet-migrations).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, TextIO, cast
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from fleet_common import db as fleet_db
from fleet_common.config import Settings
from fleet_common.observability import logger

__all__ = [
    "URL_ENV",
    "FleetEnv",
    "LogCapture",
    "TestServer",
    "fleet_api_env",
    "fleet_database",
    "fleet_logs",
    "scratch_database",
    "test_server",
]

URL_ENV = "FLEET_TEST_DATABASE_URL"
REGION = "eu-west-1"
TABLES = ("device", "model", "app", "project", "app_user", "team")  # children first
_DB_VARS = ("DB_HOST", "DB_PORT", "DB_NAME", "DB_SECRET_ARN", "DB_SSLMODE", "DB_CA_BUNDLE")


@dataclass(frozen=True)
class TestServer:
    """Where the test PostgreSQL is, and a way to connect to one of its databases."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    host: str
    port: int
    user: str
    password: str | None
    database: str
    sslmode: str = "disable"

    def connect(self) -> Any:
        """A new connection, opened as the functions open theirs (``fleet_common.db.connect``;
        ``sslmode`` as libpq reads it), with no socket timeout: a test may wait on a lock."""
        settings = Settings(
            self.host, self.port, self.database, secret_arn="", sslmode=self.sslmode
        )
        credentials = fleet_db.Credentials(self.user, self.password or "")
        return fleet_db.connect(
            settings, credentials, timeout=None, application_name="fleet_testing"
        )


def test_server() -> TestServer:
    """The server of ``FLEET_TEST_DATABASE_URL``; fails the test (never skips) without it."""
    url = os.environ.get(URL_ENV)
    if not url:
        pytest.fail(
            f"{URL_ENV} is not set. These tests need a real PostgreSQL server: set it to "
            "postgresql://user:password@host:port/dbname for a user with CREATEDB (each test "
            "module creates and drops its own database). `stackrun testdb` (or `nox -s testdb`) "
            "starts one and prints its URL.",
            pytrace=False,
        )
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not parts.username:
        pytest.fail(f"{URL_ENV} must look like postgresql://user:password@host:port/dbname")
    query = parse_qs(parts.query)
    return TestServer(
        host=parts.hostname,
        port=parts.port or 5432,
        user=unquote(parts.username),
        password=unquote(parts.password) if parts.password is not None else None,
        database=unquote(parts.path.lstrip("/")) or "postgres",
        sslmode=query.get("sslmode", ["disable"])[0],
    )


test_server.__test__ = False  # type: ignore[attr-defined]


@contextlib.contextmanager
def scratch_database(prefix: str = "fleet_test") -> Iterator[TestServer]:
    """A new, empty database ``<prefix>_<random>`` on the :func:`test_server`, dropped (with
    ``fleet_common.db``'s caches reset first) when the block ends."""
    import pg8000.native

    server = test_server()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = server.connect()
    try:
        admin.run(f"CREATE DATABASE {pg8000.native.identifier(name)}")
    finally:
        admin.close()
    try:
        yield replace(server, database=name)
    finally:
        fleet_db.reset_caches()  # the cached connection would block DROP DATABASE
        admin = server.connect()
        try:
            admin.run(f"DROP DATABASE IF EXISTS {pg8000.native.identifier(name)} WITH (FORCE)")
        finally:
            admin.close()


@pytest.fixture(scope="module")
def fleet_database() -> Iterator[TestServer]:
    """A fresh database with the fleet schema for this test module (dropped afterwards)."""
    from fleet_migrations.runner import apply_migrations

    with scratch_database("fleet_api_test") as database:
        conn = database.connect()
        try:
            apply_migrations(conn)
        finally:
            conn.close()
        yield database


@dataclass(frozen=True)
class FleetEnv:
    """What :func:`fleet_api_env` set up: the database, the secret and its password."""

    database: TestServer
    secret_arn: str
    password: str

    def connect(self) -> Any:
        """A new connection to the test database (close it when done)."""
        return self.database.connect()

    def query(self, sql: str, **params: Any) -> list[list[Any]]:
        conn = self.connect()
        try:
            rows: list[list[Any]] = conn.run(sql, **params)
            return rows
        finally:
            conn.close()


@pytest.fixture
def fleet_api_env(
    fleet_database: TestServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FleetEnv]:
    """Everything a handler needs, per test: moto's Secrets Manager holding the database user
    and password, ``DB_*`` pointing at the module's database (``DB_SSLMODE=disable``), empty
    tables, and ``fleet_common.db``'s caches reset before and after."""
    import boto3
    from moto import mock_aws

    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    for var in _DB_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    fleet_db.reset_caches()

    conn = fleet_database.connect()
    try:
        # DELETE, children first: on the few rows of a test it is ~100x faster than TRUNCATE.
        conn.run("; ".join(f"DELETE FROM {table}" for table in TABLES))
    finally:
        conn.close()

    # With trust authentication the server ignores passwords; any distinctive one will do then.
    password = fleet_database.password or f"unused-{uuid.uuid4().hex}"
    with mock_aws():
        client = boto3.client("secretsmanager", region_name=REGION)
        secret = client.create_secret(
            Name=f"rds!db-{uuid.uuid4()}",
            SecretString=json.dumps({"username": fleet_database.user, "password": password}),
        )
        monkeypatch.setenv("DB_HOST", fleet_database.host)
        monkeypatch.setenv("DB_PORT", str(fleet_database.port))
        monkeypatch.setenv("DB_NAME", fleet_database.database)
        monkeypatch.setenv("DB_SECRET_ARN", secret["ARN"])
        monkeypatch.setenv("DB_SSLMODE", "disable")
        try:
            yield FleetEnv(database=fleet_database, secret_arn=secret["ARN"], password=password)
        finally:
            fleet_db.reset_caches()


class LogCapture:
    """The powertools log lines written during a test (through ``capsys``)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self._seen = ""

    def text(self) -> str:
        """Everything written to stdout so far (log lines and metrics)."""
        out, err = self._capsys.readouterr()
        self._seen += out + err
        return self._seen

    def records(self) -> list[dict[str, Any]]:
        """The JSON log lines (metrics blobs included), parsed."""
        found = []
        for line in self.text().splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found


class _CurrentStdout:
    """Writes to whatever ``sys.stdout`` is at the time: capsys swaps it between the setup
    and the call phase of a test, so the stream cannot be picked once."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def fleet_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[LogCapture]:
    """Sends the powertools logger to ``capsys`` for this test (DEBUG level) and returns a
    :class:`LogCapture` to read it."""
    # powertools logs through a StreamHandler (registered_handler is typed as any Handler)
    handler = cast("logging.StreamHandler[TextIO | _CurrentStdout]", logger.registered_handler)
    old_stream, old_level = handler.stream, logger.log_level
    handler.stream = _CurrentStdout()
    logger.setLevel("DEBUG")
    try:
        yield LogCapture(capsys)
    finally:
        handler.stream = old_stream  # not setStream(): that would flush the stand-in
        logger.setLevel(old_level)
