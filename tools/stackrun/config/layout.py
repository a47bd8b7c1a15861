"""Where live/ keeps what: the environments are the folders of live/ that hold an env.toml."""

from __future__ import annotations

from pathlib import Path


def list_environments(root: Path) -> list[str]:
    """Environment names: folders of live/ that hold an env.toml.

    Every such folder is listed, a misnamed one too, so that load_environment reports it
    (see environment._check_env_name) rather than it being skipped without a word.
    """
    live = root / "live"
    if not live.is_dir():
        return []
    return sorted(p.name for p in live.iterdir() if (p / "env.toml").is_file())
