"""deploy, plan, destroy and output over the stacks of one environment.

Stacks run in directory-number order. Each stack: render -> init (when needed) -> plan -out ->
apply that plan -> read outputs, which later stacks receive as inputs. The first failure stops
the run; later stacks are not touched and are reported as not started.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stackrun import database
from stackrun.bootstrap import backend_status, bootstrap_stack, ensure_backend
from stackrun.config import Stack
from stackrun.errors import StackFailed, StackrunError
from stackrun.guard import environment_guard
from stackrun.render import dependency_variables
from stackrun.terraform import Result, Terraform, parse_json_document
from stackrun.workspace import Workspace, duration_seconds

Outputs = dict[str, dict[str, Any]]  # output name -> {"value", "sensitive", "type"}


@dataclass
class StackReport:
    name: str
    status: str  # applied | unchanged | changes | pending | destroyed | failed | not started
    seconds: float = 0.0
    added: int = 0
    changed: int = 0
    destroyed: int = 0
    outputs_changed: bool = False
    note: str = ""

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.changed or self.destroyed or self.outputs_changed) or (
            self.status == "pending"
        )

    def line(self) -> str:
        counts = f"{self.added} to add, {self.changed} to change, {self.destroyed} to destroy"
        if self.status in ("applied", "destroyed"):
            counts = f"{self.added} added, {self.changed} changed, {self.destroyed} destroyed"
        text = f"{self.name:<24} {self.status:<12} {counts}"
        if self.outputs_changed:
            text += ", outputs change"
        if self.note:
            text += f"  ({self.note})"
        if self.seconds:
            text += f"  [{self.seconds:.1f}s]"
        return text


@dataclass
class RunReport:
    command: str
    environment: str
    stacks: list[StackReport] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return any(report.has_changes for report in self.stacks)

    def summary(self) -> str:
        lines = [f"{self.command} {self.environment}: summary"]
        lines += ["  " + report.line() for report in self.stacks]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def _lock_flag(workspace: Workspace) -> str:
    return f"-lock-timeout={workspace.effective_lock_timeout}"


def _require(result: Result | None, stack: Stack, step: str, tf: Terraform) -> None:
    if result is not None and result.returncode not in (0,):
        raise StackFailed(stack.name, step, result.error_summary, tf.log_file)


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


def plan_counts(tf: Terraform, plan_file: str = "tfplan") -> tuple[int, int, int, bool]:
    """(add, change, destroy, outputs change) from `terraform show -json <plan>`."""
    result = tf.run("show", "-json", "-no-color", plan_file, capture_stdout=True)
    if result.returncode != 0:
        raise StackrunError(f"could not read the plan: {result.error_summary}")
    document = parse_json_document(result.output)
    assert isinstance(document, dict)
    added = changed = destroyed = 0
    for change in document.get("resource_changes", []):
        actions = change.get("change", {}).get("actions", [])
        if "create" in actions:
            added += 1
        if "delete" in actions:
            destroyed += 1
        if actions == ["update"]:
            changed += 1
    outputs_changed = any(
        change.get("actions") not in (["no-op"], None)
        for change in document.get("output_changes", {}).values()
    )
    return added, changed, destroyed, outputs_changed


def _plan_stack(
    workspace: Workspace,
    stack: Stack,
    outputs: Mapping[str, Outputs],
    destroy: bool = False,
) -> tuple[Terraform, dict[str, str], StackReport, int]:
    """Render, init and plan one stack into `tfplan`. Returns the plan's detailed exit code."""
    variables, sensitive = _upstream_inputs(stack, outputs)
    workspace.render(stack, sensitive)
    tf = workspace.terraform(stack.name, fresh_log=True)
    _require(workspace.ensure_init(stack, tf), stack, "init", tf)
    args = [
        "plan",
        "-input=false",
        "-no-color",
        _lock_flag(workspace),
        "-out=tfplan",
        "-detailed-exitcode",
    ]
    if destroy:
        args.append("-destroy")
    result = tf.run(*args, extra_env=variables)
    if result.returncode not in (0, 2):
        raise StackFailed(
            stack.name, "plan" + (" -destroy" if destroy else ""), result.error_summary, tf.log_file
        )
    # `show -json` loads every provider schema (seconds); a plan without changes needs none.
    counts = plan_counts(tf) if result.returncode == 2 else (0, 0, 0, False)
    added, changed, destroyed, outputs_changed = counts
    report = StackReport(
        stack.name,
        "changes" if result.returncode == 2 else "unchanged",
        added=added,
        changed=changed,
        destroyed=destroyed,
        outputs_changed=outputs_changed,
    )
    return tf, variables, report, result.returncode


