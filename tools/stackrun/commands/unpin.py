"""`stackrun unpin <env> <function>`: release a rollback pin."""

from __future__ import annotations

import argparse
from pathlib import Path

from stackrun.commands import context, options

HELP = "release a function's rollback pin (the next deploy moves live to the newest)"
DESCRIPTION = (
    "Release the pin `stackrun rollback` put on <function>. Nothing moves "
    "now: the next deploy moves the function's live alias to its newest published version."
)


def add_parser(commands: options.Subcommands) -> argparse.ArgumentParser:
    parser = commands.add_parser("unpin", help=HELP, description=DESCRIPTION)
    options.add_env_arguments(parser)
    options.add_function(parser)
    return parser


def run(args: argparse.Namespace, root: Path) -> int:
    from stackrun.release.rollback import unpin

    unpin(context.start(args, root), args.function)
    return 0
