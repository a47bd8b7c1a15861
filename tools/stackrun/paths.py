"""Where stackrun keeps generated files (kept free of heavy imports: `stackrun build` uses it)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root(repo_root: Path) -> Path:
    """`.stackrun/` in the repository, or STACKRUN_CACHE_DIR."""
    override = os.environ.get("STACKRUN_CACHE_DIR")
    return Path(override).resolve() if override else repo_root / ".stackrun"


def artifact_dir(root: Path, architecture: str) -> Path:
    """Built function zips: dist/lambdas for arm64 (the default), dist/lambdas-<arch> else."""
    return root / "dist" / ("lambdas" if architecture == "arm64" else f"lambdas-{architecture}")
