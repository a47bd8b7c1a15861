"""`stackrun baseline <env>`: the account baseline, with an administrator's credentials."""

from __future__ import annotations

import argparse
from pathlib import Path

from stackrun.commands import context, options
from stackrun.commands.spec import Command
from stackrun.deploy import interrupts

COMMAND = Command(
    "baseline",
    help="apply the account baseline (OIDC provider, deploy and plan roles): administrator",
    description="""
        Apply modules/account-baseline to <env>'s account as the stack 000_baseline, with the
        caller's own credentials (an administrator of the account; no role is assumed, the roles
        do not exist before): GitHub's OIDC identity provider, the deploy role (trusted by
        repo:<owner>/<repo>:environment:<env> only, with a permissions boundary that denies
        changing the baseline) and the plan role (trusted by the repository's pull-request
        tokens only; read-only plus the state lock). The repository comes from live/project.toml
        [github], the role names from env.toml. Creates the state backend first when missing;
        the baseline's state is <env>/000_baseline/terraform.tfstate in it. Run it once per
        account, and again after a change to the module or those settings. `deploy --local`
        applies it into the emulated account by itself.
    """,
    arguments=(
        options.ENV,
        options.LOCAL.but(help="apply it into the local emulator's account"),
        options.PORT,
        options.LOCK_TIMEOUT,
        options.YES,
    ),
)


def run(args: argparse.Namespace, root: Path) -> int:
    from stackrun.aws import baseline

    interrupts.install()
    baseline.run(context.start(args, root, confirm=True))
    return 0
