"""live/<env>/NNN_<name>/stack.toml: each stack folder, checked against its module."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from stackrun.config.checks import Collector, check_input_value, describe, is_dir, quote
from stackrun.config.defaults import read_stack_document
from stackrun.config.keys import DEPENDENCY_PATTERN, STACK_DIR_PATTERN, STACK_SCHEMA
from stackrun.config.layout import STACK_FILE, env_dir
from stackrun.config.model import (
    DATABASE_OUTPUTS,
    EXTERNAL_ISSUER_INPUT,
    Canary,
    Dependency,
    Project,
    Reference,
    Stack,
)
from stackrun.config.module_interface import ModuleInfo, read_module
from stackrun.config.stack_sections import check_canary, check_invoke, check_lambdas, check_policy
from stackrun.errors import ConfigIssue

Earlier = Mapping[str, tuple[int, ModuleInfo | None]]  # stack name -> (number, its module)


def load_stacks(
    root: Path, env_name: str, project: Project
) -> tuple[list[Stack], list[ConfigIssue]]:
    env_folder = env_dir(root, env_name)
    issues: list[ConfigIssue] = []
    folders = []
    for child in sorted(env_folder.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        match = STACK_DIR_PATTERN.fullmatch(child.name)
        rel = child.relative_to(root)
        if not match:
            issues.append(
                ConfigIssue(
                    rel,
                    "",
                    "not a stack folder name: expected NNN_<name> (three digits, then "
                    "lowercase letters, digits, '_' or '-')",
                )
            )
            continue
        folders.append((int(match["number"]), child))

    by_number: dict[int, Path] = {}
    for number, folder in folders:
        if number in by_number:
            issues.append(
                ConfigIssue(
                    folder.relative_to(root),
                    "",
                    f"stack number {number:03d} is also used by {by_number[number].name}; "
                    "each stack needs its own number",
                )
            )
        else:
            by_number[number] = folder
        if number == 0:
            issues.append(
                ConfigIssue(
                    folder.relative_to(root),
                    "",
                    "number 000 is reserved for the state bootstrap, which stackrun runs itself",
                )
            )

    stacks: list[Stack] = []
    outputs_by_stack: dict[str, tuple[int, ModuleInfo | None]] = {}
    for number, folder in sorted(folders, key=lambda item: (item[0], item[1].name)):
        stack, stack_issues = _load_stack(root, project, number, folder, outputs_by_stack)
        issues += stack_issues
        outputs_by_stack[folder.name] = (number, stack.module if stack else None)
        if stack is not None:
            stacks.append(stack)
    return stacks, issues


def _load_stack(
    root: Path, project: Project, number: int, folder: Path, earlier: Earlier
) -> tuple[Stack | None, list[ConfigIssue]]:
    document, read_issues = read_stack_document(root, folder)
    if document is None:
        return None, read_issues
    data = document.data  # live/_defaults/<folder>.toml with the stack.toml merged over it
    collector = Collector(folder / STACK_FILE, root)
    collector.check_table(data, STACK_SCHEMA)
    module = _module(project, data.get("module"), collector)
    inputs = _table(data.get("inputs"))
    raw_dependencies = _table(data.get("dependencies"))
    dependencies = _dependencies(raw_dependencies, inputs, folder, earlier, collector)
    if module is not None:
        _check_inputs(module, inputs, raw_dependencies, collector)
    database = isinstance(data.get("database"), dict)
    if database:
        _check_database(data["database"], module, collector)
    after = _check_after(data.get("after"), folder, earlier, collector)
    lambdas_input, invoke_on_deploy, canary = _lambdas(root, data.get("lambdas"), inputs, collector)
    policy_skips = check_policy(data.get("policy"), collector)
    if collector.issues or document.issues or module is None:
        return None, document.report(collector.issues)
    description = data.get("description", "")
    return (
        Stack(
            number=number,
            name=folder.name,
            path=folder,
            module=module,
            inputs=MappingProxyType(dict(inputs)),
            dependencies=tuple(dependencies),
            description=description if isinstance(description, str) else "",
            database=database,
            after=after,
            lambdas_input=lambdas_input,
            invoke_on_deploy=invoke_on_deploy,
            canary=MappingProxyType(canary),
            policy_skips=MappingProxyType(policy_skips),
        ),
        [],
    )


def _table(value: Any) -> dict[str, Any]:
    """A table of the document, {} when absent or not a table (the schema check reports it)."""
    return value if isinstance(value, dict) else {}


def _module(project: Project, module_name: Any, collector: Collector) -> ModuleInfo | None:
    """`module`: the interface of a folder of modules/, or None (reported) when there is none."""
    if not isinstance(module_name, str):
        return None
    module_dir = project.modules_dir / module_name
    if (
        module_name
        and "/" not in module_name
        and not module_name.startswith(".")
        and is_dir(module_dir)
    ):
        module, module_problems = read_module(module_dir)
        for problem in module_problems:
            collector.add("module", problem)
        return module
    available = (
        sorted(p.name for p in project.modules_dir.iterdir() if p.is_dir())
        if project.modules_dir.is_dir()
        else []
    )
    collector.add(
        "module",
        (
            f"no module {quote(module_name)} under modules/"
            if module_name
            else "expected the name of a folder under modules/, got ''"
        )
        + f" (available: {', '.join(available) or 'none'})",
    )
    return None


def _dependencies(
    raw_dependencies: Mapping[str, Any],
    inputs: Mapping[str, Any],
    folder: Path,
    earlier: Earlier,
    collector: Collector,
) -> list[Dependency]:
    """`[dependencies]`: input = "NNN_stack.output" (or an array or table of references)."""
    dependencies: list[Dependency] = []
    for input_name, value in raw_dependencies.items():
        key = f"dependencies.{input_name}"
        if input_name in inputs:
            collector.add(key, f"input {input_name!r} is also set in [inputs]; set it in one place")
        keys: tuple[str, ...] = ()
        if isinstance(value, dict):
            shape, keys, texts = "map", tuple(value), list(value.values())
        elif isinstance(value, list):
            shape, texts = "list", value
        else:
            shape, texts = "one", [value]
        if not texts:  # it would count as set, and leave the input unset
            collector.add(
                key,
                f"expected at least one NNN_stack.output reference, got {describe(value)}",
            )
            continue
        references = [_check_reference(text, key, folder, earlier, collector) for text in texts]
        found = [reference for reference in references if reference is not None]
        if len(found) == len(references):
            dependencies.append(Dependency(input_name, tuple(found), shape=shape, keys=keys))
    return dependencies


def _check_inputs(
    module: ModuleInfo,
    inputs: Mapping[str, Any],
    raw_dependencies: Mapping[str, Any],
    collector: Collector,
) -> None:
    """Inputs and dependencies against the module's variables: none unknown, none missing."""
    for input_name in list(inputs) + list(raw_dependencies):
        if input_name not in module.variables:
            section = "inputs" if input_name in inputs else "dependencies"
            collector.add(
                f"{section}.{input_name}",
                f"module {module.name!r} has no variable {input_name!r}; its variables: "
                f"{', '.join(sorted(module.variables))}",
            )
    for variable in module.variables.values():
        if (
            variable.required
            and variable.name not in inputs
            and variable.name not in raw_dependencies
        ):
            collector.add(
                f"inputs.{variable.name}",
                f"missing: module {module.name!r} requires variable {variable.name!r}"
                + (f" ({variable.description})" if variable.description else ""),
            )
    for input_name, value in inputs.items():
        problem = check_input_value(value)
        if problem:
            collector.add(f"inputs.{input_name}", problem)
    if EXTERNAL_ISSUER_INPUT in inputs or EXTERNAL_ISSUER_INPUT in raw_dependencies:
        collector.add(
            f"inputs.{EXTERNAL_ISSUER_INPUT}",
            "set by stackrun from env.toml's [identity] table (issuer, audience); "
            "name an external issuer there",
        )


