"""The terminal of a real deploy against the local emulator: on a terminal (a pty) a parallel
deploy shows the live status block in colour, terraform's lines only with -v; piped, the plain
lines with no escape codes. And `nox -s plan --detailed-exitcode`, as CI runs it, exits 2 when
there are changes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from emulated_repo import REPO_ROOT, LocalRepo
from stackrun.paths import stack_log_file

ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _two_independent_stacks(repo: LocalRepo, env: str, account: str) -> None:
    repo.env(env, account)
    for stack in ("010_a", "020_b"):
        repo.write(
            f"live/{env}/{stack}/stack.toml",
            f'module = "producer"\n[inputs]\nname = "{env}-{stack}"\n',
        )


def test_parallel_deploy_on_a_terminal_shows_a_live_block_piped_plain_lines(local_repo):
    repo = local_repo
    _two_independent_stacks(repo, "termo", "280000000001")

    code, screen = repo.run_on_terminal("deploy", "termo", "--local", "--parallelism", "2")
    text = ESCAPE.sub("", screen)
    assert code == 0, text
    assert ESCAPE.search(screen), "no colour on a terminal"
    # the block: both stacks side by side, each with its terraform phase and time
    assert "running 2 stacks" in text, text
    for stack in ("010_a", "020_b"):
        assert re.search(rf"{stack}\s+(init|apply)\s+\d+s", text), (stack, text)
        assert f"{stack:<24} applied" in text
    # terraform's own lines: in each stack's log, not on the terminal (no -v)
    assert "[010_a] " not in text
    assert "Apply complete" in stack_log_file(repo.cache("termo"), "010_a").read_text()

    code, screen = repo.run_on_terminal("-v", "deploy", "termo", "--local", "--all")
    assert code == 0, screen
    assert "[010_a] " not in screen  # one at a time: no prefix
    assert "Apply complete" in ESCAPE.sub("", screen)  # -v: terraform's lines too

    piped = repo.run("deploy", "termo", "--local", "--all", "--parallelism", "2")
    assert piped.returncode == 0, piped.text
    assert "\x1b" not in piped.text
    assert "[010_a] " in piped.stdout and "[020_b] " in piped.stdout  # as ever
    assert "==> [" in piped.stdout and "running 2 stacks" not in piped.stdout


def test_nox_plan_session_exits_2_when_there_are_changes(local_repo, tmp_path: Path):
    """The path CI's plan job takes: `nox -s plan -- <env> --detailed-exitcode`."""
    repo = local_repo
    _two_independent_stacks(repo, "termn", "280000000002")  # never deployed: all changes
    nox = shutil.which("nox")
    assert nox, "nox is not on PATH (CI installs it from constraints/nox.txt)"
    command = [nox, "-f", str(REPO_ROOT / "noxfile.py"), "--envdir", str(tmp_path / "nox")]
    args = ["-s", "plan", "--", "termn", "--local", "--detailed-exitcode"]
    result = subprocess.run(
        [*command, *args],
        env=repo.environ(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "stackrun plan exited 2: changes" in result.stderr
