"""deploy, plan, destroy and output over the stacks of one environment.

Stacks run in directory-number order. deploy, per stack: render -> fingerprint (skipped when
unchanged) -> init (when needed) -> one `terraform apply` -> outputs read from the state
object, which later stacks receive as inputs. The first failure stops the run; later stacks
are not touched and are reported as not started.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackrun.aws.bootstrap import backend_status, bootstrap_stack, ensure_backend
from stackrun.config import Stack, duration_seconds
from stackrun.deploy.guard import HeldGuard, environment_guard
from stackrun.deploy.interrupts import Interrupted
from stackrun.deploy.report import RunReport, StackReport
from stackrun.errors import StackFailed, StackrunError
from stackrun.local.postgres import behind_rds
from stackrun.release import canary
from stackrun.terraform import Result, Terraform, terraform_binary
from stackrun.terraform.render import dependency_variables
from stackrun.terraform.workspace import Workspace

Outputs = dict[str, dict[str, Any]]  # output name -> {"value", "sensitive", "type"}


# --------------------------------------------------------------------------------------------


def _lock_flag(workspace: Workspace) -> str:
    return f"-lock-timeout={workspace.effective_lock_timeout}"


def _require(
    result: Result | None, workspace: Workspace, stack: Stack, step: str, tf: Terraform
) -> None:
    if result is not None and result.returncode not in (0,):
        detail = _with_unlock_hint(result, workspace, stack)
        raise StackFailed(stack.name, step, detail, tf.log_file)


def _with_unlock_hint(result: Result, workspace: Workspace, stack: Stack) -> str:
    """terraform's error, plus how to release the state lock when one is in the way."""
    detail = result.error_summary
    local = " --local" if workspace.target.local else ""
    if "Error acquiring the state lock" in result.output:
        found = re.search(r"^\s*ID:\s+(\S+)", result.output, re.MULTILINE)
        lock_id = found.group(1) if found else "<ID from Lock Info>"
        detail += (
            "\n    If the run holding it was killed, release it with: nox -s unlock -- "
            f"{workspace.environment.name} {stack.name} {lock_id}{local}"
        )
    return detail


def _sensitive_inputs(stack: Stack, outputs: Mapping[str, Outputs]) -> frozenset[str]:
    return frozenset(
        dep.input_name
        for dep in stack.dependencies
        for ref in dep.references
        if outputs.get(ref.stack, {}).get(ref.output, {}).get("sensitive")
    )


def _upstream_inputs(
    stack: Stack, outputs: Mapping[str, Outputs]
) -> tuple[dict[str, str], frozenset[str]]:
    """TF_VAR_* values for the stack's dependencies, and which of them are sensitive."""
    values = {
        name: {key: item["value"] for key, item in stack_outputs.items()}
        for name, stack_outputs in outputs.items()
    }
    return dependency_variables(stack, values), _sensitive_inputs(stack, outputs)


def _missing_upstream(stack: Stack, outputs: Mapping[str, Outputs]) -> list[str]:
    return [
        str(ref)
        for dep in stack.dependencies
        for ref in dep.references
        if ref.output not in outputs.get(ref.stack, {})
    ]


def _plan_stack(
    workspace: Workspace,
    stack: Stack,
    outputs: Mapping[str, Outputs],
    destroy: bool = False,
    lock: bool = True,
    held: dict[str, str] | None = None,
) -> tuple[Terraform, dict[str, str], StackReport, int]:
    """Render, init and plan one stack into `tfplan`. Returns the plan's detailed exit code.

    Without `lock` the state is read without taking its lock: a plan writes no state, so it
    needs no lock, and never waits for (or blocks) a deploy.
    """
    variables, sensitive = _upstream_inputs(stack, outputs)
    workspace.render(stack, sensitive, held)
    tf = workspace.terraform(stack.name, fresh_log=True)
    _require(workspace.ensure_init(stack, tf), workspace, stack, "init", tf)
    args = [
        "plan",
        "-input=false",
        "-no-color",
        _lock_flag(workspace) if lock else "-lock=false",
        "-out=tfplan",
        "-detailed-exitcode",
        "-json",
    ]
    if destroy:
        args.append("-destroy")
    result = tf.run(*args, extra_env=variables)
    if result.returncode not in (0, 2):
        detail = _with_unlock_hint(result, workspace, stack)
        raise StackFailed(
            stack.name, "plan" + (" -destroy" if destroy else ""), detail, tf.log_file
        )
    report = _report_of(stack.name, "changes" if result.returncode == 2 else "unchanged", result)
    report.artifacts = _artifacts(workspace, stack)
    return tf, variables, report, result.returncode


