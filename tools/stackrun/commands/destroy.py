"""`stackrun destroy <env>`: destroy every stack in reverse order; the state backend stays."""

from __future__ import annotations

import argparse
from dataclasses import replace

from stackrun.commands import context, options
from stackrun.commands.reported import handler
from stackrun.commands.spec import Command, flag
from stackrun.config import apply_overrides
from stackrun.deploy import runner
from stackrun.deploy.outputs import State
from stackrun.deploy.report import RunReport
from stackrun.deploy.selection import Selection, refuse_consumed_destroy
from stackrun.errors import StackrunError
from stackrun.terraform.workspace import Workspace

COMMAND = Command(
    "destroy",
    help="destroy every stack in reverse order (the state backend is kept)",
    description="""
        Destroy every stack in reverse directory-number order. The state bucket and lock table
        are kept, so state history survives.
    """,
    arguments=(
        *options.ENV_ARGUMENTS,
        options.YES,
        *options.REPORT_FILES,
        *options.stack_selection("destroy"),
        flag(
            "--lift-deletion-protection",
            "when resources have deletion protection on, first deploy their stacks with "
            "deletion_protection = false, then destroy (without it, destroy refuses)",
        ),
    ),
)


def _destroy(args: argparse.Namespace, workspace: Workspace, report: RunReport) -> int:
    only = context.selected(args, workspace.environment)
    states = None
    if args.lift_deletion_protection:
        workspace, states = _lift_deletion_protection(workspace, only)
    runner.destroy(workspace, report=report, only=only, states=states)
    if workspace.target.local and _destroys_functions(workspace, only):
        from stackrun.local.api import process as api_process

        api_process.stop_background(workspace)
    return 0


def _destroys_functions(workspace: Workspace, only: Selection | None) -> bool:
    """Whether the destroy took functions the local API serves (every stack: yes)."""
    environment = workspace.environment
    return only is None or any(environment.stack(name).functions for name in only)


def _lift_deletion_protection(
    workspace: Workspace, only: Selection | None
) -> tuple[Workspace, dict[str, State]]:
    """Deploy the protected stacks (of the selection) with deletion_protection = false; the
    workspace to destroy and the stacks' states (each read once, the lifted ones again)."""
    environment = workspace.environment
    states = runner.read_states(workspace, environment.stacks)
    refuse_consumed_destroy(environment, only, states)  # before anything changes
    blocked = runner.deletion_protected_stacks(workspace, states, only)
    if not blocked:
        return workspace, states
    overrides = []
    for name in blocked:
        if "deletion_protection" not in environment.stack(name).module.variables:
            raise StackrunError(
                f"{name}: deletion protection is on, and its module has no deletion_protection "
                "input to turn it off with; turn it off in the module's configuration first"
            )
        overrides.append(f"{name}.deletion_protection=false")
    print(
        f"lifting deletion protection first: deploy {', '.join(blocked)} "
        f"with --set {' --set '.join(overrides)}"
    )
    lifted = replace(workspace, environment=apply_overrides(environment, overrides))
    runner.deploy(lifted, only=frozenset(blocked), states=states)
    lifted_stacks = [environment.stack(name) for name in blocked]
    return lifted, {**states, **runner.read_states(lifted, lifted_stacks)}


run = handler(_destroy, confirm=True)
