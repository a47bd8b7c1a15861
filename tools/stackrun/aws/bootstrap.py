"""Make sure an environment's state backend (S3 bucket + DynamoDB lock table) exists.

The backend is itself managed by terraform (modules/tfstate-bootstrap), so it can be changed and
re-applied like any stack. The chicken-and-egg problem is solved the way Terragrunt users do it
by hand: apply the module with local state, then move that state into the bucket it created
(`terraform init -migrate-state`). If a run is interrupted in between, the local state file is
still in the working dir and the next run picks up from there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from botocore.exceptions import ClientError

from stackrun.config import Environment, Stack
from stackrun.config.module_interface import read_module
from stackrun.errors import StackrunError
from stackrun.terraform import INIT_LOCKFILE
from stackrun.terraform.render import remove_backend, write_backend
from stackrun.terraform.workspace import Workspace

BOOTSTRAP_STACK = "000_bootstrap"
BOOTSTRAP_MODULE = "tfstate-bootstrap"


def module_stack(
    environment: Environment,
    module_name: str,
    stack_name: str,
    inputs: dict[str, Any],
    description: str,
) -> Stack:
    """A module of modules/ applied as a stack of stackrun's own (not a folder of live/): the
    state backend, the account baseline."""
    module_dir = environment.project.modules_dir / module_name
    module, problems = read_module(module_dir)
    if module is None:
        raise StackrunError(f"modules/{module_name} is not usable: {'; '.join(problems)}")
    return Stack(
        number=0,
        name=stack_name,
        path=module_dir,
        module=module,
        inputs=MappingProxyType(inputs),
        dependencies=(),
        description=description,
    )


def bootstrap_stack(workspace: Workspace) -> Stack:
    """The bootstrap as a stack: modules/tfstate-bootstrap with the backend's names."""
    backend = workspace.environment.backend
    return module_stack(
        workspace.environment,
        BOOTSTRAP_MODULE,
        BOOTSTRAP_STACK,
        {
            "bucket_name": backend.bucket,
            "lock_table_name": backend.lock_table,
            "deletion_protection": backend.deletion_protection,
        },
        "Terraform state bucket and lock table",
    )


def _exists(call: Callable[[], object], *not_found_codes: str) -> bool:
    try:
        call()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in not_found_codes or status == 404:
            return False
        raise
    return True


def backend_status(workspace: Workspace) -> tuple[bool, bool, bool]:
    """(bucket exists, lock table exists, bootstrap state stored in the bucket)."""
    environment = workspace.environment
    backend = environment.backend
    s3 = workspace.target.client(environment, "s3")
    dynamodb = workspace.target.client(environment, "dynamodb")
    bucket = _exists(lambda: s3.head_bucket(Bucket=backend.bucket), "NoSuchBucket", "404")
    table = _exists(
        lambda: dynamodb.describe_table(TableName=backend.lock_table), "ResourceNotFoundException"
    )
    key = environment.state_key(BOOTSTRAP_STACK)
    state = bucket and _exists(
        lambda: s3.head_object(Bucket=backend.bucket, Key=key), "NoSuchKey", "404"
    )
    return bucket, table, state


def ensure_backend(
    workspace: Workspace,
    converge: bool = False,
    status: tuple[bool, bool, bool] | None = None,
    before_change: Callable[[], None] = lambda: None,
) -> bool:
    """Create the backend when missing; with `converge`, also re-apply it when it exists.
    `status`: backend_status's, when the caller read it already. `before_change` runs before
    terraform does.

    Returns True when this call created it.
    """
    environment = workspace.environment
    backend = environment.backend
    stack = bootstrap_stack(workspace)
    workdir = workspace.workdir(BOOTSTRAP_STACK)
    local_state = workdir / "terraform.tfstate"
    bucket, table, state = status or backend_status(workspace)
    out = workspace.console

    if bucket and table and state and not local_state.exists():
        if converge:
            before_change()
            print(f"==> {BOOTSTRAP_STACK}: state backend exists, re-applying", file=out, flush=True)
            _apply(workspace, stack, remote=True)
            _record_applied(workspace, stack)
        else:
            print(
                f"state backend: s3://{backend.bucket} + dynamodb:{backend.lock_table} "
                f"({environment.region}, account {environment.account_id})",
                file=out,
                flush=True,
            )
        return False

    if bucket and not state and not local_state.exists():
        key = environment.state_key(BOOTSTRAP_STACK)
        raise StackrunError(
            f"state bucket {backend.bucket} exists but holds no bootstrap state at {key}, and no "
            f"local bootstrap state is in {workdir}. Either it was created outside stackrun, or "
            "its state was lost: import it with `terraform import` in that folder (resources of "
            f"modules/{BOOTSTRAP_MODULE}), or delete the bucket and table, then rerun."
        )

    before_change()
    print(
        f"==> {BOOTSTRAP_STACK}: creating the state backend s3://{backend.bucket} and "
        f"dynamodb:{backend.lock_table} in account {environment.account_id} "
        "(local state first, then moved into the bucket)",
        file=out,
        flush=True,
    )
    _apply(workspace, stack, remote=False)
    _migrate_to_bucket(workspace, stack, workdir)
    _record_applied(workspace, stack)
    return True


def _record_applied(workspace: Workspace, stack: Stack) -> None:
    """Record the bootstrap stack's fingerprint, so the next deploy need not plan it again."""
    from stackrun.deploy import fingerprint
    from stackrun.terraform.state import read_state, serial_of

    workspace.render(stack)
    s3 = workspace.target.client(workspace.environment, "s3")
    state = read_state(workspace, stack, s3)
    current = fingerprint.compute(workspace, stack, {}, serial_of(state))
    fingerprint.record(workspace, stack, state, current, s3)


def _apply(workspace: Workspace, stack: Stack, remote: bool) -> None:
    from stackrun.deploy.steps import check_step, init, lock_timeout_flag

    workdir = workspace.render(stack)
    if remote:
        tf = init(workspace, stack)
    else:
        tf = workspace.terraform(stack.name, fresh_log=True)
        remove_backend(workdir)
        workspace.forget_init(stack.name)
        check_step(
            tf.run("init", "-input=false", "-no-color", INIT_LOCKFILE), workspace, stack, "init", tf
        )
    # One `terraform apply` plans and applies, as for every stack (deploy/steps.apply_stack):
    # nothing reviews the plan in between, and a separate `plan -out` cost a second terraform
    # process, provider start and schema load (2 to 5 s of a first deploy).
    lock = lock_timeout_flag(workspace)
    applied = tf.run("apply", "-auto-approve", "-input=false", "-no-color", lock)
    check_step(applied, workspace, stack, "apply", tf)


def _migrate_to_bucket(workspace: Workspace, stack: Stack, workdir: Path) -> None:
    from stackrun.deploy.steps import check_step

    write_backend(workspace.environment, stack.name, workspace.target, workdir)
    tf = workspace.terraform(stack.name)
    result = tf.run(
        "init", "-input=false", "-no-color", "-migrate-state", "-force-copy", INIT_LOCKFILE
    )
    check_step(result, workspace, stack, "init -migrate-state", tf)
    for name in ("terraform.tfstate", "terraform.tfstate.backup"):
        (workdir / name).unlink(missing_ok=True)
    workspace.mark_initialised(stack)
    print(
        f"    {BOOTSTRAP_STACK}: state moved into s3://{workspace.environment.backend.bucket}",
        file=workspace.console,
        flush=True,
    )
