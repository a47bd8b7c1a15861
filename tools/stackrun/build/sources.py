"""The source files a package puts into its zip, and the check that the handler exists."""

from __future__ import annotations

import ast
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from stackrun.build.packages import BuildError, FunctionPackage, Project


def _skip_source(name: str, is_dir: bool) -> bool:
    if name.startswith("."):  # .DS_Store, .mypy_cache, ...
        return True
    if is_dir:
        return name in {"__pycache__", "tests"} or name.endswith(".egg-info")
    return name.endswith((".pyc", ".pyo"))


def walk(root: Path, skip: Callable[[str, bool, str], bool]) -> Iterator[tuple[str, Path]]:
    """(posix path relative to root, file) for every kept file, in sorted order."""
    for folder, dirs, files in os.walk(root):
        relative = Path(folder).relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        dirs[:] = sorted(d for d in dirs if not skip(d, True, prefix))
        for name in sorted(files):
            if not skip(name, False, prefix):
                yield prefix + name, Path(folder, name)


def source_files(project: Project) -> dict[str, Path]:
    src = project.path / "src"
    if not src.is_dir():
        raise BuildError(f"{project.path}: no src/ folder (packages must use the src layout)")
    return dict(walk(src, lambda name, is_dir, _prefix: _skip_source(name, is_dir)))


def is_executable(path: Path) -> bool:
    return bool(path.stat().st_mode & stat.S_IXUSR)


def check_handler(function: FunctionPackage, files: Mapping[str, Path]) -> None:
    module, _, attribute = function.handler.rpartition(".")
    base = module.replace(".", "/")
    candidates = [f"{base}.py", f"{base}/__init__.py"]
    where = f"{function.path / 'src'}"
    found = next((c for c in candidates if c in files), None)
    if found is None:
        raise BuildError(
            f"function {function.name} ({function.distribution}): handler "
            f"{function.handler!r} names module {module!r}, which is not in {where} "
            f"(looked for {' or '.join(candidates)})"
        )
    path = files[found]
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        raise BuildError(
            f"function {function.name}: handler module {path} does not compile: {exc}"
        ) from exc
    if attribute not in _top_level_names(tree):
        raise BuildError(
            f"function {function.name} ({function.distribution}): handler "
            f"{function.handler!r}: {path} defines no top-level {attribute!r}"
        )


def _targets(node: ast.AST) -> Iterable[str]:
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, ast.Tuple | ast.List):
        for element in node.elts:
            yield from _targets(element)


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    names.update(_targets(target))
            elif isinstance(node, ast.AnnAssign | ast.AugAssign):
                names.update(_targets(node.target))
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
                visit(getattr(node, "finalbody", []))

    visit(tree.body)
    return names
