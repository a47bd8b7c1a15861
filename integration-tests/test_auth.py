"""Who may call: every route requires a token from the environment's issuer with the route's
scope. API Gateway (or the local API, which enforces the same authorizer) answers 401 for no,
malformed, foreign, forged or expired tokens and 403 for a missing scope, without invoking the
function; a function that is invoked knows its caller (``created_by``).

The tests that make a token of their own (another pool, another client, a short-lived one)
create and delete Cognito resources: they are marked ``writes``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from fleet_itest import (
    TEAM,
    Api,
    ApiResponse,
    Aws,
    Logs,
    Target,
    Tokens,
    client_credentials_token,
    jwt_claims,
    segment,
    unique_name,
)

READ, WRITE = "fleet/read", "fleet/write"
UNAUTHORIZED = {"message": "Unauthorized"}
FORBIDDEN = {"message": "Forbidden"}


def _route_path(route: str) -> tuple[str, str]:
    method, _, template = route.partition(" ")
    parts = [
        segment(unique_name("auth")) if part.startswith("{") else part
        for part in template.split("/")
    ]
    return method, "/".join(parts)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged(token: str) -> str:
    """The same header and claims, signed RS256 by a key the issuer never had."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    header, payload, _ = token.split(".")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signature = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64(signature)}"


def _assert_refused(response: ApiResponse, status: int) -> None:
    __tracebackhide__ = True
    response.expect(status)
    assert response.body == (UNAUTHORIZED if status == 401 else FORBIDDEN), response.describe(
        "expected API Gateway's own answer"
    )


def _assert_not_invoked(api: Api, logs: Logs, refused: ApiResponse, witness: ApiResponse) -> None:
    """``refused`` never reached its function: the function logged ``witness`` (a request it
    did serve, made after) but nothing of ``refused``'s request id."""
    __tracebackhide__ = True
    key = witness.served_by
    assert key is not None and refused.request_id and witness.request_id, refused.describe(
        "both answers need an apigw-requestid and a route"
    )
    group = api.log_group(key)
    since = int(time.time() * 1000) - 600_000
    found = logs.wait_for(group, [witness.request_id], since, timeout_s=60)
    assert found is not None, witness.describe(f"{group} never logged the witness request")
    leaked = [e for e in logs.events_since(group, since) if refused.request_id in e.message]
    assert not leaked, refused.describe(f"the function was invoked: {leaked[0].line()}")


def _assert_read_not_invoked(
    api: Api, logs: Logs, tokens: Tokens, path: str, refused: ApiResponse
) -> None:
    """``refused``, a ``GET`` of ``path`` (an unknown project's devices), never reached
    list_devices: the witness is the same ``GET`` with a read token (the function's 404)."""
    __tracebackhide__ = True
    witness = api.request("GET", path, token=tokens.get(READ)).expect(404)
    _assert_not_invoked(api, logs, refused, witness)


def test_every_route_refuses_a_request_without_a_token(api: Api) -> None:
    assert api.routes, "the API has no routes"
    for route in sorted(api.routes):
        method, path = _route_path(route)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        _assert_refused(api.request(method, path, json=body, token=None), 401)


def test_malformed_and_non_bearer_tokens_are_401(api: Api, devices_path: Any, token: str) -> None:
    path = devices_path(unique_name("auth"))
    for bad in ("", "x", "a.b.c", token + "x", token.rsplit(".", 1)[0] + ".AAAA"):
        _assert_refused(api.request("GET", path, token=bad or None), 401)
    response = api.request("GET", path, token=None, headers={"Authorization": f"Basic {token}"})
    _assert_refused(response, 401)


def test_no_token_is_answered_without_invoking_the_function(
    api: Api, logs: Logs, devices_path: Any, tokens: Tokens
) -> None:
    path = devices_path(unique_name("auth"))
    refused = api.request("GET", path, token=None)
    _assert_refused(refused, 401)
    _assert_read_not_invoked(api, logs, tokens, path, refused)