def _report_of(name: str, status: str, result: Result) -> StackReport:
    """A stack's report from terraform's JSON UI events: counts and resources."""
    changes = result.changes
    return StackReport(
        name,
        status,
        added=changes.added,
        changed=changes.changed,
        destroyed=changes.destroyed,
        outputs_changed=changes.outputs_changed,
        resources=changes.resources,
    )


def _artifacts(workspace: Workspace, stack: Stack) -> dict[str, str]:
    """sha256 of each function zip the stack deploys (from the build manifests)."""
    if not stack.functions:
        return {}
    return {name: str(item["sha256"]) for name, item in workspace.manifests(stack).items()}


def _apply_stack(workspace: Workspace, stack: Stack, variables: dict[str, str]) -> StackReport:
    """`terraform apply -auto-approve` of one stack; the report from its summary lines."""
    tf = workspace.terraform(stack.name, fresh_log=True)
    _require(workspace.ensure_init(stack, tf), workspace, stack, "init", tf)
    result = tf.run(
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        _lock_flag(workspace),
        "-json",
        extra_env=variables,
    )
    _require(result, workspace, stack, "apply", tf)
    changes = result.changes
    changed = changes.added or changes.changed or changes.destroyed or changes.outputs_changed
    return _report_of(stack.name, "applied" if changed else "unchanged", result)


def _apply_plan(
    workspace: Workspace,
    stack: Stack,
    tf: Terraform,
    variables: dict[str, str],
    step: str,
    plan_file: str = "tfplan",
) -> Result:
    """Apply a saved plan of a stack (exactly what was planned, nothing more)."""
    result = tf.run(
        "apply",
        "-input=false",
        "-no-color",
        _lock_flag(workspace),
        "-json",
        plan_file,
        extra_env=variables,
    )
    _require(result, workspace, stack, step, tf)
    return result


def _print(workspace: Workspace, text: str) -> None:
    print(text, file=workspace.console, flush=True)


def _pinned(workspace: Workspace, stack: Stack) -> str:
    """Say which of the stack's functions a rollback pinned; the report's note ("" if none)."""
    pinned = {name: pin for name, pin in workspace.pins().items() if name in stack.functions}
    for name, pin in sorted(pinned.items()):
        _print(workspace, f"    note: {pin.notice(workspace.environment.name, name)}")
    return ", ".join(f"{name} pinned to {pin.version}" for name, pin in sorted(pinned.items()))


def _with_note(report: StackReport, note: str) -> StackReport:
    if note:
        report.note = f"{report.note}; {note}" if report.note else note
    return report


def _announce(workspace: Workspace, index: int, total: int, stack: Stack, verb: str) -> None:
    _print(workspace, f"\n==> [{index}/{total}] {verb} {stack.name} (module {stack.module.name})")


def _fail(
    report: RunReport, failed: str, remaining: list[Stack], error: StackFailed | Interrupted
) -> None:
    if isinstance(error, Interrupted):
        report.stacks.append(StackReport(failed, "interrupted", note=str(error), error=str(error)))
    else:
        detail = "\n".join(line.strip() for line in error.detail.strip().splitlines())
        report.stacks.append(
            StackReport(failed, "failed", note=error.step, error=detail or str(error))
        )
    report.stacks += [StackReport(stack.name, "not started") for stack in remaining]


