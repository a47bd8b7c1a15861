"""The deploy pipeline's background build (deploy/pipeline.py) and the stackrun command's end
(cli.command): what they change in a run without terraform."""

from __future__ import annotations

import subprocess
import sys
import threading
from io import StringIO
from types import SimpleNamespace

import pytest

from stackrun.build.packages import BuildError
from stackrun.deploy import pipeline


def _workspace() -> SimpleNamespace:
    return SimpleNamespace(console=StringIO())


def test_background_build_lines_come_when_waited_for_then_as_they_come(monkeypatch):
    proceed = threading.Event()
    later_line_printed = threading.Event()

    def build(workspace, log):
        log("build one: 0.2s")
        proceed.wait(5)
        log("build two: 0.2s")
        later_line_printed.set()

    monkeypatch.setattr(pipeline, "ensure_artifacts", build)
    workspace = _workspace()
    building = pipeline.BackgroundBuild(workspace)
    workspace.console.write("state backend: ...\n")  # what the run prints meanwhile
    assert "build one" not in workspace.console.getvalue()  # held: not amid the run's lines
    waiter = threading.Thread(target=building.wait)
    waiter.start()
    proceed.set()
    waiter.join(5)
    assert workspace.console.getvalue().splitlines() == [
        "state backend: ...",
        "build one: 0.2s",
        "build two: 0.2s",
    ]


def test_a_failed_background_build_fails_the_run_where_it_is_waited_for(monkeypatch):
    def build(workspace, log):
        raise BuildError("lambdas/list_devices: no pyproject.toml")

    monkeypatch.setattr(pipeline, "ensure_artifacts", build)
    run = SimpleNamespace(building=pipeline.BackgroundBuild(_workspace()))
    with pytest.raises(BuildError, match=r"no pyproject\.toml"):
        pipeline.build_done(run)


def _stackrun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stackrun", *args], capture_output=True, text=True, timeout=120
    )


def test_the_command_exits_with_mains_code_and_all_of_its_output():
    version = _stackrun("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("stackrun ")
    # stdout is a pipe here, so block-buffered: what is not flushed before the process ends
    # is lost
    helped = _stackrun("deploy", "--help")
    assert helped.returncode == 0
    assert "--parallelism" in helped.stdout
    unknown = _stackrun("no-such-command")
    assert unknown.returncode == 2
    assert "invalid choice" in unknown.stderr
