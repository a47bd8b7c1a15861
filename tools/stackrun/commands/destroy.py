"""`stackrun destroy <env>`: destroy every stack in reverse order; the state backend stays."""

from __future__ import annotations

import argparse
from dataclasses import replace

from stackrun.commands import options
from stackrun.commands.reported import handler
from stackrun.commands.spec import Command, flag
from stackrun.config import apply_overrides
from stackrun.deploy import runner
from stackrun.deploy.report import RunReport
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
        flag(
            "--lift-deletion-protection",
            "when resources have deletion protection on, first deploy their stacks with "
            "deletion_protection = false, then destroy (without it, destroy refuses)",
        ),
    ),
)


def _destroy(args: argparse.Namespace, workspace: Workspace, report: RunReport) -> int:
    if args.lift_deletion_protection:
        workspace = _lift_deletion_protection(workspace)
    runner.destroy(workspace, report=report)
    if workspace.target.local:
        from stackrun.local.api import process as api_process

        api_process.stop_background(workspace)
    return 0


def _lift_deletion_protection(workspace: Workspace) -> Workspace:
    """Deploy the protected stacks with deletion_protection = false; the workspace to destroy."""
    blocked = runner.deletion_protected_stacks(workspace)
    if not blocked:
        return workspace
    environment = workspace.environment
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
    runner.deploy(lifted, only=list(blocked))
    return lifted


run = handler(_destroy, confirm=True)