def test_a_read_token_reads_but_may_not_write(
    api: Api, logs: Logs, devices_path: Any, tokens: Tokens
) -> None:
    read = tokens.get(READ)
    assert jwt_claims(read).get("scope", "").split() == [READ]
    path = devices_path(unique_name("auth"))
    # authorized: the function answers (an unknown project is its 404, not the gateway's 401)
    api.request("GET", path, token=read).expect(404)
    refused = api.request("POST", "/projects", json={"name": "x", "team": TEAM}, token=read)
    _assert_refused(refused, 403)
    # create_project was not invoked: it logs a request it does serve (an invalid body: 400,
    # nothing stored), but not the refused one. Needs a client that may write.
    if not tokens.allowed(WRITE):
        return
    witness = api.request("POST", "/projects", json={}, token=tokens.get(WRITE)).expect(400)
    _assert_not_invoked(api, logs, refused, witness)


@pytest.mark.writes
def test_a_write_token_creates_and_the_caller_is_recorded(
    api: Api, devices_path: Any, tokens: Tokens
) -> None:
    write, read = tokens.get(WRITE), tokens.get(READ)
    caller = jwt_claims(write)["sub"]
    name = unique_name("auth")
    project = api.request("POST", "/projects", json={"name": name, "team": TEAM}, token=write)
    project.expect(201)
    assert project.json_object()["project"]["created_by"] == caller, project.describe()
    device = api.request("POST", devices_path(name), json={"name": "d-1"}, token=write)
    device.expect(201)
    assert device.json_object()["device"]["created_by"] == caller, device.describe()
    listed = api.request("GET", devices_path(name), token=read).expect(200)
    assert [d["created_by"] for d in listed.json_object()["devices"]] == [caller], listed.describe(
        "the stored device must carry its creator"
    )
    # a read token reads what a write token wrote, and may not write itself
    refused = api.request("POST", devices_path(name), json={"name": "d-2"}, token=read)
    _assert_refused(refused, 403)


def test_a_token_signed_by_another_key_is_401(
    api: Api, logs: Logs, devices_path: Any, tokens: Tokens
) -> None:
    read = tokens.get(READ)
    path = devices_path(unique_name("auth"))
    refused = api.request("GET", path, token=_forged(read))
    _assert_refused(refused, 401)
    _assert_read_not_invoked(api, logs, tokens, path, refused)


def test_a_token_with_altered_claims_is_401(api: Api, devices_path: Any, tokens: Tokens) -> None:
    header, _payload, signature = tokens.get(READ).split(".")
    claims = jwt_claims(tokens.get(READ))
    claims["scope"] = f"{READ} {WRITE}"
    altered = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    _assert_refused(api.request("GET", devices_path(unique_name("auth")), token=altered), 401)


# ---- tokens of other issuers and clients (they create Cognito resources) ------------------------


def _pool_id(target: Target) -> str:
    identity = target.identity or {}
    issuer = identity.get("issuer") or ""
    if not identity.get("token_endpoint") or "cognito-idp." not in issuer:
        pytest.skip(f"{target.environment} uses an external issuer ({issuer or 'unknown'})")
    return issuer.rstrip("/").rsplit("/", 1)[1]


@contextlib.contextmanager
def _temporary_client(
    aws: Aws, pool_id: str, scope: str, validity: tuple[int, str] | None = None
) -> Iterator[dict[str, Any]]:
    """An app client of the pool that the API's authorizer does not list as an audience."""
    cognito = aws.client("cognito-idp")
    args: dict[str, Any] = {
        "UserPoolId": pool_id,
        "ClientName": unique_name("client"),
        "GenerateSecret": True,
        "AllowedOAuthFlows": ["client_credentials"],
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthScopes": [scope],
    }
    if validity:
        args["AccessTokenValidity"] = validity[0]
        args["TokenValidityUnits"] = {"AccessToken": validity[1]}
    client = cognito.create_user_pool_client(**args)["UserPoolClient"]
    try:
        yield client
    finally:
        cognito.delete_user_pool_client(UserPoolId=pool_id, ClientId=client["ClientId"])


def _token_of(target: Target, client: dict[str, Any], scope: str) -> str:
    endpoint = (target.identity or {})["token_endpoint"]
    status, answer = client_credentials_token(
        target, endpoint, client["ClientId"], client["ClientSecret"], scope
    )
    assert status == 200 and "access_token" in answer, f"token endpoint: {status} {answer}"
    return str(answer["access_token"])


