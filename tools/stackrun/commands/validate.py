"""`stackrun validate [<env> [<stack>]]`: check live/ without running anything."""

from __future__ import annotations

import argparse
from pathlib import Path

from stackrun.commands.spec import Argument, Command, flag
from stackrun.config import Environment, list_environments, load_environment
from stackrun.errors import StackrunError

COMMAND = Command(
    "validate",
    help="validate live/ (every environment, or one) without running anything",
    description="""
        Validate live/ (every environment, or one) without running anything: project.toml,
        env.toml, and each stack's settings: live/_defaults/<stack>.toml (what every environment
        shares) with live/<env>/<stack>/stack.toml merged over it (tables merge key by key, the
        environment's values win, arrays are replaced).
    """,
    arguments=(
        Argument("env", nargs="?", help="one environment (default: all)"),
        Argument(
            "stack", nargs="?", help="with --explain: one stack of <env> (default: all of them)"
        ),
        flag(
            "--explain",
            """
                with <env> [<stack>]: print each stack's merged settings (module, inputs,
                dependencies, lambdas, ...) one value a line, `key = value # file`, the file being
                live/_defaults/<stack>.toml or live/<env>/<stack>/stack.toml (or env.toml for what
                stackrun adds from it)
            """,
        ),
        Argument(
            "--write-inputs",
            metavar="DIR",
            help="also write every stack's inputs to DIR/<env>.<stack>.tfvars.json and print "
            "'<module dir> <var file> <skipped check ids>' per stack (for checkov --var-file)",
        ),
        Argument(
            "--role",
            choices=("plan", "deploy"),
            help="with <env>: print the ARN of its plan or deploy role (env.toml plan_role, "
            "deploy_role) as the last line, e.g. for CI's role-to-assume",
        ),
    ),
)


def run(args: argparse.Namespace, root: Path) -> int:
    _check_arguments(args)
    names = [args.env] if args.env else list_environments(root)
    for name in names:
        environment = load_environment(root, name)
        print(f"{name}: ok ({len(environment.stacks)} stacks, account {environment.account_id})")
    if args.explain:  # `environment`: the one named (checked above)
        _explain(environment, args.stack)
    if args.role:
        print(load_environment(root, args.env).role_arn(args.role))
    if args.write_inputs:
        from stackrun.terraform.policy import write_stack_inputs

        for module_dir, var_file, skips in write_stack_inputs(root, Path(args.write_inputs)):
            print(f"{module_dir} {var_file} {skips or '-'}")
    return 0


def _check_arguments(args: argparse.Namespace) -> None:
    if args.role and not args.env:
        raise StackrunError("validate --role needs an environment: validate <env> --role ...")
    if args.explain and not args.env:
        raise StackrunError("validate --explain needs an environment: validate --explain <env>")
    if args.stack and not args.explain:
        raise StackrunError(
            f"validate takes a stack with --explain: validate --explain {args.env} {args.stack}"
        )


def _explain(environment: Environment, stack: str | None) -> None:
    """validate --explain: the merged settings of one stack (or every one), value by value."""
    from stackrun.config.defaults import explain

    names = [s.name for s in environment.stacks]
    if stack is not None and stack not in names:
        raise StackrunError(
            f"no stack {stack!r} in {environment.name}; its stacks: {', '.join(names)}"
        )
    explained = [explain(environment, name) for name in ([stack] if stack else names)]
    print("\n\n".join("\n".join(lines) for lines in explained))
