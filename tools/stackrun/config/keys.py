"""What each file of live/ may hold: the names' patterns and the key schemas of project.toml,
env.toml and stack.toml (checks.Key: type check, whether required, what is expected)."""

from __future__ import annotations

import re

from stackrun.config.checks import Key, is_bool, is_int, is_number, is_str, is_str_table, is_table

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
DURATION_PATTERN = re.compile(r"\A[0-9]+[smh]\Z")  # a duration: "90s", "5m", "1h"


# GitHub: an owner (user or organisation) of 1-39 letters, digits and '-', not starting with
# '-'; a repository name of letters, digits, '.', '_' and '-' (not "." or "..").
GITHUB_REPOSITORY_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}\Z")
# A plain git branch name (a subset of git check-ref-format): no '..', '//', '@{', no trailing
# '/' or '.lock', no leading '-' or '/'.
BRANCH_PATTERN = re.compile(r"\A[A-Za-z0-9._][A-Za-z0-9._/-]{0,254}\Z")
# A key of the `[lambdas]` input: a folder of lambdas/ (build.discover skips names starting
# with '.' or '_') that also makes an AWS Lambda function name (letters, digits, '_', '-').
FUNCTION_NAME_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")


def duration_seconds(duration: str) -> int:
    """'90s', '5m', '1h' -> seconds."""
    unit = {"s": 1, "m": 60, "h": 3600}[duration[-1]]
    return int(duration[:-1]) * unit


# project.toml

PROJECT_SCHEMA = {
    "project": Key(is_table, "a table [project]", required=True),
    "backend": Key(is_table, "a table [backend]"),
    "terraform": Key(is_table, "a table [terraform]"),
    "local": Key(is_table, "a table [local]"),
    "github": Key(is_table, 'a table [github] with repository = "owner/repo"'),
}
PROJECT_TABLE = {
    "name": Key(is_str, "a string: lowercase letters, digits and '-', 3 to 32 chars", True),
    "default_region": Key(is_str, 'an AWS region name such as "eu-west-1"', True),
    "tags": Key(is_str_table, "a table of string tags"),
}
BACKEND_TABLE = {
    "bucket": Key(is_str, "a name template using {project}, {account_id}, {region}, {env}"),
    "lock_table": Key(is_str, "a name template using {project}, {account_id}, {region}, {env}"),
    "deletion_protection": Key(is_bool, "true or false"),
}
TERRAFORM_TABLE = {
    "version": Key(is_str, 'a terraform version constraint such as ">= 1.10"'),
    "aws_provider_version": Key(is_str, "a version constraint for hashicorp/aws"),
    "lock_timeout": Key(is_str, 'a duration such as "5m" (s, m or h)'),
    "provider_mirror": Key(is_str, "a path to an unpacked provider mirror (relative to repo)"),
}
LOCAL_TABLE = {
    "port": Key(is_int, "a TCP port number between 1024 and 65535"),
}
GITHUB_TABLE = {
    "repository": Key(is_str, 'the GitHub repository as "owner/repo"', True),
    "branch": Key(is_str, 'the branch deploys run from, e.g. "main"'),
}

TEMPLATE_FIELDS = {"project", "account_id", "region", "env"}

# env.toml

ENV_SCHEMA = {
    "account_id": Key(is_str, 'a quoted string of 12 digits, e.g. "111111111111"', True),
    "region": Key(is_str, 'an AWS region name such as "eu-west-1"'),
    "deploy_role": Key(is_str, "an IAM role name or role ARN in this account", True),
    "plan_role": Key(is_str, "an IAM role name or role ARN in this account"),
    "protected": Key(is_bool, "true or false"),
    "lambda_architecture": Key(
        lambda value: value in ("arm64", "x86_64"), '"arm64" (the default) or "x86_64"'
    ),
    "tags": Key(is_str_table, "a table of string tags"),
    "promote_from": Key(
        is_str,
        'the name of another environment, e.g. "stage": deploys of this one may take its '
        "tested function zips (deploy --promote-from), and the account baselines let this "
        "environment's deploy role read it",
    ),
    "identity": Key(
        is_table,
        'a table [identity] with issuer = "https://..." and audience = ["..."] (an external '
        "OIDC issuer instead of the project's Cognito user pool)",
    ),
}
IDENTITY_TABLE = {
    "issuer": Key(is_str, "the issuer's https URL, its tokens' \"iss\" value", True),
    "audience": Key(
        lambda value: isinstance(value, list) and all(isinstance(v, str) for v in value),
        'an array of the audience values the API accepts, e.g. ["api://fleet"]',
        True,
    ),
}
ISSUER_PATTERN = re.compile(r"\Ahttps://[^/?#\s@]+(/[^?#\s]*)?\Z")

# env.toml keys naming the roles of a run (validated alike), and the plan role's default: the
# name modules/account-baseline gives it.
ROLE_KEYS = ("deploy_role", "plan_role")
DEFAULT_PLAN_ROLE = "fleet-plan"

BUCKET_NAME_PATTERN = re.compile(r"\A[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
TABLE_NAME_PATTERN = re.compile(r"\A[A-Za-z0-9_.-]{3,255}\Z")

# stack.toml

STACK_SCHEMA = {
    "module": Key(is_str, "the name of a folder under modules/", True),
    "description": Key(is_str, "a string"),
    "inputs": Key(is_table, "a table of module inputs"),
    "database": Key(
        is_table, "an empty table [database] (the module creates a PostgreSQL database)"
    ),
    "after": Key(
        lambda value: isinstance(value, list) and all(isinstance(v, str) for v in value),
        'an array of earlier stacks this one waits for, e.g. ["027_migrations"]',
    ),
    "lambdas": Key(is_table, 'a table [lambdas] with input = "<module input>"'),
    "policy": Key(is_table, 'a table [policy.skip] of CHECK_ID = "why it does not apply"'),
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
CHECK_ID_PATTERN = re.compile(r"\ACKV2?_[A-Z0-9]+_[0-9]+\Z")

LAMBDAS_TABLE = {
    "input": Key(is_str, "the name of the module input that lists the functions", True),
    "canary": Key(is_table, "a table [lambdas.canary] (share, duration, max_error_rate, ...)"),
    "invoke_on_deploy": Key(
        lambda value: isinstance(value, list) and all(isinstance(v, str) for v in value),
        "an array of function names (keys of the functions input) to invoke on every deploy",
    ),
}

CANARY_SETTINGS = {
    "share": Key(
        lambda v: is_number(v) and 0 < v < 1,
        "the share of the alias's traffic the new version gets, a number between 0 and 1 "
        "exclusive (e.g. 0.25)",
    ),
    "duration": Key(
        lambda v: isinstance(v, str) and bool(DURATION_PATTERN.fullmatch(v)),
        'how long the new version is watched, a duration such as "90s" or "5m"',
    ),
    "max_error_rate": Key(
        lambda v: is_number(v) and 0 <= v < 1,
        "the highest share of the new version's invocations that may fail, 0 <= rate < 1",
    ),
    "max_errors": Key(
        lambda v: is_int(v) and v >= 0, "the most errors the new version may have, an integer"
    ),
}
CANARY_FUNCTION_SETTINGS = {
    **CANARY_SETTINGS,
    "enabled": Key(is_bool, "true or false (false: the function's versions take all traffic)"),
}
