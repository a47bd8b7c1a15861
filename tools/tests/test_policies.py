"""IAM policy documents of every module: no Allow with a wildcard action.

A wildcard (`*`, `s3:*`, `secretsmanager:Get*`) grants whatever the service adds later,
including actions on data. Deny statements may use them (a TLS-only bucket policy denies
`s3:*`). Read straight from the modules' HCL, so a new module is covered without a change here.
"""

from __future__ import annotations

from pathlib import Path

import hcl2
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE_FILES = sorted((REPO_ROOT / "modules").glob("*/*.tf"))


def _unquote(value):
    """python-hcl2 keeps the quotes of keys and strings; drop them."""
    if isinstance(value, dict):
        return {_unquote(key): _unquote(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unquote(item) for item in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _statements(path: Path) -> list[tuple[str, dict]]:
    with path.open() as handle:
        document = _unquote(hcl2.load(handle))
    found = []
    for block in document.get("data", []):
        for name, documents in block.get("aws_iam_policy_document", {}).items():
            for statement in documents.get("statement", []):
                found.append((name, statement))
    return found


def test_the_modules_have_policy_documents_to_check():
    assert sum(len(_statements(path)) for path in MODULE_FILES) >= 5


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_allow_statement_has_a_wildcard_action(path):
    offending = []
    for name, statement in _statements(path):
        if statement.get("effect", "Allow") == "Deny":
            continue
        actions = statement.get("actions", [])
        actions = actions if isinstance(actions, list) else [actions]
        wild = [action for action in actions if isinstance(action, str) and "*" in action]
        if wild:
            offending.append(f"{name} ({statement.get('sid', 'no sid')}): {wild}")
    assert not offending, f"{path}: Allow with wildcard actions: {offending}"
