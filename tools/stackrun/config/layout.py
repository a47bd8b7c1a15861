"""Where live/ keeps what: the one place its folder and file names are spelled.

Every function takes the repository root; with `Path()` it gives the path relative to the
repository, as messages name a file.
"""

from __future__ import annotations

from pathlib import Path

STACK_FILE = "stack.toml"  # in each live/<env>/NNN_<name>/


def live_dir(root: Path) -> Path:
    return root / "live"


def project_file(root: Path) -> Path:
    return live_dir(root) / "project.toml"


def env_dir(root: Path, env_name: str) -> Path:
    return live_dir(root) / env_name


def env_file(root: Path, env_name: str) -> Path:
    return env_dir(root, env_name) / "env.toml"


def list_environments(root: Path) -> list[str]:
    """Environment names: folders of live/ that hold an env.toml.

    Every such folder is listed, a misnamed one too, so that load_environment reports it
    (see environment._check_env_name) rather than it being skipped without a word.
    """
    live = live_dir(root)
    if not live.is_dir():
        return []
    return sorted(p.name for p in live.iterdir() if env_file(root, p.name).is_file())
