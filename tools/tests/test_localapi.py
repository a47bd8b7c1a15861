"""The local API's pieces: API Gateway routing and events, and the awslambdaric runtime.

The runtime tests start the real runtime interface client (awslambdaric, in the local
python3.12 runtime environment) against the local Runtime API; nothing is imported in-process.
The JWT authorizer tests run the real HTTP server (serve_api) against an API in the emulator,
with a stub function and an injected key set (test_localapi_authorizer.py tests the logic).
"""

from __future__ import annotations

import base64
import json
import os
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from emulated_api import local_context
from emulated_repo import emulated_session
from stackrun.local.api import authorizer as jwtauth
from stackrun.local.api import gateway, http_server
from stackrun.local.api.functions import runtime_python, split_function_arn
from stackrun.local.api.http_server import LocalContext, serve_api
from stackrun.local.api.runtime import FunctionProcess, Outcome, ProcessSpec, clean_environment
from stackrun.local.emulator import Emulator

ROUTES = [
    gateway.Route("GET /projects/{project}/devices", "integrations/list"),
    gateway.Route("POST /projects/{project}/devices", "integrations/register"),
    gateway.Route("GET /projects/special/devices", "integrations/special"),
    gateway.Route("ANY /files/{path+}", "integrations/files"),
    gateway.Route("$default", "integrations/default"),
]


@pytest.mark.parametrize(
    ("method", "path", "target", "parameters"),
    [
        ("GET", "/projects/p1/devices", "integrations/list", {"project": "p1"}),
        ("POST", "/projects/p1/devices", "integrations/register", {"project": "p1"}),
        ("GET", "/projects/special/devices", "integrations/special", {}),
        ("GET", "/projects/a%2Fb/devices", "integrations/list", {"project": "a/b"}),
        ("DELETE", "/files/a/b/c.txt", "integrations/files", {"path": "a/b/c.txt"}),
        ("PUT", "/projects/p1/devices", "integrations/default", {}),
        ("GET", "/nothing/here", "integrations/default", {}),
    ],
)
def test_routes_are_selected_like_api_gateway(method, path, target, parameters):
    route, bound = gateway.match_route(ROUTES, method, path)
    assert (route.target, bound) == (target, parameters)


def test_without_a_default_route_an_unmatched_request_has_no_route():
    routes = [route for route in ROUTES if route.key != "$default"]
    assert gateway.match_route(routes, "GET", "/projects") is None
    assert gateway.match_route(routes, "GET", "/projects/p1/devices/extra") is None


