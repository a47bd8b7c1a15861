"""`stackrun rollback <env> <function>`: live back one version (or --to), in seconds, pinned."""

from __future__ import annotations

import argparse
from pathlib import Path

from stackrun.commands import context, options
from stackrun.commands.spec import Argument, Command

EPILOG = (
    "examples:\n"
    "  stackrun rollback prod list_devices          back to the version before live's\n"
    "  stackrun rollback dev list_devices --to 3    to version 3\n"
    "  stackrun unpin prod list_devices             release; the next deploy moves live"
)
COMMAND = Command(
    "rollback",
    help="move a function's live alias back to its previous version, in seconds, and pin it",
    description="""
        Move <function>'s `live` alias (what the HTTP API invokes) back to the newest published
        version older than the one it points at, or to --to VERSION, with one Lambda UpdateAlias
        call (canary routing, if any, is cleared); no terraform runs. The function is then
        pinned: the pin is recorded in the environment's state bucket
        (<env>/_stackrun/pins.json), every deploy and plan keeps the alias on that version
        (terraform sees no drift) and says so, and a newly deployed version is published but
        takes no traffic. Release the pin with `stackrun unpin <env> <function>`; the next
        deploy then moves live to the newest version. Acts as the deploy role, under the
        environment guard (it waits for a running deploy).
    """,
    arguments=(
        *options.ENV_ARGUMENTS,
        options.FUNCTION,
        Argument(
            "--to",
            metavar="VERSION",
            help="the published version to move live to (default: the one before live's)",
        ),
        options.YES,
    ),
    epilog=EPILOG,
)


def run(args: argparse.Namespace, root: Path) -> int:
    from stackrun.release.rollback import rollback

    rollback(context.start(args, root, confirm=True), args.function, args.to)
    return 0
