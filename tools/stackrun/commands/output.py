"""`stackrun output <env>`: every stack's outputs and where the environment is, as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from stackrun.commands import context, options
from stackrun.commands.spec import Argument, Command, flag
from stackrun.deploy import interrupts, runner
from stackrun.terraform.workspace import Workspace

COMMAND = Command(
    "output",
    help="print all stacks' outputs as one JSON document",
    description="""
        Print {stack: {output: value}} for every stack as JSON on stdout, plus "target": the
        account, region, deploy role, AWS endpoint (the emulator with --local) and the URL to
        call each API stack on (with --local: the local API server's, when it runs). Sensitive
        values are shown as "<sensitive>" unless --show-sensitive is given. --stack/--exclude
        limit the stacks printed ("target" stays whole).
    """,
    arguments=(
        *options.ENV_ARGUMENTS,
        *options.stack_selection("print the outputs of"),
        flag("--show-sensitive", "print sensitive values"),
        Argument(
            "--output-file", metavar="PATH", help="write the document to PATH instead of stdout"
        ),
    ),
)


def run(args: argparse.Namespace, root: Path) -> int:
    interrupts.install()
    workspace = context.start(args, root, console=sys.stderr)
    only = context.selected(args, workspace.environment)
    outputs = runner.collect_outputs(workspace)
    shown = {name: item for name, item in outputs.items() if only is None or name in only}
    document = runner.outputs_document(shown, args.show_sensitive)
    document["target"] = _target_document(workspace, outputs)
    text = json.dumps(document, indent=2, sort_keys=True)
    if args.output_file:
        Path(args.output_file).write_text(text + "\n")
    else:
        print(text)
    return 0


def _target_document(workspace: Workspace, outputs: dict[str, Any]) -> dict[str, Any]:
    """Where the environment is: account, endpoint and the URL to call each API stack on."""
    from stackrun.aws import baseline
    from stackrun.aws.identity import find_identity

    environment, target = workspace.environment, workspace.target
    identity = find_identity(outputs)
    return {
        "environment": environment.name,
        "account_id": environment.account_id,
        "region": environment.region,
        "deploy_role_arn": environment.deploy_role_arn,
        "plan_role_arn": environment.plan_role_arn,
        "baseline": baseline.describe(environment),
        "aws_endpoint_url": target.endpoint,
        "ca_bundle": str(target.ca_bundle) if target.ca_bundle else None,
        "api_urls": _api_urls(workspace, outputs),
        "identity": identity.document() if identity else None,
    }


def _api_urls(workspace: Workspace, outputs: dict[str, Any]) -> dict[str, str]:
    """The URL to call each API stack on: in AWS its endpoint, locally the local API server's
    (when it runs). A functions-only stack has no API."""
    served: dict[str, str] = {}
    if workspace.target.local:
        from stackrun.local.api import process as api_process

        served = api_process.running_urls(workspace)
    api_urls = {}
    for stack, stack_outputs in outputs.items():
        api_id = (stack_outputs.get("api_id") or {}).get("value")
        if api_id and "api_endpoint" in stack_outputs:
            if workspace.target.local:
                url = served.get(api_id)
            else:
                url = stack_outputs["api_endpoint"]["value"]
            if url:
                api_urls[stack] = url
    return api_urls
