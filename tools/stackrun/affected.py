"""What a change touches: the environments and stacks whose inputs changed since a git commit.

A stack's inputs, as repository paths:

    live/project.toml                  every stack of every environment
    live/<env>/env.toml                every stack of that environment
    live/_defaults/<stack>.toml        that stack in every environment
    live/<env>/<stack>/...             that stack
    modules/.terraform.lock.hcl        every stack (the provider selections all of them use)
    modules/<name>/... of its module   and of every local module that module calls
    lambdas/<name>/...                 each function the stack builds, and each local library
                                       that function depends on (its pyproject.toml), e.g.
                                       lambdas/fleet_common/

and every stack downstream of an affected one (it consumes its outputs, or waits for it with
`after`). The changed paths are `git diff --name-only <commit>` (committed since, and not yet
committed) plus untracked files git does not ignore.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from stackrun.build.packages import discover, local_closure
from stackrun.config import Environment, Stack, list_environments, load_environment
from stackrun.config.graph import with_downstream
from stackrun.deploy.fingerprint import module_tree
from stackrun.errors import StackrunError
from stackrun.terraform.providers import provider_lock

DEFAULT_BRANCHES = ("main", "origin/main")


def _git(root: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(root), *arguments],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError as error:
        raise StackrunError(f"affected needs git on PATH: {error}") from error


def _check_repository(root: Path) -> None:
    if _git(root, "rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        raise StackrunError(
            f"{root} is not in a git repository: affected compares against a git commit"
        )


def resolve_since(root: Path, since: str | None) -> tuple[str, str]:
    """(what the comparison is against, its commit): --since REF, or (None) the merge base of
    HEAD with main, else with origin/main."""
    _check_repository(root)
    if since is not None:
        result = _git(root, "rev-parse", "--verify", "--quiet", f"{since}^{{commit}}")
        if result.returncode != 0:
            raise StackrunError(
                f"--since {since!r}: not a commit of the repository at {root} (expected a "
                "branch, tag or commit, e.g. origin/main or HEAD~1)"
            )
        return since, result.stdout.strip()
    for branch in DEFAULT_BRANCHES:
        result = _git(root, "merge-base", "HEAD", branch)
        if result.returncode == 0:
            return f"merge-base(HEAD, {branch})", result.stdout.strip()
    raise StackrunError(
        f"no merge base of HEAD with {' or '.join(DEFAULT_BRANCHES)} in {root}: "
        "pass --since REF (a branch, tag or commit)"
    )


def changed_paths(root: Path, commit: str) -> set[str]:
    """Paths (relative to `root`, posix) changed since `commit`, committed or not, and new
    untracked files."""
    diff = _git(root, "diff", "--name-only", "--no-renames", "--relative", commit, "--")
    untracked = _git(root, "ls-files", "--others", "--exclude-standard")
    for result in (diff, untracked):
        if result.returncode != 0:
            raise StackrunError(f"git failed in {root}: {result.stderr.strip()}")
    return {line for line in (diff.stdout + untracked.stdout).splitlines() if line}


def _under(path: str, folders: Iterable[Path], root: Path) -> bool:
    absolute = (root / path).resolve()
    return any(absolute.is_relative_to(folder) for folder in folders)


class Inputs:
    """Which changed paths touch which stack of an environment."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.functions, self.libraries = discover(root / "lambdas")
        self.lock = provider_lock(root).relative_to(root).as_posix()

    def function_folders(self, stack: Stack) -> set[Path]:
        """lambdas/<name>/ of each function the stack builds and of its local libraries."""
        folders: set[Path] = set()
        for function in self.functions:
            if function.name in stack.functions:
                projects, _ = local_closure(function, self.libraries)
                folders.update(project.path.resolve() for project in projects)
        return folders

    def touched(self, environment: Environment, stack: Stack, paths: set[str]) -> bool:
        """Whether one of `paths` is an input of `stack` of `environment`."""
        env, name = environment.name, stack.name
        shared = {"live/project.toml", f"live/{env}/env.toml", self.lock}
        if paths & (shared | {f"live/_defaults/{name}.toml"}):
            return True
        if any(PurePosixPath(path).is_relative_to(f"live/{env}/{name}") for path in paths):
            return True
        folders = module_tree(stack.module.path) | self.function_folders(stack)
        return any(_under(path, folders, self.root) for path in paths)


def affected(root: Path, paths: set[str]) -> dict[str, list[str]]:
    """Environment -> its affected stacks (sorted); environments with none are left out."""
    inputs = Inputs(root)
    result: dict[str, list[str]] = {}
    for name in list_environments(root):
        environment = load_environment(root, name)
        direct = {
            stack.name for stack in environment.stacks if inputs.touched(environment, stack, paths)
        }
        if direct:
            result[name] = sorted(with_downstream(environment, direct))
    return result
