"""`stackrun serve <env>`: the locally deployed HTTP APIs on 127.0.0.1."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stackrun.commands import context, options
from stackrun.commands.spec import Argument, Command, Exclusive, flag
from stackrun.errors import StackrunError
from stackrun.paths import emulator_dir

COMMAND = Command(
    "serve",
    help="serve a locally deployed environment's HTTP API on 127.0.0.1",
    description="""
        Serve the HTTP APIs that the emulated API Gateway of <env> holds, on 127.0.0.1 (one port
        per API). Each request is routed by the API's routes, turned into a payload format 2.0
        event and run by the deployed code of the function version the route's alias points to,
        in its own awslambdaric runtime process with the version's environment variables,
        timeout and memory size. Function logs are printed and written to the emulated
        CloudWatch Logs. `deploy --local` starts a detached server itself.
    """,
    arguments=(
        options.ENV,
        Argument(
            "--api-port",
            type=int,
            help="port of the (first) API (default: the last one, or any free)",
        ),
        options.EMULATOR_PORT,
        Exclusive(
            flag("--background", "start (or keep) a detached server; print URLs"),
            flag("--stop", "stop the detached server"),
        ),
    ),
)


def run(args: argparse.Namespace, root: Path) -> int:
    from stackrun.local.api import process as api_process
    from stackrun.local.emulator import running_pid

    if running_pid(emulator_dir(root)) is None:
        raise StackrunError(
            "the local AWS emulator is not running, so nothing is deployed locally: "
            f"deploy first with `nox -s deploy -- {args.env} --local`"
        )
    args.local, args.lock_timeout = True, None
    workspace = context.start(args, root, console=sys.stderr if args.background else sys.stdout)
    if args.stop:
        stopped = api_process.stop_background(workspace)
        print("stopped the local API server" if stopped else "no local API server running")
        return 0
    if args.background:
        urls = api_process.ensure_background(workspace)
        if not urls:
            raise StackrunError(f"no HTTP API is deployed in {args.env} locally")
        for api_id, url in sorted(urls.items()):
            print(f"{api_id} {url}")
        return 0
    return api_process.serve_foreground(workspace, args.api_port)