def test_the_event_is_payload_format_2():
    request = gateway.HttpRequest(
        method="POST",
        raw_path="/projects/p1/devices",
        raw_query="limit=5&tag=a&tag=b",
        headers=[
            ("Content-Type", "application/json"),
            ("X-Multi", "1"),
            ("x-multi", "2"),
            ("Cookie", "a=1; b=2"),
        ],
        body=b'{"name": "d"}',
        source_ip="127.0.0.1",
    )
    route = ROUTES[1]
    event = gateway.build_event(
        request,
        route,
        {"project": "p1"},
        api_id="abc",
        stage="$default",
        account_id="111111111111",
        domain="abc.execute-api.eu-west-1.amazonaws.com",
        request_id="rid",
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /projects/{project}/devices"
    assert event["headers"]["x-multi"] == "1,2"
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["queryStringParameters"] == {"limit": "5", "tag": "a,b"}
    assert event["pathParameters"] == {"project": "p1"}
    assert (event["body"], event["isBase64Encoded"]) == ('{"name": "d"}', False)
    context = event["requestContext"]
    assert (context["requestId"], context["accountId"], context["apiId"]) == (
        "rid",
        "111111111111",
        "abc",
    )
    assert context["http"]["method"] == "POST"

    binary = gateway.HttpRequest(
        "POST", "/x", "", [("content-type", "image/png")], b"\x89PNG", "127.0.0.1"
    )
    event = gateway.build_event(
        binary, route, {}, api_id="a", stage="$default", account_id="1", domain="d", request_id="r"
    )
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x89PNG"


def test_routes_carry_their_authorization_and_the_event_its_result():
    item = {
        "RouteKey": "GET /things/{id}",
        "Target": "integrations/i1",
        "AuthorizationType": "JWT",
        "AuthorizerId": "auth01",
        "AuthorizationScopes": ["fleet/read"],
    }
    route = gateway.Route.from_api(item)
    assert (route.authorization_type, route.authorizer_id, route.authorization_scopes) == (
        "JWT",
        "auth01",
        ("fleet/read",),
    )
    plain = gateway.Route.from_api({"RouteKey": "GET /open", "AuthorizationType": "NONE"})
    assert (plain.authorization_type, plain.authorization_scopes, plain.target) == ("NONE", (), "")
    request = gateway.HttpRequest("GET", "/things/1", "", [], b"", "127.0.0.1")
    context = {"jwt": {"claims": {"sub": "u"}, "scopes": ["fleet/read"]}}
    kwargs = dict(api_id="a", stage="$default", account_id="1", domain="d", request_id="r")
    event = gateway.build_event(request, route, {"id": "1"}, authorizer=context, **kwargs)
    assert event["requestContext"]["authorizer"] == context
    assert "authorizer" not in gateway.build_event(request, plain, {}, **kwargs)["requestContext"]


def test_function_answers_become_http_responses():
    answer = {"statusCode": 201, "headers": {"Location": "/x"}, "body": '{"ok": true}'}
    assert gateway.http_response(json.dumps(answer).encode()) == (
        201,
        {"location": "/x"},
        b'{"ok": true}',
    )
    encoded = {
        "statusCode": 200,
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    }
    assert gateway.http_response(json.dumps(encoded).encode())[2] == b"\x00\x01"
    # anything without statusCode is the JSON body of a 200
    assert gateway.http_response(b'{"a": 1}') == (200, gateway.JSON, b'{"a": 1}')
    assert gateway.http_response(b"not json")[0] == 500
    assert gateway.http_response(b'{"statusCode": "x"}')[0] == 500


def test_integration_uris_name_the_function():
    arn = "arn:aws:lambda:eu-west-1:111111111111:function:fleet-dev-x:live"
    uri = f"arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/{arn}/invocations"
    assert gateway.function_of_integration(uri) == arn
    assert gateway.function_of_integration(arn) == arn
    assert split_function_arn(arn) == ("fleet-dev-x", "live")
    assert split_function_arn("fleet-dev-x") == ("fleet-dev-x", None)


# ---- the runtime: awslambdaric against the local Runtime API ----------------------------------

HANDLERS = """
import os
import time


def echo(event, context):
    return {
        "event": event,
        "function": context.function_name,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory": context.memory_limit_in_mb,
        "region": os.environ.get("AWS_REGION"),
    }


def slow(event, context):
    print("going to sleep")
    time.sleep(30)


def greedy(event, context):
    blocks = [bytearray(64 * 1024 * 1024) for _ in range(8)]  # 512 MB
    return len(blocks)


def fails(event, context):
    raise ValueError("bad input " + str(event.get("n")))
"""


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Path:
    directory = os.environ.get("STACKRUN_RUNTIME_DIR") or str(tmp_path_factory.mktemp("rt"))
    return runtime_python("python3.12", Path(directory))


def _process(runtime: Path, tmp_path: Path, handler: str, timeout: int = 3, memory: int = 128):
    (tmp_path / "app.py").write_text(textwrap.dedent(HANDLERS))
    lines: list[str] = []
    spec = ProcessSpec(
        name="fn",
        version="7",
        function_arn="arn:aws:lambda:eu-west-1:111111111111:function:fn:live",
        python=runtime,
        task_root=tmp_path,
        handler=handler,
        timeout_seconds=timeout,
        memory_mb=memory,
        environment=clean_environment(
            {
                "AWS_LAMBDA_FUNCTION_NAME": "fn",
                "AWS_LAMBDA_FUNCTION_VERSION": "7",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
                "AWS_REGION": "eu-west-1",
                "PYTHONPATH": str(tmp_path),
            }
        ),
    )
    return FunctionProcess(spec, lines.append), lines


def test_the_runtime_client_runs_the_handler_warm_with_a_lambda_context(runtime, tmp_path):
    process, lines = _process(runtime, tmp_path, "app.echo", timeout=3)
    try:
        first = process.invoke(b'{"n": 1}')
        second = process.invoke(b'{"n": 2}')
    finally:
        process.stop()
    assert not first.failed, first.error
    result = json.loads(first.payload)
    assert result["event"] == {"n": 1}
    assert result["function"] == "fn"
    assert result["request_id"] == first.request_id
    assert 0 < result["remaining_ms"] <= 3000
    assert result["memory"] == "128"
    assert result["region"] == "eu-west-1"
    assert first.init_ms is not None and second.init_ms is None  # one cold start, then warm
    assert json.loads(second.payload)["event"] == {"n": 2}
    assert any(line.startswith(f"START RequestId: {first.request_id} Version: 7") for line in lines)
    assert any(line.startswith(f"REPORT RequestId: {second.request_id}") for line in lines)


def test_a_handler_error_is_reported_like_lambda(runtime, tmp_path):
    process, lines = _process(runtime, tmp_path, "app.fails")
    try:
        outcome = process.invoke(b'{"n": 3}')
    finally:
        process.stop()
    assert outcome.error["errorType"] == "ValueError"
    assert outcome.error["errorMessage"] == "bad input 3"
    assert any("bad input 3" in line for line in lines)


def test_an_unknown_handler_fails_init_with_the_cause(runtime, tmp_path):
    process, _ = _process(runtime, tmp_path, "nope.handler")
    try:
        outcome = process.invoke(b"{}")
    finally:
        process.stop()
    assert outcome.error["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'nope'" in outcome.error["errorMessage"]


def test_the_timeout_kills_the_environment_and_the_next_call_starts_fresh(runtime, tmp_path):
    process, lines = _process(runtime, tmp_path, "app.slow", timeout=1)
    try:
        outcome = process.invoke(b"{}")
        assert outcome.error["errorType"] == "Sandbox.Timedout"
        assert "Task timed out after 1.00 seconds" in outcome.error["errorMessage"]
        assert "going to sleep" in lines
        again = process.invoke(b"{}")
        assert again.init_ms is not None  # a new environment
    finally:
        process.stop()


def test_the_memory_size_bounds_the_function(runtime, tmp_path):
    small, _ = _process(runtime, tmp_path, "app.greedy", memory=128)
    large, _ = _process(runtime, tmp_path, "app.greedy", memory=1024)
    try:
        refused = small.invoke(b"{}")
        allowed = large.invoke(b"{}")
    finally:
        small.stop()
        large.stop()
    assert refused.failed and refused.error["errorType"] in ("MemoryError", "Runtime.ExitError")
    assert not allowed.failed, allowed.error
    assert json.loads(allowed.payload) == 8


# ---- the JWT authorizer, through the real HTTP server ---------------------------------------

JWT_REGION = "eu-west-1"
JWT_ACCOUNT = "246813579024"  # an account of its own in the shared emulator
JWT_ISSUER = f"https://cognito-idp.{JWT_REGION}.amazonaws.com/{JWT_REGION}_LocalApiJwt"


@dataclass
class JwtApi:
    url: str
    context: LocalContext
    invoked: list[dict]  # the events the (stub) function received
    lines: list[str]  # the server's console
    fetches: list[str]  # issuers whose key set was fetched
    key: RSAKey

    def token(self, **overrides) -> str:
        now = int(time.time())
        claims = {
            "sub": "user-1",
            "iss": JWT_ISSUER,
            "client_id": "client-a",
            "token_use": "access",
            "scope": "fleet/read",
            "iat": now - 5,
            "exp": now + 300,
            "cognito:groups": ["ops", "dev"],
        }
        claims.update(overrides)
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)

    def call(self, method: str, path: str, token: str | None = None, scheme: str = "Bearer "):
        request = urllib.request.Request(self.url.rstrip("/") + path, method=method)
        if token is not None:
            request.add_header("Authorization", scheme + token)
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, dict(reply.headers.items()), reply.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers.items()), error.read()