def ensure_artifacts(workspace: Workspace) -> None:
    """Build (or find cached) the zips of every function a stack of the environment deploys."""
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
        log=lambda line: _print(workspace, line),
    )


# --------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------


def new_report(workspace: Workspace, command: str) -> RunReport:
    """An empty report of one run of `command` in the workspace's environment."""
    environment = workspace.environment
    return RunReport(
        command,
        environment.name,
        account_id=environment.account_id,
        target="local" if workspace.target.local else "aws",
    )


def deploy(
    workspace: Workspace,
    force: bool = False,
    parallelism: int = 1,
    report: RunReport | None = None,
    only: Collection[str] | None = None,
) -> RunReport:
    """Ensure the backend, then plan and apply every stack whose fingerprint changed.

    Stacks run in directory-number order; with `parallelism` > 1, stacks with no dependency
    path between them run side by side (at most that many at once). `force` plans every stack.
    `only`: deploy just these stacks; the others are left alone, their outputs read from state.
    """
    environment = workspace.environment
    ensure_artifacts(workspace)
    report = report if report is not None else new_report(workspace, "deploy")
    with _backend_under_guard(workspace, "deploy") as (created, guard):
        if workspace.target.local:
            # The emulated account gets its baseline (OIDC provider, deploy and plan roles)
            # before the first stack, as an administrator applies it in AWS; skipped while
            # unchanged. Not part of the report: it is not a stack of the environment.
            from stackrun.aws import baseline

            guard.check(f"applying {baseline.BASELINE_STACK}")
            baseline.ensure_local(workspace)
        outputs: dict[str, Outputs] = {}
        # The backend is a stack too: a change to modules/tfstate-bootstrap or to the backend
        # settings is applied like any other (unless it was created a moment ago).
        stacks = (
            list(environment.stacks)
            if created
            else [bootstrap_stack(workspace), *environment.stacks]
        )
        s3 = workspace.target.client(environment, "s3")
        if only is not None:
            from stackrun.terraform.state import outputs_of, read_state

            for stack in stacks:
                if stack.name not in only:
                    outputs[stack.name] = outputs_of(read_state(workspace, stack, s3), stack.module)
            stacks = [stack for stack in stacks if stack.name in only]
        run = _StackRun(workspace, outputs, force, s3, len(stacks), guard)
        try:
            if parallelism > 1:
                _deploy_side_by_side(run, stacks, parallelism, report)
            else:
                for index, stack in enumerate(stacks, start=1):
                    try:
                        report.stacks.append(run.deploy(stack, index))
                    except (StackFailed, Interrupted) as error:
                        _fail(report, stack.name, stacks[index:], error)
                        raise
        except (StackFailed, Interrupted):
            _print(workspace, "\n" + report.summary())
            raise
        _record_release(workspace, outputs)
    _print(workspace, "\n" + report.summary())
    return report


def _record_release(workspace: Workspace, outputs: Mapping[str, Outputs]) -> None:
    """The environment's release record: what is live now (stackrun.release.releases)."""
    from stackrun.release import releases

    promotion = workspace.promotion
    releases.record_deploy(
        workspace.target,
        workspace.environment,
        outputs,
        promoted_from=promotion.provenance if promotion else None,
        log=lambda line: _print(workspace, line),
    )


def guard_of(workspace: Workspace, operation: str) -> AbstractContextManager[HeldGuard]:
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
def _backend_under_guard(
    workspace: Workspace, operation: str, converge: bool = False
) -> Iterator[tuple[bool, HeldGuard]]:
    """The environment guard, then the state backend checked (or finished) under it.

    Yields whether the backend was created, and the guard. The guard lives in the backend's
    lock table, so only the account's very first run, which creates that table, takes it
    afterwards.
    """
    if not backend_status(workspace)[1]:
        created = ensure_backend(workspace, converge=converge)
        with guard_of(workspace, operation) as guard:
            yield created, guard
        return
    with guard_of(workspace, operation) as guard:
        yield ensure_backend(workspace, converge=converge), guard


