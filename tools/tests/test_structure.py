"""The shape of tools/stackrun: small modules, short functions, one owner of the `.stackrun/`
layout (issue 15)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "stackrun"
PATHS_MODULE = PACKAGE / "paths.py"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def _functions(tree: ast.AST):
    """(qualified name, node) of every function and method, nested ones included."""

    def visit(node: ast.AST, prefix: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    yield name, child
                yield from visit(child, name + ".")
            else:
                yield from visit(child, prefix)

    yield from visit(tree, "")


def test_no_module_over_the_line_limit():
    offenders = []
    for path in _modules():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            offenders.append(f"{_name(path)}: {lines} lines")
    print("\n".join(offenders))
    assert not offenders, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(offenders)


def test_no_function_over_the_line_limit():
    offenders = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, node in _functions(tree):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines = node.end_lineno - first + 1
            if lines > MAX_FUNCTION_LINES:
                offenders.append(f"{_name(path)}:{node.lineno} {name}: {lines} lines")
    print("\n".join(offenders))
    assert not offenders, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(offenders)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (prose may name a path)."""
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.add(id(value))
    return found


def _strings(tree: ast.AST) -> list[ast.Constant]:
    skipped = _docstrings(tree)
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skipped
    ]


def _path_segments() -> set[str]:
    """The literal segments paths.py joins into paths (`root / "stacks"`) or names as
    constants (`INIT_MARKER = ".stackrun-init"`)."""
    tree = ast.parse(PATHS_MODULE.read_text(encoding="utf-8"))
    segments = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and isinstance(side.value, str):
                    segments.add(side.value)
        elif (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            and node.value.value.startswith(".")
        ):
            segments.add(node.value.value)
    return segments


def _spelled_segments(tree: ast.AST, segments: set[str]) -> set[str]:
    """The segments a module spells itself: joined with `/`, assigned to a module constant, or
    a distinctive file or folder name (with a dot or a dash, like `.stackrun-init`) anywhere
    outside a docstring."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and side.value in segments:
                    found.add(side.value)
    for node in _strings(tree):
        if node.value in segments and any(c in node.value for c in ".-"):
            found.add(node.value)
    for node in getattr(tree, "body", []):  # module constants: PROMOTED_DIR = "promoted"
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and node.value.value in segments
        ):
            found.add(node.value.value)
    return found


def test_paths_owns_every_stackrun_path_segment():
    segments = _path_segments()
    assert {".stackrun", "stacks", "logs", "promoted", ".stackrun-init"} <= segments
    offenders = []
    for path in _modules():
        if path == PATHS_MODULE:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for segment in sorted(_spelled_segments(tree, segments)):
            offenders.append(f"{_name(path)}: {segment!r} (use stackrun.paths)")
    print("\n".join(offenders))
    assert not offenders, "path segments spelled outside paths.py:\n" + "\n".join(offenders)
