"""The terminal (stackrun.terminal): the status block's rendering, when output is plain, what
-q/-v show; and the command line's --version and completion scripts."""

from __future__ import annotations

import io
import re
from importlib.metadata import version

import pytest
from rich.console import Console

from stackrun import cli, terminal
from stackrun.terminal import StatusBoard, Terminal, Verbosity

ESCAPE = re.compile(r"\x1b\[")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _rendered(renderable: object, colour: bool = False) -> str:
    system = "256" if colour else None
    console = Console(file=io.StringIO(), width=100, force_terminal=colour, color_system=system)
    console.print(renderable)
    return console.file.getvalue()


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0s"), (59.9, "59s"), (65, "1m05s"), (3725, "1h02m")]
)
def test_elapsed_time_is_short(seconds, text):
    assert terminal.elapsed(seconds) == text


def test_the_board_shows_each_running_stack_with_its_phase_and_time():
    clock = Clock()
    board = StatusBoard(clock=clock)
    board.start("010_net", "starting")
    clock.now += 3
    board.start("020_app", "starting")
    board.phase("010_net", "apply")
    board.phase("999_other", "plan")  # not on the board: left off
    clock.now += 62
    lines = [line.split() for line in _rendered(board).splitlines()]
    assert lines == [
        ["running", "2", "stacks"],
        ["●", "010_net", "apply", "1m05s"],
        ["●", "020_app", "starting", "1m02s"],
    ]
    board.finish("010_net")
    assert "010_net" not in _rendered(board)
    board.finish("020_app")
    assert _rendered(board).strip() == ""


def test_the_board_is_coloured_on_a_terminal():
    board = StatusBoard()
    board.start("010_net", "init")
    coloured = _rendered(board, colour=True)
    assert ESCAPE.search(coloured)
    assert ESCAPE.sub("", coloured).count("010_net") == 1


@pytest.mark.parametrize(
    ("environ", "tty", "plain"),
    [
        ({}, True, False),
        ({"CI": "true"}, True, True),
        ({"NO_COLOR": "1"}, True, True),
        ({"TERM": "dumb"}, True, True),
        ({}, False, True),
    ],
)
def test_output_is_plain_on_ci_with_no_color_dumb_or_not_a_terminal(environ, tty, plain):
    environ = {"TERM": "xterm-256color", **environ}
    console = Console(file=io.StringIO(), force_terminal=tty, _environ=environ)
    assert terminal.plain_requested(console, environ) is plain


def test_plain_terminal_writes_to_stdout_and_shows_terraform_unless_quiet(capsys):
    plain = Terminal(Verbosity.NORMAL)
    assert plain.stream() is __import__("sys").stdout
    assert plain.shows_terraform and plain.shows_starts
    with plain.running("010_net", "starting"):  # no block: nothing written
        plain.phase("010_net", "apply")
    assert capsys.readouterr().out == ""
    quiet = Terminal(Verbosity.QUIET)
    assert not quiet.shows_terraform and not quiet.shows_starts


def test_live_terminal_prints_lines_in_colour_above_the_block():
    console = Console(file=io.StringIO(), force_terminal=True, width=100, color_system="256")
    live = Terminal(Verbosity.NORMAL, console)
    assert not live.shows_terraform  # only with -v
    assert Terminal(Verbosity.VERBOSE, console).shows_terraform
    stream = live.stream()
    with live.running("010_net", "starting"):
        assert live.live is not None  # the block started with the first stack
        live.phase("010_net", "plan")
        stream.write("\n==> [1/2] deploying 010_net")
        stream.write("\n")
        print("<== 010_net applied", file=stream)
        live.live.refresh()
    assert live.live is None  # no stack runs: the block is gone
    print("summary", file=stream)
    print("  010_net applied", file=stream)
    out = console.file.getvalue()
    assert ESCAPE.search(out)
    plain = ESCAPE.sub("", out)
    assert "==> [1/2] deploying 010_net" in plain
    assert "<== 010_net applied" in plain
    assert "plan" in plain and "running 1 stack" in plain
    assert out.endswith("summary\n  010_net applied\n")  # no block left between the lines


def test_quiet_terminal_shows_no_block():
    console = Console(file=io.StringIO(), force_terminal=True)
    quiet = Terminal(Verbosity.QUIET, console)
    with quiet.running("010_net", "starting"):
        assert quiet.live is None


def test_use_installs_the_terminal_for_the_body_and_closes_it():
    before = terminal.current()
    mine = Terminal(Verbosity.VERBOSE)
    with terminal.use(mine):
        assert terminal.current() is mine
    assert terminal.current() is before


def test_version_comes_from_the_installed_distribution(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"stackrun {version('stackrun')}"


def test_quiet_and_verbose_go_before_or_after_the_command():
    parser = cli.build_parser()
    assert parser.parse_args(["validate"]).verbosity == Verbosity.NORMAL
    assert parser.parse_args(["-v", "validate"]).verbosity == Verbosity.VERBOSE
    assert parser.parse_args(["validate", "--quiet"]).verbosity == Verbosity.QUIET
    with pytest.raises(SystemExit):
        parser.parse_args(["validate", "-q", "-v"])


def test_commands_that_only_print_a_result_take_no_quiet_or_verbose_after_them():
    parser = cli.build_parser()
    for command in (["graph", "dev"], ["affected"], ["completion", "bash"]):
        assert parser.parse_args(command).verbosity == Verbosity.NORMAL
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "-q"])
    assert parser.parse_args(["build", "-q"]).verbosity == Verbosity.QUIET


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_script_names_the_commands(shell, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # works outside the repository
    monkeypatch.delenv("STACKRUN_ROOT", raising=False)
    assert cli.run(["completion", shell]) == 0
    script = capsys.readouterr().out
    for command in ("deploy", "plan", "destroy", "rollback", "completion", "--parallelism"):
        assert command in script, command
    assert ("complete -o" in script) if shell == "bash" else script.startswith("#compdef stackrun")
