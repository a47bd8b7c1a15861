"""Where a run's artifacts come from: the checkout's commit and the sha256 of files."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

UNKNOWN_COMMIT = "unknown"


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def git_commit(root: Path) -> str:
    """`git rev-parse HEAD` of the checkout at `root`, or "unknown" outside git."""
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return UNKNOWN_COMMIT
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else UNKNOWN_COMMIT
