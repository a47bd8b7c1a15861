"""`stackrun plan <env>`: plan every stack (optionally saving the plans for `deploy --plan`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from stackrun.commands import context, options
from stackrun.commands.reported import handler
from stackrun.commands.spec import Argument, Command, flag
from stackrun.deploy import runner
from stackrun.deploy.report import RunReport
from stackrun.errors import StackrunError
from stackrun.terraform.workspace import Workspace

COMMAND = Command(
    "plan",
    help="plan every stack and print a one-line-per-stack summary",
    description="""
        Plan every stack (the state backend included) against refreshed state and print a
        summary line per stack (to add / to change / to destroy). A plan writes no state: it
        takes neither the environment guard nor state locks, so it never waits for a deploy.
        Terraform and stackrun act as the environment's plan role (env.toml plan_role, default
        fleet-plan: read-only), never its deploy role; except with --out, whose saved plans are
        made as the deploy role that `deploy --plan` applies them with. Stacks are planned side
        by side (--parallelism; default: the number of CPUs), each with its upstream values as
        read from state before any plan starts; a stack downstream of one whose plan changes its
        outputs says so in its note.
    """,
    arguments=(
        *options.ENV_ARGUMENTS,
        *options.REPORT_FILES,
        *options.stack_selection("plan"),
        Argument(
            "--out",
            metavar="DIR",
            help="""
                save each stack's plan file into DIR with manifest.json (environment, account,
                commit; per stack: state serial and lineage, sha256 of the upstream values and of
                the function zips, fingerprint, plan file sha256) for `deploy <env> --plan DIR`. A
                saved plan carries the provider and backend settings it is applied with, so
                `plan --out` acts as the deploy role (env.toml deploy_role), not the plan role
            """,
        ),
        options.PARALLELISM.but(default=max(os.cpu_count() or 1, 1)),
        options.PROMOTE_FROM,
        flag(
            "--detailed-exitcode",
            "exit 2 when any stack has changes (or is not deployed yet), 0 when none has",
        ),
    ),
)


def _plan(args: argparse.Namespace, workspace: Workspace, report: RunReport) -> int:
    only = context.selected(args, workspace.environment)
    if only is not None and args.out:
        raise StackrunError(
            "plan --out saves a plan of every stack for `deploy --plan`: no --stack/--exclude"
        )
    out = Path(args.out) if args.out else None
    runner.plan(workspace, report=report, out=out, only=only, parallelism=args.parallelism)
    return 2 if args.detailed_exitcode and report.has_changes else 0


run = handler(_plan, promotes=True)
