"""Detached helper processes (the emulator, the local API server): start, check, stop.

A detached process outlives the command that started it and ignores that command's Ctrl-C
(its own session). Its pid is kept in a file by the caller; before trusting a pid from such
a file, `runs_module` checks that the process is still the one started (pids get reused).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from stackrun.errors import StackrunError

# Processes started by this process, so they can be reaped (no zombies) and are not reported
# as "still running" by subprocess when their Popen object is collected.
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn_detached(
    command: list[str], cwd: Path, env: dict[str, str], log_file: Path
) -> subprocess.Popen[bytes]:
    """Start `command` in its own session with its output in `log_file` (overwritten)."""
    with open(log_file, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this command, untouched by its Ctrl-C
        )
    _children[process.pid] = process
    return process


def package_pythonpath(env: dict[str, str]) -> str:
    """PYTHONPATH that lets a child import this package when it runs from a source tree."""
    package_root = str(Path(__file__).resolve().parents[2])
    return os.pathsep.join(part for part in (package_root, env.get("PYTHONPATH", "")) if part)


def terminate(pid: int, grace_seconds: float, what: str) -> None:
    """SIGTERM, then SIGKILL after `grace_seconds`; returns when the process is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if wait_gone(pid, grace_seconds):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not wait_gone(pid, 5.0):
        raise StackrunError(f"{what} (pid {pid}) does not exit")


def wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while is_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    _children.pop(pid, None)
    return True


def is_alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None  # reaps our own child once it has exited
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """An exited process another command started and has not reaped yet: it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def runs_module(pid: int, marker: str) -> bool:
    """Alive, and (where /proc tells) its command line still contains `marker`."""
    if not is_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc here (macOS): the caller's health probe decides
    return marker.encode() in cmdline


def last_lines(log_file: Path, count: int = 30) -> list[str] | None:
    """The last `count` lines of a log file; None when it cannot be read."""
    try:
        return log_file.read_text(errors="replace").splitlines()[-count:]
    except OSError:
        return None


def log_tail(log_file: Path) -> str:
    """The end of a process's log for an error message, indented."""
    lines = last_lines(log_file)
    if lines is None:
        return "  (no log)"
    return "\n".join(f"  {line}" for line in lines) or "  (empty log)"