@pytest.mark.writes
def test_a_token_for_another_client_of_the_pool_is_401(
    api: Api, aws: Aws, target: Target, logs: Logs, devices_path: Any, tokens: Tokens
) -> None:
    pool_id = _pool_id(target)
    with _temporary_client(aws, pool_id, READ) as client:
        foreign = _token_of(target, client, READ)
        assert jwt_claims(foreign)["client_id"] == client["ClientId"]
        path = devices_path(unique_name("auth"))
        refused = api.request("GET", path, token=foreign)
        _assert_refused(refused, 401)
    _assert_read_not_invoked(api, logs, tokens, path, refused)


@pytest.mark.writes
def test_a_token_of_another_pool_is_401(
    api: Api, aws: Aws, target: Target, logs: Logs, devices_path: Any, tokens: Tokens
) -> None:
    _pool_id(target)
    cognito = aws.client("cognito-idp")
    pool = cognito.create_user_pool(PoolName=unique_name("pool"))["UserPool"]
    try:
        client = cognito.create_user_pool_client(
            UserPoolId=pool["Id"],
            ClientName="itest",
            ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]
        password = f"Aa1!{uuid.uuid4().hex}"
        cognito.admin_create_user(UserPoolId=pool["Id"], Username="itest", MessageAction="SUPPRESS")
        cognito.admin_set_user_password(
            UserPoolId=pool["Id"], Username="itest", Password=password, Permanent=True
        )
        result = cognito.admin_initiate_auth(
            UserPoolId=pool["Id"],
            ClientId=client["ClientId"],
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "itest", "PASSWORD": password},
        )["AuthenticationResult"]
        foreign = result["AccessToken"]
        assert pool["Id"] in jwt_claims(foreign)["iss"]
        path = devices_path(unique_name("auth"))
        refused = api.request("GET", path, token=foreign)
        _assert_refused(refused, 401)
    finally:
        cognito.delete_user_pool(UserPoolId=pool["Id"])
    _assert_read_not_invoked(api, logs, tokens, path, refused)


@contextlib.contextmanager
def _accepted_by_the_api(aws: Aws, target: Target, client_id: str) -> Iterator[None]:
    """The API's authorizer accepts ``client_id`` too while the block runs (restored after)."""
    gateway = aws.client("apigatewayv2")
    api_id = target.api_outputs["api_id"]
    authorizer_id = target.api_outputs["authorizer_id"]
    # JwtConfiguration is replaced as a whole: the issuer is sent along with the audience
    original = gateway.get_authorizer(ApiId=api_id, AuthorizerId=authorizer_id)["JwtConfiguration"]
    widened = {**original, "Audience": [*original["Audience"], client_id]}
    gateway.update_authorizer(ApiId=api_id, AuthorizerId=authorizer_id, JwtConfiguration=widened)
    try:
        yield
    finally:
        gateway.update_authorizer(
            ApiId=api_id, AuthorizerId=authorizer_id, JwtConfiguration=original
        )


@pytest.mark.writes
def test_an_expired_token_is_401(
    api: Api, aws: Aws, target: Target, logs: Logs, devices_path: Any, tokens: Tokens
) -> None:
    """A client's token is accepted, then refused once it has expired. The client lives only
    for the test and is made an audience of the API's authorizer meanwhile. Its token lifetime
    is the shortest the target takes: AWS accepts 5 minutes at least (the test then waits that
    long), the emulator seconds."""
    pool_id = _pool_id(target)
    cognito = aws.client("cognito-idp")
    with contextlib.ExitStack() as stack:
        try:
            client = stack.enter_context(
                _temporary_client(aws, pool_id, READ, validity=(5, "seconds"))
            )
        except cognito.exceptions.InvalidParameterException:
            client = stack.enter_context(
                _temporary_client(aws, pool_id, READ, validity=(5, "minutes"))
            )
        stack.enter_context(_accepted_by_the_api(aws, target, client["ClientId"]))
        token = _token_of(target, client, READ)
        claims = jwt_claims(token)
        assert int(claims["exp"]) - int(claims["iat"]) <= 300, claims
        path = devices_path(unique_name("auth"))
        # accepted while valid: the function answers (an unknown project: its 404)
        api.request("GET", path, token=token).expect(404)
        time.sleep(max(0.0, int(claims["exp"]) - time.time()) + 2)
        after = api.request("GET", path, token=token)
        _assert_refused(after, 401)
    _assert_read_not_invoked(api, logs, tokens, path, after)