def bootstrap(workspace: Workspace) -> None:
    """Create the state backend, or re-apply modules/tfstate-bootstrap, under the guard."""
    with _backend_under_guard(workspace, "bootstrap", converge=True):
        pass


@dataclass
class _StackRun:
    """Deploys single stacks of one run, sharing the outputs read so far."""

    workspace: Workspace
    outputs: dict[str, Outputs]
    force: bool
    s3: Any
    total: int
    guard: HeldGuard

    def deploy(self, stack: Stack, index: int) -> StackReport:
        from stackrun.deploy import fingerprint
        from stackrun.terraform.state import outputs_of, read_state, serial_of

        workspace = self.workspace
        self.guard.check(f"deploying {stack.name}")
        _announce(workspace, index, self.total, stack, "deploying")
        started = time.monotonic()
        missing = _missing_upstream(stack, self.outputs)
        if missing:
            raise StackFailed(
                stack.name, "plan", f"    upstream outputs missing: {', '.join(missing)}", None
            )
        variables, sensitive = _upstream_inputs(stack, self.outputs)
        state = read_state(workspace, stack, self.s3)
        # canary functions: the apply publishes a new version, the alias stays (canary.py)
        held = canary.held_versions(stack, outputs_of(state, stack.module))
        workspace.render(stack, sensitive, held)
        current = fingerprint.compute(workspace, stack, variables, serial_of(state))
        if (
            not self.force
            and state is not None
            and fingerprint.recorded(workspace, stack) == current
        ):
            stack_report = StackReport(stack.name, "skipped", note="unchanged since its last apply")
        else:
            # One `terraform apply` plans and applies in one process (no review happens between
            # the two in a deploy; `plan` is the command for reviewing). Saves a terraform run,
            # a provider start and a state load per stack.
            fingerprint.forget(workspace, stack)
            with behind_rds.server_started_meanwhile(workspace, stack):
                stack_report = _apply_stack(workspace, stack, variables)
        unapplied = state if stack_report.status == "skipped" else None
        return self.finish(stack, stack_report, variables, sensitive, held, started, unapplied)

    def finish(
        self,
        stack: Stack,
        stack_report: StackReport,
        variables: dict[str, str],
        sensitive: frozenset[str],
        held: dict[str, str],
        started: float,
        unapplied_state: dict[str, Any] | None,
    ) -> StackReport:
        """After a stack was applied (or skipped): its outputs for later stacks, its database
        and invocations, its canaries, then its fingerprint recorded and its report line.
        `unapplied_state`: the state as read before, when terraform has not run since; else
        None and the state is read again."""
        from stackrun.deploy import fingerprint, invoke
        from stackrun.terraform.state import outputs_of, read_state, serial_of

        workspace = self.workspace
        pinned = _pinned(workspace, stack)
        state = unapplied_state or read_state(workspace, stack, self.s3)
        stack_outputs = outputs_of(state, stack.module)
        self.outputs[stack.name] = stack_outputs
        if stack.database:
            behind_rds.after_apply(workspace, stack, stack_outputs)
        if stack.invoke_on_deploy:
            # on every deploy, also when the stack was unchanged: a failed invoke (a migration
            # that failed) is retried by the next deploy, and a stack that waits for this one
            # (`after`) starts only when it succeeded
            invoke.on_deploy(workspace, stack, stack_outputs)
        applied = stack_report.status != "skipped"  # a saved plan's "unchanged" was applied
        # also for a skipped stack: it says which version a canary rolled back and left alone
        watched = canary.candidates(workspace, stack, stack_outputs, held)
        if not applied:
            watched = []
        if watched:
            state = self._release(stack, stack_report, variables, sensitive, held, watched)
            self.outputs[stack.name] = outputs_of(state, stack.module)
        current = fingerprint.compute(workspace, stack, variables, serial_of(state))
        if applied:
            # Recorded last: a stack whose later steps failed is planned again next time.
            fingerprint.record(workspace, stack, current)
        stack_report.fingerprint = current
        stack_report.artifacts = _artifacts(workspace, stack)
        stack_report.seconds = time.monotonic() - started
        _with_note(stack_report, pinned)
        _print(workspace, f"<== {stack_report.line()}")
        rolled_back = [c for c in watched if c.outcome == "rolled back"]
        if rolled_back:
            raise StackFailed(
                stack.name,
                "canary",
                "\n".join(
                    f"    {c.key}: version {c.new} rolled back by its canary ({c.breached()}); "
                    f"{c.alias} stays on version {c.stable}. Deploy a fixed version."
                    for c in rolled_back
                ),
                None,
                terraform=False,
            )
        return stack_report

    def _release(
        self,
        stack: Stack,
        report: StackReport,
        variables: dict[str, str],
        sensitive: frozenset[str],
        held: dict[str, str],
        watched: list[canary.Candidate],
    ) -> dict[str, Any] | None:
        """Watch the new versions' canaries; apply the stack again with the promoted ones, so
        terraform's state and outputs say where their alias is. Returns the stack's state."""
        from stackrun.terraform.state import read_state

        workspace = self.workspace
        self.guard.check(f"releasing {stack.name}")
        canary.release(workspace, watched)
        promoted = {c.key: c.new for c in watched if c.outcome == "promoted"}
        if promoted:
            workspace.render(stack, sensitive, {**held, **promoted})
            moved = _apply_stack(workspace, stack, variables)
            report.changed += moved.changed
        _with_note(
            report,
            ", ".join(f"canary: {c.key} {c.new} {c.outcome}" for c in watched),
        )
        return read_state(workspace, stack, self.s3)


