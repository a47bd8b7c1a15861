"""Stacks deployed side by side (`--parallelism N`): a dependency graph, N stacks at a time."""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from stackrun.config import Stack
from stackrun.deploy.interrupts import Interrupted
from stackrun.deploy.progress import record_failure
from stackrun.deploy.report import RunReport, StackReport, StackStatus
from stackrun.deploy.stacks import StackRun
from stackrun.errors import StackFailed


def _needs(stacks: list[Stack]) -> dict[str, set[str]]:
    """Stack name -> the stacks of this run it waits for."""
    names = {stack.name for stack in stacks}
    # the bootstrap stack (if any) goes first: every other stack's state lives in it
    return {
        stack.name: {name for name in stack.upstream if name in names}
        | ({stacks[0].name} if stacks[0].number == 0 and stack is not stacks[0] else set())
        for stack in stacks
    }


def deploy_side_by_side(
    run: StackRun, stacks: list[Stack], parallelism: int, report: RunReport
) -> None:
    """Deploy `stacks` as a dependency graph, at most `parallelism` at a time."""
    run.workspace.prefix_output = True
    needs = _needs(stacks)
    done: dict[str, StackReport] = {}
    failure: StackFailed | Interrupted | None = None
    failed_stack = ""
    running: dict[Future[StackReport], Stack] = {}
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        while True:
            if failure is None:
                for index, stack in enumerate(stacks, start=1):
                    started = {s.name for s in running.values()} | set(done)
                    if (
                        stack.name not in started
                        and needs[stack.name] <= set(done)
                        and len(running) < parallelism
                    ):
                        running[pool.submit(run.deploy, stack, index)] = stack
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
