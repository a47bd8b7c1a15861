"""Ctrl-C and SIGTERM during a run: let terraform finish cleanly, then stop.

While terraform runs, the first SIGINT or SIGTERM is passed on to it once, as SIGINT: it stops
starting new operations, waits for those in flight, writes its state and releases its state
lock. stackrun then stops before the next step and reports what finished, what was interrupted
and what never started. A second signal kills terraform at once (its lock may stay behind;
`unlock` releases it). Without terraform running, the signal interrupts stackrun directly,
whose `finally` blocks release the environment guard.

terraform runs in its own session, so a terminal's Ctrl-C reaches it only through here, once:
a second SIGINT would make terraform abandon its operations.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from types import FrameType

from stackrun.errors import StackrunError


class Interrupted(StackrunError):
    """The run was stopped by SIGINT/SIGTERM; `exit_code` is 128 + the signal number."""

    def __init__(self, signum: int, detail: str = "", killed: bool = False):
        self.signum = signum
        self.killed = killed
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name}" + (f": {detail}" if detail else ""))


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.children: set[subprocess.Popen[str]] = set()
        self.signum: int | None = None  # the first signal received
        self.killed = False


_state = _State()


def install() -> None:
    """Handle SIGINT and SIGTERM as described above (main thread only)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _handle)


def _handle(signum: int, frame: FrameType | None) -> None:
    with _state.lock:
        children = [child for child in _state.children if child.poll() is None]
        first = _state.signum is None
        if first:
            _state.signum = signum
    if not children:
        raise Interrupted(_state.signum or signum)
    if first:
        print(
            f"\n{signal.Signals(signum).name} received: terraform is finishing what it has "
            "started and will release its state lock. Interrupt again to kill it (may leave "
            "the lock behind).",
            file=sys.stderr,
            flush=True,
        )
        for child in children:
            _send(child, signal.SIGINT)
    else:
        print("\nsecond interrupt: killing terraform", file=sys.stderr, flush=True)
        _state.killed = True
        for child in children:
            _send(child, signal.SIGKILL)


def _send(child: subprocess.Popen[str], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signum)


def new_session() -> bool:
    """Whether children should get their own session (only when our handler forwards)."""
    return signal.getsignal(signal.SIGINT) is _handle


def track(child: subprocess.Popen[str]) -> None:
    """A terraform process signals are forwarded to (several when stacks run side by side)."""
    with _state.lock:
        _state.children.add(child)


def untrack(child: subprocess.Popen[str]) -> None:
    with _state.lock:
        _state.children.discard(child)


def check(what: str = "") -> None:
    """Raise Interrupted if a signal arrived (call between steps)."""
    if _state.signum is not None:
        raise Interrupted(_state.signum, what, killed=_state.killed)


def requested() -> bool:
    return _state.signum is not None


def reset() -> None:
    """Forget a received signal (tests that run several commands in one process)."""
    with _state.lock:
        _state.signum, _state.killed = None, False
        _state.children.clear()