def _deploy_side_by_side(
    run: _StackRun, stacks: list[Stack], parallelism: int, report: RunReport
) -> None:
    """Deploy `stacks` as a dependency graph, at most `parallelism` at a time."""
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    run.workspace.prefix_output = True
    names = {stack.name for stack in stacks}
    # the bootstrap stack (if any) goes first: every other stack's state lives in it
    needs = {
        stack.name: {name for name in stack.upstream if name in names}
        | ({stacks[0].name} if stacks[0].number == 0 and stack is not stacks[0] else set())
        for stack in stacks
    }
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
    for stack in stacks:
        if stack.name in done:
            report.stacks.append(done[stack.name])
        elif stack.name == failed_stack and failure is not None:
            _fail(report, stack.name, [], failure)
        else:
            report.stacks.append(StackReport(stack.name, "not started"))
    if failure is not None:
        raise failure


def plan(
    workspace: Workspace, report: RunReport | None = None, out: Path | None = None
) -> RunReport:
    """Plan every stack (refreshing state); a stack whose upstream was never applied is pending.

    With `out`, each stack's plan file is kept in that folder with a manifest of what it was
    made from (stackrun.deploy.saved_plan), for `deploy --plan` to apply exactly.
    """
    from stackrun.deploy import fingerprint, saved_plan
    from stackrun.terraform.state import outputs_of, read_state, serial_of

    environment = workspace.environment
    ensure_artifacts(workspace)
    report = report if report is not None else new_report(workspace, "plan")
    outputs: dict[str, Outputs] = {}
    stacks = [bootstrap_stack(workspace), *environment.stacks]
    manifest = None
    if out is not None:
        report.saved_plan = str(out)
        manifest = saved_plan.Manifest.new(
            out, environment, fingerprint.terraform_version(terraform_binary())
        )
    if not _bootstrap_ready(workspace):
        report.stacks = [
            StackReport(stack.name, "pending", note="state backend not created yet")
            for stack in stacks
        ]
        if manifest is not None:
            for stack in stacks:
                manifest.add_pending(stack.name, "state backend not created yet")
            manifest.save()
        _print(workspace, "\n" + report.summary())
        return report
    for index, stack in enumerate(stacks):
        started = time.monotonic()
        missing = _missing_upstream(stack, outputs)
        if missing:
            note = f"upstream not applied yet: {', '.join(missing)}"
            report.stacks.append(StackReport(stack.name, "pending", note=note))
            if manifest is not None:
                manifest.add_pending(stack.name, note)
            continue
        _announce(workspace, index, len(stacks) - 1, stack, "planning")
        try:
            state = read_state(workspace, stack)
            held = canary.held_versions(stack, outputs_of(state, stack.module))
            tf, variables, stack_report, code = _plan_stack(
                workspace, stack, outputs, lock=False, held=held
            )
            _with_note(stack_report, _pinned(workspace, stack))
        except (StackFailed, Interrupted) as error:
            _fail(report, stack.name, stacks[index + 1 :], error)
            _print(workspace, "\n" + report.summary())
            raise
        stack_report.fingerprint = fingerprint.compute(
            workspace, stack, variables, serial_of(state)
        )
        if manifest is not None:
            manifest.add(
                stack.name,
                stack_report.status,
                state,
                variables,
                stack_report.artifacts,
                stack_report.fingerprint,
                tf.workdir / "tfplan" if code == 2 else None,
                stack_report.document(),
            )
        (tf.workdir / "tfplan").unlink(missing_ok=True)
        outputs[stack.name] = outputs_of(state, stack.module)
        stack_report.seconds = time.monotonic() - started
        report.stacks.append(stack_report)
    if manifest is not None:
        manifest.save()
        _print(workspace, f"\nsaved plan: {out} ({manifest.describe()})")
    _print(workspace, "\n" + report.summary())
    return report


