"""The OS user the server runs as (never root), its way into the data folder (POSIX ACLs), and
running PostgreSQL's programs as that user."""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from stackrun.local import pg_programs
from stackrun.local.postgres.common import LocalDatabaseError

_RUN_AS_CANDIDATES = ("postgres", "nobody")


class _SwitchUser(TypedDict, total=False):
    """subprocess.run's arguments that run the child as the server's OS account."""

    user: int
    group: int
    extra_groups: list[int]


@dataclass(frozen=True)
class Account:
    """The OS user the server (and initdb, pg_ctl) runs as."""

    uid: int
    gid: int
    name: str
    home: str

    @property
    def switch(self) -> bool:
        """True when commands must drop from root to this user."""
        return os.geteuid() == 0 and self.uid != 0


def prepare_data_folder(data_dir: Path) -> Account:
    """Choose the OS user of the server and give it the data folder (made if missing)."""
    account = account_for(data_dir)
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


def account_for(data_dir: Path) -> Account:
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
            return Account(entry.pw_uid, entry.pw_gid, entry.pw_name, entry.pw_dir or "/")
    raise LocalDatabaseError(
        "PostgreSQL refuses to run as root, and neither a 'postgres' nor a 'nobody' OS user "
        "exists to run it as; create one (e.g. install the postgresql package) or run as an "
        "ordinary user"
    )


def _account_from_uid(uid: int, gid: int) -> Account:
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return Account(uid, gid, str(uid), "/")
    return Account(uid, entry.pw_gid, entry.pw_name, entry.pw_dir or "/")


def _chown_tree(path: Path, account: Account) -> None:
    os.chown(path, account.uid, account.gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), account.uid, account.gid, follow_symlinks=False)


def ensure_reachable(data_dir: Path, account: Account) -> None:
    """Let ``account`` pass through every folder down to ``data_dir`` (POSIX ACL ``u:<user>:x``)."""
    for _ in range(len(data_dir.parts) + 1):
        blocked = _first_blocked_folder(data_dir, account)
        if blocked is None:
            return
        _grant_search(blocked, data_dir, account)
    raise LocalDatabaseError(
        f"user {account.name!r} still cannot reach the PostgreSQL data folder {data_dir}"
    )


def _first_blocked_folder(data_dir: Path, account: Account) -> Path | None:
    """The first folder from / down to ``data_dir`` that ``account`` cannot enter, if any.

    Tested by the kernel (``cd`` as that user), so ACLs, groups and mount options all count.
    """
    folders = [*reversed(data_dir.parents), data_dir]
    script = 'for d do cd -- "$d" 2>/dev/null || { printf %s "$d"; exit 1; }; done'
    result = run_as(account, ["/bin/sh", "-c", script, "sh", *map(str, folders)])
    if result.returncode == 0:
        return None
    return Path(result.stdout) if result.stdout else data_dir


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


def _grant_search(folder: Path, data_dir: Path, account: Account) -> None:
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


def binary(name: str) -> str:
    """A PostgreSQL server program (stackrun.local.pg_programs finds it)."""
    try:
        return pg_programs.program(name)
    except pg_programs.ProgramNotFound as error:
        raise LocalDatabaseError(str(error)) from error


def run_as(
    account: Account,
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
    kwargs: _SwitchUser = {}
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


def empty_folder(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
