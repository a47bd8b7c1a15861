"""Read a Terraform module's interface (variables and outputs) so configs can be checked early.

python-hcl2 parses the module's `.tf` files; only `variable` and `output` blocks are read, and
what was read is cached by file content under .stackrun/hcl/.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from stackrun.paths import cache_root

# A top-level `variable "x" {` or `output "x" {` block starts its line.
_DECLARES = re.compile(r"^\s*(variable|output)\b", re.MULTILINE)


@dataclass(frozen=True)
class Variable:
    name: str
    required: bool
    description: str = ""


@dataclass(frozen=True)
class ModuleInfo:
    """The interface of one folder under modules/."""

    name: str
    path: Path
    variables: Mapping[str, Variable]
    outputs: frozenset[str]
    sensitive_outputs: frozenset[str]


def _unquote(label: str) -> str:
    return label[1:-1] if len(label) >= 2 and label[0] == label[-1] == '"' else label


def read_module(path: Path) -> tuple[ModuleInfo | None, list[str]]:
    """Parse the module at `path`. Returns (info, problems); info is None when unusable."""
    return _read_module_cached(path.resolve(), _tree_digest(path))


def _tree_digest(path: Path) -> str:
    """Cheap cache key: names, sizes and mtimes of the module's .tf files."""
    digest = hashlib.sha256()
    for tf_file in sorted(path.glob("*.tf")):
        stat = tf_file.stat()
        digest.update(f"{tf_file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _declarations(text: str, cache_dir: Path) -> dict[str, Any]:
    """The variable and output blocks of one .tf file: {"variables": {name: [required,
    description]}, "outputs": [...], "sensitive": [...]}.

    Parsing HCL in Python is slow (a third of a second for this repository's modules, on every
    command), so the result is kept in `cache_dir/<sha256 of the text>.json`.
    """
    declared: dict[str, Any] = {"variables": {}, "outputs": [], "sensitive": []}
    if not _DECLARES.search(text):
        return declared  # no variable or output block (main.tf, versions.tf): nothing to parse
    cache_file = cache_dir / f"{hashlib.sha256(text.encode()).hexdigest()}.json"
    try:
        cached: dict[str, Any] = json.loads(cache_file.read_text())
        return cached
    except (OSError, ValueError):
        pass
    import hcl2  # here, not at the top: `nox -s doctor` loads the project without it

    parsed = hcl2.loads(text)
    for block in parsed.get("variable", []):
        for label, body in block.items():
            description = (
                _unquote(str(body.get("description", ""))) if isinstance(body, dict) else ""
            )
            required = not (isinstance(body, dict) and "default" in body)
            declared["variables"][_unquote(label)] = [required, str(description or "")]
    for block in parsed.get("output", []):
        for label, body in block.items():
            declared["outputs"].append(_unquote(label))
            if isinstance(body, dict) and body.get("sensitive") in (True, "true"):
                declared["sensitive"].append(_unquote(label))
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(declared))
        temporary.replace(cache_file)
    except OSError:
        pass  # a read-only checkout parses every time
    return declared


@lru_cache(maxsize=64)
def _read_module_cached(path: Path, _digest: str) -> tuple[ModuleInfo | None, list[str]]:
    tf_files = sorted(path.glob("*.tf"))
    if not tf_files:
        return None, [f"module folder {path.name!r} holds no .tf files"]
    variables: dict[str, Variable] = {}
    outputs: set[str] = set()
    sensitive: set[str] = set()
    problems: list[str] = []
    cache_dir = cache_root(path.parent.parent) / "hcl"  # modules live in <repo>/modules/
    for tf_file in tf_files:
        text = tf_file.read_text(encoding="utf-8", errors="replace")
        try:
            declared = _declarations(text, cache_dir)
        except Exception as error:  # python-hcl2 raises lark errors of several kinds
            problems.append(f"modules/{path.name}/{tf_file.name} could not be parsed: {error}")
            continue
        for name, (required, description) in declared["variables"].items():
            variables[name] = Variable(name, required, description)
        outputs.update(declared["outputs"])
        sensitive.update(declared["sensitive"])
    if problems:
        return None, problems
    info = ModuleInfo(
        name=path.name,
        path=path,
        variables=MappingProxyType(variables),
        outputs=frozenset(outputs),
        sensitive_outputs=frozenset(sensitive),
    )
    return info, []
