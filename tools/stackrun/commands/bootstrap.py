"""`stackrun bootstrap <env>`: the state bucket and lock table, and nothing else."""

from __future__ import annotations

import argparse
from pathlib import Path

from stackrun.commands import context, options
from stackrun.commands.spec import Command
from stackrun.deploy import interrupts, runner

COMMAND = Command(
    "bootstrap",
    help="create (or re-apply) the state bucket and lock table only",
    description="""
        Create the environment's state backend with modules/tfstate-bootstrap when missing
        (local state first, then migrated into the bucket), or re-apply it.
    """,
    arguments=(*options.ENV_ARGUMENTS,),
)


def run(args: argparse.Namespace, root: Path) -> int:
    interrupts.install()
    runner.bootstrap(context.start(args, root))
    return 0
