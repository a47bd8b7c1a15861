"""Stack outputs: read from state, shown, and passed on as the next stacks' inputs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


State = dict[str, Any] | None  # a stack's state document; None: never applied


def read_states(workspace: Workspace, stacks: Iterable[Stack], s3: Any = None) -> dict[str, State]:
    """Each stack's state document, one GET each, all at once (no init, no terraform)."""
    from stackrun.aws.at_once import at_once
    from stackrun.terraform.state import read_state

    client = s3 or workspace.target.client(workspace.environment, "s3")
    stacks = list(stacks)
    states = at_once(lambda stack: read_state(workspace, stack, client), stacks)
    return {stack.name: state for stack, state in zip(stacks, states, strict=True)}


def outputs_from(states: Mapping[str, State], stacks: Iterable[Stack]) -> dict[str, Outputs]:
    """The outputs of `stacks` in the states read (stacks never applied give {})."""
    from stackrun.terraform.state import outputs_of

    return {stack.name: outputs_of(states.get(stack.name), stack.module) for stack in stacks}


def collect_outputs(workspace: Workspace, announce: bool = True) -> dict[str, Outputs]:
    """Outputs of every stack, read from state (stacks never applied give {})."""
    environment = workspace.environment
    if not backend_ready(workspace):
        raise StackrunError(
            f"{environment.name} has no state backend yet (bucket {environment.backend.bucket} "
            f"in account {environment.account_id}): deploy it first"
        )
    stacks = environment.stacks
    outputs = outputs_from(read_states(workspace, stacks), stacks)
    if announce:
        for name in outputs:
            print(f"read outputs of {name}", file=workspace.console, flush=True)
    return outputs
