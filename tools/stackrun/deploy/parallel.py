"""Stacks run side by side (`--parallelism N`): a dependency graph, N stacks at a time.

One scheduler for every command that runs stacks side by side: `deploy` (a stack waits for
the stacks it depends on, and for the state backend's) and `plan` (no stack waits: every
upstream value is read from state before any plan starts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from stackrun.config import Stack
from stackrun.deploy.interrupts import Interrupted
from stackrun.deploy.progress import record_failure
from stackrun.deploy.report import RunReport, StackReport, StackStatus
from stackrun.deploy.stacks import StackRun
from stackrun.errors import StackFailed

# One stack's work (the stack, its 1-based number in the run) -> its report entry.
StackWork = Callable[[Stack, int], StackReport]


def backend_first(stacks: list[Stack]) -> dict[str, set[str]]:
    """Stack name -> {the bootstrap stack} when it is in the run (every other stack's state
    lives in it), else nothing."""
    first = stacks[0] if stacks and stacks[0].number == 0 else None
    return {
        stack.name: {first.name} if first is not None and stack is not first else set()
        for stack in stacks
    }


def _needs(stacks: list[Stack]) -> dict[str, set[str]]:
    """Stack name -> the stacks of this run it waits for: its upstream, and the backend's."""
    names = {stack.name for stack in stacks}
    first = backend_first(stacks)
    return {
        stack.name: {name for name in stack.upstream if name in names} | first[stack.name]
        for stack in stacks
    }


def deploy_side_by_side(
    run: StackRun, stacks: list[Stack], parallelism: int, report: RunReport
) -> None:
    """Deploy `stacks` as a dependency graph, at most `parallelism` at a time."""
    run.workspace.prefix_output = True
    side_by_side(stacks, _needs(stacks), parallelism, run.deploy, report)


def side_by_side(
    stacks: list[Stack],
    needs: Mapping[str, set[str]],
    parallelism: int,
    work: StackWork,
    report: RunReport,
    start_order: Sequence[Stack] | None = None,
) -> None:
    """`work` each of `stacks` once every stack it `needs` is done, at most `parallelism` at a
    time; their entries added to `report` in the order of `stacks`, whichever finished first.
    Of the stacks ready, those first in `start_order` (default: `stacks`) start first.
    After a failure (or Ctrl-C) the stacks running finish, no new one starts, and the failure
    is raised once the report holds it (the stacks never started: `not started`)."""
    done: dict[str, StackReport] = {}
    failure: StackFailed | Interrupted | None = None
    failed_stack = ""
    running: dict[Future[StackReport], Stack] = {}
    number = {stack.name: index for index, stack in enumerate(stacks, start=1)}
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        while True:
            if failure is None:
                for stack in start_order or stacks:
                    index = number[stack.name]
                    started = {s.name for s in running.values()} | set(done)
                    if (
                        stack.name not in started
                        and needs[stack.name] <= set(done)
                        and len(running) < parallelism
                    ):
                        running[pool.submit(work, stack, index)] = stack
            if not running:
                break
            try:
                finished, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
            except Interrupted as error:  # the signal arrived while no terraform ran
                failure = failure or error
                continue
            for future in finished:
                stack = running.pop(future)
                try:
                    done[stack.name] = future.result()
                except (StackFailed, Interrupted) as error:
                    if failure is None:
                        failure, failed_stack = error, stack.name
    _report(report, stacks, done, failed_stack, failure)
    if failure is not None:
        raise failure


def _report(
    report: RunReport,
    stacks: list[Stack],
    done: dict[str, StackReport],
    failed_stack: str,
    failure: StackFailed | Interrupted | None,
) -> None:
    """The stacks' entries in directory-number order, whichever finished first."""
    for stack in stacks:
        if stack.name in done:
            report.stacks.append(done[stack.name])
        elif stack.name == failed_stack and failure is not None:
            record_failure(report, stack.name, [], failure)
        else:
            report.stacks.append(StackReport(stack.name, StackStatus.NOT_STARTED))
