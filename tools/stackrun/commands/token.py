"""`stackrun token <env>`: an OAuth2 access token for the environment's API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stackrun.commands import context, options
from stackrun.commands.spec import Argument, Command
from stackrun.deploy import runner

EPILOG = (
    'example:\n  curl -H "authorization: Bearer $(stackrun token dev --local '
    '--scope fleet/read)" "$URL/projects/demo/devices"'
)
COMMAND = Command(
    "token",
    help="print an access token for the environment's API (last line of stdout)",
    description="""
        Get an OAuth2 access token for <env>'s API with the client credentials grant of one app
        client of its identity stack: the client's secret is read from Secrets Manager, the
        token endpoint of the environment's Cognito user pool is called (with --local: both in
        the emulator). The token is the only line on stdout; use it as `authorization: Bearer
        <token>`. Tokens expire (the client's access_token_validity_minutes, 60 by default); get
        a new one then.
    """,
    arguments=(
        *options.ENV_ARGUMENTS,
        Argument(
            "--client",
            metavar="NAME",
            help="the app client ([inputs.clients.<NAME>] of the identity stack); default: the "
            "first by name that may request every --scope",
        ),
        Argument(
            "--scope",
            action="append",
            default=[],
            metavar="SCOPE",
            help="a scope to request, e.g. fleet/read (repeatable); default: all of the client's",
        ),
    ),
    epilog=EPILOG,
)


def run(args: argparse.Namespace, root: Path) -> int:
    from stackrun.aws.identity import fetch_token

    workspace = context.start(args, root, console=sys.stderr)
    outputs = runner.collect_outputs(workspace, announce=False)
    client, token = fetch_token(workspace, outputs, args.client, args.scope)
    scopes = " ".join(args.scope) or "all of its scopes"
    print(f"access token of client {client!r} ({scopes}):", file=sys.stderr, flush=True)
    print(token, flush=True)
    return 0