def _emulated_session(emulator) -> tuple[boto3.Session, dict, Emulator]:
    return emulated_session(emulator, JWT_ACCOUNT, JWT_REGION, "localapi-jwt")


@pytest.fixture
def jwt_api(emulator, tmp_path, monkeypatch):
    """An HTTP API in the emulator whose routes use a JWT authorizer, served by serve_api.

    The function behind it is a stub that records its event (the runtime is tested above);
    the issuer's key set comes from an injected fetcher.
    """
    session, client_args, running = _emulated_session(emulator)
    apigateway = session.client("apigatewayv2", **client_args)
    api_id = apigateway.create_api(Name="localapi-jwt", ProtocolType="HTTP")["ApiId"]
    authorizer_id = apigateway.create_authorizer(
        ApiId=api_id,
        Name="localapi-jwt",
        AuthorizerType="JWT",
        IdentitySource=["$request.header.Authorization"],
        JwtConfiguration={"Issuer": JWT_ISSUER, "Audience": ["client-a", "client-b"]},
    )["AuthorizerId"]
    function_arn = f"arn:aws:lambda:{JWT_REGION}:{JWT_ACCOUNT}:function:localapi-jwt-fn:live"
    integration_id = apigateway.create_integration(
        ApiId=api_id,
        IntegrationType="AWS_PROXY",
        IntegrationUri=function_arn,
        PayloadFormatVersion="2.0",
    )["IntegrationId"]
    routes = {
        "GET /things/{id}": ["fleet/read"],
        "POST /things": ["fleet/write"],
        "GET /anyone": [],
    }
    for key, scopes in routes.items():
        apigateway.create_route(
            ApiId=api_id,
            RouteKey=key,
            Target=f"integrations/{integration_id}",
            AuthorizationType="JWT",
            AuthorizerId=authorizer_id,
            **({"AuthorizationScopes": scopes} if scopes else {}),
        )
    apigateway.create_route(
        ApiId=api_id, RouteKey="GET /open", Target=f"integrations/{integration_id}"
    )
    apigateway.create_route(
        ApiId=api_id,
        RouteKey="GET /iam",
        Target=f"integrations/{integration_id}",
        AuthorizationType="AWS_IAM",
    )
    apigateway.create_stage(ApiId=api_id, StageName="$default")

    key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
    fetches: list[str] = []

    def fetch_jwks(issuer: str) -> dict:
        fetches.append(issuer)
        return {"keys": [key.as_dict(private=False)]}

    context, lines = local_context(
        running,
        session,
        client_args,
        ("jwt", JWT_ACCOUNT, JWT_REGION),
        (tmp_path / "cache", tmp_path / "runtimes"),
        jwks_fetcher=fetch_jwks,
    )
    invoked: list[dict] = []
    function = SimpleNamespace(name="localapi-jwt-fn", version="3")
    monkeypatch.setattr(http_server, "resolve", lambda client, reference, random_source: function)

    def invoke(function, event) -> Outcome:
        invoked.append(event)
        answer = {"statusCode": 200, "body": json.dumps(event["requestContext"].get("authorizer"))}
        return Outcome("rid", json.dumps(answer).encode(), None, 1.0, None)

    context.invoke = invoke
    served = serve_api(context, api_id, "localapi-jwt", 0)
    try:
        yield JwtApi(served.url, context, invoked, lines, fetches, key)
    finally:
        served.server.shutdown()
        served.server.server_close()
        context.close()
        apigateway.delete_api(ApiId=api_id)


