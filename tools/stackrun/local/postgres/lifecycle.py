"""The real PostgreSQL server behind an environment's emulated RDS instance (the local target).

The server runs from the machine's PostgreSQL binaries (``initdb``, ``pg_ctl``, ``postgres``),
listens on a loopback address only, and keeps its data in a folder that outlives the command that
started it (later commands reuse the running server). A data folder holds::

    PG_VERSION, base/, ...   the cluster, as made by initdb
    stackrun.conf            port, listen address and socket folder; included from
                             postgresql.conf, rewritten at each start
    pg_hba.conf              the authentication rules below, rewritten at each start
    server.crt, server.key   with TLS: the certificate served and its key (copies, 0600)
    stackrun-server.json     {"host", "port", "socket_dir"} of the last start: the port is reused
    server.log               the server's log (pg_ctl -l)

and next to it ``.<folder name>.stackrun.lock``, which serialises start and stop between
concurrent commands.

Authentication: over TCP only password logins (SCRAM-SHA-256) of ordinary roles, as an
application meets on RDS; with ``tls`` (the server behind an emulated RDS instance) only over
TLS (``hostssl``, as RDS with ``rds.force_ssl``), serving the certificate given. The cluster
superuser cannot log in over TCP at all. The superuser connects through the unix socket only,
with ``trust``: the socket lives in a 0700 folder owned by the server's OS user (the data folder
itself, or a short folder when the socket path would be longer than the 107 bytes a unix socket
path may have) and is created with mode 0700, so only that OS user and root can reach it.

PostgreSQL refuses to run as root. When this code runs as root (sessions and CI do), initdb,
``pg_ctl start`` and so the server run as an unprivileged OS user: the owner of an existing data
folder, else ``postgres``, else ``nobody``. The data folder is given to that user, and every folder
above it must let that user pass while initdb and the start run: where one does not (pytest's
``/tmp/pytest-of-root`` is 0700, for one), that user is granted search-only access (``x``, no
listing) to that folder with a POSIX ACL, and a line on stderr says so; when the ACL cannot be
set, the error names the folder. Such a grant may be undone behind our back (each pytest session
start resets ``/tmp/pytest-of-root`` to 0700, which empties the ACL mask): so it is checked again
before each initdb and start, which are retried when a folder was closed mid-way, and the status
and stop of a server are done by the caller itself, not by pg_ctl as that user. A started server
does not need the way in any more: it works relative to its data folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from base64 import b64decode, b64encode
from dataclasses import dataclass
from pathlib import Path

import pg8000.exceptions
import pg8000.native
from scramp import ScramException, ScramMechanism

from stackrun.errors import StackrunError
from stackrun.filelock import file_lock
from stackrun.local.emulator.common import is_loopback

DEFAULT_HOST = "127.0.0.1"

# The cluster superuser. Deliberately not "postgres": that is a common RDS master user name, and
# the master user must be an ordinary role, as on RDS.
ADMIN_ROLE = "stackrun_superuser"

START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 60

_CONF_FILE = "stackrun.conf"
_TLS_CERT = "server.crt"
_TLS_KEY = "server.key"
_RECORD_FILE = "stackrun-server.json"
_LOG_FILE = "server.log"
_LOG_TAIL_LINES = 30
_ATTEMPTS = 3
_RECHECK_SECONDS = 5
_INCLUDE_LINE = f"include_if_exists = '{_CONF_FILE}'\t# added by stackrun"

# sun_path holds 108 bytes, NUL included; PostgreSQL refuses longer socket paths.
_SOCKET_PATH_MAX = 107
_LONGEST_SOCKET_NAME = ".s.PGSQL.65535"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_RESERVED_ROLES = {"public", "none", "current_user", "session_user", "current_role", ADMIN_ROLE}
_RESERVED_DATABASES = {"postgres", "template0", "template1"}
# pg_ctl pastes the data folder and log file between double quotes into a shell command line.
_UNSAFE_PATH_CHARS = set('"$`\\\n\r')

_RUN_AS_CANDIDATES = ("postgres", "nobody")

_SCRAM = ScramMechanism("SCRAM-SHA-256")
_SCRAM_ITERATIONS = 4096  # PostgreSQL 15's fixed iteration count
_SCRAM_SALT_BYTES = 16  # as PostgreSQL generates them

_ADVISORY_LOCK_KEY = 0x5374_6B72  # serialises concurrent ensure_database calls on one server


class LocalDatabaseError(StackrunError):
    """The local PostgreSQL server cannot be set up, started, stopped or reached as asked."""


@dataclass(frozen=True)
class ServerTLS:
    """The certificate (PEM, chain) and private key a server serves TLS with."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class LocalServer:
    """A running local PostgreSQL server: where ordinary clients connect over TCP."""

    data_dir: Path
    host: str
    port: int


