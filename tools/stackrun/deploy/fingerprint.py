"""A stack's fingerprint: everything that decides what applying it would do.

    the rendered configuration (main/backend/provider .tf.json: inputs, artifact hashes, the
      backend and provider settings), the values passed to it from upstream outputs,
    every file of its module and of the local modules that module calls,
    the terraform version and the provider selections (.terraform.lock.hcl),
    and the serial of its state in the backend (so a change made by any other run, or a state
    that was lost, never matches).

`deploy` records the fingerprint after each successful apply (or a plan without changes) and
skips plan and apply of a stack whose fingerprint matches the record. The record lives in the
backend, beside the stack's state (Environment.applied_record_key: <env>/<stack>/
stackrun-applied.json, holding the fingerprint and the lineage and serial of the state that
apply left), so a fresh clone or CI runner skips exactly what a warm one would. It matches only
while the state in the backend still has that lineage and serial; it is deleted before every
apply and destroy. No file in the repository enters the fingerprint by its absolute path: two
clones of one commit at different paths compute the same one. What the fingerprint
cannot see is drift made outside terraform: `plan --detailed-exitcode` (which refreshes and
never skips) is the drift check, and `deploy --all` applies every stack regardless.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stackrun.config import Stack
from stackrun.release.records import read_object, write_object
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


def applied(
    workspace: Workspace,
    stack: Stack,
    state: Mapping[str, Any] | None,
    current: str,
    s3: Any,
    record: Mapping[str, Any] | None = None,
) -> bool:
    """Whether the backend's record (`record` when read already, else read now) says
    fingerprint `current` was applied and `state` (the stack's state as just read from the
    backend) is still the one that apply left."""
    if state is None:
        return False
    if record is None:
        record = read_record(workspace, stack, s3)
    return matches(record, state, current)


def read_record(workspace: Workspace, stack: Stack, s3: Any) -> dict[str, Any]:
    """The stack's applied record in the backend ({}: none)."""
    return read_object(s3, *_location(workspace, stack))


def matches(record: Mapping[str, Any], state: Mapping[str, Any] | None, current: str) -> bool:
    """The record's rules: same fingerprint, and the state still has the record's lineage and
    serial (any write of the state since, by any run, breaks the match)."""
    return (
        state is not None
        and bool(state.get("lineage"))
        and record.get("fingerprint") == current
        and record.get("lineage") == state.get("lineage")
        and record.get("serial") == state.get("serial")
    )


def record(
    workspace: Workspace, stack: Stack, state: Mapping[str, Any] | None, current: str, s3: Any
) -> None:
    """Record `current` as applied, bound to the state that apply left (none: nothing)."""
    if state is None:
        return
    document = {
        "fingerprint": current,
        "lineage": state.get("lineage"),
        "serial": state.get("serial"),
    }
    write_object(s3, *_location(workspace, stack), document)


def forget(workspace: Workspace, stack: Stack, s3: Any) -> None:
    """Delete the record: before an apply or destroy, whose outcome it no longer describes."""
    bucket, key = _location(workspace, stack)
    s3.delete_object(Bucket=bucket, Key=key)


def _location(workspace: Workspace, stack: Stack) -> tuple[str, str]:
    environment = workspace.environment
    return environment.backend.bucket, environment.applied_record_key(stack.name)