def test_a_jwt_route_without_a_token_is_401_and_nothing_is_invoked(jwt_api):
    status, headers, body = jwt_api.call("GET", "/things/1")
    assert (status, body) == (401, b'{"message":"Unauthorized"}')
    assert headers["www-authenticate"] == "Bearer"
    assert headers["content-type"] == "application/json"
    assert "apigw-requestid" in headers and "x-stackrun-function" not in headers
    assert jwt_api.invoked == []
    assert jwt_api.fetches == []
    assert jwt_api.lines[-1].endswith("(no token)")
    assert " GET /things/1 -> 401 in " in jwt_api.lines[-1]


def test_a_bad_token_is_401_and_the_console_names_the_reason_never_the_token(jwt_api):
    expired = jwt_api.token(exp=int(time.time()) - 10)
    foreign = jwt_api.token(iss="https://issuer.example.com")
    for token, reason in ((expired, "expired"), (foreign, "issuer"), ("garbage", "malformed")):
        status, headers, body = jwt_api.call("GET", "/things/1", token)
        assert (status, body) == (401, b'{"message":"Unauthorized"}')
        assert 'error="invalid_token"' in headers["www-authenticate"]
        assert jwt_api.lines[-1].endswith(f"({reason})")
    assert jwt_api.invoked == []
    console = "\n".join(jwt_api.lines)
    for token in (expired, foreign):
        assert token not in console and token.split(".")[2] not in console


