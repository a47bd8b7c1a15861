"""Lambda entry point: connect to the fleet-registry database and apply pending migrations.

Configuration comes from the environment (:class:`fleet_common.config.Settings`, and
``DB_ROLE_SECRETS`` for the job roles' secrets, :mod:`.roles`); the database credentials come
from the RDS-managed master secret in Secrets Manager (only this function may read it),
fetched once per execution environment and fetched again when the database rejects them (the
secret was rotated), by :mod:`fleet_common.db`. Settings, TLS and credentials are that
module's; this one adds the migration run, the job roles' passwords and its result
``{"applied": [...], "current_version": N, "roles": [...]}``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from fleet_common import db as fleet_db
from fleet_common.config import ConfigError, Settings, ssl_context_for
from fleet_common.db import Credentials, get_credentials, reset_caches

from .roles import provision_roles, role_secrets_from_env
from .runner import MigrationError, apply_migrations, current_version, discover

__all__ = [
    "APPLICATION_NAME",
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

APPLICATION_NAME = "fleet-migrations"


def _connect(settings: Settings, credentials: Credentials) -> Any:
    # No socket timeout (unlike the API functions): a migration may run for minutes.
    return fleet_db.connect(settings, credentials, timeout=None, application_name=APPLICATION_NAME)


def open_connection(settings: Settings) -> Any:
    """A new ``pg8000.native.Connection``: :func:`fleet_common.db.open_connection` (cached
    credentials, fetched again once on an authentication failure) with this function's
    ``application_name`` and no socket timeout."""
    return fleet_db.open_connection(settings, connect=_connect)


def run(settings: Settings | None = None) -> dict[str, Any]:
    """Apply pending migrations, then give each job's database role its password (from its
    secret); return ``{"applied": [...], "current_version": N, "roles": [...]}``."""
    settings = Settings.from_env() if settings is None else settings
    migrations = discover()  # a malformed or duplicate file fails here, before any connection
    role_secrets = role_secrets_from_env()  # so does a malformed DB_ROLE_SECRETS
    conn = open_connection(settings)
    try:
        applied = apply_migrations(conn, migrations, log=logger)
        version = current_version(conn)
        roles = (
            provision_roles(conn, role_secrets, _secrets_client(), logger) if role_secrets else []
        )
    finally:
        conn.close()
    logger.info(
        "migrations done", extra={"applied": applied, "current_version": version, "roles": roles}
    )
    return {"applied": applied, "current_version": version, "roles": roles}


def _secrets_client() -> Any:
    import boto3  # the Lambda runtime's copy

    return boto3.client("secretsmanager")


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
