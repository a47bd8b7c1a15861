"""The database connection of a function: credentials from Secrets Manager, one connection per
execution environment, reused across invocations.

- The secret (JSON ``username``/``password``, e.g. the RDS-managed master secret) is fetched
  with boto3 at run time, cached per ARN for the life of the execution environment, and
  fetched again once when the server rejects the cached password (SQLSTATE ``28P01``/``28000``:
  the secret was rotated).
- The connection is cached too. It is replaced when it was closed, when the settings changed,
  or when it fails (a network error, a failed rollback). :func:`transaction` notices a
  connection that the server dropped while idle at its ``BEGIN`` (which has no effect) and
  reconnects once, so an idle timeout or a failover costs a reconnect, not an error.
- The password is never logged, and never part of an exception message raised here.

pg8000 and boto3 are imported on first use, to keep importing a handler module cheap.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .config import ConfigError, Settings, ssl_context_for
from .observability import logger

__all__ = [
    "AUTH_FAILED_SQLSTATES",
    "CONNECT_TIMEOUT_SECONDS",
    "Credentials",
    "close_connection",
    "connect",
    "get_connection",
    "get_credentials",
    "open_connection",
    "reset_caches",
    "sqlstate",
    "transaction",
]

# invalid_password, invalid_authorization_specification: what a stale (rotated) password gets.
AUTH_FAILED_SQLSTATES = frozenset({"28P01", "28000"})
# Socket timeout of the connection (connect and every read/write), well below API Gateway's 30 s.
CONNECT_TIMEOUT_SECONDS = 10
APPLICATION_NAME = "fleet-registry-api"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


# Module-level caches: they live as long as the Lambda execution environment.
_client: Any = None
_credentials: dict[str, Credentials] = {}
_connection: Any = None
_connection_settings: Settings | None = None


def reset_caches() -> None:
    """Close the cached connection and forget the Secrets Manager client and the cached
    credentials (tests call this between tests)."""
    global _client
    close_connection()
    _client = None
    _credentials.clear()


def close_connection() -> None:
    """Close and forget the cached connection (errors while closing are ignored)."""
    global _connection, _connection_settings
    conn, _connection, _connection_settings = _connection, None, None
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.close()


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a pg8000 ``DatabaseError`` (``None`` for anything else)."""
    if exc.args and isinstance(exc.args[0], dict):
        code = exc.args[0].get("C")
        return code if isinstance(code, str) else None
    return None


def _secrets_client() -> Any:
    global _client
    if _client is None:
        # boto3 comes with the Lambda runtime; locally it comes from the `test` extra.
        # AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_SECRETS_MANAGER are honoured by boto3 itself.
        import boto3

        _client = boto3.client("secretsmanager")
    return _client


def get_credentials(secret_arn: str, *, refresh: bool = False) -> Credentials:
    """The ``username``/``password`` of the secret, from the cache unless ``refresh``."""
    if not refresh and secret_arn in _credentials:
        return _credentials[secret_arn]
    logger.info("fetching database credentials", extra={"secret_arn": secret_arn})
    response = _secrets_client().get_secret_value(SecretId=secret_arn)
    secret_string = response.get("SecretString")
    if not secret_string:
        raise ConfigError(f"secret {secret_arn} has no SecretString")
    try:
        payload = json.loads(secret_string)
    except ValueError:
        # `from None`: the decode error carries the document, i.e. the secret.
        raise ConfigError(f"secret {secret_arn} is not a JSON object") from None
    if not isinstance(payload, dict):
        raise ConfigError(f"secret {secret_arn} is not a JSON object")
    missing = [k for k in ("username", "password") if not isinstance(payload.get(k), str)]
    if missing:
        raise ConfigError(f"secret {secret_arn} lacks string field(s): {', '.join(missing)}")
    credentials = Credentials(username=payload["username"], password=payload["password"])
    _credentials[secret_arn] = credentials
    return credentials


