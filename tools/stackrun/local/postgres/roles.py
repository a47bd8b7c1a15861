"""The master user and its database on a local server, as RDS sets them up: a login role (no
superuser) with a SCRAM-SHA-256 password computed here, owning its database."""

from __future__ import annotations

import os
import re
from base64 import b64decode, b64encode

import pg8000.exceptions
import pg8000.native
from scramp import ScramException, ScramMechanism

from stackrun.local.postgres.common import ADMIN_ROLE, LocalDatabaseError, LocalServer, describe
from stackrun.local.postgres.connections import admin_connect

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_RESERVED_ROLES = {"public", "none", "current_user", "session_user", "current_role", ADMIN_ROLE}
_RESERVED_DATABASES = {"postgres", "template0", "template1"}
_SCRAM = ScramMechanism("SCRAM-SHA-256")
_SCRAM_ITERATIONS = 4096  # PostgreSQL 15's fixed iteration count
_SCRAM_SALT_BYTES = 16  # as PostgreSQL generates them
_ADVISORY_LOCK_KEY = 0x5374_6B72  # serialises concurrent ensure_database calls on one server


def ensure_database(server: LocalServer, db_name: str, username: str, password: str) -> None:
    """Make ``username`` a login role with ``password`` owning database ``db_name``.

    The role gets CREATEDB and CREATEROLE, like the RDS master user (and, like it, is no
    superuser). Idempotent: nothing is changed when role, password and database are as asked.

    The password never reaches the server in plain text: the SCRAM-SHA-256 verifier is computed
    here and stored as is (``ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'``), and that session does
    not log its statements. Nor does it appear in any message raised from here.
    """
    _check_names(db_name, username)
    _check_password(password, username)
    conn = admin_connect(server)
    try:
        for setting in (
            "SET log_statement = 'none'",
            "SET log_min_error_statement = 'panic'",
            "SET log_min_duration_statement = -1",
        ):
            conn.run(setting)
        conn.run("SELECT pg_advisory_lock(:key)", key=_ADVISORY_LOCK_KEY)
        _ensure_role(conn, username, password)
        _ensure_owned_database(conn, db_name, username)
    except pg8000.exceptions.DatabaseError as exc:
        raise LocalDatabaseError(
            f"cannot set up database {db_name!r} for user {username!r} on local PostgreSQL "
            f"{server.host}:{server.port}: {describe(exc)}"
        ) from exc
    finally:
        conn.close()


def _ensure_role(conn: pg8000.native.Connection, username: str, password: str) -> None:
    role = pg8000.native.identifier(username)
    rows = conn.run(
        "SELECT rolsuper, rolcanlogin, rolcreatedb, rolcreaterole, rolpassword "
        "FROM pg_authid WHERE rolname = :name",
        name=username,
    )
    if not rows:
        verifier = pg8000.native.literal(_scram_verifier(password))
        conn.run(f"CREATE ROLE {role} LOGIN CREATEDB CREATEROLE PASSWORD {verifier}")
        return
    is_super, can_login, create_db, create_role, stored = rows[0]
    if is_super:
        raise LocalDatabaseError(
            f"role {username!r} is a superuser of the local server; choose another master user name"
        )
    if not (can_login and create_db and create_role):
        conn.run(f"ALTER ROLE {role} WITH LOGIN CREATEDB CREATEROLE")
    if not _scram_matches(stored, password):
        verifier = pg8000.native.literal(_scram_verifier(password))
        conn.run(f"ALTER ROLE {role} WITH PASSWORD {verifier}")


def _ensure_owned_database(conn: pg8000.native.Connection, db_name: str, username: str) -> None:
    role = pg8000.native.identifier(username)
    database = pg8000.native.identifier(db_name)
    rows = conn.run(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :name",
        name=db_name,
    )
    if not rows:
        conn.run(f"CREATE DATABASE {database} OWNER {role}")
    elif rows[0][0] != username:
        conn.run(f"ALTER DATABASE {database} OWNER TO {role}")


def _check_names(db_name: str, username: str) -> None:
    _check_identifier(db_name, "database name")
    _check_identifier(username, "user name")
    if db_name.lower() in _RESERVED_DATABASES:
        raise LocalDatabaseError(
            f"database name {db_name!r} is reserved (postgres, template0, template1)"
        )
    if username.lower() in _RESERVED_ROLES or username.lower().startswith("pg_"):
        raise LocalDatabaseError(
            f"user name {username!r} is reserved (public, none, current_user, session_user, "
            f"current_role, {ADMIN_ROLE}, pg_*)"
        )


def _check_identifier(name: str, what: str) -> None:
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise LocalDatabaseError(
            f"{what} {name!r} is not valid: use 1-63 ASCII letters, digits or underscores, "
            "not starting with a digit"
        )


def _check_password(password: str, username: str) -> None:
    """Reject unusable passwords, never quoting them."""
    if not isinstance(password, str) or not password:
        raise LocalDatabaseError(f"the password of {username!r} must be a non-empty string")
    if "\x00" in password:
        raise LocalDatabaseError(f"the password of {username!r} must not contain NUL characters")
    try:
        _SCRAM.make_auth_info(password, iteration_count=_SCRAM_ITERATIONS)
    except ScramException as exc:
        # scramp's reasons name a character class, never the password.
        raise LocalDatabaseError(
            f"the password of {username!r} cannot be used with SCRAM authentication "
            f"(SASLprep rejects it: {exc.args[0]})"
        ) from None


def _scram_verifier(password: str, salt: bytes | None = None) -> str:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``, as PostgreSQL makes it."""
    salt = salt if salt is not None else os.urandom(_SCRAM_SALT_BYTES)
    salt, stored_key, server_key, iterations = _SCRAM.make_auth_info(
        password, iteration_count=_SCRAM_ITERATIONS, salt=salt
    )
    return (
        f"SCRAM-SHA-256${iterations}:{b64encode(salt).decode()}"
        f"${b64encode(stored_key).decode()}:{b64encode(server_key).decode()}"
    )


def _scram_matches(stored: str | None, password: str) -> bool:
    """True if ``stored`` (a rolpassword) is a SCRAM verifier of ``password``."""
    match = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)", stored or "")
    if match is None:
        return False
    try:
        salt = b64decode(match[2], validate=True)
        _, stored_key, server_key, _ = _SCRAM.make_auth_info(
            password, iteration_count=int(match[1]), salt=salt
        )
    except (ValueError, ScramException):
        return False
    matches: bool = stored_key == b64decode(match[3]) and server_key == b64decode(match[4])
    return matches
