"""Fixtures of the integration suite: one deployed environment, named by ``FLEET_TARGET_FILE``
(the JSON of ``stackrun output <env> [--local]``), called over HTTP and inspected with boto3.

The target document is read once, when tests are about to run: a missing or unusable file stops
the whole run with one message instead of one error per test. ``--collect-only`` never reads it.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from fleet_itest import (
    TARGET_FILE_VARIABLE,
    TEAM,
    Api,
    Aws,
    Logs,
    Target,
    TargetError,
    TokenError,
    Tokens,
    load_target,
    segment,
    unique_name,
)

_TARGET_KEY = pytest.StashKey[Target]()


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly or not session.items:
        return
    try:
        session.config.stash[_TARGET_KEY] = load_target(os.environ.get(TARGET_FILE_VARIABLE))
    except TargetError as exc:
        pytest.exit(f"integration tests not run: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that need a project of their own write to the environment: mark them `writes`."""
    for item in items:
        if {"new_project", "project_devices"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.writes)


def pytest_report_header(config: pytest.Config) -> str:
    return f"{TARGET_FILE_VARIABLE}={os.environ.get(TARGET_FILE_VARIABLE, '(not set)')}"


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    """The checked target document (environment, region, the API stack's outputs, URLs)."""
    return pytestconfig.stash[_TARGET_KEY]  # loaded by pytest_collection_finish


@pytest.fixture(scope="session")
def aws(target: Target) -> Aws:
    """boto3 clients in the environment's account (deploy role assumed when named)."""
    try:
        clients = Aws(target)
        account = clients.client("sts").get_caller_identity()["Account"]
    except Exception as exc:
        pytest.fail(
            f"cannot get AWS credentials for {target.environment} in {target.region}"
            f"{' via ' + target.deploy_role_arn if target.deploy_role_arn else ''}"
            f"{' at ' + target.aws_endpoint_url if target.aws_endpoint_url else ''}: "
            f"{type(exc).__name__}: {exc}",
            pytrace=False,
        )
    if target.account_id and account != str(target.account_id):
        pytest.fail(
            f"AWS clients act in account {account}, but {target.environment} is account "
            f"{target.account_id}: check target.deploy_role_arn",
            pytrace=False,
        )
    return clients


@pytest.fixture(scope="session")
def aws_session(aws: Aws) -> Any:
    """The boto3 ``Session`` every client comes from."""
    return aws.session


@pytest.fixture(scope="session")
def lambda_client(aws: Aws) -> Any:
    return aws.client("lambda")


@pytest.fixture(scope="session")
def logs_client(aws: Aws) -> Any:
    return aws.client("logs")


@pytest.fixture(scope="session")
def apigateway_client(aws: Aws) -> Any:
    return aws.client("apigatewayv2")


@pytest.fixture(scope="session")
def logs(logs_client: Any) -> Logs:
    return Logs(logs_client)


@pytest.fixture(scope="session")
def api_url(target: Target) -> str:
    """The URL serving the API stack: ``target.api_urls[<stack>]`` (the local server's URL,
    or the real invoke URL)."""
    if target.api_url is None:
        pytest.fail(target.missing_api_url_message(), pytrace=False)
    return target.api_url


@pytest.fixture(scope="session")
def tokens(target: Target) -> Tokens:
    """``tokens.get("fleet/read")``: an access token with these scopes (none: all the scopes of
    the first app client), from the project's token command."""
    return Tokens(target)


@pytest.fixture(scope="session")
def token(tokens: Tokens) -> str:
    """The suite's token: ``fleet/read`` and ``fleet/write`` when an app client may have both
    (the API's callers that register devices), else every scope of the first app client."""
    both = ("fleet/read", "fleet/write")
    try:
        return tokens.get(*both) if tokens.allowed(*both) else tokens.get()
    except TokenError as exc:
        pytest.fail(f"cannot get an access token for the API: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def api(target: Target, api_url: str, logs: Logs, token: str) -> Api:
    """The HTTP client: ``api.request(method, path, json=, raw_body=, headers=, query=,
    token=)`` returns an :class:`~fleet_itest.ApiResponse` that unpacks as ``status, headers,
    body``. Requests carry the suite's token unless ``token=`` says otherwise."""
    context = None
    if api_url.startswith("https:") and target.local and target.ca_bundle:
        context = ssl.create_default_context(cafile=target.ca_bundle)
    return Api(
        base_url=api_url,
        routes=target.routes,
        functions=target.functions,
        logs=logs,
        ssl_context=context,
        token=token,
    )


@pytest.fixture
def new_project(api: Api) -> Callable[..., str]:
    """Creates a project through the API and returns its name.

    The API has no delete: names are unique per call and start with ``itest-`` so runs never
    collide and leftovers are recognisable. ``new_project(name=...)`` picks the name."""

    def create(label: str = "project", *, name: str | None = None) -> str:
        project = name or unique_name(label)
        api.request("POST", "/projects", json={"name": project, "team": TEAM}).expect(201)
        return project

    return create


@pytest.fixture
def devices_path() -> Callable[[str], str]:
    """``/projects/<name percent-encoded>/devices``."""

    def path(project: str) -> str:
        return f"/projects/{segment(project)}/devices"

    return path
