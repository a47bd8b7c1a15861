"""The start shared by deploy, destroy and plan: a run report (--report-file, --summary-file)
written whatever happens, and (--promote-from) the promotion the run deploys."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from stackrun.commands import context
from stackrun.deploy import interrupts
from stackrun.deploy.interrupts import Interrupted
from stackrun.deploy.report import RunReport
from stackrun.errors import StackrunError
from stackrun.terraform.workspace import Workspace

ReportedRun = Callable[[argparse.Namespace, Workspace, RunReport], int]


def run_reported(
    args: argparse.Namespace,
    root: Path,
    body: ReportedRun,
    *,
    confirm: bool = False,
    promotes: bool = False,
) -> int:
    """Run `body` with the report written after it: after a failure the report holds the
    failed stack, the rest and the error. `confirm`: protected environments ask first.
    `promotes`: the command has --promote-from, which the workspace then carries out."""
    interrupts.install()
    report = RunReport(args.command, args.env)
    try:
        environment = context.environment(args, root)
        report.account_id = environment.account_id
        report.target = "local" if args.local else "aws"
        workspace = context.start(args, root, loaded=environment, confirm=confirm)
        if promotes:
            workspace = _with_promotion(args, workspace)
        return body(args, workspace, report)
    except (StackrunError, Interrupted) as error:
        report.error = str(error)
        raise
    finally:
        report.write(args.report_file, args.summary_file)


def handler(
    body: ReportedRun, *, confirm: bool = False, promotes: bool = False
) -> Callable[[argparse.Namespace, Path], int]:
    """A command's `run(args, root)`: `body` under run_reported."""
    return functools.partial(run_reported, body=body, confirm=confirm, promotes=promotes)


def _with_promotion(args: argparse.Namespace, workspace: Workspace) -> Workspace:
    """--promote-from ENV: the workspace that deploys ENV's live zips instead of a build."""
    if not args.promote_from:
        return workspace
    from stackrun.release import promote

    return replace(workspace, promotion=promote.prepare(workspace, args.promote_from))
