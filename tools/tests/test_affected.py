"""`stackrun affected`: which environments and stacks a change touches, in a scratch git
repository holding a copy of this repository's tracked files (one commit per change)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from stackrun.cli import run
from stackrun.errors import StackrunError

REPO_ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "prod", "stage")
ALL_STACKS = ["010_network", "020_postgres", "025_identity", "027_migrations", "030_api"]


def _git(repo: Path, *arguments: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *arguments], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def scratch_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository with one commit: every file `git ls-files` lists here."""
    repo = tmp_path_factory.mktemp("affected") / "repo"
    for name in _git(REPO_ROOT, "ls-files").splitlines():
        source, target = REPO_ROOT / name, repo / name
        if source.is_file():  # a file deleted in the working tree is not copied
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "test@example.com")
    _git(repo, "config", "user.name", "test")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "the repository")
    return repo


def _commit_change(repo: Path, path: str) -> None:
    """Append a comment line to `path` and commit it."""
    file = repo / path
    comment = "//" if path.endswith((".hcl", ".tf")) else "#"
    file.write_text(file.read_text() + f"\n{comment} changed by test_affected\n")
    _git(repo, "commit", "-q", "-am", f"change {path}")


def _affected(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> dict:
    monkeypatch.setenv("STACKRUN_ROOT", str(repo))
    capsys.readouterr()
    assert run(["affected", *args]) == 0
    return json.loads(capsys.readouterr().out)


def _in_every_environment(stacks: list[str]) -> dict[str, list[str]]:
    return {env: stacks for env in ENVIRONMENTS}


@pytest.mark.parametrize(
    ("path", "environments"),
    [
        # a function's source: the stack that builds it, in every environment
        ("lambdas/list_devices/src/list_devices/handler.py", _in_every_environment(["030_api"])),
        # the library every function depends on (their pyproject.toml): both function stacks
        (
            "lambdas/fleet_common/pyproject.toml",
            _in_every_environment(["027_migrations", "030_api"]),
        ),
        # a module: its stacks and everything downstream of them
        ("modules/identity/main.tf", _in_every_environment(["025_identity", "030_api"])),
        # shared defaults: that stack everywhere, and downstream (030_api waits with `after`)
        (
            "live/_defaults/027_migrations.toml",
            _in_every_environment(["027_migrations", "030_api"]),
        ),
        # one environment's settings: all of its stacks, and nothing elsewhere
        ("live/stage/env.toml", {"stage": ALL_STACKS}),
        # one stack of one environment
        (
            "live/prod/020_postgres/stack.toml",
            {"prod": ["020_postgres", "027_migrations", "030_api"]},
        ),
    ],
)
def test_a_change_affects_exactly_its_stacks(
    scratch_repo: Path, monkeypatch, capsys, path: str, environments: dict
):
    _commit_change(scratch_repo, path)
    commit = _git(scratch_repo, "rev-parse", "HEAD~1")
    assert _affected(scratch_repo, monkeypatch, capsys, "--since", "HEAD~1") == {
        "since": "HEAD~1",
        "commit": commit,
        "environments": environments,
    }


def test_nothing_changed_affects_nothing(scratch_repo: Path, monkeypatch, capsys):
    result = _affected(scratch_repo, monkeypatch, capsys, "--since", "HEAD")
    assert result["environments"] == {}


def test_by_default_it_compares_with_the_merge_base_of_main(
    scratch_repo: Path, monkeypatch, capsys
):
    main = _git(scratch_repo, "rev-parse", "HEAD")
    _git(scratch_repo, "checkout", "-q", "-b", "feature")
    try:
        _commit_change(scratch_repo, "live/dev/env.toml")
        result = _affected(scratch_repo, monkeypatch, capsys)
    finally:
        _git(scratch_repo, "checkout", "-q", "main")
    assert result == {
        "since": "merge-base(HEAD, main)",
        "commit": main,
        "environments": {"dev": ALL_STACKS},
    }


def test_an_unknown_ref_is_a_clear_error(scratch_repo: Path, monkeypatch):
    monkeypatch.setenv("STACKRUN_ROOT", str(scratch_repo))
    with pytest.raises(StackrunError, match=r"--since 'no-such-ref': not a commit"):
        run(["affected", "--since", "no-such-ref"])


def test_outside_git_is_a_clear_error(tmp_path: Path, monkeypatch):
    (tmp_path / "live").mkdir()
    (tmp_path / "live" / "project.toml").write_text("")
    monkeypatch.setenv("STACKRUN_ROOT", str(tmp_path))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    with pytest.raises(StackrunError, match="is not in a git repository"):
        run(["affected", "--since", "HEAD~1"])
