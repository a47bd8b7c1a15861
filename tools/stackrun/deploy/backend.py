"""The state backend and the environment guard around a run that changes an environment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from stackrun.aws.bootstrap import backend_status, ensure_backend
from stackrun.config import duration_seconds
from stackrun.deploy.guard import HeldGuard, environment_guard
from stackrun.terraform.workspace import Workspace


def backend_ready(workspace: Workspace) -> bool:
    """Whether the environment's state bucket and lock table both exist."""
    return all(backend_status(workspace))


def guard_of(workspace: Workspace, operation: str) -> AbstractContextManager[HeldGuard]:
    """The environment guard for `operation`, waiting at most the run's lock timeout."""
    environment = workspace.environment
    return environment_guard(
        workspace.target.client(environment, "dynamodb"),
        environment.backend.lock_table,
        environment.name,
        operation,
        duration_seconds(workspace.effective_lock_timeout),
        local=workspace.target.local,
    )


@contextmanager
def backend_under_guard(
    workspace: Workspace,
    operation: str,
    converge: bool = False,
    before_change: Callable[[], None] = lambda: None,
) -> Iterator[tuple[bool, HeldGuard]]:
    """The environment guard, then the state backend checked (or finished) under it.

    Yields whether the backend was created, and the guard. The guard lives in the backend's
    lock table, so only the account's very first run, which creates that table, takes it
    afterwards. `before_change` runs before the backend is created, finished or re-applied.
    """
    status = backend_status(workspace)
    if not status[1]:
        created = ensure_backend(workspace, converge=converge, before_change=before_change)
        with guard_of(workspace, operation) as guard:
            yield created, guard
        return
    with guard_of(workspace, operation) as guard:
        # complete a moment ago: nothing but a destroy, which takes this guard, removes it
        known = status if all(status) else None
        created = ensure_backend(workspace, converge, known, before_change)
        yield created, guard


def bootstrap(workspace: Workspace) -> None:
    """Create the state backend, or re-apply modules/tfstate-bootstrap, under the guard."""
    with backend_under_guard(workspace, "bootstrap", converge=True):
        pass
