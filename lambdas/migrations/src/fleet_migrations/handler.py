"""Lambda entry point: connect to the fleet-registry database and apply pending migrations.

Configuration comes from the environment (see :class:`Settings`); the database credentials come
from the RDS-managed master secret in Secrets Manager, fetched once per execution environment
and fetched again when the database rejects them (the secret was rotated).
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pg8000.exceptions
import pg8000.native
from aws_lambda_powertools import Logger

from .runner import MigrationError, apply_migrations, current_version

__all__ = [
    "ConfigError",
    "Credentials",
    "Settings",
    "get_credentials",
    "handler",
    "open_connection",
    "reset_caches",
    "run",
    "ssl_context_for",
]

logger = Logger(service="fleet-migrations")

SSL_MODES = ("disable", "require", "verify-ca", "verify-full")
# invalid_password, invalid_authorization_specification: what a stale (rotated) password gets.
AUTH_FAILED_SQLSTATES = frozenset({"28P01", "28000"})


class ConfigError(Exception):
    """The environment or the secret is not usable. Messages never contain secret values."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    database: str
    secret_arn: str
    sslmode: str = "require"
    ca_bundle: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``DB_HOST``, ``DB_PORT`` (5432), ``DB_NAME``, ``DB_SECRET_ARN``,
        ``DB_SSLMODE`` (``require``) and ``DB_CA_BUNDLE`` (optional path to a PEM bundle)."""
        env = os.environ if env is None else env
        missing = [k for k in ("DB_HOST", "DB_NAME", "DB_SECRET_ARN") if not env.get(k)]
        if missing:
            raise ConfigError(f"missing environment variable(s): {', '.join(missing)}")
        port_text = env.get("DB_PORT") or "5432"
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigError(f"DB_PORT must be a port number, got {port_text!r}") from None
        if not 0 < port < 65536:
            raise ConfigError(f"DB_PORT must be a port number, got {port_text!r}")
        sslmode = (env.get("DB_SSLMODE") or "require").strip().lower()
        if sslmode not in SSL_MODES:
            raise ConfigError(f"DB_SSLMODE must be one of {', '.join(SSL_MODES)}, got {sslmode!r}")
        ca_bundle = env.get("DB_CA_BUNDLE") or None
        if ca_bundle is not None and not os.path.isfile(ca_bundle):
            raise ConfigError(f"DB_CA_BUNDLE {ca_bundle!r} is not a file")
        return cls(
            host=env["DB_HOST"],
            port=port,
            database=env["DB_NAME"],
            secret_arn=env["DB_SECRET_ARN"],
            sslmode=sslmode,
            ca_bundle=ca_bundle,
        )


def ssl_context_for(sslmode: str, ca_bundle: str | None = None) -> ssl.SSLContext | bool:
    """The ``ssl_context`` argument for pg8000 for a libpq-style ``sslmode``.

    - ``disable``: ``False`` (plain TCP; for a local server only). Never ``None``: pg8000 reads
      ``None`` as "try TLS, fall back to plain text", which would hide a downgrade.
    - ``require``: TLS, certificate not verified, like libpq, unless ``ca_bundle`` is given, in
      which case it is verified against that bundle, host name included (verify-full).
    - ``verify-ca``: certificate chain verified, host name not.
    - ``verify-full``: chain and host name verified.

    ``verify-*`` use ``ca_bundle`` when given, else the system trust store (which does not hold
    the RDS CAs: ship the RDS bundle and set ``DB_CA_BUNDLE``).
    """
    if sslmode == "disable":
        return False
    if sslmode not in SSL_MODES:
        raise ConfigError(f"unknown sslmode {sslmode!r}")
    ctx = ssl.create_default_context(cafile=ca_bundle)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if sslmode == "require" and ca_bundle is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif sslmode == "verify-ca":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:  # verify-full, or require with a CA bundle
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


# Module-level caches: they live as long as the Lambda execution environment.
_client: Any = None
_credentials: dict[str, Credentials] = {}


def reset_caches() -> None:
    """Forget the Secrets Manager client and the cached credentials (tests use this)."""
    global _client
    _client = None
    _credentials.clear()


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


def _sqlstate(exc: BaseException) -> str | None:
    if exc.args and isinstance(exc.args[0], dict):
        return exc.args[0].get("C")
    return None


def _connect(settings: Settings, credentials: Credentials) -> pg8000.native.Connection:
    return pg8000.native.Connection(
        user=credentials.username,
        password=credentials.password,
        host=settings.host,
        port=settings.port,
        database=settings.database,
        ssl_context=ssl_context_for(settings.sslmode, settings.ca_bundle),
        application_name="fleet-migrations",
    )


def open_connection(settings: Settings) -> pg8000.native.Connection:
    """Connect with the cached credentials; on an authentication failure fetch the secret
    again (it may have been rotated) and retry once."""
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
        return _connect(settings, credentials)
    except pg8000.exceptions.DatabaseError as exc:
        if not cached or _sqlstate(exc) not in AUTH_FAILED_SQLSTATES:
            raise
        logger.warning("authentication failed with cached credentials; fetching the secret again")
    return _connect(settings, get_credentials(settings.secret_arn, refresh=True))


def run(settings: Settings | None = None) -> dict[str, Any]:
    """Apply pending migrations; return ``{"applied": [...], "current_version": N}``."""
    settings = Settings.from_env() if settings is None else settings
    conn = open_connection(settings)
    try:
        applied = apply_migrations(conn, log=logger)
        version = current_version(conn)
    finally:
        conn.close()
    logger.info("migrations done", extra={"applied": applied, "current_version": version})
    return {"applied": applied, "current_version": version}


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda handler. The event is ignored; the result is ``run()``'s."""
    try:
        return run()
    except (MigrationError, ConfigError) as exc:
        logger.error(f"migration run failed: {exc}")
        raise
    except Exception:
        logger.exception("migration run failed")
        raise
