"""`stackrun unpin <env> <function>`: release a rollback pin."""

from __future__ import annotations

import argparse
from pathlib import Path

from stackrun.commands import context, options
from stackrun.commands.spec import Command

COMMAND = Command(
    "unpin",
    help="release a function's rollback pin (the next deploy moves live to the newest)",
    description="""
        Release the pin `stackrun rollback` put on <function>. Nothing moves now: the next
        deploy moves the function's live alias to its newest published version.
    """,
    arguments=(
        *options.ENV_ARGUMENTS,
        options.FUNCTION,
    ),
)


def run(args: argparse.Namespace, root: Path) -> int:
    from stackrun.release.rollback import unpin

    unpin(context.start(args, root), args.function)
    return 0
