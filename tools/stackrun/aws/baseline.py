"""The account baseline: what an administrator applies once per account, before any deploy.

modules/account-baseline as the stack `000_baseline` of an environment: GitHub's OIDC identity
provider, the deploy role (with the permissions boundary that protects the baseline) and the
plan role. Every input comes from the configuration (project.toml [github], env.toml
deploy_role and plan_role, the backend's names), so nothing under live/ describes it twice.

It is applied with the caller's own (administrator) credentials: the target acts as "admin",
so neither terraform nor stackrun assumes a role (before the baseline, none exists). Its state
is the object `<env>/000_baseline/terraform.tfstate` of the environment's state bucket, which
the deploy role's boundary denies writing.

`stackrun baseline <env>` creates the state backend when missing, then applies the baseline.
A deploy with --local applies it into the emulated account by itself (`ensure_local`), and
skips it while its fingerprint matches the one of its last apply.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackrun.aws.bootstrap import module_stack
from stackrun.config import (
    ROLE_ARN_PATTERN,
    Environment,
    Stack,
    list_environments,
    load_environment,
)
from stackrun.errors import ConfigError, ConfigIssue, StackrunError
from stackrun.terraform.workspace import Workspace

if TYPE_CHECKING:
    from stackrun.deploy.report import StackReport

BASELINE_STACK = "000_baseline"
BASELINE_MODULE = "account-baseline"


def _role_name(environment: Environment, key: str, arn: str) -> str:
    """The role name of an ARN; the baseline creates roles at path / only."""
    match = ROLE_ARN_PATTERN.fullmatch(arn)
    name = arn.split(":role/", 1)[1] if match else ""
    if not name or "/" in name:
        raise ConfigError(
            [
                ConfigIssue(
                    Path("live") / environment.name / "env.toml",
                    key,
                    f"the account baseline creates its roles at path '/', but {arn!r} has a "
                    "path; name the role without one",
                )
            ]
        )
    return name


def baseline_stack(environment: Environment) -> Stack:
    """The baseline as a stack: modules/account-baseline with inputs from the configuration."""
    github = environment.project.github
    if github is None:
        raise ConfigError(
            [
                ConfigIssue(
                    Path("live") / "project.toml",
                    "github.repository",
                    "missing: the account baseline needs the GitHub repository whose CI "
                    'assumes its roles, e.g. [github] repository = "owner/repo"',
                )
            ]
        )
    backend = environment.backend
    return module_stack(
        environment,
        BASELINE_MODULE,
        BASELINE_STACK,
        {
            "github_repository": github.repository,
            "deploy_branch": github.branch,
            "environment": environment.name,
            "deploy_role_name": _role_name(environment, "deploy_role", environment.deploy_role_arn),
            "plan_role_name": _role_name(environment, "plan_role", environment.plan_role_arn),
            "state_bucket": backend.bucket,
            "lock_table": backend.lock_table,
            "baseline_state_key": environment.state_key(BASELINE_STACK),
            **promotion_roles(environment),
        },
        "Account baseline: GitHub OIDC provider, deploy and plan roles",
    )


def promotion_roles(environment: Environment) -> dict[str, list[str]]:
    """Who may read whom for `deploy --promote-from` (env.toml promote_from): this
    environment's deploy role may assume the plan role of the one it promotes from, and the
    deploy roles of the environments promoting from this one may assume its plan role."""
    root = environment.project.root
    sources = []
    if environment.promote_from:
        sources.append(load_environment(root, environment.promote_from).plan_role_arn)
    readers = []
    for name in list_environments(root):
        if name == environment.name:
            continue
        other = load_environment(root, name)
        if other.promote_from == environment.name:
            readers.append(other.deploy_role_arn)
    return {"promotion_source_plan_role_arns": sources, "promotion_reader_role_arns": readers}


def describe(environment: Environment) -> dict[str, Any] | None:
    """What the baseline of the environment holds, for `stackrun output`'s target (None
    without [github]): the repository, the branch, the roles and the baseline's state key."""
    if environment.project.github is None:
        return None
    inputs = baseline_stack(environment).inputs
    return {
        "github_repository": inputs["github_repository"],
        "deploy_branch": inputs["deploy_branch"],
        "deploy_role_arn": environment.deploy_role_arn,
        "plan_role_arn": environment.plan_role_arn,
        "state_bucket": inputs["state_bucket"],
        "lock_table": inputs["lock_table"],
        "state_key": inputs["baseline_state_key"],
        "promotion_source_plan_role_arns": inputs["promotion_source_plan_role_arns"],
        "promotion_reader_role_arns": inputs["promotion_reader_role_arns"],
    }


