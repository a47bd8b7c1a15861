"""`stackrun bootstrap <env>`: the state bucket and lock table, and nothing else."""

from __future__ import annotations

import argparse
from pathlib import Path

from stackrun.commands import context, options
from stackrun.deploy import interrupts, runner

HELP = "create (or re-apply) the state bucket and lock table only"
DESCRIPTION = (
    "Create the environment's state backend with modules/tfstate-bootstrap "
    "when missing (local state first, then migrated into the bucket), or re-apply it."
)


def add_parser(commands: options.Subcommands) -> argparse.ArgumentParser:
    parser = commands.add_parser("bootstrap", help=HELP, description=DESCRIPTION)
    options.add_env_arguments(parser)
    return parser


def run(args: argparse.Namespace, root: Path) -> int:
    interrupts.install()
    runner.bootstrap(context.start(args, root))
    return 0
