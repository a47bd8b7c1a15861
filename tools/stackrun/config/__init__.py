"""Load and validate `live/` into one immutable Environment.

Layout read here:

    live/project.toml                  project-wide settings
    live/<env>/env.toml                account, region, deploy role, tags of one environment
    live/<env>/NNN_<name>/stack.toml   the module a stack deploys, its inputs and dependencies
    live/_defaults/NNN_<name>.toml     what that stack shares in every environment (defaults.py)

Every problem in every file is collected and reported together (file, key, what was expected)
before anything runs. Nothing here talks to AWS or runs terraform.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from stackrun.config.modules import ModuleInfo, read_module
from stackrun.errors import ConfigError, ConfigIssue

# Matched with fullmatch, and anchored with \A...\Z besides: `$` also matches before a trailing
# newline. Only ASCII classes ([0-9], [A-Za-z0-9_]): `\d` and `\w` also match other scripts.
STACK_DIR_PATTERN = re.compile(r"\A(?P<number>[0-9]{3})_(?P<name>[a-z0-9][a-z0-9_-]*)\Z")
ENV_NAME_PATTERN = re.compile(r"\A[a-z][a-z0-9-]{0,30}\Z")
PROJECT_NAME_PATTERN = re.compile(r"\A[a-z][a-z0-9-]{1,30}[a-z0-9]\Z")
ACCOUNT_ID_PATTERN = re.compile(r"\A[0-9]{12}\Z")
REGION_PATTERN = re.compile(r"\A[a-z]{2}(-gov)?-[a-z]+-[0-9]\Z")
ROLE_NAME_PATTERN = re.compile(r"\A[A-Za-z0-9_+=,.@-]{1,64}\Z")
ROLE_ARN_PATTERN = re.compile(
    r"\Aarn:aws[a-z-]*:iam::([0-9]{12}):role/[A-Za-z0-9_+=,.@/-]{1,512}\Z"
)
DEPENDENCY_PATTERN = re.compile(
    r"\A(?P<stack>[0-9]{3}_[a-z0-9][a-z0-9_-]*)\.(?P<output>[A-Za-z_][A-Za-z0-9_-]*)\Z"
)
LOCK_TIMEOUT_PATTERN = re.compile(r"\A[0-9]+[smh]\Z")  # a duration: "90s", "5m", "1h"


def duration_seconds(duration: str) -> int:
    """'90s', '5m', '1h' -> seconds."""
    unit = {"s": 1, "m": 60, "h": 3600}[duration[-1]]
    return int(duration[:-1]) * unit


# GitHub: an owner (user or organisation) of 1-39 letters, digits and '-', not starting with
# '-'; a repository name of letters, digits, '.', '_' and '-' (not "." or "..").
GITHUB_REPOSITORY_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}\Z")
# A plain git branch name (a subset of git check-ref-format): no '..', '//', '@{', no trailing
# '/' or '.lock', no leading '-' or '/'.
BRANCH_PATTERN = re.compile(r"\A[A-Za-z0-9._][A-Za-z0-9._/-]{0,254}\Z")
# A key of the `[lambdas]` input: a folder of lambdas/ (build.discover skips names starting
# with '.' or '_') that also makes an AWS Lambda function name (letters, digits, '_', '-').
FUNCTION_NAME_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")


# --------------------------------------------------------------------------------------------
# The validated model
# --------------------------------------------------------------------------------------------


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

    def state_key(self, environment: str, stack: str) -> str:
        return f"{environment}/{stack}/terraform.tfstate"

    def record_key(self, environment: str, record: str) -> str:
        """Where stackrun keeps one of its own records of the environment (JSON): pins,
        canary outcomes, the release record."""
        return f"{environment}/_stackrun/{record}.json"


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
    def live_dir(self) -> Path:
        return self.root / "live"

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


# --------------------------------------------------------------------------------------------
# A small schema checker: each file is a table of known keys with an expected type
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One key of a TOML table: its type check, whether it must be there, and what it means."""

    check: Callable[[Any], bool]
    expected: str
    required: bool = False


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_table(value: Any) -> bool:
    return isinstance(value, dict)


