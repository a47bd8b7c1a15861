"""Test helpers: API Gateway HTTP API (payload format 2.0) events, a Lambda context stub and
a small invoker. Standard library only; part of fleet-testing, never shipped in a function zip.

The events follow what an HTTP API sends a Lambda integration with
``payload_format_version = "2.0"``: ``rawPath`` and ``pathParameters`` URL-decoded,
``rawQueryString`` percent-encoded, ``queryStringParameters`` decoded (a repeated parameter
comma-joined), lower-case header names, no ``body`` key when there is no body.

Every event carries a verified caller by default, as API Gateway's JWT authorizer delivers it:
``requestContext.authorizer.jwt.claims`` (:data:`DEFAULT_CLAIMS`: a Cognito client-credentials
token of the client :data:`TEST_CLIENT_ID`, whose ``sub`` is that client id) and ``.scopes``,
plus the ``authorization: Bearer <TEST_TOKEN>`` header the client sent. ``claims=`` picks
another caller (:func:`jwt_claims` builds the claims); ``claims=None`` builds an event without
any verified identity (no authorizer, no token), which the functions answer 401.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode

__all__ = [
    "DEFAULT_CLAIMS",
    "DEFAULT_SCOPES",
    "TEST_CLIENT_ID",
    "TEST_SUB",
    "TEST_TOKEN",
    "HttpResult",
    "LambdaContext",
    "http_event",
    "invoke",
    "jwt_claims",
]

ACCOUNT_ID = "123456789012"
API_ID = "abcdef1234"
REGION = "eu-west-1"
USER_POOL_ID = f"{REGION}_FleetTest"

#: The app client of the default caller (Cognito client ids: 26 lower-case letters/digits).
TEST_CLIENT_ID = "4fleettests0client0id00000"
#: A client-credentials token's ``sub`` is its client id.
TEST_SUB = TEST_CLIENT_ID
DEFAULT_SCOPES = ("fleet/read", "fleet/write")
#: The (fake, unsigned) bearer token of the default events: what must never be logged.
TEST_TOKEN = (
    "eyJraWQiOiJmbGVldC10ZXN0IiwiYWxnIjoiUlMyNTYifQ."
    "eyJzdWIiOiI0ZmxlZXR0ZXN0czBjbGllbnQwaWQwMDAwMCJ9."
    "ZmxlZXQtdGVzdC1zaWduYXR1cmUtbm90LWEtcmVhbC1vbmU"
)


def jwt_claims(
    sub: str = TEST_SUB,
    *,
    client_id: str | None = None,
    scopes: Sequence[str] = DEFAULT_SCOPES,
    **extra: str,
) -> dict[str, str]:
    """The claims of a Cognito client-credentials access token, as the JWT authorizer passes
    them on (all strings): ``sub``, ``client_id`` (default: ``sub``), ``scope``
    (space-separated), ``iss``, ``token_use``, ``auth_time``/``iat``/``exp``, ``jti``,
    ``version``; ``extra`` adds or replaces claims (e.g. ``aud``, ``azp``)."""
    now = int(time.time())
    claims = {
        "sub": sub,
        "client_id": sub if client_id is None else client_id,
        "scope": " ".join(scopes),
        "iss": f"https://cognito-idp.{REGION}.amazonaws.com/{USER_POOL_ID}",
        "token_use": "access",
        "auth_time": str(now),
        "iat": str(now),
        "exp": str(now + 3600),
        "jti": str(uuid.uuid4()),
        "version": "2",
    }
    claims.update(extra)
    return claims


#: The verified claims every :func:`http_event` carries unless told otherwise.
DEFAULT_CLAIMS: Mapping[str, str] = MappingProxyType(jwt_claims())


def http_event(
    method: str,
    path: str,
    route_key: str | None = None,
    path_parameters: Mapping[str, str] | None = None,
    body: Any = None,
    query: Mapping[str, str | Sequence[str]] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    base64_body: bool = False,
    stage: str = "$default",
    claims: Mapping[str, str] | None = DEFAULT_CLAIMS,
    scopes: Sequence[str] | None = None,
    token: str = TEST_TOKEN,
) -> dict[str, Any]:
    """An HTTP API v2.0 event for ``method`` on ``path`` (decoded, as API Gateway sends it).

    ``route_key`` defaults to ``"<method> <path>"`` (right for routes without parameters).
    ``body``: a ``str`` is sent as it is, anything else (``dict``, ``list``, ...) as JSON;
    ``None`` sends no body. ``query`` values may be lists (repeated parameters).

    ``claims``: the verified JWT claims (default :data:`DEFAULT_CLAIMS`), put at
    ``requestContext.authorizer.jwt`` with ``scopes`` (default: the ``scope`` claim split),
    and ``token`` as the ``authorization: Bearer`` header. ``claims=None``: no authorizer
    data and no ``authorization`` header (a request without verified identity).
    """
    method = method.upper()
    # Shaped like a real HTTP API request id, e.g. "JKJaXmPLvHcESHA=".
    request_id = request_id or base64.b64encode(uuid.uuid4().bytes[:11]).decode("ascii")[:15] + "="
    now = time.time()
    all_headers = {
        "accept": "application/json",
        "host": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
        "user-agent": "fleet-tests/1.0",
        "x-amzn-trace-id": f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]}",
        "x-forwarded-for": "198.51.100.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if claims is not None:
        all_headers["authorization"] = f"Bearer {token}"
    text: str | None = None
    if body is not None:
        text = body if isinstance(body, str) else json.dumps(body)
        all_headers["content-type"] = "application/json"
        all_headers["content-length"] = str(len(text.encode("utf-8")))
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})

    pairs: list[tuple[str, str]] = []
    for key, value in (query or {}).items():
        values = [value] if isinstance(value, str) else list(value)
        pairs.extend((key, v) for v in values)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key or f"{method} {path}",
        "rawPath": path if stage == "$default" else f"/{stage}{path}",
        # surrogatepass: tests may send values that are not valid Unicode (lone surrogates)
        "rawQueryString": urlencode(pairs, errors="surrogatepass"),
        "headers": all_headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
            "domainPrefix": API_ID,
            "http": {
                "method": method,
                "path": path if stage == "$default" else f"/{stage}{path}",
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "fleet-tests/1.0",
            },
            "requestId": request_id,
            "routeKey": route_key or f"{method} {path}",
            "stage": stage,
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if claims is not None:
        if scopes is None:
            scope = claims.get("scope")
            scopes = scope.split() if isinstance(scope, str) else []
        event["requestContext"]["authorizer"] = {
            "jwt": {"claims": dict(claims), "scopes": list(scopes)}
        }
    if pairs:
        joined: dict[str, str] = {}
        for key, value in pairs:
            joined[key] = f"{joined[key]},{value}" if key in joined else value
        event["queryStringParameters"] = joined
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if text is not None:
        if base64_body:
            event["body"] = base64.b64encode(text.encode("utf-8")).decode("ascii")
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
    return event


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that powertools and the handlers read."""

    function_name: str = "fleet-test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/fleet-test-function"
    log_stream_name: str = "2025/01/01/[$LATEST]0123456789abcdef"
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:fleet-test-function"
    timeout_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


@dataclass(frozen=True)
class HttpResult:
    """What a handler returned: status, headers and the body (``json``: parsed)."""

    status: int
    headers: dict[str, str]
    body: str
    raw: dict[str, Any]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def invoke(
    handler: Callable[[dict[str, Any], Any], dict[str, Any]],
    event: dict[str, Any],
    context: Any = None,
) -> HttpResult:
    """Call ``handler(event, context)`` and unpack the API Gateway response."""
    response = handler(event, context if context is not None else LambdaContext())
    headers = {str(k).lower(): str(v) for k, v in (response.get("headers") or {}).items()}
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8")
    return HttpResult(status=int(response["statusCode"]), headers=headers, body=body, raw=response)
