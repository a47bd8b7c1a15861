"""Read a Terraform module's interface (variables and outputs) so configs can be checked early.

Only `variable` and `output` blocks are read: by a scanner of those blocks alone (_scan), or by
python-hcl2 where the scanner declines; what was read is cached by file content under
.stackrun/hcl/.
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

    Read by _scan, or parsed by python-hcl2 where the scanner declines; the result is kept in
    `cache_dir/<sha256 of the text>.json`.
    """
    if not _DECLARES.search(text):
        # no variable or output block (main.tf, versions.tf): nothing to read
        return {"variables": {}, "outputs": [], "sensitive": []}
    cache_file = cache_dir / f"{hashlib.sha256(text.encode()).hexdigest()}.json"
    try:
        cached: dict[str, Any] = json.loads(cache_file.read_text())
        return cached
    except (OSError, ValueError):
        pass
    declared = _scan(text) or _parse(text)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(declared))
        temporary.replace(cache_file)
    except OSError:
        pass  # a read-only checkout parses every time
    return declared


def _parse(text: str) -> dict[str, Any]:
    """What _declarations returns, from python-hcl2's syntax tree of the whole file."""
    import hcl2  # here, not at the top: `nox -s doctor` loads the project without it

    declared: dict[str, Any] = {"variables": {}, "outputs": [], "sensitive": []}
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
    return declared


# --- a scanner of the declarations alone -------------------------------------------------------
# python-hcl2 builds a full syntax tree of every file (about half a second for this repository's
# modules in a fresh clone or CI runner, whose .stackrun/hcl/ is empty). What the interface needs
# is small: the labels of top-level `variable` and `output` blocks, and three attributes of
# theirs. _scan reads those, skipping strings, templates, heredocs and comments, and returns
# None on anything it does not expect, so hcl2 parses that file (and reports its errors).

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_HEREDOC = re.compile(r"<<(-?)([A-Za-z_][A-Za-z0-9_-]*)[ \t]*\n")
_ATTRIBUTE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)[ \t]*=(?![=>])[ \t]*")
_OPENERS = {"{": "}", "[": "]", "(": ")"}
_TEMPLATE = re.compile(r"(?<![$%])[$%]\{")  # an interpolation or directive, not $${ or %%{


class _Unexpected(Exception):
    """The text is not what _scan expects: hcl2 decides."""


def _skip_string(text: str, start: int) -> int:
    """The index after the quoted string (template) that starts at `start` (a `"`)."""
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
        elif char == '"':
            return index + 1
        elif char == "\n":
            raise _Unexpected("newline in a quoted string")
        elif text.startswith(("${", "%{"), index) and not _escaped_template(text, index):
            index = _skip_nested(text, index + 2, "}")
        else:
            index += 1
    raise _Unexpected("unterminated string")


def _escaped_template(text: str, index: int) -> bool:
    """`$${` and `%%{` are a literal `${` and `%{`."""
    return index > 0 and text[index - 1] == text[index]


def _skip_heredoc(text: str, match: re.Match[str]) -> int:
    """The index after the heredoc that `match` (its `<<[-]MARKER` line) opens."""
    end = re.compile(rf"^[ \t]*{re.escape(match.group(2))}[ \t]*$", re.MULTILINE)
    found = end.search(text, match.end())
    if found is None:
        raise _Unexpected("unterminated heredoc")
    return found.end()


def _skip_comment(text: str, index: int) -> int | None:
    """The index after the comment at `index`, or None when none starts there."""
    if text.startswith("#", index) or text.startswith("//", index):
        newline = text.find("\n", index)
        return len(text) if newline < 0 else newline
    if text.startswith("/*", index):
        close = text.find("*/", index + 2)
        if close < 0:
            raise _Unexpected("unterminated comment")
        return close + 2
    return None


