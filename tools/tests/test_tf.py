"""`stackrun tf`: its arguments and which terraform commands write state (no terraform runs)."""

from __future__ import annotations

import pytest

from stackrun import cli
from stackrun.commands.tf import terraform_command
from stackrun.errors import StackrunError
from stackrun.terraform.passthrough import LOCKING, WRITES_STATE, classify


def _parsed(*argv: str):
    return cli.build_parser().parse_args(["tf", *argv])


@pytest.mark.parametrize(
    "argv",
    [
        # as `nox -s tf -- dev 030_api --local -- state list` hands them on (nox keeps the
        # second `--`)
        ("dev", "030_api", "--local", "--", "state", "list"),
        ("dev", "--local", "030_api", "--", "state", "list"),
        ("--local", "dev", "030_api", "--", "state", "list"),
    ],
)
def test_stackrun_options_and_terraform_args_are_told_apart(argv):
    args = _parsed(*argv)
    assert (args.env, args.stack, args.local) == ("dev", "030_api", True)
    command = terraform_command(args)
    assert command.words == ("state", "list")
    assert not command.writes_state


def test_after_the_separator_everything_is_terraform_s():
    args = _parsed("dev", "030_api", "--", "state", "list", "--local")
    assert not args.local
    assert terraform_command(args).args == ("state", "list", "--local")


def test_terraform_options_after_the_separator_stay_terraform_s():
    args = _parsed("dev", "030_api", "--yes", "--lock-timeout", "7s", "--", "state", "mv",
                   "-dry-run", "a.b", "c.d")  # fmt: skip
    assert (args.yes, args.lock_timeout, args.local) == (True, "7s", False)
    command = terraform_command(args)
    assert command.args == ("state", "mv", "-dry-run", "a.b", "c.d")
    assert command.argv("7s") == ["state", "mv", "-lock-timeout=7s", "-dry-run", "a.b", "c.d"]


@pytest.mark.parametrize("argv", [("dev", "030_api"), ("dev", "030_api", "--local", "--")])
def test_no_terraform_command_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        _parsed(*argv)
    assert exited.value.code == 2
    assert "the following arguments are required: -- TERRAFORM_ARGS" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "words", "writes"),
    [
        (["state", "list"], ("state", "list"), False),
        (["state", "show", "module.stack.x"], ("state", "show"), False),
        (["state", "pull"], ("state", "pull"), False),
        (["console"], ("console",), False),
        (["output", "-json"], ("output",), False),
        (["show", "-json"], ("show",), False),
        (["providers"], ("providers",), False),
        (["plan", "-target=x"], ("plan",), False),
        (["-help"], (), False),
        (["state", "mv", "a", "b"], ("state", "mv"), True),
        (["state", "rm", "a"], ("state", "rm"), True),
        (["state", "push", "f"], ("state", "push"), True),
        (["state", "replace-provider", "a", "b"], ("state", "replace-provider"), True),
        (["import", "a", "id"], ("import",), True),
        (["taint", "a"], ("taint",), True),
        (["untaint", "a"], ("untaint",), True),
        (["refresh"], ("refresh",), True),
        (["force-unlock", "-force", "id"], ("force-unlock",), True),
    ],
)
def test_commands_are_classified_by_what_they_do_to_state(args, words, writes):
    command = classify(args)
    assert command.words == words
    assert command.writes_state is writes


def test_every_state_writing_command_but_force_unlock_waits_for_the_state_lock():
    assert sorted(WRITES_STATE - LOCKING) == [("force-unlock",)]
    assert classify(["import", "a", "id"]).argv("2m") == ["import", "-lock-timeout=2m", "a", "id"]
    assert classify(["state", "list"]).argv("2m") == ["state", "list"]
    assert classify(["force-unlock", "x"]).argv("2m") == ["force-unlock", "x"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["apply"], "use `stackrun deploy <env>`"),
        (["apply", "-auto-approve"], "use `stackrun deploy <env>`"),
        (["destroy"], "use `stackrun destroy <env>`"),
        (["init", "-upgrade"], "stackrun initialises the stack's working directory itself"),
        (["workspace", "new", "x"], "default workspace"),
        (["fmt"], "`terraform fmt` is not a command stackrun tf runs; it runs: console,"),
        (["state", "frobnicate"], "`terraform state frobnicate` is not a command"),
        (["state", "rm", "-lock=false", "a"], "never runs terraform without its state lock"),
        (["import", "--lock=false", "a", "b"], "never runs terraform without its state lock"),
        (["state", "mv", "-lock-timeout=1s", "a", "b"], "stackrun's --lock-timeout"),
        (["-chdir=/tmp", "state", "list"], "the stack's working directory"),
    ],
)
def test_refused_commands_and_options_name_the_reason(args, message):
    with pytest.raises(StackrunError) as refused:
        classify(args)
    assert message in str(refused.value)


def test_an_unknown_stack_is_refused_listing_the_stacks(repo):
    from stackrun.commands import tf

    repo.standard()
    with pytest.raises(StackrunError) as refused:
        tf.run(_parsed("dev", "030_nope", "--", "state", "list"), repo.root)
    assert str(refused.value) == (
        "no stack '030_nope' in dev (stacks: 000_bootstrap, 010_net, 020_app)"
    )


def test_the_unlock_hint_names_the_lock_in_terraform_s_framed_diagnostic():
    from types import SimpleNamespace

    from stackrun.deploy.steps import unlock_hint
    from stackrun.terraform import Result

    output = (
        "╷\n│ Error: Error acquiring the state lock\n│ \n│ Lock Info:\n"
        "│   ID:        5d7c1e2a-0000-4000-8000-000000000001\n│   Who:       a@b\n╵\n"
    )
    workspace = SimpleNamespace(
        target=SimpleNamespace(local=True), environment=SimpleNamespace(name="dev")
    )
    stack = SimpleNamespace(name="030_api")
    hint = unlock_hint(Result(1, output), workspace, stack)  # type: ignore[arg-type]
    assert hint.endswith(
        "nox -s unlock -- dev 030_api 5d7c1e2a-0000-4000-8000-000000000001 --local"
    )
    assert unlock_hint(Result(1, "Error: other"), workspace, stack) == ""  # type: ignore[arg-type]