def test_a_token_without_the_routes_scope_is_403_and_nothing_is_invoked(jwt_api):
    status, headers, body = jwt_api.call("POST", "/things", jwt_api.token(scope="fleet/read"))
    assert (status, body) == (403, b'{"message":"Forbidden"}')
    assert 'error="insufficient_scope"' in headers["www-authenticate"]
    assert jwt_api.invoked == []
    assert jwt_api.lines[-1].endswith("(scope)")


def test_a_valid_token_reaches_the_function_with_the_authorizer_context(jwt_api):
    token = jwt_api.token(scope="openid fleet/read")
    status, headers, body = jwt_api.call("GET", "/things/7", token, scheme="bearer ")
    assert status == 200, body
    assert headers["x-stackrun-function"] == "localapi-jwt-fn:3"
    (event,) = jwt_api.invoked
    assert event["pathParameters"] == {"id": "7"}
    authorizer = event["requestContext"]["authorizer"]
    assert json.loads(body) == authorizer
    assert authorizer["jwt"]["scopes"] == ["openid", "fleet/read"]
    claims = authorizer["jwt"]["claims"]
    assert claims["sub"] == "user-1" and claims["cognito:groups"] == "[ops dev]"
    assert claims["exp"].isdigit() and claims["iat"].isdigit()
    # the function still gets the header, as from API Gateway; the console does not
    assert event["headers"]["authorization"] == "bearer " + token
    assert token not in "\n".join(jwt_api.lines)
    # a route without scopes: any valid token, scopes null
    status, _, body = jwt_api.call("GET", "/anyone", jwt_api.token(scope="openid"))
    assert status == 200 and json.loads(body)["jwt"]["scopes"] is None
    # the key set was fetched once for all of it
    assert jwt_api.fetches == [JWT_ISSUER]


def test_a_route_without_authorization_is_not_checked(jwt_api):
    status, _, body = jwt_api.call("GET", "/open")
    assert (status, body) == (200, b"null")
    assert "authorizer" not in jwt_api.invoked[0]["requestContext"]


def test_an_authorization_type_not_served_locally_fails_closed(jwt_api):
    status, _, body = jwt_api.call("GET", "/iam", jwt_api.token())
    assert (status, body) == (500, b'{"message":"Internal Server Error"}')
    assert jwt_api.invoked == []
    assert "authorization type AWS_IAM is not served locally" in jwt_api.lines[-1]


def test_the_key_set_of_a_cognito_issuer_is_fetched_from_the_emulator(emulator):
    """issuer -> openid-configuration -> jwks_uri, both answered by the emulator."""
    session, client_args, running = _emulated_session(emulator)
    cognito = session.client("cognito-idp", **client_args)
    pool_id = cognito.create_user_pool(PoolName="localapi-jwt")["UserPool"]["Id"]
    issuer = f"https://cognito-idp.{JWT_REGION}.amazonaws.com/{pool_id}"
    try:
        jwks = jwtauth.discover_jwks(issuer, endpoint=running.endpoint, ca_bundle=running.ca_bundle)
    except jwtauth.KeyFetchError as error:
        if "openid-configuration: HTTP 404" in str(error):
            pytest.skip(f"this emulator serves no OpenID configuration: {error}")
        raise
    finally:
        cognito.delete_user_pool(UserPoolId=pool_id)
    assert jwks["keys"] and all(key["kty"] == "RSA" and key["kid"] for key in jwks["keys"])