def deploy_saved(workspace: Workspace, folder: Path, report: RunReport | None = None) -> RunReport:
    """Apply exactly the plans saved by `plan --out folder`, or refuse before applying any.

    Every stack is checked first (stackrun.deploy.saved_plan.check): a manifest of another
    environment, a pending stack, a changed state, an altered plan file, a different zip, other
    upstream values or another configuration refuse the whole plan, naming each stack and why.
    Then stacks with changes are applied in order (`terraform apply <planfile>`); stacks planned
    without changes are skipped. After each apply, the next stack's upstream values are
    compared with those its plan was made with: when they differ the run stops there.
    """
    from stackrun.deploy import fingerprint, saved_plan
    from stackrun.terraform.state import outputs_of, read_state, serial_of

    environment = workspace.environment
    report = report if report is not None else new_report(workspace, "deploy")
    report.saved_plan = str(folder)
    manifest = saved_plan.Manifest.load(folder)
    stacks = [bootstrap_stack(workspace), *environment.stacks]
    manifest.check_environment(environment, [stack.name for stack in stacks])
    _print(workspace, f"checking the {manifest.describe()} before applying anything")
    pending = [entry["name"] for entry in manifest.stacks if entry.get("status") == "pending"]
    if not _bootstrap_ready(workspace) or pending:
        raise StackrunError(
            f"refusing to apply the saved plan in {folder}: "
            + (", ".join(pending) or environment.name)
            + " were not planned (pending: their upstream stacks, or the state backend, did "
            "not exist when the plan was made). A saved plan cannot create an environment: "
            "deploy it without --plan first, then plan again. Nothing was applied"
        )
    ensure_artifacts(workspace)
    s3 = workspace.target.client(environment, "s3")
    with guard_of(workspace, "deploy") as guard:
        # 1. every stack checked against the manifest before anything is applied
        outputs: dict[str, Outputs] = {}
        problems = []
        held: dict[str, dict[str, str]] = {}  # stack -> its canary functions' live versions
        states: dict[str, dict[str, Any] | None] = {}
        for stack in stacks:
            entry = manifest.stack(stack.name) or {}
            state = states[stack.name] = read_state(workspace, stack, s3)
            variables, sensitive = _upstream_inputs(stack, outputs)
            held[stack.name] = canary.held_versions(stack, outputs_of(state, stack.module))
            workspace.render(stack, sensitive, held[stack.name])
            tf = workspace.terraform(stack.name, fresh_log=True)
            _require(workspace.ensure_init(stack, tf), workspace, stack, "init", tf)
            current = saved_plan.Current(
                state,
                variables,
                _artifacts(workspace, stack),
                fingerprint.compute(workspace, stack, variables, serial_of(state)),
            )
            reason = saved_plan.check(manifest, entry, current)
            if reason:
                problems.append(f"  {stack.name}: {reason}")
            outputs[stack.name] = outputs_of(state, stack.module)
        if problems:
            raise StackrunError(
                f"refusing to apply the saved plan in {folder}; nothing was applied:\n"
                + "\n".join(problems)
                + f"\nmake a new plan: plan {environment.name} --out DIR"
            )
        if workspace.target.local:
            from stackrun.aws import baseline

            guard.check(f"applying {baseline.BASELINE_STACK}")
            baseline.ensure_local(workspace)
        # 2. applied in order, each against exactly the values it was planned with; then,
        # as in any deploy, outputs, databases, invocations, canaries, fingerprints
        run = _StackRun(workspace, {}, False, s3, len(stacks), guard)
        for index, stack in enumerate(stacks, start=1):
            entry = manifest.stack(stack.name) or {}
            guard.check(f"deploying {stack.name}")
            started = time.monotonic()
            variables, sensitive = _upstream_inputs(stack, run.outputs)
            try:
                if entry.get("inputs_sha256") != saved_plan.inputs_hash(variables):
                    applied = {r.name for r in report.stacks if r.status == "applied"}
                    upstream = sorted(set(stack.upstream) & applied)
                    raise StackFailed(
                        stack.name,
                        "its saved plan",
                        f"    {stack.name} needs a new plan: the outputs of "
                        f"{', '.join(upstream) or 'its upstream stacks'} applied in this run "
                        "differ from those its plan was made with; nothing of "
                        f"{stack.name} was applied. Plan again: plan {environment.name} "
                        "--out DIR",
                        None,
                        terraform=False,
                    )
                if entry.get("status") == "unchanged":
                    stack_report = StackReport(
                        stack.name, "unchanged", note="no changes in the saved plan"
                    )
                else:
                    _announce(workspace, index, len(stacks), stack, "applying the saved plan of")
                    tf = workspace.terraform(stack.name, fresh_log=True)
                    plan_file = tf.workdir / "tfplan"
                    plan_file.write_bytes(manifest.plan_path(entry).read_bytes())
                    fingerprint.forget(workspace, stack)
                    with behind_rds.server_started_meanwhile(workspace, stack):
                        result = _apply_plan(workspace, stack, tf, {}, "apply <saved plan>")
                    plan_file.unlink(missing_ok=True)
                    stack_report = _report_of(stack.name, "applied", result)
                report.stacks.append(
                    run.finish(
                        stack,
                        stack_report,
                        variables,
                        sensitive,
                        held[stack.name],
                        started,
                        states[stack.name] if entry.get("status") == "unchanged" else None,
                    )
                )
            except (StackFailed, Interrupted) as error:
                _fail(report, stack.name, stacks[index:], error)
                _print(workspace, "\n" + report.summary())
                raise
        _record_release(workspace, run.outputs)
    _print(workspace, "\n" + report.summary())
    return report


