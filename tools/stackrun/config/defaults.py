"""Settings shared by every environment: live/_defaults/<NNN_name>.toml under each stack.toml.

    live/_defaults/030_api.toml        what 030_api is in every environment
    live/<env>/030_api/stack.toml      what differs in <env>; its values win

A stack's document is its defaults file (when there is one) with the environment's stack.toml
merged over it: tables merge key by key, recursively; any other value of the stack.toml (a
string, number, bool or array) replaces the default's: arrays are replaced, not concatenated.
The merged document is then checked like any stack.toml (stacks.py), and each problem
names the file its key came from. A defaults file is also checked on its own (known keys and
types of the top level, `module` not required), so an environment overriding a bad value does
not hide it, and it must be named after a stack folder that some environment has.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackrun.config.checks import Collector, Key, is_dir, is_file, quote, read_toml
from stackrun.config.keys import STACK_DIR_PATTERN, STACK_SCHEMA
from stackrun.config.layout import STACK_FILE, env_dir, env_file, list_environments, live_dir
from stackrun.config.model import Environment
from stackrun.errors import ConfigIssue

DEFAULTS_FOLDER = "_defaults"  # under live/; not an environment (it has no env.toml)

# A defaults file may set any key of stack.toml, and needs none of them.
DEFAULTS_SCHEMA = {name: Key(key.check, key.expected) for name, key in STACK_SCHEMA.items()}

KeyPath = tuple[str, ...]


def defaults_file(root: Path, stack_name: str) -> Path:
    return live_dir(root) / DEFAULTS_FOLDER / f"{stack_name}.toml"


def merge(
    defaults: Mapping[str, Any],
    override: Mapping[str, Any],
    defaults_source: Path,
    override_source: Path,
) -> tuple[dict[str, Any], dict[KeyPath, frozenset[Path]]]:
    """`override` merged over `defaults`, and for every key path the files its value came from
    (one file for a value; both for a table that both files fill). Neither input is changed."""
    both = frozenset({defaults_source, override_source})
    sources = {path: frozenset({defaults_source}) for path, _ in _paths(defaults, ()) if path}
    merged = dict(defaults)
    pending: list[tuple[dict[str, Any], Mapping[str, Any], KeyPath]] = [(merged, override, ())]
    while pending:  # without recursion: tables come as deep as the TOML reader goes
        target, high, prefix = pending.pop()
        for key, value in high.items():
            path, below = (*prefix, key), target.get(key)
            if isinstance(value, dict) and isinstance(below, dict):
                target[key] = dict(below)  # a copy: the defaults' own tables stay as they are
                sources[path] = both
                pending.append((target[key], value, path))
                continue
            if key in target:  # the default's value, and the keys of a default table, give way
                for replaced, _ in _paths(below, path):
                    del sources[replaced]
            target[key] = value
            sources.update(
                (subpath, frozenset({override_source})) for subpath, _ in _paths(value, path)
            )
    return merged, sources


def _paths(value: Any, prefix: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    """Every key path of `value` (itself first, then its tables' keys, depth first)."""
    pending = [(prefix, value)]
    while pending:  # without recursion: tables come as deep as the TOML reader goes
        path, item = pending.pop()
        yield path, item
        if isinstance(item, dict):
            pending.extend(reversed([((*path, key), child) for key, child in item.items()]))


@dataclass(frozen=True)
class StackDocument:
    """One stack folder's merged settings, with where each came from."""

    data: dict[str, Any]
    stack_file: Path  # relative to the repository root, as are the sources
    defaults_file: Path | None
    sources: Mapping[KeyPath, frozenset[Path]]  # empty without a defaults file: all is its
    # problems of the defaults file on its own, already named after it
    issues: list[ConfigIssue] = field(default_factory=list)

    def source(self, path: KeyPath) -> Path:
        """The file that a problem with the key at `path` is in: the one file that set it, or
        the table it is missing from; the stack.toml when both files did."""
        while path and path not in self.sources:
            path = path[:-1]
        files = self.sources.get(path, frozenset())
        return next(iter(files)) if len(files) == 1 else self.stack_file

    def report(self, issues: list[ConfigIssue]) -> list[ConfigIssue]:
        """The defaults file's own problems, then `issues` (of the merged document, reported
        against the stack.toml) each moved to the file its key came from; no problem twice."""
        moved = [
            ConfigIssue(self.source(tuple(issue.key.split("."))), issue.key, issue.message)
            if issue.file == self.stack_file and issue.key
            else issue
            for issue in issues
        ]
        return list(dict.fromkeys([*self.issues, *moved]))


def read_stack_document(root: Path, folder: Path) -> tuple[StackDocument | None, list[ConfigIssue]]:
    """The stack.toml of `folder` merged over its defaults file; None when either cannot be
    read (then the problems say why)."""
    stack_collector = Collector(folder / STACK_FILE, root)
    data = read_toml(folder / STACK_FILE, stack_collector)
    path = defaults_file(root, folder.name)
    if not is_file(path):
        if data is None:
            return None, stack_collector.issues
        return StackDocument(data, stack_collector.file, None, sources={}), []
    defaults_collector = Collector(path, root)
    defaults = read_toml(path, defaults_collector)
    if defaults is not None:
        defaults_collector.check_table(defaults, DEFAULTS_SCHEMA)
    if data is None or defaults is None:
        return None, stack_collector.issues + defaults_collector.issues
    merged, sources = merge(defaults, data, defaults_collector.file, stack_collector.file)
    document = StackDocument(
        merged, stack_collector.file, defaults_collector.file, sources, defaults_collector.issues
    )
    return document, []


def check_defaults_folder(root: Path) -> list[ConfigIssue]:
    """Each file of live/_defaults/ is <NNN_name>.toml for a stack folder some environment has."""
    folder = live_dir(root) / DEFAULTS_FOLDER
    if not is_dir(folder):
        return []
    stack_folders = sorted(
        {
            child.name
            for env in list_environments(root)
            for child in env_dir(root, env).iterdir()
            if child.is_dir() and STACK_DIR_PATTERN.fullmatch(child.name)
        }
    )
    issues = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        where = path.relative_to(root)
        if (
            not is_file(path)
            or path.suffix != ".toml"
            or not STACK_DIR_PATTERN.fullmatch(path.stem)
        ):
            issues.append(
                ConfigIssue(
                    where,
                    "",
                    "not a defaults file: expected <NNN_name>.toml, named after the stack "
                    "folder (live/<env>/NNN_name/) whose settings it shares, got "
                    f"{quote(path.name)}",
                )
            )
        elif path.stem not in stack_folders:
            issues.append(
                ConfigIssue(
                    where,
                    "",
                    f"no environment has a stack folder {path.stem!r} (live/<env>/{path.stem}/) "
                    "to give these defaults to; stack folders: "
                    f"{', '.join(stack_folders) or 'none'}",
                )
            )
    return issues


# --------------------------------------------------------------------------------------------
# stackrun validate --explain: each merged value and the file it came from
# --------------------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"\A[A-Za-z0-9_-]+\Z")


def _toml_key(path: KeyPath) -> str:
    return ".".join(key if _BARE_KEY.fullmatch(key) else json.dumps(key) for key in path)


def explain(environment: Environment, stack_name: str) -> list[str]:
    """Lines `key = value  # file` of every setting of one stack, as merged and loaded."""
    root = environment.project.root
    stack = environment.stack(stack_name)
    document, _ = read_stack_document(root, stack.path)
    assert document is not None  # the environment was loaded from these files
    files = [str(document.stack_file)]
    if document.defaults_file is not None:
        files.insert(0, f"{document.defaults_file}, under")
    values = [
        (path, value, str(document.source(path)))
        for path, value in _paths(document.data, ())
        if path and (not isinstance(value, dict) or not value)  # tables by their keys
    ]
    values += [  # inputs stackrun adds (external_issuer from env.toml's [identity])
        (("inputs", name), value, f"{env_file(Path(), environment.name)} [identity], by stackrun")
        for name, value in stack.inputs.items()
        if name not in document.data.get("inputs", {})
    ]
    rows = [
        (f"{_toml_key(path)} = {json.dumps(value, ensure_ascii=False)}", source)
        for path, value, source in values
    ]
    width = min(max((len(text) for text, _ in rows), default=0), 72)
    lines = [f"{environment.name} {stack.name}: {' '.join(files)} (the environment's values win)"]
    return lines + [f"  {text:<{width}}  # {source}" for text, source in rows]