def _is_str_table(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


class _Collector:
    """Collects ConfigIssues for one file."""

    def __init__(self, file: Path, root: Path):
        try:
            self.file = file.relative_to(root)
        except ValueError:
            self.file = file
        self.issues: list[ConfigIssue] = []

    def add(self, key: str, message: str) -> None:
        self.issues.append(ConfigIssue(self.file, key, message))

    def check_table(
        self, table: Mapping[str, Any], schema: Mapping[str, Key], prefix: str = ""
    ) -> None:
        for key in table:
            if key not in schema:
                known = ", ".join(sorted(schema)) or "none"
                self.add(f"{prefix}{key}", f"unknown key (known keys here: {known})")
        for key, spec in schema.items():
            if key not in table:
                if spec.required:
                    self.add(f"{prefix}{key}", f"missing: expected {spec.expected}")
                continue
            if not spec.check(table[key]):
                self.add(
                    f"{prefix}{key}",
                    f"expected {spec.expected}, got {_describe(table[key])}",
                )


def _describe(value: Any) -> str:
    kind = type(value).__name__
    if isinstance(value, dict):
        kind = "table"
    elif isinstance(value, list):
        kind = "array"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{kind} {text}"


def _quote(text: str) -> str:
    """A string of a file for a message: its repr, shortened like _describe."""
    quoted = repr(text)
    return quoted if len(quoted) <= 60 else quoted[:57] + "..."


def _is_dir(path: Path) -> bool:
    """Path.is_dir, False for a path the system cannot look up (a NUL, a name too long)."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _is_file(path: Path) -> bool:
    """Path.is_file, False for a path the system cannot look up (a NUL, a name too long)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _read_toml(path: Path, collector: _Collector) -> dict[str, Any] | None:
    if not _is_file(path):
        collector.add("", "file not found")
        return None
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        collector.add("", f"not valid TOML: {error}")
    except UnicodeDecodeError:
        collector.add("", "not valid UTF-8 text")
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        collector.add(
            "", "nesting too deep: arrays or tables nested deeper than the TOML reader can follow"
        )
    except OSError as error:
        collector.add("", f"cannot be read: {error.strerror or error}")
    return None


# --------------------------------------------------------------------------------------------
# project.toml
# --------------------------------------------------------------------------------------------

PROJECT_SCHEMA = {
    "project": Key(_is_table, "a table [project]", required=True),
    "backend": Key(_is_table, "a table [backend]"),
    "terraform": Key(_is_table, "a table [terraform]"),
    "local": Key(_is_table, "a table [local]"),
    "github": Key(_is_table, 'a table [github] with repository = "owner/repo"'),
}
PROJECT_TABLE = {
    "name": Key(_is_str, "a string: lowercase letters, digits and '-', 3 to 32 chars", True),
    "default_region": Key(_is_str, 'an AWS region name such as "eu-west-1"', True),
    "tags": Key(_is_str_table, "a table of string tags"),
}
BACKEND_TABLE = {
    "bucket": Key(_is_str, "a name template using {project}, {account_id}, {region}, {env}"),
    "lock_table": Key(_is_str, "a name template using {project}, {account_id}, {region}, {env}"),
    "deletion_protection": Key(_is_bool, "true or false"),
}
TERRAFORM_TABLE = {
    "version": Key(_is_str, 'a terraform version constraint such as ">= 1.10"'),
    "aws_provider_version": Key(_is_str, "a version constraint for hashicorp/aws"),
    "lock_timeout": Key(_is_str, 'a duration such as "5m" (s, m or h)'),
    "provider_mirror": Key(_is_str, "a path to an unpacked provider mirror (relative to repo)"),
}
LOCAL_TABLE = {
    "port": Key(_is_int, "a TCP port number between 1024 and 65535"),
}
GITHUB_TABLE = {
    "repository": Key(_is_str, 'the GitHub repository as "owner/repo"', True),
    "branch": Key(_is_str, 'the branch deploys run from, e.g. "main"'),
}


def _check_github(table: Mapping[str, Any], collector: _Collector) -> GitHubSettings | None:
    before = len(collector.issues)
    repository, branch = table.get("repository"), table.get("branch", "main")
    if isinstance(repository, str):
        name = repository.partition("/")[2]
        if not GITHUB_REPOSITORY_PATTERN.fullmatch(repository) or name in (".", ".."):
            collector.add(
                "github.repository",
                "expected \"owner/repo\" (owner: letters, digits and '-', up to 39; repo: "
                f"letters, digits, '.', '_' and '-'), got {_quote(repository)}",
            )
    if isinstance(branch, str) and (
        not BRANCH_PATTERN.fullmatch(branch)
        or any(part in branch for part in ("..", "//", "@{"))
        or branch.endswith(("/", ".lock"))
    ):
        collector.add(
            "github.branch",
            "expected a plain git branch name (letters, digits, '.', '_', '-', '/'; no '..', "
            f"'//', trailing '/' or '.lock'), got {_quote(branch)}",
        )
    if len(collector.issues) > before or not table:
        return None
    return GitHubSettings(repository=repository, branch=branch)


def load_project(root: Path) -> Project:
    """Read and validate live/project.toml."""
    path = root / "live" / "project.toml"
    collector = _Collector(path, root)
    data = _read_toml(path, collector)
    if data is None:
        raise ConfigError(collector.issues)
    collector.check_table(data, PROJECT_SCHEMA)
    tables = {}
    for name, schema in (
        ("project", PROJECT_TABLE),
        ("backend", BACKEND_TABLE),
        ("terraform", TERRAFORM_TABLE),
        ("local", LOCAL_TABLE),
        ("github", GITHUB_TABLE),
    ):
        table = data.get(name, {})
        tables[name] = table if isinstance(table, dict) else {}
        if name in data or name != "github":  # [github] is optional; when there, complete
            collector.check_table(tables[name], schema, prefix=f"{name}.")
    project, backend, terraform, local = (
        tables["project"],
        tables["backend"],
        tables["terraform"],
        tables["local"],
    )
    github = _check_github(tables["github"], collector) if "github" in data else None
    name = project.get("name", "")
    if isinstance(name, str) and name and not PROJECT_NAME_PATTERN.fullmatch(name):
        collector.add(
            "project.name",
            "expected 3 to 32 lowercase letters, digits and '-' (starting with a letter), "
            f"got {_quote(name)}",
        )
    region = project.get("default_region", "")
    if isinstance(region, str) and region and not REGION_PATTERN.fullmatch(region):
        collector.add(
            "project.default_region", f"expected an AWS region name, got {_quote(region)}"
        )
    for key in ("bucket", "lock_table"):
        template = backend.get(key)
        if isinstance(template, str):
            _check_template(template, f"backend.{key}", collector)
    lock_timeout = terraform.get("lock_timeout", "5m")
    if isinstance(lock_timeout, str) and not LOCK_TIMEOUT_PATTERN.fullmatch(lock_timeout):
        collector.add(
            "terraform.lock_timeout", f'expected a duration like "5m", got {_quote(lock_timeout)}'
        )
    port = local.get("port", 4566)
    if _is_int(port) and not 1024 <= port <= 65535:
        collector.add("local.port", f"expected a TCP port between 1024 and 65535, got {port}")
    mirror = terraform.get("provider_mirror")
    if collector.issues:
        raise ConfigError(collector.issues)
    return Project(
        root=root,
        name=name,
        default_region=region,
        bucket_template=backend.get("bucket", "{project}-tfstate-{account_id}-{region}"),
        lock_table_template=backend.get("lock_table", "{project}-tf-locks"),
        backend_deletion_protection=backend.get("deletion_protection", True),
        terraform_version=terraform.get("version", ">= 1.10"),
        aws_provider_version=terraform.get("aws_provider_version", ">= 5.0"),
        lock_timeout=lock_timeout,
        provider_mirror=(root / mirror) if isinstance(mirror, str) else None,
        local_port=port,
        tags=MappingProxyType(dict(project.get("tags", {}))),
        github=github,
    )


TEMPLATE_FIELDS = {"project", "account_id", "region", "env"}


def _check_template(template: str, key: str, collector: _Collector) -> None:
    fields = set(re.findall(r"{([^{}]*)}", template))
    unknown = fields - TEMPLATE_FIELDS
    if unknown:
        collector.add(
            key, f"unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(TEMPLATE_FIELDS)}"
        )
        return
    try:  # every placeholder is known: only a lone brace is left to fail str.format
        template.format(**dict.fromkeys(TEMPLATE_FIELDS, ""))
    except (ValueError, LookupError, AttributeError):
        collector.add(
            key,
            "expected a name template using {project}, {account_id}, {region}, {env}; "
            f"got {_quote(template)}, with a '{{' or '}}' that is not part of a placeholder",
        )


# --------------------------------------------------------------------------------------------
# env.toml
# --------------------------------------------------------------------------------------------

ENV_SCHEMA = {
    "account_id": Key(_is_str, 'a quoted string of 12 digits, e.g. "111111111111"', True),
    "region": Key(_is_str, 'an AWS region name such as "eu-west-1"'),
    "deploy_role": Key(_is_str, "an IAM role name or role ARN in this account", True),
    "plan_role": Key(_is_str, "an IAM role name or role ARN in this account"),
    "protected": Key(_is_bool, "true or false"),
    "lambda_architecture": Key(
        lambda value: value in ("arm64", "x86_64"), '"arm64" (the default) or "x86_64"'
    ),
    "tags": Key(_is_str_table, "a table of string tags"),
    "promote_from": Key(
        _is_str,
        'the name of another environment, e.g. "stage": deploys of this one may take its '
        "tested function zips (deploy --promote-from), and the account baselines let this "
        "environment's deploy role read it",
    ),
    "identity": Key(
        _is_table,
        'a table [identity] with issuer = "https://..." and audience = ["..."] (an external '
        "OIDC issuer instead of the project's Cognito user pool)",
    ),
}
IDENTITY_TABLE = {
    "issuer": Key(_is_str, "the issuer's https URL, its tokens' \"iss\" value", True),
    "audience": Key(
        lambda value: isinstance(value, list) and all(isinstance(v, str) for v in value),
        'an array of the audience values the API accepts, e.g. ["api://fleet"]',
        True,
    ),
}
ISSUER_PATTERN = re.compile(r"\Ahttps://[^/?#\s@]+(/[^?#\s]*)?\Z")


def _check_identity(table: Any, collector: _Collector) -> ExternalIssuer | None:
    if not isinstance(table, dict):
        return None
    before = len(collector.issues)
    collector.check_table(table, IDENTITY_TABLE, "identity.")
    issuer, audience = table.get("issuer"), table.get("audience")
    if isinstance(issuer, str) and not ISSUER_PATTERN.fullmatch(issuer):
        collector.add(
            "identity.issuer",
            "expected an https:// URL without query, fragment or credentials (API Gateway "
            f"fetches the issuer's keys over TLS), got {_quote(issuer)}",
        )
    if isinstance(audience, list):
        if not audience:
            collector.add("identity.audience", "expected at least one audience value, got []")
        for index, value in enumerate(audience):
            if isinstance(value, str) and not value.strip():
                collector.add(
                    f"identity.audience[{index}]", "expected a non-empty audience value, got ''"
                )
    if len(collector.issues) > before:
        return None
    return ExternalIssuer(issuer=table["issuer"], audience=tuple(table["audience"]))


def list_environments(root: Path) -> list[str]:
    """Environment names: folders of live/ that hold an env.toml.

    Every such folder is listed, a misnamed one too, so that load_environment reports it
    (see _check_env_name) rather than it being skipped without a word.
    """
    live = root / "live"
    if not live.is_dir():
        return []
    return sorted(p.name for p in live.iterdir() if (p / "env.toml").is_file())


def _check_env_name(env_name: str) -> list[ConfigIssue]:
    """An environment's name is its folder's name: it goes into state keys, bucket and table
    names and tags, so it must be a plain lowercase name (ENV_NAME_PATTERN)."""
    if ENV_NAME_PATTERN.fullmatch(env_name):
        return []
    return [
        ConfigIssue(
            Path("live") / env_name,
            "",
            "not an environment folder name: expected 1 to 31 lowercase letters, digits and "
            f"'-', starting with a letter, got {_quote(env_name)}",
        )
    ]


def _read_env_file(root: Path, env_name: str, collector: _Collector) -> dict[str, Any]:
    data = _read_toml(root / "live" / env_name / "env.toml", collector) or {}
    collector.check_table(data, ENV_SCHEMA)
    account = data.get("account_id")
    if isinstance(account, str) and not ACCOUNT_ID_PATTERN.fullmatch(account):
        collector.add("account_id", f"expected exactly 12 digits, got {_quote(account)}")
    region = data.get("region")
    if isinstance(region, str) and not REGION_PATTERN.fullmatch(region):
        collector.add(
            "region", f'expected an AWS region name such as "eu-west-1", got {_quote(region)}'
        )
    for key in ROLE_KEYS:
        role = data.get(key)
        if not isinstance(role, str):
            continue
        arn_match = ROLE_ARN_PATTERN.fullmatch(role)
        if role.startswith("arn:"):
            if not arn_match:
                collector.add(key, f"expected an IAM role ARN, got {_quote(role)}")
            elif isinstance(account, str) and arn_match.group(1) != account:
                collector.add(
                    key,
                    f"the role's account {arn_match.group(1)} is not this environment's "
                    f"account_id {account}",
                )
        elif not ROLE_NAME_PATTERN.fullmatch(role):
            collector.add(key, f"expected an IAM role name, got {_quote(role)}")
    deploy, plan = data.get("deploy_role"), data.get("plan_role", DEFAULT_PLAN_ROLE)
    if (
        isinstance(deploy, str)
        and isinstance(plan, str)
        and isinstance(account, str)
        and _role_arn(deploy, account) == _role_arn(plan, account)
    ):
        collector.add(
            "plan_role",
            f"the plan role must not be the deploy role ({_quote(deploy)}): plans of pull "
            "requests run with read-only rights",
        )
    return data


# env.toml keys naming the roles of a run (validated alike), and the plan role's default: the
# name modules/account-baseline gives it.
ROLE_KEYS = ("deploy_role", "plan_role")
DEFAULT_PLAN_ROLE = "fleet-plan"


def _role_arn(role: str, account: str) -> str:
    """A role name or ARN of env.toml as an ARN in `account`."""
    return role if role.startswith("arn:") else f"arn:aws:iam::{account}:role/{role}"


def load_environment(root: Path, env_name: str) -> Environment:
    """Load live/project.toml, live/<env>/env.toml and every stack of the environment.

    Raises ConfigError listing every problem found. Nothing is run.
    """
    project = load_project(root)
    name_issues = _check_env_name(env_name)
    if name_issues:
        raise ConfigError(name_issues)
    known = list_environments(root)
    if env_name not in known:
        path = root / "live" / env_name / "env.toml"
        raise ConfigError(
            [
                ConfigIssue(
                    Path("live") / env_name / "env.toml",
                    "",
                    f"unknown environment {env_name!r}; known environments: "
                    f"{', '.join(known) or 'none'} "
                    f"(each needs {path.relative_to(root).parent}/env.toml)",
                )
            ]
        )
    env_path = root / "live" / env_name / "env.toml"
    collector = _Collector(env_path, root)
    data = _read_env_file(root, env_name, collector)
    identity = _check_identity(data.get("identity"), collector)
    account = data.get("account_id", "")
    promote_from = data.get("promote_from")
    if isinstance(promote_from, str) and (promote_from == env_name or promote_from not in known):
        others = ", ".join(other for other in known if other != env_name) or "none"
        collector.add(
            "promote_from",
            f"expected another environment of live/ ({others}), got {_quote(promote_from)}",
        )
    issues = list(collector.issues)

    # Each environment is its own account: a shared account would share one state bucket and
    # let one environment's provider act on another's resources.
    if isinstance(account, str) and ACCOUNT_ID_PATTERN.fullmatch(account):
        for other in known:
            if other == env_name:
                continue
            other_collector = _Collector(root / "live" / other / "env.toml", root)
            other_data = _read_env_file(root, other, other_collector)
            if other_data.get("account_id") == account:
                issues.append(
                    ConfigIssue(
                        collector.file,
                        "account_id",
                        f"account {account} is also used by environment {other!r}; "
                        "each environment needs its own AWS account",
                    )
                )

    from stackrun.config.defaults import check_defaults_folder

    stacks, stack_issues = _load_stacks(root, env_name, project)
    issues += stack_issues + check_defaults_folder(root)
    stacks = _with_identity(stacks, identity)
    if issues:
        # Before the backend names are resolved: a bad account_id or region is reported on its
        # own key of env.toml, not again as a bad bucket or table name of project.toml.
        raise ConfigError(issues)

    region = data.get("region", project.default_region)
    fields = {"project": project.name, "account_id": account, "region": region, "env": env_name}
    backend = BackendSettings(
        bucket=project.bucket_template.format(**fields),
        lock_table=project.lock_table_template.format(**fields),
        region=region,
        deletion_protection=project.backend_deletion_protection,
    )
    backend_issues = _check_backend_names(backend, root)
    if backend_issues:
        raise ConfigError(backend_issues)
    return Environment(
        project=project,
        name=env_name,
        account_id=account,
        region=region,
        deploy_role_arn=_role_arn(data["deploy_role"], account),
        plan_role_arn=_role_arn(data.get("plan_role", DEFAULT_PLAN_ROLE), account),
        tags=MappingProxyType(dict(data.get("tags", {}))),
        protected=data.get("protected", False),
        backend=backend,
        stacks=tuple(stacks),
        path=env_path.parent,
        lambda_architecture=data.get("lambda_architecture", "arm64"),
        identity=identity,
        promote_from=promote_from,
    )


def _with_identity(stacks: list[Stack], identity: ExternalIssuer | None) -> list[Stack]:
    """Stacks whose module takes `external_issuer` get env.toml's [identity] (or null)."""
    value = identity.as_input() if identity else None
    return [
        replace(stack, inputs=MappingProxyType({**stack.inputs, EXTERNAL_ISSUER_INPUT: value}))
        if EXTERNAL_ISSUER_INPUT in stack.module.variables
        else stack
        for stack in stacks
    ]


BUCKET_NAME_PATTERN = re.compile(r"\A[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
TABLE_NAME_PATTERN = re.compile(r"\A[A-Za-z0-9_.-]{3,255}\Z")


def _check_backend_names(backend: BackendSettings, root: Path) -> list[ConfigIssue]:
    file = Path("live") / "project.toml"
    issues = []
    if not BUCKET_NAME_PATTERN.fullmatch(backend.bucket) or ".." in backend.bucket:
        issues.append(
            ConfigIssue(
                file,
                "backend.bucket",
                f"resolves to {backend.bucket!r}, not a valid S3 bucket name "
                "(3-63 chars of lowercase letters, digits, '.' and '-')",
            )
        )
    if not TABLE_NAME_PATTERN.fullmatch(backend.lock_table):
        issues.append(
            ConfigIssue(
                file,
                "backend.lock_table",
                f"resolves to {backend.lock_table!r}, not a valid DynamoDB table name",
            )
        )
    return issues


# --------------------------------------------------------------------------------------------
# stack.toml
# --------------------------------------------------------------------------------------------

STACK_SCHEMA = {
    "module": Key(_is_str, "the name of a folder under modules/", True),
    "description": Key(_is_str, "a string"),
    "inputs": Key(_is_table, "a table of module inputs"),
    "database": Key(
        _is_table, "an empty table [database] (the module creates a PostgreSQL database)"
    ),
    "after": Key(
        lambda value: isinstance(value, list) and all(isinstance(v, str) for v in value),
        'an array of earlier stacks this one waits for, e.g. ["027_migrations"]',
    ),
    "lambdas": Key(_is_table, 'a table [lambdas] with input = "<module input>"'),
    "policy": Key(_is_table, 'a table [policy.skip] of CHECK_ID = "why it does not apply"'),
    "dependencies": Key(
        lambda table: (
            isinstance(table, dict)
            and all(
                isinstance(v, str)
                or (isinstance(v, list) and all(isinstance(i, str) for i in v))
                or (isinstance(v, dict) and all(isinstance(i, str) for i in v.values()))
                for v in table.values()
            )
        ),
        'a table of input = "NNN_stack.output" (or an array or table of them) referring to '
        "earlier stacks",
    ),
}


def _load_stacks(
    root: Path, env_name: str, project: Project
) -> tuple[list[Stack], list[ConfigIssue]]:
    env_dir = root / "live" / env_name
    issues: list[ConfigIssue] = []
    folders = []
    for child in sorted(env_dir.iterdir()):
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
    root: Path,
    project: Project,
    number: int,
    folder: Path,
    earlier: Mapping[str, tuple[int, ModuleInfo | None]],
) -> tuple[Stack | None, list[ConfigIssue]]:
    from stackrun.config.defaults import read_stack_document  # defaults.py builds on this module

    document, read_issues = read_stack_document(root, folder)
    if document is None:
        return None, read_issues
    data = document.data  # live/_defaults/<folder>.toml with the stack.toml merged over it
    collector = _Collector(folder / "stack.toml", root)
    collector.check_table(data, STACK_SCHEMA)
    module_name = data.get("module")
    module: ModuleInfo | None = None
    if isinstance(module_name, str):
        module_dir = project.modules_dir / module_name
        if (
            not module_name
            or "/" in module_name
            or module_name.startswith(".")
            or not _is_dir(module_dir)
        ):
            available = (
                sorted(p.name for p in project.modules_dir.iterdir() if p.is_dir())
                if project.modules_dir.is_dir()
                else []
            )
            collector.add(
                "module",
                (
                    f"no module {_quote(module_name)} under modules/"
                    if module_name
                    else "expected the name of a folder under modules/, got ''"
                )
                + f" (available: {', '.join(available) or 'none'})",
            )
        else:
            module, module_problems = read_module(module_dir)
            for problem in module_problems:
                collector.add("module", problem)

    inputs = data.get("inputs", {})
    inputs = inputs if isinstance(inputs, dict) else {}
    raw_dependencies = data.get("dependencies", {})
    raw_dependencies = raw_dependencies if isinstance(raw_dependencies, dict) else {}
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
                f"expected at least one NNN_stack.output reference, got {_describe(value)}",
            )
            continue
        references = [_check_reference(text, key, folder, earlier, collector) for text in texts]
        if all(references):
            dependencies.append(Dependency(input_name, tuple(references), shape=shape, keys=keys))

    if module is not None:
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
            problem = _check_input_value(value)
            if problem:
                collector.add(f"inputs.{input_name}", problem)
        if EXTERNAL_ISSUER_INPUT in inputs or EXTERNAL_ISSUER_INPUT in raw_dependencies:
            collector.add(
                f"inputs.{EXTERNAL_ISSUER_INPUT}",
                "set by stackrun from env.toml's [identity] table (issuer, audience); "
                "name an external issuer there",
            )

    database = isinstance(data.get("database"), dict)
    if database:
        _check_database(data["database"], module, collector)
    after = _check_after(data.get("after"), folder, earlier, collector)
    lambdas_input = None
    invoke_on_deploy: tuple[str, ...] = ()
    canary: dict[str, Canary] = {}
    if isinstance(data.get("lambdas"), dict):
        lambdas_input = _check_lambdas(root, data["lambdas"], inputs, collector)
        invoke_on_deploy = _check_invoke(data["lambdas"], inputs, lambdas_input, collector)
        if lambdas_input is not None and "canary" in data["lambdas"]:
            functions = [name for name in inputs[lambdas_input] if name not in invoke_on_deploy]
            canary = _check_canary(data["lambdas"]["canary"], functions, collector)

    policy_skips = _check_policy(data.get("policy"), collector)

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


