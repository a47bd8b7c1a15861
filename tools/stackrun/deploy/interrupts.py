"""Ctrl-C and SIGTERM during a run: let terraform finish cleanly, then stop.

While terraform runs, the first SIGINT or SIGTERM is passed on to it once, as SIGINT: it stops
starting new operations, waits for those in flight, writes its state and releases its state
lock. stackrun then stops before the next step and reports what finished, what was interrupted
and what never started. Without terraform running, the first signal interrupts stackrun
directly, whose `finally` blocks release the environment guard.

A CI cancellation sends SIGINT, then SIGTERM 7.5 s later (GitHub Actions), so a second signal
within GRACE_SECONDS of the first is the same request and is only acknowledged. A third signal,
or a second one after the grace period, kills terraform; stackrun then releases the state lock
the killed terraform held (`Terraform.run`'s `on_killed`) and the environment guard before it
exits.

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
import time
from collections.abc import Callable
from types import FrameType

from stackrun.errors import StackrunError

GRACE_SECONDS = 10.0


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
        # Reentrant: the handler runs in the main thread, possibly while it holds the lock.
        self.lock = threading.RLock()
        self.children: set[subprocess.Popen[str]] = set()
        self.starting = 0  # children being started (not yet tracked)
        self.signum: int | None = None  # the first signal received
        self.first_at = 0.0  # time.monotonic() of the first signal
        self.count = 0
        self.killed = False


_state = _State()


def install() -> None:
    """Handle SIGINT and SIGTERM as described above (main thread only)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _handle)


def _handle(signum: int, frame: FrameType | None) -> None:
    with _state.lock:
        children = [child for child in _state.children if child.poll() is None]
        _state.count += 1
        if _state.signum is None:
            _state.signum, _state.first_at = signum, time.monotonic()
        count, waited, starting = _state.count, time.monotonic() - _state.first_at, _state.starting
        escalate = bool(children) and (count > 2 or (count == 2 and waited > GRACE_SECONDS))
        if escalate:
            _state.killed = True
    name = signal.Signals(signum).name
    if count == 1 and not children and not starting:
        raise Interrupted(signum)
    if count == 1:  # (a child being started gets the signal from start())
        print(
            f"\n{name} received: terraform is finishing what it has started and will release "
            f"its state lock. A second signal within {GRACE_SECONDS:.0f}s is taken as the same "
            "request; a third (or a later second) kills terraform, after which stackrun releases "
            "its state lock and the environment guard.",
            file=sys.stderr,
            flush=True,
        )
        for child in children:
            _send(child, signal.SIGINT)
    elif escalate:
        print(f"\n{name}: killing terraform", file=sys.stderr, flush=True)
        for child in children:
            _send(child, signal.SIGKILL)
    elif children:
        print(
            f"\n{name} received {waited:.1f}s after the first signal: still stopping cleanly "
            "(a third signal kills terraform)",
            file=sys.stderr,
            flush=True,
        )
    else:
        # Never raised again: stackrun is already stopping, and raising here could cut short
        # the release of a state lock or of the environment guard.
        print(
            f"\n{name} received: stopping; releasing state locks and the environment guard",
            file=sys.stderr,
            flush=True,
        )


def _send(child: subprocess.Popen[str], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signum)


def new_session() -> bool:
    """Whether children should get their own session (only when our handler forwards)."""
    return signal.getsignal(signal.SIGINT) is _handle


def start(popen: Callable[[], subprocess.Popen[str]], what: str = "") -> subprocess.Popen[str]:
    """Start a child (terraform) that signals are forwarded to; `untrack` it when it ended.

    Raises Interrupted instead of starting after a signal. A signal that arrives while the
    child is being started is passed on to it as soon as it runs.
    """
    started = False
    with _state.lock:
        check(what)
        _state.starting += 1
    try:
        child = popen()
        started = True
    finally:
        with _state.lock:
            _state.starting -= 1
            if started:
                _state.children.add(child)
            pending, killed = _state.signum is not None, _state.killed
    if pending:
        _send(child, signal.SIGKILL if killed else signal.SIGINT)
    return child


def untrack(child: subprocess.Popen[str]) -> None:
    with _state.lock:
        _state.children.discard(child)


def check(what: str = "") -> None:
    """Raise Interrupted if a signal arrived (call between steps)."""
    if _state.signum is not None:
        raise Interrupted(_state.signum, what, killed=_state.killed)


def requested() -> bool:
    return _state.signum is not None


def killed() -> bool:
    """Whether a signal made stackrun kill terraform."""
    return _state.killed


def reset() -> None:
    """Forget a received signal (tests that run several commands in one process)."""
    with _state.lock:
        _state.signum, _state.killed, _state.count, _state.first_at = None, False, 0, 0.0
        _state.children.clear()
        _state.starting = 0