def _bootstrap_ready(workspace: Workspace) -> bool:
    return all(backend_status(workspace))


def destroy(workspace: Workspace, report: RunReport | None = None) -> RunReport:
    """Destroy every stack in reverse order. The state backend is kept."""
    environment = workspace.environment
    ensure_artifacts(workspace)
    report = report if report is not None else new_report(workspace, "destroy")
    if not _bootstrap_ready(workspace):
        _print(workspace, f"no state backend for {environment.name}: nothing to destroy")
        return report
    _refuse_protected_destroy(workspace)
    with guard_of(workspace, "destroy") as guard:
        outputs = collect_outputs(workspace, announce=False)
        stacks = list(reversed(environment.stacks))
        for index, stack in enumerate(stacks, start=1):
            guard.check(f"destroying {stack.name}")
            _announce(workspace, index, len(stacks), stack, "destroying")
            started = time.monotonic()
            try:
                if _missing_upstream(stack, outputs) and not outputs.get(stack.name):
                    stack_report = StackReport(stack.name, "unchanged", note="nothing deployed")
                else:
                    tf, variables, stack_report, code = _plan_stack(
                        workspace, stack, outputs, destroy=True
                    )
                    if code == 2:
                        _apply_plan(workspace, stack, tf, variables, "apply (destroy)")
                        stack_report.status = "destroyed"
                    (tf.workdir / "tfplan").unlink(missing_ok=True)
            except (StackFailed, Interrupted) as error:
                _fail(report, stack.name, stacks[index:], error)
                _print(workspace, "\n" + report.summary())
                raise
            stack_report.seconds = time.monotonic() - started
            report.stacks.append(stack_report)
            _print(workspace, f"<== {stack_report.line()}")
    _print(workspace, "\n" + report.summary())
    return report