def _apply_plan(
    workspace: Workspace, stack: Stack, tf: Terraform, variables: dict[str, str], step: str
) -> None:
    """Apply the saved plan `tfplan` of a stack (exactly what was planned, nothing more)."""
    result = tf.run(
        "apply", "-input=false", "-no-color", _lock_flag(workspace), "tfplan", extra_env=variables
    )
    _require(result, stack, step, tf)


def _print(workspace: Workspace, text: str) -> None:
    print(text, file=workspace.console, flush=True)


def _announce(workspace: Workspace, index: int, total: int, stack: Stack, verb: str) -> None:
    _print(workspace, f"\n==> [{index}/{total}] {verb} {stack.name} (module {stack.module.name})")


def _fail(report: RunReport, failed: str, remaining: list[Stack], error: StackFailed) -> None:
    report.stacks.append(StackReport(failed, "failed", note=error.step))
    report.stacks += [StackReport(stack.name, "not started") for stack in remaining]


def ensure_artifacts(workspace: Workspace) -> None:
    """Build (or find cached) the zips of every function a stack of the environment deploys."""
    environment = workspace.environment
    names = sorted({name for stack in environment.stacks for name in stack.functions})
    if not names:
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


def deploy(workspace: Workspace) -> RunReport:
    """Ensure the backend, then plan and apply every stack in order."""
    environment = workspace.environment
    ensure_artifacts(workspace)
    created = ensure_backend(workspace)
    report = RunReport("deploy", environment.name)
    dynamodb = workspace.target.client(environment, "dynamodb")
    with environment_guard(
        dynamodb,
        environment.backend.lock_table,
        environment.name,
        "deploy",
        duration_seconds(workspace.effective_lock_timeout),
    ):
        outputs: dict[str, Outputs] = {}
        # The backend is a stack too: a change to modules/tfstate-bootstrap or to the backend
        # settings is applied like any other (unless it was created a moment ago).
        stacks = (
            list(environment.stacks)
            if created
            else [bootstrap_stack(workspace), *environment.stacks]
        )
        for index, stack in enumerate(stacks, start=1):
            _announce(workspace, index, len(stacks), stack, "deploying")
            started = time.monotonic()
            try:
                missing = _missing_upstream(stack, outputs)
                if missing:
                    raise StackFailed(
                        stack.name,
                        "plan",
                        f"    upstream outputs missing: {', '.join(missing)}",
                        None,
                    )
                tf, variables, stack_report, code = _plan_stack(workspace, stack, outputs)
                if code == 2:
                    _apply_plan(workspace, stack, tf, variables, "apply")
                    stack_report.status = "applied"
                (tf.workdir / "tfplan").unlink(missing_ok=True)
                stack_outputs = workspace.read_outputs(tf, stack.module)
                if stack_outputs is None:
                    raise StackFailed(
                        stack.name, "output", "    could not read outputs", tf.log_file
                    )
                outputs[stack.name] = stack_outputs
                if stack.database is not None:
                    database.after_apply(workspace, stack, stack_outputs)
            except StackFailed as error:
                _fail(report, stack.name, stacks[index:], error)
                _print(workspace, "\n" + report.summary())
                raise
            stack_report.seconds = time.monotonic() - started
            report.stacks.append(stack_report)
            _print(workspace, f"<== {stack_report.line()}")
    _print(workspace, "\n" + report.summary())
    return report


