"""The fully loaded configuration of live/ as one JSON document, and its snapshot fixture.

Everything `stackrun.config.load_environment` produces for every environment, in plain JSON:
the project's settings, each environment's settings, and per stack its module, inputs (with
the values stackrun adds, such as `external_issuer`), dependencies, `after`, `[database]`,
`[lambdas]` (input, invoke_on_deploy, canary), `[policy.skip]`. Module internals (variables,
outputs) are left out: they are modules/' business, not live/'s.

fixtures/live-config-before-defaults.json was written by this file from live/ as it was
before live/_defaults/ existed; test_live_snapshot.py checks that the loader still produces exactly
that document. After a deliberate change of live/, write the fixture again and review its diff
(it shows what changed for which environment and stack):

    PYTHONPATH=tools python tools/tests/config_snapshot.py --write
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stackrun.config import Environment, Project, Stack, list_environments, load_environment

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "live-config-before-defaults.json"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _plain(value: Any) -> Any:
    """MappingProxyTypes, tuples and dataclasses as JSON's dicts and lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        items = [_plain(item) for item in value]
        return sorted(items) if isinstance(value, frozenset | set) else items
    return value


def _relative(path: Path | None, root: Path) -> str | None:
    if path is None:
        return None
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def project_document(project: Project) -> dict[str, Any]:
    return {
        "name": project.name,
        "default_region": project.default_region,
        "bucket_template": project.bucket_template,
        "lock_table_template": project.lock_table_template,
        "backend_deletion_protection": project.backend_deletion_protection,
        "terraform_version": project.terraform_version,
        "aws_provider_version": project.aws_provider_version,
        "lock_timeout": project.lock_timeout,
        "provider_mirror": _relative(project.provider_mirror, project.root),
        "local_port": project.local_port,
        "tags": _plain(project.tags),
        "github": _plain(project.github),
    }


def stack_document(stack: Stack, root: Path) -> dict[str, Any]:
    return {
        "number": stack.number,
        "name": stack.name,
        "path": _relative(stack.path, root),
        "module": stack.module.name,
        "module_path": _relative(stack.module.path, root),
        "description": stack.description,
        "inputs": _plain(stack.inputs),
        "dependencies": [
            {
                "input_name": dependency.input_name,
                "references": [str(reference) for reference in dependency.references],
                "shape": dependency.shape,
                "keys": list(dependency.keys),
            }
            for dependency in stack.dependencies
        ],
        "database": stack.database,
        "after": list(stack.after),
        "upstream": list(stack.upstream),
        "lambdas_input": stack.lambdas_input,
        "functions": list(stack.functions),
        "invoke_on_deploy": list(stack.invoke_on_deploy),
        "canary": _plain(stack.canary),
        "policy_skips": _plain(stack.policy_skips),
    }


def environment_document(environment: Environment) -> dict[str, Any]:
    root = environment.project.root
    return {
        "name": environment.name,
        "path": _relative(environment.path, root),
        "account_id": environment.account_id,
        "region": environment.region,
        "deploy_role_arn": environment.deploy_role_arn,
        "plan_role_arn": environment.plan_role_arn,
        "tags": _plain(environment.tags),
        "default_tags": _plain(environment.default_tags),
        "protected": environment.protected,
        "backend": _plain(environment.backend),
        "lambda_architecture": environment.lambda_architecture,
        "identity": _plain(environment.identity),
        "promote_from": environment.promote_from,
        "stacks": {stack.name: stack_document(stack, root) for stack in environment.stacks},
    }


def live_document(root: Path) -> dict[str, Any]:
    """The loaded configuration of every environment of `root`/live (one JSON document)."""
    environments = {name: load_environment(root, name) for name in list_environments(root)}
    project = next(iter(environments.values())).project if environments else None
    return {
        "project": project_document(project) if project else None,
        "environments": {
            name: environment_document(environment) for name, environment in environments.items()
        },
    }


def render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root")
    parser.add_argument("--write", action="store_true", help=f"write {FIXTURE.name}")
    args = parser.parse_args(argv)
    text = render(live_document(args.root.resolve()))
    if args.write:
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(text, encoding="utf-8")
        print(f"wrote {FIXTURE}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