_CHECK_ID = re.compile(r"\ACKV2?_[A-Z0-9]+_[0-9]+\Z")


def _check_policy(table: Any, collector: _Collector) -> dict[str, str]:
    """`[policy.skip]`: CHECK_ID = "reason" pairs; every skip needs its reason."""
    if not isinstance(table, dict):
        return {}
    skips: dict[str, str] = {}
    for key in table:
        if key != "skip":
            collector.add(f"policy.{key}", 'unknown key; expected [policy.skip] CHECK_ID = "why"')
    skip = table.get("skip", {})
    if not isinstance(skip, dict):
        collector.add("policy.skip", f'expected a table of CHECK_ID = "why", got {_describe(skip)}')
        return {}
    for check_id, reason in skip.items():
        if not _CHECK_ID.fullmatch(check_id):
            collector.add(f"policy.skip.{check_id}", "expected a checkov check id like CKV_AWS_293")
        elif not isinstance(reason, str) or len(reason.strip()) < 10:
            collector.add(
                f"policy.skip.{check_id}",
                "expected the reason the check does not apply here (a sentence, not empty)",
            )
        else:
            skips[check_id] = reason.strip()
    return skips


def _check_input_value(value: Any) -> str | None:
    """Terraform takes inputs as JSON: TOML has dates and times, nan and inf that JSON has not.

    The first problem found, depth first, in document order (without recursion: values come
    as deep as the TOML reader goes).
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(reversed(item.values()))
        elif isinstance(item, list):
            pending.extend(reversed(item))
        elif isinstance(item, float) and not math.isfinite(item):
            return (
                f"expected a finite number, got {item!r} (inputs go to terraform as JSON, "
                "which has no nan or inf)"
            )
        elif not isinstance(item, str | int | float | bool):
            return (
                f"expected a string, number, bool, array or table, got {type(item).__name__} "
                f"{item!r}"
            )
    return None


def _check_reference(
    text: object,
    key: str,
    folder: Path,
    earlier: Mapping[str, tuple[int, ModuleInfo | None]],
    collector: _Collector,
) -> Reference | None:
    """Check one "NNN_stack.output" reference; report and return None when it is wrong."""
    if not isinstance(text, str):
        return None  # already reported by the schema check
    match = DEPENDENCY_PATTERN.fullmatch(text)
    if not match:
        collector.add(key, f'expected "NNN_stack.output", got {_quote(text)}')
        return None
    upstream, output = match["stack"], match["output"]
    if upstream not in earlier:
        if upstream == folder.name:
            collector.add(key, "a stack cannot depend on its own outputs")
        elif _is_dir(folder.parent / upstream):
            collector.add(
                key,
                f"stack {upstream!r} is not earlier than this one "
                "(dependencies must point to lower numbers)",
            )
        else:
            collector.add(key, f"stack {_quote(upstream)} does not exist in this environment")
        return None
    upstream_module = earlier[upstream][1]
    if upstream_module is not None and output not in upstream_module.outputs:
        collector.add(
            key,
            f"stack {upstream!r} (module {upstream_module.name!r}) has no output "
            f"{_quote(output)}; "
            f"its outputs: {', '.join(sorted(upstream_module.outputs)) or 'none'}",
        )
        return None
    return Reference(upstream, output)


def _check_database(
    table: Mapping[str, Any], module: ModuleInfo | None, collector: _Collector
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
    earlier: Mapping[str, tuple[int, ModuleInfo | None]],
    collector: _Collector,
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
        elif _is_dir(folder.parent / name):
            collector.add(
                "after",
                f"stack {name!r} is not earlier than this one (it must have a lower number)",
            )
        else:
            collector.add("after", f"stack {_quote(name)} does not exist in this environment")
    return tuple(dict.fromkeys(names))


LAMBDAS_TABLE = {
    "input": Key(_is_str, "the name of the module input that lists the functions", True),
    "canary": Key(_is_table, "a table [lambdas.canary] (share, duration, max_error_rate, ...)"),
    "invoke_on_deploy": Key(
        lambda value: isinstance(value, list) and all(isinstance(v, str) for v in value),
        "an array of function names (keys of the functions input) to invoke on every deploy",
    ),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


CANARY_SETTINGS = {
    "share": Key(
        lambda v: _is_number(v) and 0 < v < 1,
        "the share of the alias's traffic the new version gets, a number between 0 and 1 "
        "exclusive (e.g. 0.25)",
    ),
    "duration": Key(
        lambda v: isinstance(v, str) and bool(LOCK_TIMEOUT_PATTERN.fullmatch(v)),
        'how long the new version is watched, a duration such as "90s" or "5m"',
    ),
    "max_error_rate": Key(
        lambda v: _is_number(v) and 0 <= v < 1,
        "the highest share of the new version's invocations that may fail, 0 <= rate < 1",
    ),
    "max_errors": Key(
        lambda v: _is_int(v) and v >= 0, "the most errors the new version may have, an integer"
    ),
}
CANARY_FUNCTION_SETTINGS = {
    **CANARY_SETTINGS,
    "enabled": Key(_is_bool, "true or false (false: the function's versions take all traffic)"),
}


def _check_canary(table: Any, functions: list[str], collector: _Collector) -> dict[str, Canary]:
    """`[lambdas.canary]` (every function's settings, all four required) and its optional
    `[lambdas.canary.functions.<name>]` overrides (or `enabled = false`)."""
    prefix = "lambdas.canary."
    if not isinstance(table, dict):
        return {}
    before = len(collector.issues)
    defaults = {key: value for key, value in table.items() if key != "functions"}
    schema = {key: Key(spec.check, spec.expected, True) for key, spec in CANARY_SETTINGS.items()}
    collector.check_table(defaults, schema, prefix)
    overrides = table.get("functions", {})
    if not isinstance(overrides, dict):
        collector.add(f"{prefix}functions", "expected a table of function name -> settings")
        overrides = {}
    for name, settings in overrides.items():
        key = f"{prefix}functions.{name}"
        if name not in functions:
            collector.add(
                key,
                f"not a function that takes traffic in this stack ({', '.join(functions)}; "
                "functions of invoke_on_deploy have no canary)",
            )
        elif not isinstance(settings, dict):
            collector.add(key, f"expected a table of settings, got {_describe(settings)}")
        else:
            collector.check_table(settings, CANARY_FUNCTION_SETTINGS, f"{key}.")
    if len(collector.issues) != before:
        return {}
    canary = {}
    for name in functions:
        settings = {**defaults, **overrides.get(name, {})}
        if settings.pop("enabled", True):
            canary[name] = Canary(
                share=float(settings["share"]),
                seconds=duration_seconds(settings["duration"]),
                max_error_rate=float(settings["max_error_rate"]),
                max_errors=int(settings["max_errors"]),
            )
    return canary


def _check_invoke(
    table: Mapping[str, Any],
    inputs: Mapping[str, Any],
    lambdas_input: str | None,
    collector: _Collector,
) -> tuple[str, ...]:
    """`invoke_on_deploy`: names among the functions this stack deploys."""
    names = table.get("invoke_on_deploy", [])
    if not isinstance(names, list) or lambdas_input is None:
        return ()
    functions = inputs.get(lambdas_input) or {}
    unknown = [name for name in names if name not in functions]
    if unknown:
        collector.add(
            "lambdas.invoke_on_deploy",
            f"{', '.join(map(repr, unknown))} not among the functions of inputs.{lambdas_input} "
            f"({', '.join(sorted(functions))})",
        )
        return ()
    return tuple(names)


def _check_lambdas(
    root: Path, table: Mapping[str, Any], inputs: Mapping[str, Any], collector: _Collector
) -> str | None:
    """Validate `[lambdas]`: the named input is a table of functions that exist in lambdas/."""
    before = len(collector.issues)
    collector.check_table(table, LAMBDAS_TABLE, prefix="lambdas.")
    name = table.get("input")
    if not isinstance(name, str):
        return None
    functions = inputs.get(name)
    if not isinstance(functions, dict) or not functions:
        collector.add(
            "lambdas.input",
            f"input {name!r} must be a table with one entry per function, e.g. "
            f"[inputs.{name}.create_project]",
        )
        return None
    for function, settings in functions.items():
        key = f"inputs.{name}.{function}"
        if not FUNCTION_NAME_PATTERN.fullmatch(function):
            collector.add(
                key,
                "expected a function name: the name of a folder under lambdas/ (1 to 64 "
                f"letters, digits, '_' or '-', starting with a letter or digit), got "
                f"{_quote(function)}",
            )
        elif not _is_file(root / "lambdas" / function / "pyproject.toml"):
            collector.add(key, f"no function package lambdas/{function}/ (with pyproject.toml)")
        if not isinstance(settings, dict):
            collector.add(key, f"expected a table of settings, got {_describe(settings)}")
            continue
        for filled in ("zip_path", "source_code_hash", "handler"):
            if filled in settings:
                collector.add(f"{key}.{filled}", "set by stackrun from the build; remove it")
        if "live_version" in settings:
            collector.add(
                f"{key}.live_version",
                "set by stackrun while `stackrun rollback` pins the function; remove it (to "
                "hold a function on a version: stackrun rollback <env> <function> --to N)",
            )
    return name if len(collector.issues) == before else None


# --------------------------------------------------------------------------------------------
# --set STACK.INPUT=VALUE: one run's override of a stack input
# --------------------------------------------------------------------------------------------


def apply_overrides(environment: Environment, overrides: list[str]) -> Environment:
    """`environment` with `--set NNN_stack.input=VALUE` overrides (VALUE is a TOML value).

    Checked like the files: the stack must exist, the input must be a variable of its module
    and neither a dependency nor the `[lambdas]` input, and the value must be one TOML value
    that terraform can take. Every malformed override is reported (file "--set", key: the
    override as given).
    """
    if not overrides:
        return environment
    issues: list[ConfigIssue] = []
    stacks = {stack.name: stack for stack in environment.stacks}
    changed: dict[str, dict[str, Any]] = {}
    for text in overrides:
        where = Path("--set")
        target, equals, raw = text.partition("=")
        stack_name, dot, input_name = target.strip().partition(".")
        if not equals or not dot or not input_name:
            issues.append(
                ConfigIssue(where, text, f"expected NNN_stack.input=VALUE, got {_quote(text)}")
            )
            continue
        stack = stacks.get(stack_name)
        if stack is None:
            known = ", ".join(stacks) or "none"
            issues.append(
                ConfigIssue(
                    where, text, f"no stack {_quote(stack_name)} in {environment.name} ({known})"
                )
            )
            continue
        if input_name not in stack.module.variables:
            issues.append(
                ConfigIssue(
                    where,
                    text,
                    f"module {stack.module.name!r} of {stack_name} has no input "
                    f"{_quote(input_name)}",
                )
            )
            continue
        if any(dep.input_name == input_name for dep in stack.dependencies):
            issues.append(
                ConfigIssue(
                    where, text, f"{input_name!r} comes from [dependencies] of {stack_name}"
                )
            )
            continue
        if input_name == EXTERNAL_ISSUER_INPUT:
            issues.append(
                ConfigIssue(where, text, f"{input_name!r} comes from env.toml's [identity] table")
            )
            continue
        if input_name == stack.lambdas_input:  # its function names are checked in the file
            issues.append(
                ConfigIssue(
                    where,
                    text,
                    f"{input_name!r} lists the functions of {stack_name} ([lambdas] input); "
                    "change it in its stack.toml",
                )
            )
            continue
        try:
            document = tomllib.loads(f"value = {raw.strip()}")
        except (tomllib.TOMLDecodeError, RecursionError):
            document = {}
        if set(document) != {"value"}:  # not TOML, or more than one value ("1\nx = 2")
            issues.append(
                ConfigIssue(
                    where, text, f'expected a TOML value (true, 3, "text"), got {_quote(raw)}'
                )
            )
            continue
        value = document["value"]
        problem = _check_input_value(value)
        if problem:
            issues.append(ConfigIssue(where, text, problem))
            continue
        changed.setdefault(stack_name, dict(stack.inputs))[input_name] = value
    if issues:
        raise ConfigError(issues)
    return replace(
        environment,
        stacks=tuple(
            replace(stack, inputs=MappingProxyType(changed[stack.name]))
            if stack.name in changed
            else stack
            for stack in environment.stacks
        ),
    )
