"""What runs: the postmaster of a data folder (read from postmaster.pid as the caller, not through
pg_ctl), whether it serves TLS, and the TCP ports it may take."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from stackrun.local.postgres.common import LocalDatabaseError, LocalServer
from stackrun.local.postgres.data_folder import socket_folder


@dataclass(frozen=True)
class Postmaster:
    """What postmaster.pid says of a live postmaster."""

    pid: int
    port: int | None
    host: str | None
    status: str  # "starting", "ready", "stopping", ... ("" while the file is being written)


def running_postmaster(data_dir: Path) -> Postmaster | None:
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
    if pid == 0 or not is_postmaster_of(pid, data_dir):
        return None

    def line(index: int) -> str:
        return lines[index].strip() if len(lines) > index else ""

    port = int(line(3)) if line(3).isdigit() else None
    host = line(5).split(",")[0].strip() or None
    return Postmaster(pid, port, host, line(7))


def is_postmaster_of(pid: int, data_dir: Path) -> bool:
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


def wait_ready(data_dir: Path, timeout: float) -> bool:
    """Wait until the postmaster reports "ready" (as ``pg_ctl start -w`` does); False if none."""
    deadline = time.monotonic() + timeout
    while True:
        running = running_postmaster(data_dir)
        if running is None:
            return False
        if running.status == "ready":
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def remove_stale_socket(data_dir: Path, port: int) -> None:
    """Remove the socket and its lock file left by a postmaster of ``data_dir`` that is gone.

    A server normally removes them on exit, by absolute path: it cannot when its user's way in
    was closed meanwhile (see ``running_postmaster``), and then refuses the next start for as
    long as the old pid looks alive (an exited postmaster not reaped yet does).
    """
    socket_path = socket_folder(data_dir) / f".s.PGSQL.{port}"
    lock = socket_path.with_name(socket_path.name + ".lock")
    try:
        pid = abs(int(lock.read_text().splitlines()[0]))
    except FileNotFoundError:
        return
    except (OSError, ValueError, IndexError):
        pid = 0
    if pid and is_postmaster_of(pid, data_dir):
        return
    for path in (socket_path, lock):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def serves_tls(server: LocalServer) -> bool:
    """Whether the server accepts TLS over TCP (its answer to a PostgreSQL SSLRequest)."""
    try:
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            sock.sendall(struct.pack("!ii", 8, 80877103))
            return sock.recv(1) == b"S"
    except OSError:
        return False


def free_port(host: str) -> int:
    family, _, _, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind(address)
        return int(probe.getsockname()[1])


def port_taken(host: str, port: int) -> bool:
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As PostgreSQL binds: connections of an earlier run in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return True
    return False