@dataclass(frozen=True)
class _Account:
    """The OS user the server (and initdb, pg_ctl) runs as."""

    uid: int
    gid: int
    name: str
    home: str

    @property
    def switch(self) -> bool:
        """True when commands must drop from root to this user."""
        return os.geteuid() == 0 and self.uid != 0


# --------------------------------------------------------------------------------------------
# Public API


def ensure_server(
    data_dir: Path, port: int | None = None, host: str = DEFAULT_HOST, tls: ServerTLS | None = None
) -> LocalServer:
    """Return the server of ``data_dir``, creating the cluster and starting it as needed.

    ``port=None`` reuses the port of the last start (recorded in the data folder), or picks a
    free one for a new cluster. With ``tls``, TCP clients must use TLS and are served that
    certificate (a running server is reconfigured and reloaded when it served another one, or
    none). Fast when the server already runs as asked: no restart, no subprocess, no output.
    Raises LocalDatabaseError when the server runs on another address than asked, when a
    recorded or given port is taken by another program, or when it does not start.
    """
    _check_host(host)
    if port is not None:
        _check_port(port)
    data_dir = _normalise(data_dir)

    with _locked(data_dir):
        running = _postmaster(data_dir) if (data_dir / "PG_VERSION").exists() else None
        if running is not None:
            server = _running_server(data_dir, running, host, port)
            account = _account_for(data_dir)
            if tls is not None and (
                _install_tls(data_dir, account, tls) or not _serves_tls(server)
            ):
                _write_server_config(
                    data_dir, account, host, server.port, _socket_dir(data_dir), tls
                )
                _reload_tls(server)
            return server
        account = _prepare(data_dir)
        initialising = not (data_dir / "PG_VERSION").exists()
        if initialising:
            _initdb(data_dir, account)
        _install_tls(data_dir, account, tls)
        port = _start(data_dir, account, host, port, initialising, tls)
        return LocalServer(data_dir, host, port)


def ensure_database(server: LocalServer, db_name: str, username: str, password: str) -> None:
    """Make ``username`` a login role with ``password`` owning database ``db_name``.

    The role gets CREATEDB and CREATEROLE, like the RDS master user (and, like it, is no
    superuser). Idempotent: nothing is changed when role, password and database are as asked.

    The password never reaches the server in plain text: the SCRAM-SHA-256 verifier is computed
    here and stored as is (``ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'``), and that session does
    not log its statements. Nor does it appear in any message raised from here.
    """
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
    _check_password(password, username)

    role = pg8000.native.identifier(username)
    database = pg8000.native.identifier(db_name)
    conn = _admin_connect(server)
    try:
        for setting in (
            "SET log_statement = 'none'",
            "SET log_min_error_statement = 'panic'",
            "SET log_min_duration_statement = -1",
        ):
            conn.run(setting)
        conn.run("SELECT pg_advisory_lock(:key)", key=_ADVISORY_LOCK_KEY)

        rows = conn.run(
            "SELECT rolsuper, rolcanlogin, rolcreatedb, rolcreaterole, rolpassword "
            "FROM pg_authid WHERE rolname = :name",
            name=username,
        )
        if not rows:
            verifier = pg8000.native.literal(_scram_verifier(password))
            conn.run(f"CREATE ROLE {role} LOGIN CREATEDB CREATEROLE PASSWORD {verifier}")
        else:
            is_super, can_login, create_db, create_role, stored = rows[0]
            if is_super:
                raise LocalDatabaseError(
                    f"role {username!r} is a superuser of the local server; "
                    "choose another master user name"
                )
            if not (can_login and create_db and create_role):
                conn.run(f"ALTER ROLE {role} WITH LOGIN CREATEDB CREATEROLE")
            if not _scram_matches(stored, password):
                verifier = pg8000.native.literal(_scram_verifier(password))
                conn.run(f"ALTER ROLE {role} WITH PASSWORD {verifier}")

        rows = conn.run(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :name",
            name=db_name,
        )
        if not rows:
            conn.run(f"CREATE DATABASE {database} OWNER {role}")
        elif rows[0][0] != username:
            conn.run(f"ALTER DATABASE {database} OWNER TO {role}")
    except pg8000.exceptions.DatabaseError as exc:
        raise LocalDatabaseError(
            f"cannot set up database {db_name!r} for user {username!r} on local PostgreSQL "
            f"{server.host}:{server.port}: {_describe(exc)}"
        ) from exc
    finally:
        conn.close()


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
            f"{server.host}:{server.port}: {_describe(exc)}"
        ) from exc


