"""The execution environments of the local functions: created on demand, reused warm, capped.

As in Lambda, an environment (one runtime process, runtime.py) serves one invocation at a
time; a request that finds every warm environment of its function version busy gets a new one
(a cold start, with its own log stream and an ``Init Duration`` in its REPORT line), up to the
function's concurrency limit:

- a function with reserved concurrency (PutFunctionConcurrency, ``reserved_concurrent_executions``
  in Terraform) never runs more environments than that; an invocation beyond it is throttled
  at once (``TooManyRequestsException``, reason ReservedFunctionConcurrentInvocationLimitExceeded),
  as Lambda does: synchronous invocations are never queued;
- a function without gets the local default (DEFAULT_CONCURRENCY, or the server's setting):
  a limit of this machine, standing in for the account's 1000, so an invocation beyond it
  waits for an environment to come free (up to API Gateway's integration timeout) rather than
  failing.

The limit counts every version of a function together (a weighted alias splits one function's
concurrency). An idle environment of another version, or of a configuration that changed
($LATEST updated), is stopped to make room; an idle one is otherwise kept warm until the
server stops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from stackrun.local.api.functions import FunctionVersion, LocalApiError
from stackrun.local.api.runtime import FunctionProcess

# Environments per function without reserved concurrency (each is a Python process).
DEFAULT_CONCURRENCY = 10


class Throttled(LocalApiError):
    """The function has no environment free and may not start another."""


@dataclass(frozen=True)
class Limit:
    """How many environments a function may run, and what happens beyond."""

    size: int
    throttles: bool  # True: reserved concurrency, throttle beyond it; False: wait for one


@dataclass(eq=False)
class _Environment:
    key: tuple[str, ...]  # FunctionVersion.key it was started for
    version: str
    process: FunctionProcess | None = None  # None while it is being created
    busy: bool = True


class EnvironmentPool:
    """Every function's environments, handed out one invocation at a time."""

    def __init__(self, wait_seconds: float) -> None:
        self.wait_seconds = wait_seconds
        self.condition = threading.Condition()
        # function name -> its environments, least recently used first
        self.environments: dict[str, list[_Environment]] = {}

    @contextmanager
    def lease(
        self,
        function: FunctionVersion,
        limit: Limit,
        create: Callable[[], FunctionProcess],
    ) -> Iterator[FunctionProcess]:
        """A warm environment of `function`, or a new one from `create`, for one invocation."""
        environment, retired = self._acquire(function, limit)
        for old in retired:
            if old.process is not None:
                old.process.stop()
        try:
            if environment.process is None:
                environment.process = create()
            yield environment.process
        except BaseException:
            if environment.process is None:
                self._forget(function.name, environment)
            raise
        finally:
            if environment.process is not None:
                self._release(function.name, environment)

    def count(self, name: str) -> int:
        """How many environments `name` has (busy or idle)."""
        with self.condition:
            return len(self.environments.get(name, []))

    def close(self) -> None:
        with self.condition:
            everything = [item for pool in self.environments.values() for item in pool]
            self.environments.clear()
        for environment in everything:
            if environment.process is not None:
                environment.process.stop()

    def _acquire(
        self, function: FunctionVersion, limit: Limit
    ) -> tuple[_Environment, list[_Environment]]:
        """(the environment to use, idle ones removed to make room, to be stopped)."""
        deadline = time.monotonic() + self.wait_seconds
        with self.condition:
            while True:
                pool = self.environments.setdefault(function.name, [])
                retired = [item for item in pool if _outdated(item, function)]
                for item in retired:
                    pool.remove(item)
                warm = [item for item in pool if not item.busy and item.key == function.key]
                if warm:
                    warm[-1].busy = True  # the most recently used
                    return warm[-1], retired
                idle = [item for item in pool if not item.busy]
                if len(pool) >= limit.size and idle and limit.size > 0:
                    pool.remove(idle[0])  # the least recently used, of another version
                    retired.append(idle[0])
                if len(pool) < limit.size:
                    fresh = _Environment(function.key, function.version)
                    pool.append(fresh)
                    return fresh, retired
                self._wait_or_throttle(function, limit, deadline)

    def _wait_or_throttle(self, function: FunctionVersion, limit: Limit, deadline: float) -> None:
        """Wait for an environment to come free; Throttled if the limit says so, or too long."""
        if limit.throttles:
            raise Throttled(
                f"TooManyRequestsException: {function.name} runs its reserved concurrency of "
                f"{limit.size} (ReservedFunctionConcurrentInvocationLimitExceeded)"
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Throttled(
                f"{function.name}: no execution environment came free within "
                f"{self.wait_seconds:.0f} s ({limit.size} run, the local concurrency limit)"
            )
        self.condition.wait(remaining)

    def _release(self, name: str, environment: _Environment) -> None:
        with self.condition:
            pool = self.environments.get(name, [])
            if environment in pool:
                pool.remove(environment)
                pool.append(environment)  # now the most recently used
            environment.busy = False
            self.condition.notify_all()

    def _forget(self, name: str, environment: _Environment) -> None:
        with self.condition:
            pool = self.environments.get(name, [])
            if environment in pool:
                pool.remove(environment)
            self.condition.notify_all()


def _outdated(environment: _Environment, function: FunctionVersion) -> bool:
    """An idle environment of `function`'s version started for a configuration since changed."""
    return (
        not environment.busy
        and environment.version == function.version
        and environment.key != function.key
    )
