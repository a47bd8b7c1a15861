"""`stackrun unlock <env>`: release a state lock or the environment guard a killed run left."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stackrun.commands import context, options
from stackrun.commands.spec import Argument, Command
from stackrun.deploy import interrupts
from stackrun.errors import StackrunError
from stackrun.terraform.workspace import Workspace

COMMAND = Command(
    "unlock",
    help="release a stack's state lock or the environment guard left by a killed run",
    description="""
        Release a lock left behind by a run that was killed. With <stack> <id>: the terraform
        state lock of that stack (terraform force-unlock; the id is the `ID` of the Lock Info in
        the error of the waiting run, and must match the held lock). With --guard <id>: the
        environment guard that keeps two deploys of one environment apart. Asks for confirmation
        unless --yes.
    """,
    arguments=(
        *options.ENV_ARGUMENTS,
        Argument("stack", nargs="?", help="the stack whose state lock to release"),
        Argument("lock_id", nargs="?", metavar="id", help="the state lock's ID"),
        Argument("--guard", metavar="ID", help="release the environment guard ID instead"),
        options.YES.but(help="do not ask for confirmation"),
    ),
)


def run(args: argparse.Namespace, root: Path) -> int:
    interrupts.install()
    if not args.guard and not (args.stack and args.lock_id):
        raise StackrunError("unlock needs <stack> <id> (a state lock) or --guard <id>")
    workspace = context.start(args, root)
    if args.guard:
        return _release_guard(workspace, args.guard, args.yes)
    from stackrun.deploy.unlock import force_unlock

    def confirm(question: str) -> bool:
        return args.yes or input(question).strip() == "yes"

    return 0 if force_unlock(workspace, args.stack, args.lock_id, confirm) else 1


def _release_guard(workspace: Workspace, guard_id: str, yes: bool) -> int:
    from stackrun.deploy.guard import read_guard, release_guard

    environment = workspace.environment
    dynamodb = workspace.target.client(environment, "dynamodb")
    holder = read_guard(dynamodb, environment.backend.lock_table, environment.name)
    if not holder:
        print(f"environment {environment.name!r} holds no guard")
        return 0
    print(f"guard of {environment.name!r}: {holder}")
    if not yes and input("release it? type 'yes': ").strip() != "yes":
        print("left in place")
        return 1
    if release_guard(dynamodb, environment.backend.lock_table, environment.name, guard_id):
        print("released")
        return 0
    print(f"the guard's id is not {guard_id!r}; nothing released", file=sys.stderr)
    return 1