def deletion_protected_stacks(workspace: Workspace) -> dict[str, list[str]]:
    """Stack name -> its resources whose deletion protection is on (read from state)."""
    from stackrun.terraform.state import deletion_protected, read_state

    environment = workspace.environment
    s3 = workspace.target.client(environment, "s3")
    return {
        stack.name: found
        for stack in environment.stacks
        if (found := deletion_protected(read_state(workspace, stack, s3)))
    }


def _refuse_protected_destroy(workspace: Workspace) -> None:
    """Stop before anything is destroyed when AWS would refuse a delete half-way through."""
    environment = workspace.environment
    blocked = deletion_protected_stacks(workspace)
    if not blocked:
        return
    lines = [
        f"refusing to destroy {environment.name}: deletion protection is on for",
        *(f"  {stack}: {', '.join(found)}" for stack, found in blocked.items()),
        "nothing was destroyed. To tear the environment down, turn the protection off first:",
        *(
            f"  set deletion_protection = false in live/{environment.name}/{stack}/stack.toml "
            f"and deploy (or deploy with --set {stack}.deletion_protection=false), then destroy"
            for stack in blocked
        ),
        "  or: destroy --lift-deletion-protection (does both, after the same confirmation)",
    ]
    raise StackrunError("\n".join(lines))


def collect_outputs(workspace: Workspace, announce: bool = True) -> dict[str, Outputs]:
    """Outputs of every stack, read from state (stacks never applied give {})."""
    environment = workspace.environment
    if not _bootstrap_ready(workspace):
        raise StackrunError(
            f"{environment.name} has no state backend yet (bucket {environment.backend.bucket} "
            f"in account {environment.account_id}): deploy it first"
        )
    from stackrun.terraform.state import outputs_of, read_state

    s3 = workspace.target.client(environment, "s3")
    outputs: dict[str, Outputs] = {}
    for stack in workspace.environment.stacks:
        # one GET of the state object: no init, no terraform process
        outputs[stack.name] = outputs_of(read_state(workspace, stack, s3), stack.module)
        if announce:
            _print(workspace, f"read outputs of {stack.name}")
    return outputs


def outputs_document(
    outputs: Mapping[str, Outputs], show_sensitive: bool = False
) -> dict[str, dict[str, Any]]:
    """All stacks' outputs as one document; sensitive values hidden unless asked."""
    return {
        stack: {
            name: (item["value"] if show_sensitive or not item.get("sensitive") else "<sensitive>")
            for name, item in stack_outputs.items()
        }
        for stack, stack_outputs in outputs.items()
    }
