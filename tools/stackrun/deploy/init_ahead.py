"""While a deploy applies one stack, `terraform init` the later stacks it will surely apply.

A stack that was never applied (no state object in the backend) is applied by this deploy, and
its working directory needs an init first: a second or two (the backend, the module, the
provider's checksums) that depends on nothing upstream, since the backend settings, the module
source and the provider lock are no upstream outputs. Those inits run here, one at a time in
the deploy's order, in the background while earlier stacks apply (in a first deploy, while
terraform waits for the VPC and the RDS instance). A stack whose turn comes claims its init:
one not started is dropped, one running is waited for. The working directory rendered here
is rendered again by the stack itself, with its upstream values: the init's inputs stay the
same (Workspace.init_fingerprint), so the stack does not init again.

Output goes to the stack's log only, never to the console. A failure is left to the stack's
own init, which runs again and reports it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from stackrun.config import Stack
from stackrun.terraform.workspace import Workspace

# How long the end of a deploy waits for an init of a stack that never got its turn.
STOP_WAIT_SECONDS = 30.0


class InitAhead:
    """The background inits of one deploy's never-applied stacks."""

    def __init__(
        self, workspace: Workspace, stacks: Sequence[Stack], states: Mapping[str, Any]
    ) -> None:
        """`states`: each stack's state as read before the run (None: never applied)."""
        self._workspace = workspace
        self._states = states
        self._lock = threading.Lock()
        self._claimed: set[str] = set()
        self._running: dict[str, threading.Event] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._init_all, args=(list(stacks),), name="init-ahead", daemon=True
        )
        self._thread.start()

    def claim(self, stack: Stack) -> None:
        """Called before the stack renders and inits itself: from now on nothing here touches
        its working directory."""
        with self._lock:
            self._claimed.add(stack.name)
            running = self._running.get(stack.name)
        if running is not None:
            running.wait()

    def stop(self) -> None:
        """No further init starts; the one running (of a stack that never got its turn, after
        a failure) is waited for, so no terraform is left behind."""
        self._stopped.set()
        self._thread.join(STOP_WAIT_SECONDS)

    def _init_all(self, stacks: list[Stack]) -> None:
        for stack in stacks:
            with self._lock:
                if self._stopped.is_set():
                    return
                if stack.name in self._claimed:
                    continue
                done = self._running[stack.name] = threading.Event()
            try:
                self._init(stack)
            except Exception:  # the stack's own init runs again and reports it
                pass
            finally:
                done.set()

    def _init(self, stack: Stack) -> None:
        workspace = self._workspace
        if self._states.get(stack.name) is not None:
            return  # applied before: it may well be skipped, and inits when it is not
        workspace.render(stack)
        workspace.ensure_init(stack, workspace.terraform(stack.name, quiet=True))