def connect(
    settings: Settings,
    credentials: Credentials,
    *,
    timeout: float | None = CONNECT_TIMEOUT_SECONDS,
    application_name: str = APPLICATION_NAME,
) -> Any:
    """A new ``pg8000.native.Connection`` with these credentials (no retry, no caching).
    ``timeout`` is the socket timeout in seconds (``None``: none)."""
    import pg8000.native

    return pg8000.native.Connection(
        user=credentials.username,
        password=credentials.password,
        host=settings.host,
        port=settings.port,
        database=settings.database,
        ssl_context=ssl_context_for(settings.sslmode, settings.ca_bundle),
        timeout=timeout,
        application_name=application_name,
    )


def _connect(settings: Settings, credentials: Credentials) -> Any:
    return connect(settings, credentials)


def open_connection(
    settings: Settings, *, connect: Callable[[Settings, Credentials], Any] | None = None
) -> Any:
    """A new ``pg8000.native.Connection`` with the cached credentials; on an authentication
    failure the secret is fetched again (it may have been rotated) and the connect retried once.

    ``connect(settings, credentials)`` opens the connection (default: the API functions' one,
    with a socket timeout and their ``application_name``); ``fleet_migrations`` passes its own.
    """
    import pg8000.exceptions

    connect = _connect if connect is None else connect

    cached = settings.secret_arn in _credentials
    credentials = get_credentials(settings.secret_arn)
    logger.info(
        "connecting to the database",
        extra={
            "db_host": settings.host,
            "db_port": settings.port,
            "db_name": settings.database,
            "db_user": credentials.username,
            "sslmode": settings.sslmode,
        },
    )
    try:
        return connect(settings, credentials)
    except pg8000.exceptions.DatabaseError as exc:
        if not cached or sqlstate(exc) not in AUTH_FAILED_SQLSTATES:
            raise
        logger.warning("authentication failed with cached credentials; fetching the secret again")
    return connect(settings, get_credentials(settings.secret_arn, refresh=True))


def _is_open(conn: Any) -> bool:
    # pg8000 drops its socket on close(); a connection the server closed is only found on use.
    return getattr(conn, "_usock", True) is not None


def get_connection(settings: Settings | None = None) -> tuple[Any, bool]:
    """``(connection, reused)``: the cached connection when it is open and was made with the
    same settings, else a new one (which becomes the cached one)."""
    global _connection, _connection_settings
    settings = Settings.from_env() if settings is None else settings
    if _connection is not None and _connection_settings == settings and _is_open(_connection):
        return _connection, True
    close_connection()
    conn = open_connection(settings)
    _connection, _connection_settings = conn, settings
    return conn, False


def _begin(statement: str) -> Any:
    conn, reused = get_connection()
    try:
        conn.run(statement)
        return conn
    except Exception as exc:
        # A BEGIN that fails means a broken connection: the server dropped it while idle
        # (restart, failover, idle timeout; pg8000 raises InterfaceError, a bare OSError or the
        # server's FATAL 57P01). Nothing has happened in this transaction yet, so starting
        # over once on a new connection is safe.
        close_connection()
        if not reused:
            raise
        logger.warning(
            "cached database connection is unusable; reconnecting",
            extra={"error": type(exc).__name__, "sqlstate": sqlstate(exc)},
        )
    conn, _ = get_connection()
    try:
        conn.run(statement)
    except Exception:
        close_connection()
        raise
    return conn


@contextlib.contextmanager
def transaction(*, read_only: bool = False) -> Iterator[Any]:
    """``with transaction() as conn:`` run statements in one transaction on the cached
    connection: committed when the block ends, rolled back when it raises (also for
    :class:`~fleet_common.errors.ApiError`, e.g. a conflict found halfway). A connection whose
    rollback or commit fails is discarded, so the next invocation starts on a fresh one.

    Use named parameters only: ``conn.run("SELECT ... WHERE name = :name", name=value)``.
    """
    conn = _begin("BEGIN READ ONLY" if read_only else "BEGIN")
    try:
        yield conn
    except BaseException:
        try:
            conn.run("ROLLBACK")
        except Exception:
            close_connection()
        raise
    try:
        conn.run("COMMIT")
    except Exception:
        close_connection()
        raise