def _lambdas(
    root: Path, table: Any, inputs: Mapping[str, Any], collector: Collector
) -> tuple[str | None, tuple[str, ...], dict[str, Canary]]:
    """`[lambdas]`: the functions input, invoke_on_deploy, and each function's canary."""
    if not isinstance(table, dict):
        return None, (), {}
    lambdas_input = check_lambdas(root, table, inputs, collector)
    invoke_on_deploy = check_invoke(table, inputs, lambdas_input, collector)
    canary: dict[str, Canary] = {}
    if lambdas_input is not None and "canary" in table:
        functions = [name for name in inputs[lambdas_input] if name not in invoke_on_deploy]
        canary = check_canary(table["canary"], functions, collector)
    return lambdas_input, invoke_on_deploy, canary


def _check_reference(
    text: object,
    key: str,
    folder: Path,
    earlier: Earlier,
    collector: Collector,
) -> Reference | None:
    """Check one "NNN_stack.output" reference; report and return None when it is wrong."""
    if not isinstance(text, str):
        return None  # already reported by the schema check
    match = DEPENDENCY_PATTERN.fullmatch(text)
    if not match:
        collector.add(key, f'expected "NNN_stack.output", got {quote(text)}')
        return None
    upstream, output = match["stack"], match["output"]
    if upstream not in earlier:
        if upstream == folder.name:
            collector.add(key, "a stack cannot depend on its own outputs")
        elif is_dir(folder.parent / upstream):
            collector.add(
                key,
                f"stack {upstream!r} is not earlier than this one "
                "(dependencies must point to lower numbers)",
            )
        else:
            collector.add(key, f"stack {quote(upstream)} does not exist in this environment")
        return None
    upstream_module = earlier[upstream][1]
    if upstream_module is not None and output not in upstream_module.outputs:
        collector.add(
            key,
            f"stack {upstream!r} (module {upstream_module.name!r}) has no output "
            f"{quote(output)}; "
            f"its outputs: {', '.join(sorted(upstream_module.outputs)) or 'none'}",
        )
        return None
    return Reference(upstream, output)


def _check_database(
    table: Mapping[str, Any], module: ModuleInfo | None, collector: Collector
) -> None:
    """Validate `[database]`: no keys, and the module has the outputs a database stack needs."""
    collector.check_table(table, {}, prefix="database.")
    if module is not None:
        missing = [name for name in DATABASE_OUTPUTS if name not in module.outputs]
        if missing:
            collector.add(
                "database",
                f"module {module.name!r} lacks the outputs a database stack needs: "
                f"{', '.join(missing)} (expected {', '.join(DATABASE_OUTPUTS)})",
            )


def _check_after(
    value: object,
    folder: Path,
    earlier: Earlier,
    collector: Collector,
) -> tuple[str, ...]:
    """`after`: names of earlier stacks of this environment."""
    if not isinstance(value, list):
        return ()  # absent, or already reported by the schema check
    names: list[str] = []
    for name in value:
        if not isinstance(name, str):
            continue
        if name in earlier:
            names.append(name)
        elif name == folder.name:
            collector.add("after", "a stack cannot wait for itself")
        elif is_dir(folder.parent / name):
            collector.add(
                "after",
                f"stack {name!r} is not earlier than this one (it must have a lower number)",
            )
        else:
            collector.add("after", f"stack {quote(name)} does not exist in this environment")
    return tuple(dict.fromkeys(names))
