"""A function behind an HTTP API in the emulator, made with boto3 calls as a deploy would: the
local API's tests and its bench (benchmarks/localapi_bench.py) build on these."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def deploy_role_session(endpoint: str, ca_bundle: str, account: str, region: str, name: str):
    """(boto3 session as the account's deploy role, client args) on the emulator at endpoint."""
    import boto3

    from stackrun.aws.target import LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY

    client_args = {"endpoint_url": endpoint, "verify": ca_bundle}
    base = boto3.Session(LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY, region_name=region)
    credentials = base.client("sts", **client_args).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/deploy", RoleSessionName=name
    )["Credentials"]
    session = boto3.Session(
        credentials["AccessKeyId"],
        credentials["SecretAccessKey"],
        credentials["SessionToken"],
        region_name=region,
    )
    return session, client_args


def create_function(session: Any, client_args: dict[str, str], name: str, code: bytes) -> None:
    """A python3.12 function `name` running app.handler of the zip `code`, with a role of its
    own that Lambda may assume."""
    role = session.client("iam", **client_args).create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
    )["Role"]["Arn"]
    session.client("lambda", **client_args).create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": code},
        Timeout=10,
    )


def function_with_two_versions(
    session: Any, client_args: dict[str, str], name: str, source: Callable[[str], str]
) -> Any:
    """`name` (create_function) with version 1 running app.py `source("one")` and version 2
    running `source("two")`; returns its Lambda client."""
    lambda_ = session.client("lambda", **client_args)
    for version, mark in (("1", "one"), ("2", "two")):
        code = app_zip(source(mark))
        if version == "1":
            create_function(session, client_args, name, code)
        else:
            lambda_.update_function_code(FunctionName=name, ZipFile=code)
        assert lambda_.publish_version(FunctionName=name)["Version"] == version
    return lambda_


def app_zip(source: str) -> bytes:
    """A zip holding app.py with `source`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


def http_api(
    session: Any, client_args: dict[str, str], name: str, alias_arn: str, route_key: str
) -> tuple[str, str]:
    """An HTTP API whose `route_key` invokes `alias_arn` (payload 2.0), on its $default stage;
    the ids of the API and of its integration."""
    apigateway = session.client("apigatewayv2", **client_args)
    api_id: str = apigateway.create_api(Name=name, ProtocolType="HTTP")["ApiId"]
    integration_id = apigateway.create_integration(
        ApiId=api_id,
        IntegrationType="AWS_PROXY",
        IntegrationUri=alias_arn,
        PayloadFormatVersion="2.0",
    )["IntegrationId"]
    apigateway.create_route(
        ApiId=api_id, RouteKey=route_key, Target=f"integrations/{integration_id}"
    )
    apigateway.create_stage(ApiId=api_id, StageName="$default")
    return api_id, integration_id


def local_context(
    running: Any,
    session: Any,
    client_args: dict[str, str],
    scope: tuple[str, str, str],
    folders: tuple[Path, Path],
    **settings: Any,
) -> tuple[Any, list[str]]:
    """A LocalContext for serving APIs of the emulator's account `scope` (environment name,
    account id, region) with no database, its cache and runtimes in `folders`; and the list
    its console lines go to."""
    from stackrun.local.api.http_server import LocalContext

    environment_name, account_id, region = scope
    cache_dir, runtimes_dir = folders
    lines: list[str] = []
    context = LocalContext(
        environment_name=environment_name,
        account_id=account_id,
        region=region,
        endpoint=running.endpoint,
        ca_bundle=running.ca_bundle,
        session=session,
        client_args=client_args,
        cache_dir=cache_dir,
        runtimes_dir=runtimes_dir,
        database=None,
        console=lines.append,
        **settings,
    )
    return context, lines
