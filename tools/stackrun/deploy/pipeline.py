"""A run of deploy, plan or destroy as a pipeline of named stages over one shared `Run`.

Each command is the list of its stages (stackrun.deploy.apply/saved/plan/destroy), executed
in order by `execute`, in the spirit of nox's `workflow.execute(tasks)`. The stages they share
live here: the function zips built, the environment guard taken (with the state backend
ensured under it), the local account's baseline, the release record, the summary.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, TypeVar

from stackrun.aws.bootstrap import bootstrap_stack
from stackrun.config import Stack
from stackrun.deploy.backend import backend_under_guard, guard_of
from stackrun.deploy.guard import HeldGuard
from stackrun.deploy.outputs import Outputs, State, outputs_from, read_states
from stackrun.deploy.progress import say
from stackrun.deploy.report import RunReport
from stackrun.deploy.selection import Selection
from stackrun.terraform.workspace import Workspace


@dataclass
class Run:
    """What the stages of one run share as they go."""

    workspace: Workspace
    report: RunReport
    stacks: list[Stack] = field(default_factory=list)  # the stacks this run goes through
    outputs: dict[str, Outputs] = field(default_factory=dict)  # stack -> outputs so far
    s3: Any = None  # the client reading the stacks' states
    guard: HeldGuard | None = None
    backend_created: bool = False  # the state backend was created by this run
    finished: bool = False  # a stage ended the run: the later stages do not run
    scope: ExitStack = field(default_factory=ExitStack)  # held until leave_guard (the guard)
    only: Selection | None = None  # --stack/--exclude: just these stacks; None: every stack
    building: BackgroundBuild | None = None  # start_build's, until build_done

    @property
    def held_guard(self) -> HeldGuard:
        assert self.guard is not None, "a stage that needs the guard ran before take_guard"
        return self.guard


R = TypeVar("R", bound=Run)
Stage = Callable[[R], None]


def execute(stages: Sequence[Stage[R]], run: R) -> RunReport:
    """Run the stages in order until one finishes the run; what they hold is released at the
    end, also when a stage fails."""
    with run.scope:
        for stage in stages:
            stage(run)
            if run.finished:
                break
    return run.report


# ---- stages shared by the commands ------------------------------------------------------------


def build_artifacts(run: Run) -> None:
    """Build (or find cached) the zips of every function a stack of the environment deploys."""
    ensure_artifacts(run.workspace)


def start_build(run: Run) -> None:
    """build_artifacts in the background, while the next stages wait on the network (the
    guard, the backend's checks); `build_done` waits for it before anything changes."""
    run.building = BackgroundBuild(run.workspace)
    # a run that fails before build_done still ends after its build (no zip left half-written)
    run.scope.callback(run.building.join)


def build_done(run: Run) -> None:
    """The build started by `start_build` finished; its failure fails the run here."""
    if run.building is not None:
        run.building.wait()


class BackgroundBuild:
    """ensure_artifacts in a thread. Its lines are held until `wait` (they come in the run's
    order), and printed as they come from then on (a long build shows its progress)."""

    def __init__(self, workspace: Workspace) -> None:
        self._workspace = workspace
        self._lock = threading.Lock()
        self._held: list[str] | None = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._build, name="build", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        with self._lock:
            held, self._held = self._held or [], None
        for line in held:
            say(self._workspace, line)
        self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def join(self) -> None:
        self._thread.join()

    def _build(self) -> None:
        try:
            ensure_artifacts(self._workspace, log=self._say)
        except BaseException as error:  # raised again by `wait`, in the run's thread
            self._error = error

    def _say(self, line: str) -> None:
        with self._lock:
            if self._held is not None:
                self._held.append(line)
                return
        say(self._workspace, line)


def ensure_artifacts(workspace: Workspace, log: Callable[[str], None] | None = None) -> None:
    environment = workspace.environment
    names = sorted({name for stack in environment.stacks for name in stack.functions})
    if not names or workspace.promotion is not None:  # promoted: the source's zips, no build
        return
    from stackrun.build import build_all

    build_all(
        environment.project.root,
        out_dir=workspace.artifact_dir,
        architecture=environment.lambda_architecture,
        only=names,
        log=log or (lambda line: say(workspace, line)),
    )


def backend_and_guard(operation: str) -> Stage[Run]:
    """The environment guard for `operation`, with the state backend ensured under it."""

    def backend_and_guard(run: Run) -> None:
        # a backend to create waits for the build: a failed build changes nothing
        context = backend_under_guard(
            run.workspace, operation, before_change=lambda: build_done(run)
        )
        run.backend_created, run.guard = run.scope.enter_context(context)

    return backend_and_guard


def take_guard(operation: str) -> Stage[Run]:
    """The environment guard for `operation` (the backend exists already)."""

    def take_guard(run: Run) -> None:
        run.guard = run.scope.enter_context(guard_of(run.workspace, operation))

    return take_guard


def select_all_stacks(run: Run) -> None:
    """Every stack, the state backend's (bootstrap) first: what a plan covers and saves, and
    `deploy --plan` applies."""
    run.stacks = [bootstrap_stack(run.workspace), *run.workspace.environment.stacks]


def read_unselected_outputs(run: Run, states: Mapping[str, State] | None = None) -> None:
    """With a selection, the outputs of the stacks not selected (their dependants' inputs), from
    their state: `states` when read already, else one GET each. Notes the selection in the
    report, whose stacks are the selected ones only."""
    if run.only is None:
        return
    environment = run.workspace.environment
    others = [stack for stack in environment.stacks if stack.name not in run.only]
    if states is None:
        states = read_states(run.workspace, others, run.s3)
    run.outputs.update(outputs_from(states, others))
    run.report.selected = tuple(s.name for s in environment.stacks if s.name in run.only)


def open_states(run: Run) -> None:
    """The client reading the stacks' states (one per run, shared by all stacks)."""
    run.s3 = run.workspace.target.client(run.workspace.environment, "s3")


def local_baseline(run: Run) -> None:
    """Locally, the emulated account's baseline (OIDC provider, deploy and plan roles) before
    the first stack, as an administrator applies it in AWS; skipped while unchanged. Not part
    of the report: it is not a stack of the environment."""
    if not run.workspace.target.local:
        return
    from stackrun.aws import baseline

    run.held_guard.check(f"applying {baseline.BASELINE_STACK}")
    baseline.ensure_local(run.workspace)


def record_release(run: Run) -> None:
    """The environment's release record: what is live now (stackrun.release.releases)."""
    from stackrun.release import releases

    workspace = run.workspace
    promotion = workspace.promotion
    releases.record_deploy(
        workspace.target,
        workspace.environment,
        run.outputs,
        promoted_from=promotion.provenance if promotion else None,
        log=lambda line: say(workspace, line),
    )


def leave_guard(run: Run) -> None:
    """Release what the run holds (the environment guard) before it ends."""
    run.scope.close()


def print_summary(run: Run) -> None:
    say(run.workspace, "\n" + run.report.summary())


# How every deploy ends (`deploy` and `deploy --plan`): the release record of what is live
# now, the guard left, the summary.
FINISH_DEPLOY: tuple[Stage[Run], ...] = (record_release, leave_guard, print_summary)