def plan(workspace: Workspace) -> RunReport:
    """Plan every stack (refreshing state); a stack whose upstream was never applied is pending."""
    environment = workspace.environment
    ensure_artifacts(workspace)
    report = RunReport("plan", environment.name)
    outputs: dict[str, Outputs] = {}
    stacks = [bootstrap_stack(workspace), *environment.stacks]
    if not _bootstrap_ready(workspace):
        report.stacks = [
            StackReport(stack.name, "pending", note="state backend not created yet")
            for stack in stacks
        ]
        _print(workspace, "\n" + report.summary())
        return report
    for index, stack in enumerate(stacks):
        started = time.monotonic()
        missing = _missing_upstream(stack, outputs)
        if missing:
            report.stacks.append(
                StackReport(
                    stack.name, "pending", note=f"upstream not applied yet: {', '.join(missing)}"
                )
            )
            continue
        _announce(workspace, index, len(stacks) - 1, stack, "planning")
        tf, _, stack_report, _ = _plan_stack(workspace, stack, outputs)
        (tf.workdir / "tfplan").unlink(missing_ok=True)
        outputs[stack.name] = workspace.read_outputs(tf, stack.module) or {}
        stack_report.seconds = time.monotonic() - started
        report.stacks.append(stack_report)
    _print(workspace, "\n" + report.summary())
    return report


def _bootstrap_ready(workspace: Workspace) -> bool:
    return all(backend_status(workspace))


def destroy(workspace: Workspace) -> RunReport:
    """Destroy every stack in reverse order. The state backend is kept."""
    environment = workspace.environment
    ensure_artifacts(workspace)
    report = RunReport("destroy", environment.name)
    if not _bootstrap_ready(workspace):
        _print(workspace, f"no state backend for {environment.name}: nothing to destroy")
        return report
    dynamodb = workspace.target.client(environment, "dynamodb")
    with environment_guard(
        dynamodb,
        environment.backend.lock_table,
        environment.name,
        "destroy",
        duration_seconds(workspace.effective_lock_timeout),
    ):
        outputs = collect_outputs(workspace, announce=False)
        stacks = list(reversed(environment.stacks))
        for index, stack in enumerate(stacks, start=1):
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
            except StackFailed as error:
                _fail(report, stack.name, stacks[index:], error)
                _print(workspace, "\n" + report.summary())
                raise
            stack_report.seconds = time.monotonic() - started
            report.stacks.append(stack_report)
            _print(workspace, f"<== {stack_report.line()}")
    _print(workspace, "\n" + report.summary())
    return report


def collect_outputs(workspace: Workspace, announce: bool = True) -> dict[str, Outputs]:
    """Outputs of every stack, read from state (stacks never applied give {})."""
    environment = workspace.environment
    if not _bootstrap_ready(workspace):
        raise StackrunError(
            f"{environment.name} has no state backend yet (bucket {environment.backend.bucket} "
            f"in account {environment.account_id}): deploy it first"
        )
    ensure_artifacts(workspace)
    outputs: dict[str, Outputs] = {}
    for stack in workspace.environment.stacks:
        workspace.render(stack, _sensitive_inputs(stack, outputs))
        tf = workspace.terraform(stack.name)
        tf.echo = False
        _require(workspace.ensure_init(stack, tf), stack, "init", tf)
        outputs[stack.name] = workspace.read_outputs(tf, stack.module) or {}
        if announce:
            _print(workspace, f"read outputs of {stack.name}")
    return outputs


def outputs_document(outputs: Mapping[str, Outputs], show_sensitive: bool = False) -> str:
    """All stacks' outputs as one JSON document; sensitive values hidden unless asked."""
    document = {
        stack: {
            name: (item["value"] if show_sensitive or not item.get("sensitive") else "<sensitive>")
            for name, item in stack_outputs.items()
        }
        for stack, stack_outputs in outputs.items()
    }
    return json.dumps(document, indent=2, sort_keys=True)
