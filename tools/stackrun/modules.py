"""Read a Terraform module's interface (variables and outputs) so configs can be checked early.

python-hcl2 parses the module's `.tf` files; only `variable` and `output` blocks are read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import hcl2


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


@lru_cache(maxsize=64)
def _read_module_cached(path: Path, _digest: str) -> tuple[ModuleInfo | None, list[str]]:
    tf_files = sorted(path.glob("*.tf"))
    if not tf_files:
        return None, [f"module folder {path.name!r} holds no .tf files"]
    variables: dict[str, Variable] = {}
    outputs: set[str] = set()
    sensitive: set[str] = set()
    problems: list[str] = []
    for tf_file in tf_files:
        try:
            with tf_file.open(encoding="utf-8") as handle:
                parsed = hcl2.load(handle)
        except Exception as error:  # python-hcl2 raises lark errors of several kinds
            problems.append(f"modules/{path.name}/{tf_file.name} could not be parsed: {error}")
            continue
        for block in parsed.get("variable", []):
            for label, body in block.items():
                name = _unquote(label)
                description = (
                    _unquote(str(body.get("description", ""))) if isinstance(body, dict) else ""
                )
                required = not (isinstance(body, dict) and "default" in body)
                variables[name] = Variable(name, required, str(description or ""))
        for block in parsed.get("output", []):
            for label, body in block.items():
                name = _unquote(label)
                outputs.add(name)
                if isinstance(body, dict) and body.get("sensitive") in (True, "true"):
                    sensitive.add(name)
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
