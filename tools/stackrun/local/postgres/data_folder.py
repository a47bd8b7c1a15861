"""The files stackrun keeps in a data folder (configuration, TLS copies, the last start's record),
its lock, and the unix socket's folder."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

from stackrun.filelock import file_lock
from stackrun.local.postgres.common import (
    ADMIN_ROLE,
    CONF_FILE,
    RECORD_FILE,
    TLS_CERT,
    TLS_KEY,
    LocalDatabaseError,
    ServerTLS,
)
from stackrun.local.postgres.os_account import Account

INCLUDE_LINE = f"include_if_exists = '{CONF_FILE}'\t# added by stackrun"
_SOCKET_PATH_MAX = 107
_LONGEST_SOCKET_NAME = ".s.PGSQL.65535"
_UNSAFE_PATH_CHARS = set('"$`\\\n\r')


def normalise(data_dir: Path) -> Path:
    data_dir = Path(data_dir).resolve()
    bad = sorted(_UNSAFE_PATH_CHARS & set(str(data_dir)))
    if bad:
        raise LocalDatabaseError(
            f"the PostgreSQL data folder {str(data_dir)!r} contains characters pg_ctl cannot "
            f"handle ({' '.join(repr(c) for c in bad)}); choose another folder"
        )
    return data_dir


def locked(data_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Serialise start and stop of one data folder between commands.

    The lock file sits next to the data folder: initdb wants an empty folder, and the lock
    precedes it.
    """
    return file_lock(data_dir.parent / f".{data_dir.name}.stackrun.lock")


def write_file(path: Path, account: Account, text: str) -> None:
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


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def read_record(data_dir: Path) -> dict[str, object] | None:
    try:
        data = json.loads((data_dir / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_record(data_dir: Path, account: Account, host: str, port: int) -> None:
    record = {"host": host, "port": port, "socket_dir": str(socket_folder(data_dir))}
    write_file(data_dir / RECORD_FILE, account, json.dumps(record, indent=2) + "\n")


def socket_folder(data_dir: Path) -> Path:
    """Where the server's unix socket lives: the data folder, unless that path is too long."""
    if len(os.fsencode(data_dir / _LONGEST_SOCKET_NAME)) <= _SOCKET_PATH_MAX:
        return data_dir
    digest = hashlib.sha256(os.fsencode(data_dir)).hexdigest()[:16]
    base = Path(tempfile.gettempdir())
    if len(os.fsencode(base / "stackrun-pg-0123456789abcdef" / _LONGEST_SOCKET_NAME)) > 107:
        base = Path("/tmp")
    return base / f"stackrun-pg-{digest}"


def prepare_socket_dir(socket_dir: Path, account: Account) -> None:
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


def write_server_config(
    data_dir: Path,
    account: Account,
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
            + f"ssl_cert_file = {_conf_string(TLS_CERT)}\n"
            + f"ssl_key_file = {_conf_string(TLS_KEY)}\n"
            + "ssl_min_protocol_version = 'TLSv1.2'\n"
        )
    tcp = "hostssl" if tls is not None else "host   "
    write_file(data_dir / CONF_FILE, account, conf)
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
    write_file(data_dir / "pg_hba.conf", account, hba)


def _conf_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "''")
    return f"'{escaped}'"


def install_tls(data_dir: Path, account: Account, tls: ServerTLS | None) -> bool:
    """Copy the certificate and key to serve into the data folder; True when the server's TLS
    configuration changes with this call (new files, or TLS turned on)."""
    if tls is None:
        return False
    changed = "ssl = on" not in read_text(data_dir / CONF_FILE)
    for source, name in ((tls.cert, TLS_CERT), (tls.key, TLS_KEY)):
        try:
            text = source.read_text()
        except OSError as exc:
            raise LocalDatabaseError(f"cannot read the TLS file {source}: {exc}") from exc
        if read_text(data_dir / name) != text:
            write_file(data_dir / name, account, text)
            changed = True
    return changed
