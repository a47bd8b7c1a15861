"""The validated model of live/: a Project, its Environments and their Stacks (immutable)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackrun.config.module_interface import ModuleInfo


@dataclass(frozen=True)
class Reference:
    """One output of an earlier stack: "NNN_stack.output"."""

    stack: str
    output: str

    def __str__(self) -> str:
        return f"{self.stack}.{self.output}"


@dataclass(frozen=True)
class Dependency:
    """An input of a stack that takes the output of an earlier stack (or a list of outputs)."""

    input_name: str
    references: tuple[Reference, ...]
    # "one" (a string), "list" (an array of references) or "map" (a table of them, `keys`)
    shape: str = "one"
    keys: tuple[str, ...] = ()

    def value(self, upstream: Mapping[str, Mapping[str, Any]]) -> Any:
        """The input's value, built from the upstream stacks' output values."""
        items = [upstream[ref.stack][ref.output] for ref in self.references]
        if self.shape == "list":
            return items
        if self.shape == "map":
            return dict(zip(self.keys, items, strict=True))
        return items[0]


DATABASE_OUTPUTS = ("address", "port", "db_name", "master_user_secret_arn")


@dataclass(frozen=True)
class Stack:
    """One `live/<env>/NNN_<name>` folder, validated against its module."""

    number: int
    name: str  # the folder name, e.g. "010_network"
    path: Path
    module: ModuleInfo
    inputs: Mapping[str, Any]
    dependencies: tuple[Dependency, ...]
    description: str = ""
    # `[database]`: the stack creates a PostgreSQL database (with --local a real server runs
    # behind the emulated instance). Its schema is the migrations function's job.
    database: bool = False
    # `after`: earlier stacks this one waits for (with their invocations) without reading
    # their outputs, e.g. the API after the migrations that its code needs.
    after: tuple[str, ...] = ()
    # `[lambdas] input = "functions"`: the module input (a table keyed by function name, a
    # folder of lambdas/) that stackrun completes with each built zip (path, hash, handler).
    lambdas_input: str | None = None
    # `[lambdas] invoke_on_deploy`: functions invoked (through their alias) on every deploy,
    # after the stack is applied or found unchanged.
    invoke_on_deploy: tuple[str, ...] = ()
    # `[lambdas.canary]`: function -> how a new version of it takes traffic (canary.py).
    canary: Mapping[str, Canary] = field(default_factory=dict)
    # `[policy.skip]`: policy checks (checkov ids) that do not apply to this stack, with why.
    policy_skips: Mapping[str, str] = field(default_factory=dict)

    @property
    def functions(self) -> tuple[str, ...]:
        """Names of the functions (folders of lambdas/) whose artifacts this stack deploys."""
        if self.lambdas_input is None:
            return ()
        return tuple(sorted(self.inputs.get(self.lambdas_input, {})))

    @property
    def upstream(self) -> tuple[str, ...]:
        """Names of the stacks this stack waits for (whose outputs it consumes, and `after`)."""
        consumed = {ref.stack for dep in self.dependencies for ref in dep.references}
        return tuple(sorted(consumed | set(self.after)))


@dataclass(frozen=True)
class Canary:
    """`[lambdas.canary]`: a new version first gets `share` of its live alias's traffic for
    `seconds`; more than `max_errors` errors, or an error rate above `max_error_rate`, rolls
    it back, otherwise the alias moves to it fully."""

    share: float
    seconds: int
    max_error_rate: float
    max_errors: int


@dataclass(frozen=True)
class BackendSettings:
    """Where the state of an environment lives (bucket and table names are already resolved)."""

    bucket: str
    lock_table: str
    region: str
    deletion_protection: bool


@dataclass(frozen=True)
class Project:
    """`live/project.toml`."""

    root: Path  # the repository root (parent of live/ and modules/)
    name: str
    default_region: str
    bucket_template: str
    lock_table_template: str
    backend_deletion_protection: bool
    terraform_version: str
    aws_provider_version: str
    lock_timeout: str
    provider_mirror: Path | None
    local_port: int
    tags: Mapping[str, str] = field(default_factory=dict)
    # `[github]`: the repository whose CI assumes the roles of the account baseline.
    github: GitHubSettings | None = None

    @property
    def modules_dir(self) -> Path:
        return self.root / "modules"


@dataclass(frozen=True)
class GitHubSettings:
    """`[github]` of project.toml: whose workflow runs the account baseline's roles trust."""

    repository: str  # "owner/repo"
    branch: str  # the branch deploys run from


# The roles a run can act as: "deploy" (deploy, destroy, bootstrap, output, token, unlock),
# "plan" (plan), "admin" (the account baseline: the caller's own credentials, no role).
ROLES = ("deploy", "plan", "admin")


@dataclass(frozen=True)
class ExternalIssuer:
    """`[identity]` of env.toml: an OIDC issuer the team runs, instead of the project's pool."""

    issuer: str
    audience: tuple[str, ...]

    def as_input(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "audience": list(self.audience)}


# The module variable that env.toml's [identity] fills (modules/identity): a stack whose module
# declares it gets the environment's external issuer, or null (the module then creates a pool).
EXTERNAL_ISSUER_INPUT = "external_issuer"


@dataclass(frozen=True)
class Environment:
    """Everything a run needs to know about one environment, validated."""

    project: Project
    name: str
    account_id: str
    region: str
    deploy_role_arn: str
    tags: Mapping[str, str]
    protected: bool
    backend: BackendSettings
    stacks: tuple[Stack, ...]
    path: Path
    lambda_architecture: str = "arm64"
    identity: ExternalIssuer | None = None
    # env.toml plan_role (default "fleet-plan"): what `plan` assumes instead of the deploy role
    plan_role_arn: str = ""
    # env.toml promote_from: the environment whose tested zips deploy --promote-from takes
    promote_from: str | None = None

    def role_arn(self, role: str) -> str | None:
        """The ARN a run acting as `role` (ROLES) assumes; None: the caller's credentials."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")
        return {"deploy": self.deploy_role_arn, "plan": self.plan_role_arn, "admin": None}[role]

    # The environment owns the keys of its objects in the state bucket (backend.bucket): every
    # state key, lock and record key is spelled here only.

    def state_key(self, stack: str) -> str:
        """The key of `stack`'s terraform state."""
        return f"{self.name}/{stack}/terraform.tfstate"

    def state_lockfile_key(self, stack: str) -> str:
        """The key of the lock object terraform writes beside `stack`'s state (use_lockfile)."""
        return f"{self.state_key(stack)}.tflock"

    def state_lock_id(self, stack: str) -> str:
        """The LockID of the item terraform writes in the lock table (backend.lock_table)."""
        return f"{self.backend.bucket}/{self.state_key(stack)}"

    def record_key(self, record: str) -> str:
        """The key of one of stackrun's own records of the environment (JSON): pins, canary
        outcomes, the release record."""
        return f"{self.name}/_stackrun/{record}.json"

    def applied_record_key(self, stack: str) -> str:
        """The key of `stack`'s applied record (JSON: fingerprint, lineage and serial of its
        last apply; deploy/fingerprint.py), beside its state."""
        return f"{self.name}/{stack}/stackrun-applied.json"

    def stack(self, name: str) -> Stack:
        for stack in self.stacks:
            if stack.name == name:
                return stack
        raise KeyError(name)

    @property
    def default_tags(self) -> dict[str, str]:
        tags = {"Project": self.project.name, "Environment": self.name, "ManagedBy": "stackrun"}
        tags.update(self.project.tags)
        tags.update(self.tags)
        return tags