def admin_workspace(workspace: Workspace) -> Workspace:
    """The same environment and target, acting with the caller's own credentials."""
    if workspace.target.role == "admin":
        return workspace
    return replace(workspace, target=workspace.target.as_role("admin"))


def apply(workspace: Workspace, force: bool = False) -> StackReport:
    """Apply the baseline (the backend must exist); skipped while unchanged unless `force`.

    Returns the stack's report (stackrun.deploy.report.StackReport).
    """
    from stackrun.deploy import fingerprint
    from stackrun.deploy.report import StackReport, StackStatus
    from stackrun.deploy.steps import apply_stack
    from stackrun.terraform.state import read_state, serial_of

    workspace = admin_workspace(workspace)
    stack = baseline_stack(workspace.environment)
    started = time.monotonic()
    workspace.render(stack)
    s3 = workspace.target.client(workspace.environment, "s3")
    state = read_state(workspace, stack, s3)
    current = fingerprint.compute(workspace, stack, {}, serial_of(state))
    if not force and fingerprint.applied(workspace, stack, state, current, s3):
        report = StackReport(stack.name, StackStatus.SKIPPED, note="unchanged since its last apply")
    else:
        print(
            f"\n==> {stack.name}: applying the account baseline (module {BASELINE_MODULE}) "
            f"into account {workspace.environment.account_id} with the caller's credentials",
            file=workspace.console,
            flush=True,
        )
        fingerprint.forget(workspace, stack, s3)
        report = apply_stack(workspace, stack, {})
        state = read_state(workspace, stack, s3)
        current = fingerprint.compute(workspace, stack, {}, serial_of(state))
        fingerprint.record(workspace, stack, state, current, s3)
    report.seconds = time.monotonic() - started
    print(f"<== {report.line()}", file=workspace.console, flush=True)
    return report


def ensure_local(workspace: Workspace) -> StackReport | None:
    """Before a local deploy's stacks: the baseline in the emulated account, when missing or
    changed. Nothing without [github] in project.toml (there is no repository to trust)."""
    if not workspace.target.local:
        raise StackrunError("the baseline is applied by a deploy only with --local")
    if workspace.environment.project.github is None:
        print(
            f"{BASELINE_STACK}: not applied ([github] repository is not set in live/project.toml)",
            file=workspace.console,
            flush=True,
        )
        return None
    return apply(workspace)


def run(workspace: Workspace) -> None:
    """`stackrun baseline <env>`: the state backend (created when missing), then the baseline,
    applied with the caller's credentials, under the environment guard."""
    from stackrun.deploy.backend import backend_under_guard
    from stackrun.terraform.state import outputs_of, read_state

    workspace = admin_workspace(workspace)
    stack = baseline_stack(workspace.environment)  # configuration errors before anything runs
    with backend_under_guard(workspace, "baseline"):
        apply(workspace, force=True)
    outputs = outputs_of(read_state(workspace, stack), stack.module)
    print(f"\nbaseline {workspace.environment.name}:", file=workspace.console, flush=True)
    for name in sorted(outputs):
        print(f"  {name} = {outputs[name]['value']}", file=workspace.console, flush=True)
