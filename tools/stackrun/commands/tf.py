"""`stackrun tf <env> <stack> -- <terraform args>`: any terraform command in one stack's working
directory, with the environment's role, backend and inputs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stackrun.commands import context, options
from stackrun.commands.spec import Argument, Command
from stackrun.deploy import interrupts
from stackrun.terraform.passthrough import TerraformCommand, classify

HELP = "run a terraform command in one stack's working dir (state list/mv/rm, import, console)"
COMMAND = Command(
    "tf",
    help="run a terraform command in one stack's working dir (state list/mv/rm, import, console)",
    description="""
        Run `terraform <args>` in the stack's rendered, initialised working directory, as the
        environment's deploy role, against its state backend, with the stack's inputs and its
        upstream stacks' outputs (read from their states): import, console and plan see the
        configuration a deploy applies. Exits with terraform's exit code.
    """,
    arguments=(
        options.ENV,
        Argument("stack", help="a stack of the environment (NNN_name), or 000_bootstrap"),
        options.LOCAL,
        options.PORT,
        options.LOCK_TIMEOUT,
        options.YES,
        Argument(
            "terraform_args",
            # one or more, everything after: `--local -- state list` keeps --local stackrun's
            nargs=argparse.PARSER,
            metavar="-- TERRAFORM_ARGS",
            help="terraform's command and arguments, after `--`, e.g. -- state list",
        ),
    ),
    epilog="""\
terraform's stdout is stackrun's stdout (`-- state pull > state.json`); stackrun's own lines
and terraform's stderr go to stderr.

Terraform's state lock is always taken (-lock is refused); the commands that lock get
-lock-timeout from --lock-timeout (default: terraform.lock_timeout in live/project.toml).

Commands that write state (state mv/rm/push/replace-provider, import, taint, untaint, refresh,
force-unlock) take the environment guard, as a deploy does, and on a protected environment
(protected = true in env.toml) need its name typed, or --yes. Refused: apply and destroy (they
bypass stackrun's pipeline: use `stackrun deploy` / `stackrun destroy`), init (stackrun inits),
workspace new/select/delete, and commands stackrun/terraform/passthrough.py does not list.

examples:
  stackrun tf dev 030_api --local -- state list
  stackrun tf dev 030_api -- state show 'module.stack.aws_lambda_alias.live["list_devices"]'
  stackrun tf prod 020_postgres -- state rm 'module.stack.aws_secretsmanager_secret.role["x"]'
  echo 'module.stack' | stackrun tf dev 010_network --local -- console
  stackrun tf dev 030_api --local -- state pull > state.json
""",
)


def terraform_command(args: argparse.Namespace) -> TerraformCommand:
    """The terraform command given after `--` (argparse keeps the `--` in some positions)."""
    given = list(args.terraform_args)
    return classify(given[1:] if given[:1] == ["--"] else given)


def run(args: argparse.Namespace, root: Path) -> int:
    interrupts.install()
    command = terraform_command(args)
    environment = context.environment(args, root)
    from stackrun.deploy.passthrough import run_in_stack
    from stackrun.deploy.unlock import check_stack_name, stack_named

    check_stack_name(environment, args.stack)
    if command.writes_state:
        context.confirm_protected(environment, command.name, args.yes)
    workspace = context.start(args, root, console=sys.stderr, loaded=environment)
    return run_in_stack(workspace, stack_named(workspace, args.stack), command)
