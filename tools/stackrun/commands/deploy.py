"""`stackrun deploy <env>`: plan and apply every stack in order (or apply saved plans)."""

from __future__ import annotations

import argparse
from pathlib import Path

from stackrun.commands import context, options
from stackrun.commands.reported import handler
from stackrun.commands.spec import Argument, Command, flag
from stackrun.deploy import runner
from stackrun.deploy.report import RunReport
from stackrun.errors import StackrunError
from stackrun.terraform.workspace import Workspace

COMMAND = Command(
    "deploy",
    help="ensure the state backend, then plan and apply every stack in order",
    description="""
        Ensure the state backend exists, then for each stack in directory-number order: render,
        compare its fingerprint (configuration, module files, upstream outputs, artifact hashes,
        terraform and provider versions, the state's serial) with the one of its last apply and
        skip it when equal; otherwise init (when needed) and one `terraform apply`. Outputs are
        read from the state object in the backend. Then, applied or skipped, the stack's
        `[lambdas] invoke_on_deploy` functions are invoked through their alias (the migrations:
        on every deploy, before any stack that lists it in `after` starts). Stops at the first
        failing stack or invocation; later stacks are left untouched. Acts as the environment's
        deploy role (env.toml deploy_role). With --local, the account baseline (000_baseline:
        OIDC provider, deploy and plan roles; see `stackrun baseline --help`) is applied into
        the emulated account first, when missing or changed and live/project.toml has [github].
    """,
    arguments=(
        *options.ENV_ARGUMENTS,
        options.YES,
        flag(
            "--all",
            "plan every stack, also those whose fingerprint says nothing changed since their "
            "last apply (the default skips them, and says so)",
        ),
        options.PARALLELISM.but(default=1),
        *options.REPORT_FILES,
        *options.stack_selection("deploy"),
        Argument(
            "--plan",
            metavar="DIR",
            help="""
                apply exactly the plans `plan <env> --out DIR` saved (terraform apply <planfile> per
                stack with changes; stacks planned without changes are skipped). Refuses before
                applying anything when the plan is of another environment or account, a stack was
                pending, a stack's state changed since (serial/lineage), a plan file was altered, a
                function zip, a stack's inputs or configuration differ; stops, naming the stack that
                needs a new plan, when an upstream apply gives other outputs than the plan was made
                with
            """,
        ),
        options.PROMOTE_FROM,
        flag(
            "--no-serve",
            "with --local: do not start the local API server and its smoke call at the end",
        ),
    ),
)


def _deploy(args: argparse.Namespace, workspace: Workspace, report: RunReport) -> int:
    only = context.selected(args, workspace.environment)
    if only is not None and (args.plan or args.promote_from):
        raise StackrunError(
            "--stack/--exclude select stacks of a fresh deploy: --plan applies a saved plan "
            "whole, and --promote-from promotes every function of the environment"
        )
    if args.plan:
        if args.all or args.parallelism != 1:
            raise StackrunError(
                "deploy --plan applies the saved plan as it is: no --all, no --parallelism"
            )
        runner.deploy_saved(workspace, Path(args.plan), report=report)
    else:
        runner.deploy(
            workspace, force=args.all, parallelism=args.parallelism, report=report, only=only
        )
    promotion = workspace.promotion
    if promotion is not None:
        from stackrun.release import promote

        promote.verify(workspace, promotion)
        print(f"promoted: {workspace.environment.name} runs the zips live in {promotion.source}")
    if workspace.target.local and not args.no_serve:
        _serve_after_deploy(workspace)
    return 0


def _serve_after_deploy(workspace: Workspace) -> None:
    """Serve the deployed API locally and call it once, so the deploy ends with proof."""
    from stackrun.local.api import process as api_process

    urls = api_process.ensure_background(workspace)
    if not urls:
        return
    name = workspace.environment.name
    print(f"\nlocal API (detached; `nox -s serve -- {name}` runs it in the foreground):")
    for api_id, url in sorted(urls.items()):
        print(f"  {api_id}: {url}")
    api_process.smoke(workspace, urls)


run = handler(_deploy, confirm=True, promotes=True)
