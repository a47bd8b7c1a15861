"""Discover and apply the versioned SQL migrations of the fleet-registry database.

Migrations are files named ``NNNN_<name>.sql`` (four digits, then lower-case letters, digits
and underscores) in the package's ``sql`` folder. Each is applied once, in version order, in a
transaction of its own, and recorded in ``schema_migrations`` together with a SHA-256 checksum
of its text. A recorded migration whose file has since changed is refused, never re-run.

Each file is sent to the server in one piece through pg8000's ``Connection.run(sql)`` without
parameters, which uses PostgreSQL's *simple query protocol*: the server itself parses the
string, so a file may hold any number of statements, including dollar-quoted function bodies,
and no client-side splitting on ``;`` takes place. A file must not contain transaction control
(``BEGIN``/``COMMIT``/``ROLLBACK``) nor statements that refuse to run inside a transaction block
(``CREATE INDEX CONCURRENTLY``, ``VACUUM``, ``ALTER TYPE ... ADD VALUE`` before PostgreSQL 12):
the runner owns the transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "FILENAME_PATTERN",
    "LOCK_KEY",
    "LOCK_TIMEOUT_SECONDS",
    "LOCK_WAIT_SECONDS",
    "Migration",
    "MigrationError",
    "applied_versions",
    "apply_migrations",
    "current_version",
    "discover",
]

#: Key of the session-level advisory lock that serialises runners on one database.
#: (An arbitrary constant: the first 8 bytes of sha256(b"fleet_migrations"), as a signed bigint.)
LOCK_KEY = int.from_bytes(hashlib.sha256(b"fleet_migrations").digest()[:8], "big", signed=True)

#: How long a run waits for another run's migration lock before it gives up (seconds).
LOCK_WAIT_SECONDS = 60
#: How long one statement of a migration waits for a table lock (``lock_timeout``, seconds):
#: DDL queues behind a long transaction and every query of the table queues behind the DDL, so
#: a migration that cannot get its lock soon fails instead of blocking the API's traffic.
LOCK_TIMEOUT_SECONDS = 10

# SQLSTATE lock_not_available: a lock_timeout expired.
_LOCK_NOT_AVAILABLE = "55P03"

#: ``NNNN_<name>.sql``: exactly four digits, an underscore, then a lower-case snake_case name.
FILENAME_PATTERN = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9]+(?:_[a-z0-9]+)*)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

# pg8000 keeps the last ReadyForQuery transaction status byte here.
_IN_TRANSACTION = b"T"


class MigrationError(Exception):
    """A migration could not be discovered, verified or applied. The message names the file."""


class _Logger(Protocol):
    def info(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...
    def warning(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...


def _checksum(sql: str) -> str:
    # Line endings are normalised so that a checkout with CRLF endings has the same checksum.
    return hashlib.sha256(sql.replace("\r\n", "\n").encode("utf-8")).hexdigest()


@dataclass(frozen=True, order=True)
class Migration:
    """One migration file: ``version`` 3 and ``name`` ``"0003_add_owner.sql"``.

    ``checksum`` is the SHA-256 (hex) of ``sql`` and is computed, never passed in.
    """

    version: int
    name: str
    sql: str = field(repr=False, compare=False)
    checksum: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        match = FILENAME_PATTERN.match(self.name)
        if match is None:
            raise MigrationError(
                f"migration file name {self.name!r} is malformed: "
                "expected NNNN_<name>.sql (four digits, then lower-case snake_case)"
            )
        if int(match["version"]) != self.version:
            raise MigrationError(
                f"migration {self.name}: version {self.version} does not match its file name"
            )
        if self.version < 1:
            raise MigrationError(f"migration {self.name}: versions start at 0001")
        object.__setattr__(self, "checksum", _checksum(self.sql))

    @classmethod
    def from_file_text(cls, filename: str, sql: str) -> Migration:
        match = FILENAME_PATTERN.match(filename)
        if match is None:
            raise MigrationError(
                f"migration file name {filename!r} is malformed: "
                "expected NNNN_<name>.sql (four digits, then lower-case snake_case)"
            )
        return cls(version=int(match["version"]), name=filename, sql=sql)


def _default_sql_dir() -> Traversable:
    return resources.files("fleet_migrations") / "sql"


def _validate_sequence(migrations: Iterable[Migration]) -> list[Migration]:
    ordered = sorted(migrations, key=lambda m: m.version)
    seen: dict[int, Migration] = {}
    for migration in ordered:
        if migration.version in seen:
            raise MigrationError(
                f"duplicate migration version {migration.version:04d}: "
                f"{seen[migration.version].name} and {migration.name}"
            )
        seen[migration.version] = migration
    return ordered


def discover(directory: str | PathLike[str] | Traversable | None = None) -> list[Migration]:
    """Return the migrations in ``directory`` (default: the package's ``sql`` folder), in order.

    Every entry whose name does not start with ``.`` or ``__`` must be a migration file: a file
    with a malformed name (``1_core.sql``, ``0003-devices.sql``, ``0004_x.SQL``), a duplicate
    version or an empty file is an error naming the file, so a typo cannot silently skip a
    migration.
    """
    if directory is None:
        root: Traversable = _default_sql_dir()
    elif isinstance(directory, Traversable):
        root = directory
    else:
        root = Path(directory)
    if not root.is_dir():
        raise MigrationError(f"migrations directory {root} does not exist")

    found: list[Migration] = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.startswith((".", "__")):
            continue
        if not entry.is_file():
            raise MigrationError(f"unexpected entry {entry.name!r} in the migrations directory")
        sql = entry.read_text(encoding="utf-8")
        migration = Migration.from_file_text(entry.name, sql)
        if not sql.strip():
            raise MigrationError(f"migration {entry.name} is empty")
        found.append(migration)
    return _validate_sequence(found)


def applied_versions(conn: Any) -> dict[int, tuple[str, str]]:
    """``{version: (name, checksum)}`` of the recorded migrations ({} without the table)."""
    exists = conn.run("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0]
    if not exists:
        return {}
    rows = conn.run("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
    return {int(version): (name, checksum) for version, name, checksum in rows}


def current_version(conn: Any) -> int:
    """The highest applied version, 0 for a database without migrations."""
    versions = applied_versions(conn)
    return max(versions, default=0)


def _plan(
    migrations: Sequence[Migration], applied: dict[int, tuple[str, str]], log: _Logger
) -> list[Migration]:
    known = {m.version for m in migrations}
    for migration in migrations:
        if migration.version not in applied:
            continue
        applied_name, applied_checksum = applied[migration.version]
        if applied_name != migration.name:
            raise MigrationError(
                f"migration {migration.name}: version {migration.version:04d} was applied as "
                f"{applied_name}; an applied migration must not be renamed"
            )
        if applied_checksum != migration.checksum:
            raise MigrationError(
                f"migration {migration.name} was already applied with checksum "
                f"{applied_checksum} but the file now has checksum {migration.checksum}: "
                "never edit an applied migration, add a new one instead"
            )

    unknown = sorted(set(applied) - known)
    if unknown:
        log.warning(
            "database has migrations this package does not know (newer code deployed?): "
            + ", ".join(applied[v][0] for v in unknown)
        )

    pending = [m for m in migrations if m.version not in applied]
    newest_applied = max(applied, default=0)
    for migration in pending:
        if migration.version < newest_applied:
            raise MigrationError(
                f"migration {migration.name} is pending but the newer "
                f"{applied[newest_applied][0]} is already applied: "
                "migrations are applied in order only; renumber it after the newest"
            )
    return pending


def _db_error_text(exc: BaseException) -> str:
    # pg8000 raises DatabaseError({"S": severity, "C": sqlstate, "M": message, ...}).
    if exc.args and isinstance(exc.args[0], dict):
        fields = exc.args[0]
        text = f"{fields.get('S', 'ERROR')}: {fields.get('M', '')} (SQLSTATE {fields.get('C')})"
        if fields.get("D"):
            text += f" DETAIL: {fields['D']}"
        if fields.get("P"):
            text += f" at character {fields['P']}"
        return text
    return f"{type(exc).__name__}: {exc}"


def _sqlstate(exc: BaseException) -> str | None:
    if exc.args and isinstance(exc.args[0], dict):
        return exc.args[0].get("C")
    return None


def _set_lock_timeout(conn: Any, seconds: float) -> None:
    conn.run(f"SET lock_timeout = '{max(1, round(seconds * 1000))}ms'")


def _lock_holders(conn: Any) -> str:
    """Who holds the migration lock: "pid 123 (fleet-migrations, since 12:00:01+00)"."""
    try:
        rows = conn.run(
            "SELECT a.pid, a.application_name, a.xact_start::text FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
            "AND l.granted AND l.classid = :classid AND l.objid = :objid AND l.objsubid = 1",
            classid=(LOCK_KEY >> 32) & 0xFFFFFFFF,
            objid=LOCK_KEY & 0xFFFFFFFF,
        )
    except Exception:
        return "another session"
    held = [f"pid {pid} ({name or 'no application_name'})" for pid, name, _ in rows]
    return ", ".join(held) or "another session"


def _take_lock(conn: Any, wait_seconds: float) -> None:
    """Take the session-level migration lock, waiting at most `wait_seconds` for it."""
    _set_lock_timeout(conn, wait_seconds)
    try:
        conn.run("SELECT pg_advisory_lock(:key)", key=LOCK_KEY)
    except Exception as exc:
        if _sqlstate(exc) != _LOCK_NOT_AVAILABLE:
            raise
        raise MigrationError(
            f"another migration run ({_lock_holders(conn)}) held the migration lock for more "
            f"than {wait_seconds:g} s: nothing was applied; deploy again when it has finished"
        ) from None


def _apply_one(conn: Any, migration: Migration, lock_timeout_seconds: float) -> None:
    conn.run("BEGIN")
    try:
        # No parameters -> simple query protocol -> the whole file, all statements, in one go.
        conn.run(migration.sql)
        if getattr(conn, "_transaction_status", _IN_TRANSACTION) != _IN_TRANSACTION:
            raise MigrationError(
                f"migration {migration.name} ended the runner's transaction "
                "(it must not contain COMMIT/ROLLBACK/END)"
            )
        conn.run(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (:v, :n, :c)",
            v=migration.version,
            n=migration.name,
            c=migration.checksum,
        )
        conn.run("COMMIT")
    except Exception as exc:
        # The original error is the one worth reporting, not a failed ROLLBACK on a dead socket.
        with contextlib.suppress(Exception):
            conn.run("ROLLBACK")
        if isinstance(exc, MigrationError):
            raise
        text = f"migration {migration.name} failed: {_db_error_text(exc)}"
        if _sqlstate(exc) == _LOCK_NOT_AVAILABLE:
            text += (
                f"; it waited more than {lock_timeout_seconds:g} s (lock_timeout) for a lock "
                "held by another transaction (a long query on the table?) and was rolled back "
                "without blocking traffic; the next deploy runs it again"
            )
        raise MigrationError(text) from exc


def apply_migrations(
    conn: Any,
    migrations: Sequence[Migration] | None = None,
    log: _Logger | None = None,
    *,
    lock_wait_seconds: float = LOCK_WAIT_SECONDS,
    lock_timeout_seconds: float = LOCK_TIMEOUT_SECONDS,
) -> list[str]:
    """Apply the pending ``migrations`` (default: :func:`discover`) on ``conn``, in order.

    ``conn`` is a :class:`pg8000.native.Connection` outside any transaction. A session-level
    advisory lock (:data:`LOCK_KEY`) is held for the whole run, so concurrent runners on the
    same database queue up and the later one finds nothing left to do; a runner waits at most
    ``lock_wait_seconds`` for it, and each statement of a migration waits at most
    ``lock_timeout_seconds`` for a table lock (``lock_timeout``), each failing with a
    :class:`MigrationError` that says so. Each migration runs as
    ``BEGIN; <file>; INSERT INTO schema_migrations ...; COMMIT`` and a failure rolls that
    migration back entirely and raises :class:`MigrationError` naming the file; migrations
    applied before it in the same run stay applied.

    Returns the file names applied by this call, ``[]`` when the database is up to date.
    """
    log = log if log is not None else logging.getLogger("fleet_migrations")
    ordered = _validate_sequence(discover() if migrations is None else migrations)

    _take_lock(conn, lock_wait_seconds)
    try:
        _set_lock_timeout(conn, lock_timeout_seconds)
        conn.run(_CREATE_TABLE)
        pending = _plan(ordered, applied_versions(conn), log)
        if not pending:
            log.info("database is up to date")
            return []
        applied: list[str] = []
        for migration in pending:
            log.info(f"applying migration {migration.name}")
            _apply_one(conn, migration, lock_timeout_seconds)
            applied.append(migration.name)
        log.info(f"applied {len(applied)} migration(s): {', '.join(applied)}")
        return applied
    finally:
        try:
            conn.run("SELECT pg_advisory_unlock(:key)", key=LOCK_KEY)
            conn.run("RESET lock_timeout")
        except Exception as exc:
            # The connection is unusable; the server drops the lock with the session.
            log.warning(f"could not release the migration lock: {_db_error_text(exc)}")
