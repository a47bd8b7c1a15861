"""Stack outputs: read from state, shown, and passed on as the next stacks' inputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackrun.config import Stack
from stackrun.deploy.backend import backend_ready
from stackrun.errors import StackrunError
from stackrun.terraform.render import dependency_variables
from stackrun.terraform.workspace import Workspace

Outputs = dict[str, dict[str, Any]]  # output name -> {"value", "sensitive", "type"}


def _sensitive_inputs(stack: Stack, outputs: Mapping[str, Outputs]) -> frozenset[str]:
    return frozenset(
        dep.input_name
        for dep in stack.dependencies
        for ref in dep.references
        if outputs.get(ref.stack, {}).get(ref.output, {}).get("sensitive")
    )


def upstream_inputs(
    stack: Stack, outputs: Mapping[str, Outputs]
) -> tuple[dict[str, str], frozenset[str]]:
    """TF_VAR_* values for the stack's dependencies, and which of them are sensitive."""
    values = {
        name: {key: item["value"] for key, item in stack_outputs.items()}
        for name, stack_outputs in outputs.items()
    }
    return dependency_variables(stack, values), _sensitive_inputs(stack, outputs)


def missing_upstream(stack: Stack, outputs: Mapping[str, Outputs]) -> list[str]:
    """The stack's upstream references whose output is not among `outputs`."""
    return [
        str(ref)
        for dep in stack.dependencies
        for ref in dep.references
        if ref.output not in outputs.get(ref.stack, {})
    ]


def outputs_document(
    outputs: Mapping[str, Outputs], show_sensitive: bool = False
) -> dict[str, dict[str, Any]]:
    """All stacks' outputs as one document; sensitive values hidden unless asked."""
    return {
        stack: {
            name: (item["value"] if show_sensitive or not item.get("sensitive") else "<sensitive>")
            for name, item in stack_outputs.items()
        }
        for stack, stack_outputs in outputs.items()
    }


def collect_outputs(workspace: Workspace, announce: bool = True) -> dict[str, Outputs]:
    """Outputs of every stack, read from state (stacks never applied give {})."""
    environment = workspace.environment
    if not backend_ready(workspace):
        raise StackrunError(
            f"{environment.name} has no state backend yet (bucket {environment.backend.bucket} "
            f"in account {environment.account_id}): deploy it first"
        )
    from stackrun.terraform.state import outputs_of, read_state

    s3 = workspace.target.client(environment, "s3")
    outputs: dict[str, Outputs] = {}
    for stack in workspace.environment.stacks:
        # one GET of the state object: no init, no terraform process
        outputs[stack.name] = outputs_of(read_state(workspace, stack, s3), stack.module)
        if announce:
            print(f"read outputs of {stack.name}", file=workspace.console, flush=True)
    return outputs
