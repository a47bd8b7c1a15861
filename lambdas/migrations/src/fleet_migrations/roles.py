"""Give each job's database role its password, kept in the role's own Secrets Manager secret.

The roles themselves, and what each may do, are migrations (``0004_roles.sql``). Their
passwords are this module's: for each ``role -> secret ARN`` of ``DB_ROLE_SECRETS`` (a JSON
object, set by the deploy), a role whose secret has no value yet gets a generated password,
stored in its secret first (so a run that stops halfway loses nothing), and every run sets the
role's password from its secret, so role and secret always agree. The server is sent a SCRAM
verifier, never the password, so the password cannot appear in its logs; the secret's ARN is
the only thing about it this module logs. The secrets are created by terraform without a value:
no password is ever in terraform's state or plan.
"""

from __future__ import annotations

import json
import os
import secrets
from base64 import b64encode
from collections.abc import Mapping
from typing import Any

from pg8000.native import identifier, literal
from scramp import ScramMechanism

from .runner import MigrationError

ROLE_SECRETS_VARIABLE = "DB_ROLE_SECRETS"

_SCRAM = ScramMechanism("SCRAM-SHA-256")
_SCRAM_ITERATIONS = 4096  # PostgreSQL's scram_iterations default
_PASSWORD_BYTES = 32


def role_secrets_from_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``DB_ROLE_SECRETS``: role name -> ARN of its secret ({} when unset)."""
    env = os.environ if env is None else env
    text = env.get(ROLE_SECRETS_VARIABLE, "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in value.items()
    ):
        raise MigrationError(
            f"{ROLE_SECRETS_VARIABLE} must be a JSON object of role name -> secret ARN, "
            f"got {text[:200]!r}"
        )
    return value


def provision_roles(conn: Any, role_secrets: Mapping[str, str], client: Any, log: Any) -> list[str]:
    """Set each role's password from its secret (generating it first when the secret is
    empty); return the role names. A role that no migration created is an error."""
    for role, secret_arn in sorted(role_secrets.items()):
        if not conn.run("SELECT 1 FROM pg_roles WHERE rolname = :role", role=role):
            raise MigrationError(
                f"database role {role!r} (secret {secret_arn}) does not exist: "
                "a migration must create it (see 0004_roles.sql)"
            )
        password = _stored_password(client, secret_arn, role)
        if password is None:
            log.info(
                "generating a password for a database role",
                extra={"role": role, "secret_arn": secret_arn},
            )
            password = secrets.token_urlsafe(_PASSWORD_BYTES)
            client.put_secret_value(
                SecretId=secret_arn,
                SecretString=json.dumps({"username": role, "password": password}),
            )
        verifier = literal(_scram_verifier(password))
        conn.run(f"ALTER ROLE {identifier(role)} WITH LOGIN PASSWORD {verifier}")
    return sorted(role_secrets)


def _stored_password(client: Any, secret_arn: str, role: str) -> str | None:
    """The role's password from its secret; None when the secret has no (usable) value."""
    try:
        text = client.get_secret_value(SecretId=secret_arn).get("SecretString") or ""
    except client.exceptions.ResourceNotFoundException:
        return None  # created by terraform without a value: no AWSCURRENT version yet
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("username") != role:
        return None
    password = document.get("password")
    return password if isinstance(password, str) and password else None


def _scram_verifier(password: str) -> str:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``, as PostgreSQL stores it."""
    salt, stored_key, server_key, iterations = _SCRAM.make_auth_info(
        password, iteration_count=_SCRAM_ITERATIONS
    )
    return (
        f"SCRAM-SHA-256${iterations}:{b64encode(salt).decode()}"
        f"${b64encode(stored_key).decode()}:{b64encode(server_key).decode()}"
    )