def stop_server(data_dir: Path) -> bool:
    """Stop the server of ``data_dir`` with a fast shutdown. True if it was running.

    Does what ``pg_ctl stop -m fast`` does (SIGINT to the postmaster, then wait for it to remove
    postmaster.pid), but as the caller: pg_ctl would have to run as the server's user, who may
    by then have lost its way into the data folder (see ``_postmaster``).
    """
    data_dir = _normalise(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        return False
    with _locked(data_dir):
        running = _postmaster(data_dir)
        if running is None:
            return False
        try:
            os.kill(running.pid, signal.SIGINT)  # "fast" shutdown, what -m fast sends
        except ProcessLookupError:
            return True  # exited meanwhile
        except PermissionError as exc:
            raise LocalDatabaseError(
                f"cannot stop local PostgreSQL for {data_dir} (pid {running.pid}): it belongs "
                "to another user; stop it as that user (or as root)"
            ) from exc
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        # Gone means postmaster.pid removed and the process exited (a zombie counts as exited).
        while _postmaster(data_dir) is not None or _is_postmaster_of(running.pid, data_dir):
            if time.monotonic() > deadline:
                raise LocalDatabaseError(
                    f"local PostgreSQL for {data_dir} (pid {running.pid}) did not stop within "
                    f"{STOP_TIMEOUT_SECONDS} s of a fast shutdown request{_log_tail(data_dir)}"
                )
            time.sleep(0.05)
        if running.port is not None:
            _remove_stale_socket(data_dir, running.port)
        return True


def stop_all(root: Path) -> list[Path]:
    """Stop every server whose data folder lies under ``root``; return the folders stopped.

    A data folder is any folder holding PG_VERSION (not looked into further: each database
    folder inside a cluster has one too). Every server is tried even if one fails to stop.
    """
    root = Path(root).resolve()
    clusters: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        if "PG_VERSION" in filenames:
            clusters.append(Path(dirpath))
            dirnames.clear()
        else:
            dirnames.sort()

    stopped: list[Path] = []
    failures: list[str] = []
    for data_dir in clusters:
        try:
            if stop_server(data_dir):
                stopped.append(data_dir)
        except LocalDatabaseError as exc:
            failures.append(str(exc))
    if failures:
        raise LocalDatabaseError(
            f"could not stop {len(failures)} local PostgreSQL server(s) under {root}:\n"
            + "\n".join(failures)
        )
    return stopped


def server_status(data_dir: Path) -> str:
    """One line for people: "running on 127.0.0.1:NNNN (pid N)", "stopped (...)", ..."""
    data_dir = _normalise(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        return f"not initialised (no cluster in {data_dir})"
    running = _postmaster(data_dir)
    if running is not None:
        state = "running" if running.status in ("ready", "") else running.status
        return f"{state} on {running.host or '-'}:{running.port or '-'} (pid {running.pid})"
    record = _read_record(data_dir)
    if record is not None and isinstance(record.get("port"), int):
        return f"stopped (last ran on {record.get('host', DEFAULT_HOST)}:{record['port']})"
    return "stopped"


# --------------------------------------------------------------------------------------------
# Validation


def _normalise(data_dir: Path) -> Path:
    data_dir = Path(data_dir).resolve()
    bad = sorted(_UNSAFE_PATH_CHARS & set(str(data_dir)))
    if bad:
        raise LocalDatabaseError(
            f"the PostgreSQL data folder {str(data_dir)!r} contains characters pg_ctl cannot "
            f"handle ({' '.join(repr(c) for c in bad)}); choose another folder"
        )
    return data_dir


def _check_host(host: str) -> None:
    if not is_loopback(host):
        raise LocalDatabaseError(
            f"local PostgreSQL listens on loopback addresses only (127.0.0.0/8, ::1, localhost), "
            f"not {host!r}"
        )


def _check_port(port: int) -> None:
    if not isinstance(port, int) or not 1024 <= port <= 65535:
        raise LocalDatabaseError(
            f"local PostgreSQL port {port!r} is not an unprivileged TCP port (1024-65535)"
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


# --------------------------------------------------------------------------------------------
# SCRAM verifiers (the form PostgreSQL stores in pg_authid.rolpassword)


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
    return stored_key == b64decode(match[3]) and server_key == b64decode(match[4])


# --------------------------------------------------------------------------------------------
# The OS user, the data folder and the folders above it


def _prepare(data_dir: Path) -> _Account:
    """Choose the OS user of the server and give it the data folder (made if missing)."""
    account = _account_for(data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    owner = data_dir.stat().st_uid
    if account.switch:
        if owner != account.uid:
            # A folder made by root (just now, or by the caller): hand it over whole.
            _chown_tree(data_dir, account)
    elif owner != account.uid:
        raise LocalDatabaseError(
            f"the PostgreSQL data folder {data_dir} belongs to uid {owner}, and PostgreSQL runs "
            "only as the owner of its data; run as that user (or as root)"
        )
    return account


def _account_for(data_dir: Path) -> _Account:
    euid = os.geteuid()
    if euid != 0:
        return _account_from_uid(euid, os.getegid())
    with contextlib.suppress(FileNotFoundError):
        st = data_dir.stat()
        if st.st_uid != 0:
            return _account_from_uid(st.st_uid, st.st_gid)
    for name in _RUN_AS_CANDIDATES:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0:
            return _Account(entry.pw_uid, entry.pw_gid, entry.pw_name, entry.pw_dir or "/")
    raise LocalDatabaseError(
        "PostgreSQL refuses to run as root, and neither a 'postgres' nor a 'nobody' OS user "
        "exists to run it as; create one (e.g. install the postgresql package) or run as an "
        "ordinary user"
    )


def _account_from_uid(uid: int, gid: int) -> _Account:
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return _Account(uid, gid, str(uid), "/")
    return _Account(uid, entry.pw_gid, entry.pw_name, entry.pw_dir or "/")


def _chown_tree(path: Path, account: _Account) -> None:
    os.chown(path, account.uid, account.gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), account.uid, account.gid, follow_symlinks=False)


def _ensure_reachable(data_dir: Path, account: _Account) -> None:
    """Let ``account`` pass through every folder down to ``data_dir`` (POSIX ACL ``u:<user>:x``)."""
    for _ in range(len(data_dir.parts) + 1):
        blocked = _first_blocked_folder(data_dir, account)
        if blocked is None:
            return
        _grant_search(blocked, data_dir, account)
    raise LocalDatabaseError(
        f"user {account.name!r} still cannot reach the PostgreSQL data folder {data_dir}"
    )


def _first_blocked_folder(data_dir: Path, account: _Account) -> Path | None:
    """The first folder from / down to ``data_dir`` that ``account`` cannot enter, if any.

    Tested by the kernel (``cd`` as that user), so ACLs, groups and mount options all count.
    """
    folders = [*reversed(data_dir.parents), data_dir]
    script = 'for d do cd -- "$d" 2>/dev/null || { printf %s "$d"; exit 1; }; done'
    result = _run(account, ["/bin/sh", "-c", script, "sh", *map(str, folders)])
    if result.returncode == 0:
        return None
    return Path(result.stdout) if result.stdout else data_dir


# Linux POSIX ACL extended attribute (see linux/posix_acl_xattr.h).
_ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK, _ACL_OTHER = (
    0x01,
    0x02,
    0x04,
    0x08,
    0x10,
    0x20,
)
_ACL_UNDEFINED_ID = 0xFFFFFFFF
_ACL_HEADER = struct.Struct("<I")
_ACL_ENTRY = struct.Struct("<HHI")
_SEARCH = 0o1


def _grant_search(folder: Path, data_dir: Path, account: _Account) -> None:
    try:
        try:
            current: bytes | None = os.getxattr(folder, _ACL_XATTR)
        except OSError as exc:
            if exc.errno != errno.ENODATA:  # no ACL yet: only the mode bits
                raise
            current = None
        acl = _acl_with_search(current, folder.stat().st_mode, account.uid)
        os.setxattr(folder, _ACL_XATTR, acl)
    except (OSError, AttributeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise LocalDatabaseError(
            f"PostgreSQL must run as user {account.name!r} (it refuses to run as root), which "
            f"cannot enter the folder {folder} on the way to its data folder {data_dir}, and "
            f"granting it search access with a POSIX ACL failed ({reason}). Let it pass (e.g. "
            f"`chmod o+x {folder}`) or choose a data folder it can reach."
        ) from None
    print(
        f"local PostgreSQL: granted user {account.name} search-only access (ACL "
        f"u:{account.name}:x) to {folder} so that it can reach {data_dir}",
        file=sys.stderr,
    )


def _acl_with_search(current: bytes | None, mode: int, uid: int) -> bytes:
    """The access ACL ``current`` (or the one ``mode`` implies) plus ``u:<uid>:x``.

    The mask gains ``x`` only, so no other entry gains more than search permission.
    """
    entries: dict[tuple[int, int], int] = {}
    if current:
        (version,) = _ACL_HEADER.unpack_from(current)
        if version != _ACL_VERSION or (len(current) - _ACL_HEADER.size) % _ACL_ENTRY.size:
            raise ValueError(f"unexpected POSIX ACL format (version {version})")
        for offset in range(_ACL_HEADER.size, len(current), _ACL_ENTRY.size):
            tag, perm, ident = _ACL_ENTRY.unpack_from(current, offset)
            entries[(tag, ident)] = perm
    else:
        entries[(_ACL_USER_OBJ, _ACL_UNDEFINED_ID)] = (mode >> 6) & 0o7
        entries[(_ACL_GROUP_OBJ, _ACL_UNDEFINED_ID)] = (mode >> 3) & 0o7
        entries[(_ACL_OTHER, _ACL_UNDEFINED_ID)] = mode & 0o7

    entries[(_ACL_USER, uid)] = entries.get((_ACL_USER, uid), 0) | _SEARCH
    mask_key = (_ACL_MASK, _ACL_UNDEFINED_ID)
    if mask_key in entries:
        entries[mask_key] |= _SEARCH
    else:  # a new mask must not cut what the owning group has now
        entries[mask_key] = entries[(_ACL_GROUP_OBJ, _ACL_UNDEFINED_ID)] | _SEARCH
    body = b"".join(
        _ACL_ENTRY.pack(tag, perm, ident) for (tag, ident), perm in sorted(entries.items())
    )
    return _ACL_HEADER.pack(_ACL_VERSION) + body


def _socket_dir(data_dir: Path) -> Path:
    """Where the server's unix socket lives: the data folder, unless that path is too long."""
    if len(os.fsencode(data_dir / _LONGEST_SOCKET_NAME)) <= _SOCKET_PATH_MAX:
        return data_dir
    digest = hashlib.sha256(os.fsencode(data_dir)).hexdigest()[:16]
    base = Path(tempfile.gettempdir())
    if len(os.fsencode(base / "stackrun-pg-0123456789abcdef" / _LONGEST_SOCKET_NAME)) > 107:
        base = Path("/tmp")
    return base / f"stackrun-pg-{digest}"


def _prepare_socket_dir(socket_dir: Path, account: _Account) -> None:
    """Create a short socket folder 0700 for ``account``; refuse one someone else planted."""
    with contextlib.suppress(FileExistsError):
        socket_dir.mkdir(mode=0o700)
    st = socket_dir.lstat()
    if not os.path.isdir(socket_dir) or os.path.islink(socket_dir):
        raise LocalDatabaseError(f"{socket_dir} (the PostgreSQL socket folder) is not a folder")
    if st.st_uid != account.uid:
        if st.st_uid != os.geteuid():
            raise LocalDatabaseError(
                f"the PostgreSQL socket folder {socket_dir} belongs to another user (uid "
                f"{st.st_uid}); remove it"
            )
        os.chown(socket_dir, account.uid, account.gid)
    os.chmod(socket_dir, 0o700)


# --------------------------------------------------------------------------------------------
# Running the PostgreSQL programs


def _binary(name: str) -> str:
    """``pg_ctl`` from PATH (or Debian's /usr/lib/postgresql/N/bin); its siblings next to it.

    initdb must come from the same installation as pg_ctl, which starts the ``postgres`` next to
    itself.
    """
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        installed = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
            key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
        )
        pg_ctl = str(installed[-1]) if installed else None
    if pg_ctl is None:
        raise LocalDatabaseError(
            "PostgreSQL server programs (initdb, pg_ctl, postgres) not found on PATH nor under "
            "/usr/lib/postgresql/*/bin; install the PostgreSQL server (e.g. apt-get install "
            "postgresql)"
        )
    if name == "pg_ctl":
        return pg_ctl
    sibling = Path(pg_ctl).resolve().parent / name
    found = str(sibling) if sibling.exists() else shutil.which(name)
    if found is None:
        raise LocalDatabaseError(f"PostgreSQL program {name!r} not found next to {pg_ctl}")
    return found


def _run(
    account: _Account,
    args: list[str],
    *,
    timeout: float = 60,
    new_session: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` as ``account``, with no PG* variables of ours leaking into it.

    Dropping privileges uses subprocess's own ``user``/``group``/``extra_groups`` (setuid in
    the child, no preexec_fn, no PAM, no shell, unlike su or runuser).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    kwargs: dict[str, object] = {}
    if account.switch:
        env.update(HOME=account.home, USER=account.name, LOGNAME=account.name)
        try:
            groups = os.getgrouplist(account.name, account.gid)
        except (KeyError, OSError):
            groups = [account.gid]
        kwargs = {"user": account.uid, "group": account.gid, "extra_groups": groups}
    try:
        return subprocess.run(
            args,
            env=env,
            cwd="/",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=new_session,
            check=False,
            **kwargs,
        )
    except subprocess.TimeoutExpired as exc:
        raise LocalDatabaseError(
            f"`{' '.join(args[:2])}` did not finish within {timeout:g} s"
        ) from exc
    except OSError as exc:
        raise LocalDatabaseError(f"cannot run {args[0]}: {exc}") from exc


def _initdb(data_dir: Path, account: _Account) -> None:
    if any(data_dir.iterdir()):
        raise LocalDatabaseError(
            f"the PostgreSQL data folder {data_dir} is not empty but holds no cluster (no "
            "PG_VERSION); empty or remove it"
        )
    args = [
        _binary("initdb"),
        "-D",
        str(data_dir),
        "-U",
        ADMIN_ROLE,
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",  # a local cluster: skip the final fsync of every file
    ]
    for attempt in range(_ATTEMPTS):
        if account.switch:
            _ensure_reachable(data_dir, account)
        result = _run(account, args, timeout=300)
        if result.returncode == 0:
            break
        if account.switch and "Permission denied" in result.stderr and attempt < _ATTEMPTS - 1:
            # A folder above was closed again mid-way (see _postmaster): initdb could not clean
            # up behind itself. The folder was empty before: empty it again and retry.
            _empty_folder(data_dir)
            continue
        raise LocalDatabaseError(
            f"initdb failed for the local PostgreSQL data folder {data_dir}:\n{_output(result)}"
        )
    conf = data_dir / "postgresql.conf"
    text = conf.read_text()
    if _INCLUDE_LINE not in text:
        _write_file(conf, account, text.rstrip("\n") + "\n\n" + _INCLUDE_LINE + "\n")


def _start(
    data_dir: Path,
    account: _Account,
    host: str,
    port: int | None,
    initialising: bool,
    tls: ServerTLS | None,
) -> int:
    """Start the stopped server with ``pg_ctl start``; return its port."""
    socket_dir = _socket_dir(data_dir)
    if socket_dir != data_dir:
        _prepare_socket_dir(socket_dir, account)
    record = _read_record(data_dir)
    recorded = record.get("port") if record is not None else None
    wanted = port if port is not None else recorded if isinstance(recorded, int) else None
    log = data_dir / _LOG_FILE
    announced: int | None = None

    for attempt in range(_ATTEMPTS):
        chosen = wanted if wanted is not None else _free_port(host)
        if wanted is not None and _port_taken(host, chosen):
            origin = "given" if port is not None else f"recorded in {data_dir / _RECORD_FILE}"
            raise LocalDatabaseError(
                f"cannot start local PostgreSQL for {data_dir}: port {chosen} ({origin}) on "
                f"{host} is in use by another program; free it or pass another port"
            )
        if account.switch:
            _ensure_reachable(data_dir, account)
        _write_server_config(data_dir, account, host, chosen, socket_dir, tls)
        _remove_stale_socket(data_dir, chosen)
        if chosen != announced:
            action = "initialising, then starting" if initialising else "starting"
            print(f"local PostgreSQL for {data_dir}: {action} on {host}:{chosen}", file=sys.stderr)
            announced = chosen
        log_offset = log.stat().st_size if log.exists() else 0
        # A new session: the server must not die with the terminal's Ctrl-C or the command.
        result = _run(
            account,
            [
                _binary("pg_ctl"),
                "start",
                "-D",
                str(data_dir),
                "-l",
                str(log),
                "-w",
                "-t",
                str(START_TIMEOUT_SECONDS),
                "-s",
            ],
            timeout=START_TIMEOUT_SECONDS + 30,
            new_session=True,
        )
        # pg_ctl, as the server's user, may fail only to see the server it started (postmaster.pid
        # out of its reach): look as the caller before believing it.
        if result.returncode == 0 or _wait_ready(data_dir, _RECHECK_SECONDS):
            break
        new_log = _read_from(log, log_offset)
        last = attempt == _ATTEMPTS - 1
        if not last and wanted is None and "Address already in use" in new_log:
            continue  # lost a race for the free port picked: pick another
        if not last and account.switch and "Permission denied" in result.stderr + new_log:
            continue  # a folder above was closed again meanwhile: reopen it and retry
        still = (
            " (it is still starting; wait, or stop it)" if _postmaster(data_dir) is not None else ""
        )
        raise LocalDatabaseError(
            f"local PostgreSQL for {data_dir} did not start on {host}:{chosen}{still}: "
            f"{_output(result)}{_log_tail(data_dir)}"
        )

    _write_record(data_dir, account, host, chosen)
    server = LocalServer(data_dir, host, chosen)
    try:  # ready; check the superuser's way in works too
        _admin_connect(server).close()
    except LocalDatabaseError as exc:
        raise LocalDatabaseError(f"{exc}{_log_tail(data_dir)}") from exc
    return chosen


def _running_server(
    data_dir: Path, running: _Postmaster, host: str, port: int | None
) -> LocalServer:
    """The already running server, if it is where it was asked to be."""
    if running.status != "ready" and not _wait_ready(data_dir, START_TIMEOUT_SECONDS):
        raise LocalDatabaseError(
            f"local PostgreSQL for {data_dir} (pid {running.pid}) runs but is not ready "
            f"({running.status or 'unknown state'}){_log_tail(data_dir)}"
        )
    if (
        running.port is None
        or (port is not None and port != running.port)
        or (running.host != host)
    ):
        raise LocalDatabaseError(
            f"local PostgreSQL for {data_dir} already runs on {running.host}:{running.port}, "
            f"not {host}:{port or running.port}; stop it first to move it"
        )
    record = _read_record(data_dir)
    if record is None or record.get("port") != running.port:
        _write_record(data_dir, _account_for(data_dir), host, running.port)
    return LocalServer(data_dir, host, running.port)


@dataclass(frozen=True)
class _Postmaster:
    """What postmaster.pid says of a live postmaster."""

    pid: int
    port: int | None
    host: str | None
    status: str  # "starting", "ready", "stopping", ... ("" while the file is being written)


def _postmaster(data_dir: Path) -> _Postmaster | None:
    """The live postmaster of ``data_dir``, or None: what ``pg_ctl status`` tells, read directly.

    Read as the caller, not through pg_ctl: as root, pg_ctl would run as the server's user, and
    that user's way into the data folder may be closed again at any time by someone else (every
    pytest session start resets /tmp/pytest-of-root to 0700, ACL mask included). The running
    server itself does not care: it works relative to its data folder once started.
    """
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LocalDatabaseError(f"cannot read {data_dir / 'postmaster.pid'}: {exc}") from exc
    try:
        pid = abs(int(lines[0]))
    except (IndexError, ValueError):
        return None  # being written, or garbage: no postmaster to speak of
    if pid == 0 or not _is_postmaster_of(pid, data_dir):
        return None

    def line(index: int) -> str:
        return lines[index].strip() if len(lines) > index else ""

    port = int(line(3)) if line(3).isdigit() else None
    host = line(5).split(",")[0].strip() or None
    return _Postmaster(pid, port, host, line(7))


def _is_postmaster_of(pid: int, data_dir: Path) -> bool:
    """True if ``pid`` lives and (where /proc tells) works in ``data_dir``.

    The working folder check keeps a stale postmaster.pid whose pid was reused by another
    process (after a reboot or a container restart) from passing for a running server.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, someone else's
    if not Path("/proc/self/cwd").exists():
        return True
    try:
        return os.readlink(f"/proc/{pid}/cwd") == str(data_dir)
    except PermissionError:
        return True  # cannot tell: trust the pid
    except OSError:
        return False  # gone meanwhile, or a zombie


def _wait_ready(data_dir: Path, timeout: float) -> bool:
    """Wait until the postmaster reports "ready" (as ``pg_ctl start -w`` does); False if none."""
    deadline = time.monotonic() + timeout
    while True:
        running = _postmaster(data_dir)
        if running is None:
            return False
        if running.status == "ready":
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _remove_stale_socket(data_dir: Path, port: int) -> None:
    """Remove the socket and its lock file left by a postmaster of ``data_dir`` that is gone.

    A server normally removes them on exit, by absolute path: it cannot when its user's way in
    was closed meanwhile (see ``_postmaster``), and then refuses the next start for as long as the
    old pid looks alive (an exited postmaster not reaped yet does).
    """
    socket_path = _socket_dir(data_dir) / f".s.PGSQL.{port}"
    lock = socket_path.with_name(socket_path.name + ".lock")
    try:
        pid = abs(int(lock.read_text().splitlines()[0]))
    except FileNotFoundError:
        return
    except (OSError, ValueError, IndexError):
        pid = 0
    if pid and _is_postmaster_of(pid, data_dir):
        return
    for path in (socket_path, lock):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _write_server_config(
    data_dir: Path,
    account: _Account,
    host: str,
    port: int,
    socket_dir: Path,
    tls: ServerTLS | None,
) -> None:
    header = (
        "# Written by stackrun (stackrun/local/postgres/) at each start; edits are overwritten.\n"
    )
    # A list setting: double quotes keep a folder with commas or spaces in one piece.
    quoted_socket_dir = f'"{socket_dir}"'
    conf = (
        header
        + f"listen_addresses = {_conf_string(host)}\n"
        + f"port = {port}\n"
        + f"unix_socket_directories = {_conf_string(quoted_socket_dir)}\n"
        + "unix_socket_permissions = 0700\n"
        + "password_encryption = 'scram-sha-256'\n"
    )
    if tls is not None:
        conf += (
            "ssl = on\n"
            + f"ssl_cert_file = {_conf_string(_TLS_CERT)}\n"
            + f"ssl_key_file = {_conf_string(_TLS_KEY)}\n"
            + "ssl_min_protocol_version = 'TLSv1.2'\n"
        )
    tcp = "hostssl" if tls is not None else "host   "
    _write_file(data_dir / _CONF_FILE, account, conf)
    hba = (
        header
        + "# The superuser: unix socket only (a 0700 socket in a 0700 folder), no password.\n"
        + "# Everyone else: TCP with a SCRAM-SHA-256 password, as on RDS (hostssl: TLS only).\n"
        + "# TYPE  DATABASE  USER                  ADDRESS  METHOD\n"
        + f"local   all       {ADMIN_ROLE:<20}           trust\n"
        + "local   all       all                            reject\n"
        + f"host    all       {ADMIN_ROLE:<20}  all      reject\n"
        + f"{tcp} all       all                   all      scram-sha-256\n"
    )
    _write_file(data_dir / "pg_hba.conf", account, hba)


def _install_tls(data_dir: Path, account: _Account, tls: ServerTLS | None) -> bool:
    """Copy the certificate and key to serve into the data folder; True when the server's TLS
    configuration changes with this call (new files, or TLS turned on)."""
    if tls is None:
        return False
    changed = "ssl = on" not in _read_text(data_dir / _CONF_FILE)
    for source, name in ((tls.cert, _TLS_CERT), (tls.key, _TLS_KEY)):
        try:
            text = source.read_text()
        except OSError as exc:
            raise LocalDatabaseError(f"cannot read the TLS file {source}: {exc}") from exc
        if _read_text(data_dir / name) != text:
            _write_file(data_dir / name, account, text)
            changed = True
    return changed


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _reload_tls(server: LocalServer) -> None:
    """Make the running server read its configuration again and wait until it serves TLS.

    A reload that fails (a key that does not match its certificate, say) leaves the server
    running on its old TLS settings, or none: that is an error here, with the log's end.
    """
    conn = _admin_connect(server)
    try:
        conn.run("SELECT pg_reload_conf()")
    finally:
        conn.close()
    deadline = time.monotonic() + _RECHECK_SECONDS
    while not _serves_tls(server):  # the postmaster reloads asynchronously after the signal
        if time.monotonic() > deadline:
            raise LocalDatabaseError(
                f"local PostgreSQL for {server.data_dir} did not turn TLS on after a reload of "
                f"its configuration{_log_tail(server.data_dir)}"
            )
        time.sleep(0.1)


def _serves_tls(server: LocalServer) -> bool:
    """Whether the server accepts TLS over TCP (its answer to a PostgreSQL SSLRequest)."""
    try:
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            sock.sendall(struct.pack("!ii", 8, 80877103))
            return sock.recv(1) == b"S"
    except OSError:
        return False


def _conf_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "''")
    return f"'{escaped}'"


def _admin_connect(server: LocalServer) -> pg8000.native.Connection:
    """The cluster superuser's connection, through the unix socket."""
    sock = _socket_dir(server.data_dir) / f".s.PGSQL.{server.port}"
    try:
        return pg8000.native.Connection(
            user=ADMIN_ROLE, unix_sock=str(sock), database="postgres", timeout=30
        )
    except (pg8000.exceptions.InterfaceError, pg8000.exceptions.DatabaseError) as exc:
        raise LocalDatabaseError(
            f"cannot connect to local PostgreSQL for {server.data_dir} through {sock}: "
            f"{_describe(exc)}"
        ) from exc


# --------------------------------------------------------------------------------------------
# Small helpers


def _locked(data_dir: Path):
    """Serialise start and stop of one data folder between commands.

    The lock file sits next to the data folder: initdb wants an empty folder, and the lock
    precedes it.
    """
    return file_lock(data_dir.parent / f".{data_dir.name}.stackrun.lock")


def _write_file(path: Path, account: _Account, text: str) -> None:
    """Atomically write a file of the data folder, owned by the server's user, mode 0600."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            if account.switch:
                os.fchown(handle.fileno(), account.uid, account.gid)
            os.fchmod(handle.fileno(), 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_record(data_dir: Path) -> dict[str, object] | None:
    try:
        data = json.loads((data_dir / _RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_record(data_dir: Path, account: _Account, host: str, port: int) -> None:
    record = {"host": host, "port": port, "socket_dir": str(_socket_dir(data_dir))}
    _write_file(data_dir / _RECORD_FILE, account, json.dumps(record, indent=2) + "\n")


def _free_port(host: str) -> int:
    family, _, _, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind(address)
        return int(probe.getsockname()[1])


def _port_taken(host: str, port: int) -> bool:
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As PostgreSQL binds: connections of an earlier run in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return True
    return False


def _describe(exc: Exception) -> str:
    """pg8000 errors carry the server's fields as a dict: keep message and SQLSTATE."""
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.strerror or exc.reason or exc}"
    detail = exc.args[0] if exc.args else exc
    if isinstance(detail, dict):
        message = detail.get("M", "unknown error")
        code = detail.get("C")
        return f"{message} (SQLSTATE {code})" if code else str(message)
    return str(detail)


def _output(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stdout + result.stderr).strip()
    return text or f"exit status {result.returncode}"


def _empty_folder(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def _log_tail(data_dir: Path) -> str:
    log = data_dir / _LOG_FILE
    try:
        lines = log.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
    except OSError:
        return ""
    if not lines:
        return ""
    return f"\n--- last lines of {log} ---\n" + "\n".join(lines)
