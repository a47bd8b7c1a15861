"""`stackrun tf`: one terraform command in a stack's working directory, set up as a deploy sets
it up.

The stack is rendered as a deploy renders it (its inputs; its upstream stacks' outputs, read
from their states, as TF_VAR_* values; canary holds and rollback pins) and initialised when
needed (steps.init), with the run's role and backend (the Workspace). A state-writing command
(stackrun.terraform.passthrough) runs under the environment guard, so it never interleaves
with a deploy; terraform takes the stack's state lock itself, waiting the run's lock timeout.
Terraform's stdout goes straight to stackrun's stdout; its stderr to the console and the
stack's log.
"""

from __future__ import annotations

from stackrun.config import Stack
from stackrun.deploy.backend import guard_of
from stackrun.deploy.outputs import collect_outputs, missing_upstream, upstream_inputs
from stackrun.deploy.steps import init, unlock_hint
from stackrun.release import canary
from stackrun.terraform import Result, Terraform
from stackrun.terraform.passthrough import TerraformCommand
from stackrun.terraform.workspace import Workspace


def run_in_stack(workspace: Workspace, stack: Stack, command: TerraformCommand) -> int:
    """Run `command` in the stack's working dir; returns terraform's exit code."""
    variables = render_as_deployed(workspace, stack)
    tf = init(workspace, stack, fresh_log=False)
    if command.writes_state:
        with guard_of(workspace, f"{command.name} ({stack.name})") as guard:
            guard.check(command.name)
            result = _run(workspace, tf, command, variables)
    else:
        result = _run(workspace, tf, command, variables)
    hint = unlock_hint(result, workspace, stack)
    if hint:
        print(hint.strip(), file=workspace.console, flush=True)
    return result.returncode


def render_as_deployed(workspace: Workspace, stack: Stack) -> dict[str, str]:
    """Render the stack's working dir as a deploy does; returns its upstream values (TF_VAR_*)."""
    outputs = collect_outputs(workspace, announce=False)
    missing = missing_upstream(stack, outputs)
    if missing:
        print(
            f"warning: {stack.name}: upstream outputs missing ({', '.join(missing)}; deploy "
            "those stacks first): commands that evaluate the configuration (import, console, "
            "plan) fail without them",
            file=workspace.console,
            flush=True,
        )
    variables, sensitive = upstream_inputs(stack, outputs)
    held = canary.held_versions(stack, outputs.get(stack.name, {}))
    workspace.render(stack, sensitive, held)
    return variables


def _run(
    workspace: Workspace, tf: Terraform, command: TerraformCommand, variables: dict[str, str]
) -> Result:
    return tf.run(
        *command.argv(workspace.effective_lock_timeout),
        extra_env=variables,
        inherit_stdout=True,
    )