def _skip_nested(text: str, index: int, closer: str) -> int:
    """The index after `closer`, skipping whatever nests before it."""
    while index < len(text):
        index = _skip_token(text, index)
        if index < len(text) and text[index] == closer:
            return index + 1
        if index < len(text) and text[index] in "}])":
            raise _Unexpected(f"unbalanced {text[index]!r}")
        index = _step(text, index)
    raise _Unexpected(f"missing {closer!r}")


def _skip_token(text: str, index: int) -> int:
    """Skip whitespace and comments."""
    while index < len(text):
        if text[index] in " \t\r\n":
            index += 1
            continue
        after = _skip_comment(text, index)
        if after is None:
            return index
        index = after
    return index


def _step(text: str, index: int) -> int:
    """Past one piece of an expression at `index`: a string, heredoc, bracketed group or char."""
    char = text[index]
    if char == '"':
        return _skip_string(text, index)
    if char in _OPENERS:
        return _skip_nested(text, index + 1, _OPENERS[char])
    heredoc = _HEREDOC.match(text, index)
    if heredoc:
        return _skip_heredoc(text, heredoc)
    return index + 1


def _value_end(text: str, index: int) -> int:
    """The index where the attribute value starting at `index` ends (its line's end)."""
    while index < len(text):
        if text[index] == "\n" or text[index] == "}":
            return index
        if _skip_comment(text, index) is not None:
            return index
        index = _step(text, index)
    return index


def _block_attributes(text: str, index: int) -> tuple[dict[str, str], int]:
    """The attributes of the block body opened just before `index` (raw value text), and the
    index after its `}`; nested blocks are skipped."""
    attributes: dict[str, str] = {}
    while True:
        index = _skip_token(text, index)
        if index >= len(text):
            raise _Unexpected("unterminated block")
        if text[index] == "}":
            return attributes, index + 1
        attribute = _ATTRIBUTE.match(text, index)
        if attribute:
            end = _value_end(text, attribute.end())
            attributes[attribute.group(1)] = text[attribute.end() : end].rstrip()
            index = end
            continue
        name = _IDENTIFIER.match(text, index)
        if name is None:
            raise _Unexpected(f"unexpected {text[index]!r}")
        index = name.end()
        while True:  # labels, then the nested block's body
            index = _skip_token(text, index)
            if index < len(text) and text[index] == '"':
                index = _skip_string(text, index)
            elif index < len(text) and text[index] == "{":
                index = _skip_nested(text, index + 1, "}")
                break
            else:
                raise _Unexpected("expected a block")


def _scan(text: str) -> dict[str, Any] | None:
    """What _declarations returns, read by the scanner; None when hcl2 must parse the text."""
    declared: dict[str, Any] = {"variables": {}, "outputs": [], "sensitive": []}
    index = 0
    try:
        while True:
            index = _skip_token(text, index)
            if index >= len(text):
                return declared
            attribute = _ATTRIBUTE.match(text, index)
            name = _IDENTIFIER.match(text, index)
            if attribute or name is None:
                return None  # top-level attributes are not HCL Terraform reads
            index = _skip_token(text, name.end())
            labels: list[str] = []
            while index < len(text) and text[index] == '"':
                end = _skip_string(text, index)
                labels.append(text[index + 1 : end - 1])
                index = _skip_token(text, end)
            if index >= len(text) or text[index] != "{":
                return None
            attributes, index = _block_attributes(text, index + 1)
            kind = name.group(0)
            if kind == "variable" and len(labels) == 1:
                description = attributes.get("description", "")
                if _TEMPLATE.search(description):
                    return None  # hcl2 reformats interpolations in the text it returns
                if description.startswith('"') and description.endswith('"'):
                    description = description[1:-1]
                declared["variables"][labels[0]] = ["default" not in attributes, description]
            elif kind == "output" and len(labels) == 1:
                declared["outputs"].append(labels[0])
                if attributes.get("sensitive") == "true":
                    declared["sensitive"].append(labels[0])
    except (_Unexpected, IndexError):
        return None


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
