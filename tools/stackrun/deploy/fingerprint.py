"""A stack's fingerprint: everything that decides what applying it would do.

    the rendered configuration (main/backend/provider .tf.json: inputs, artifact hashes, the
      backend and provider settings), the values passed to it from upstream outputs,
    every file of its module and of the local modules that module calls,
    the terraform version and the provider selections (.terraform.lock.hcl),
    and the serial of its state in the backend (so a change made by any other run, or a state
    that was lost, never matches).

`deploy` records the fingerprint after each successful apply (or a plan without changes) and
skips plan and apply of a stack whose fingerprint matches the record. What the fingerprint
cannot see is drift made outside terraform: `plan --detailed-exitcode` (which refreshes and
never skips) is the drift check, and `deploy --all` applies every stack regardless.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from stackrun.config import Stack
from stackrun.paths import APPLIED_RECORD as RECORD_FILE
from stackrun.terraform import LOCK_FILE_NAME, terraform_binary, terraform_version
from stackrun.terraform.render import GENERATED_FILES
from stackrun.terraform.workspace import Workspace

RENDERED_FILES = (*GENERATED_FILES, LOCK_FILE_NAME)
_LOCAL_SOURCE = re.compile(r'source\s*=\s*"(\.{1,2}/[^"]+)"')
_SKIPPED_PARTS = {".terraform", "tests", "__pycache__"}


def compute(
    workspace: Workspace, stack: Stack, variables: dict[str, str], state_serial: str
) -> str:
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    workdir = workspace.workdir(stack.name)
    for name in RENDERED_FILES:
        path = workdir / name
        add(name, path.read_bytes() if path.is_file() else b"")
    add("variables", json.dumps(variables, sort_keys=True).encode())
    for module_dir in sorted(module_tree(stack.module.path)):
        for path in _files(module_dir):
            add(str(path.relative_to(module_dir.parent)), path.read_bytes())
    add("terraform", terraform_version(terraform_binary()).encode())
    add("state", state_serial.encode())
    return digest.hexdigest()


def module_tree(module_dir: Path) -> set[Path]:
    """The module folder and every local module it calls, transitively."""
    seen: set[Path] = set()
    pending = [module_dir.resolve()]
    while pending:
        folder = pending.pop()
        if folder in seen or not folder.is_dir():
            continue
        seen.add(folder)
        for tf_file in folder.glob("*.tf"):
            for source in _LOCAL_SOURCE.findall(tf_file.read_text(errors="replace")):
                pending.append((folder / source).resolve())
    return seen


def _files(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not _SKIPPED_PARTS & set(path.relative_to(folder).parts)
    )


def recorded(workspace: Workspace, stack: Stack) -> str | None:
    path = workspace.workdir(stack.name) / RECORD_FILE
    return path.read_text().strip() if path.is_file() else None


def record(workspace: Workspace, stack: Stack, fingerprint: str) -> None:
    path = workspace.workdir(stack.name) / RECORD_FILE
    path.write_text(fingerprint + "\n")


def forget(workspace: Workspace, stack: Stack) -> None:
    (workspace.workdir(stack.name) / RECORD_FILE).unlink(missing_ok=True)
