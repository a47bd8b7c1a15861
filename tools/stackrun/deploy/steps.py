"""The terraform steps of one stack in a run: init, plan, apply, and what their results mean.

The one owner of how the runner calls terraform: the lock-timeout flag, `init` when needed
(the workspace's init marker), and `check_step`, which turns a failed step into StackFailed
naming the stack, the step and, when a state lock is in the way, how to release it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from stackrun.config import Stack
from stackrun.deploy.outputs import Outputs, upstream_inputs
from stackrun.deploy.report import StackReport, StackStatus
from stackrun.errors import StackFailed
from stackrun.terraform import Result, Terraform
from stackrun.terraform.workspace import Workspace

PLAN_FILE = "tfplan"


def lock_timeout_flag(workspace: Workspace) -> str:
    """How long terraform waits for a stack's state lock (the run's --lock-timeout)."""
    return f"-lock-timeout={workspace.effective_lock_timeout}"


def check_step(
    result: Result | None,
    workspace: Workspace,
    stack: Stack,
    step: str,
    tf: Terraform,
    succeeded: Collection[int] = (0,),
) -> None:
    """Raise StackFailed when terraform's `step` ended with an exit code not in `succeeded`.

    `result` None: the step did not run (an init not needed), which is a success.
    """
    if result is not None and result.returncode not in succeeded:
        detail = _with_unlock_hint(result, workspace, stack)
        raise StackFailed(stack.name, step, detail, tf.log_file)


def _with_unlock_hint(result: Result, workspace: Workspace, stack: Stack) -> str:
    """terraform's error, plus how to release the state lock when one is in the way."""
    return result.error_summary + unlock_hint(result, workspace, stack)


def unlock_hint(result: Result, workspace: Workspace, stack: Stack) -> str:
    """How to release the state lock that stopped terraform ("" when no lock was in the way)."""
    if "Error acquiring the state lock" not in result.output:
        return ""
    local = " --local" if workspace.target.local else ""
    # `│` frames terraform's human diagnostics (stackrun tf); -json messages have none
    found = re.search(r"^[\s│]*ID:\s+(\S+)", result.output, re.MULTILINE)
    lock_id = found.group(1) if found else "<ID from Lock Info>"
    return (
        "\n    If the run holding it was killed, release it with: nox -s unlock -- "
        f"{workspace.environment.name} {stack.name} {lock_id}{local}"
    )


def init(workspace: Workspace, stack: Stack, fresh_log: bool = True) -> Terraform:
    """The stack's terraform (a fresh log unless not `fresh_log`), initialised unless its init
    marker is current."""
    tf = workspace.terraform(stack.name, fresh_log=fresh_log)
    check_step(workspace.ensure_init(stack, tf), workspace, stack, "init", tf)
    return tf


def plan_stack(
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
    variables, sensitive = upstream_inputs(stack, outputs)
    workspace.render(stack, sensitive, held)
    tf = init(workspace, stack)
    args = [
        "plan",
        "-input=false",
        "-no-color",
        lock_timeout_flag(workspace) if lock else "-lock=false",
        f"-out={PLAN_FILE}",
        "-detailed-exitcode",
        "-json",
    ]
    if destroy:
        args.append("-destroy")
    result = tf.run(*args, extra_env=variables)
    check_step(
        result, workspace, stack, "plan" + (" -destroy" if destroy else ""), tf, succeeded=(0, 2)
    )
    status = StackStatus.CHANGES if result.returncode == 2 else StackStatus.UNCHANGED
    report = report_of(stack.name, status, result)
    report.artifacts = artifacts(workspace, stack)
    return tf, variables, report, result.returncode


def apply_stack(workspace: Workspace, stack: Stack, variables: dict[str, str]) -> StackReport:
    """`terraform apply -auto-approve` of one stack; the report from its summary lines."""
    tf = init(workspace, stack)
    result = tf.run(
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        lock_timeout_flag(workspace),
        "-json",
        extra_env=variables,
    )
    check_step(result, workspace, stack, "apply", tf)
    changes = result.changes
    changed = changes.added or changes.changed or changes.destroyed or changes.outputs_changed
    return report_of(stack.name, StackStatus.APPLIED if changed else StackStatus.UNCHANGED, result)


def apply_plan(
    workspace: Workspace, stack: Stack, tf: Terraform, variables: dict[str, str], step: str
) -> Result:
    """Apply the stack's saved plan `tfplan` (exactly what was planned, nothing more)."""
    result = tf.run(
        "apply",
        "-input=false",
        "-no-color",
        lock_timeout_flag(workspace),
        "-json",
        PLAN_FILE,
        extra_env=variables,
    )
    check_step(result, workspace, stack, step, tf)
    return result


def report_of(name: str, status: StackStatus, result: Result) -> StackReport:
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


def artifacts(workspace: Workspace, stack: Stack) -> dict[str, str]:
    """sha256 of each function zip the stack deploys (from the build manifests)."""
    if not stack.functions:
        return {}
    return {name: str(item["sha256"]) for name, item in workspace.manifests(stack).items()}
