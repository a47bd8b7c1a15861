"""What API Gateway (HTTP API) does between a client and a function, as plain functions.

Route selection (most specific route wins, then ``$default``), the payload format 2.0 event
a function receives, and how its answer becomes an HTTP response: a dict with ``statusCode``
is taken as given; anything else is a 200 with the value as its JSON body; a function error
is a 500 ``{"message": "Internal Server Error"}``, as API Gateway answers it.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
JSON = {"content-type": "application/json"}
NOT_FOUND = (404, JSON, b'{"message":"Not Found"}')
INTERNAL_ERROR = (500, JSON, b'{"message":"Internal Server Error"}')
SERVICE_UNAVAILABLE = (503, JSON, b'{"message":"Service Unavailable"}')


@dataclass(frozen=True)
class Route:
    """One route of an HTTP API: its key (``GET /items/{id}`` or ``$default``), its target
    and how it is authorized (``NONE``, or ``JWT`` with an authorizer and scopes)."""

    key: str
    target: str  # "integrations/<id>"
    authorization_type: str = "NONE"
    authorizer_id: str = ""
    authorization_scopes: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> Route:
        """From an item of apigatewayv2 GetRoutes (boto3 shape)."""
        return cls(
            key=item["RouteKey"],
            target=item.get("Target", ""),
            authorization_type=item.get("AuthorizationType") or "NONE",
            authorizer_id=item.get("AuthorizerId") or "",
            authorization_scopes=tuple(item.get("AuthorizationScopes") or ()),
        )

    @property
    def method(self) -> str:
        return "ANY" if self.key == "$default" else self.key.split(" ", 1)[0].upper()

    @property
    def segments(self) -> list[str]:
        if self.key == "$default":
            return []
        return [part for part in self.key.split(" ", 1)[1].split("/") if part]

    @property
    def integration_id(self) -> str:
        return self.target.removeprefix("integrations/")


def match_route(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route API Gateway selects for `method` `path`, and the path parameters it binds."""
    parts = [unquote(part) for part in path.split("/") if part]
    candidates: list[tuple[tuple[int, int, int], Route, dict[str, str]]] = []
    for route in routes:
        if route.key == "$default":
            continue
        if route.method not in (method.upper(), "ANY"):
            continue
        parameters = _bind(route.segments, parts)
        if parameters is None:
            continue
        literal = sum(1 for segment in route.segments if not segment.startswith("{"))
        greedy = any(segment.endswith("+}") for segment in route.segments)
        # More literal segments first, then non-greedy, then an exact method over ANY.
        rank = (literal, 0 if greedy else 1, 1 if route.method != "ANY" else 0)
        candidates.append((rank, route, parameters))
    if candidates:
        _, route, parameters = max(candidates, key=lambda item: item[0])
        return route, parameters
    default = next((route for route in routes if route.key == "$default"), None)
    return (default, {}) if default else None


def _bind(segments: list[str], parts: list[str]) -> dict[str, str] | None:
    parameters: dict[str, str] = {}
    for index, segment in enumerate(segments):
        if segment.startswith("{") and segment.endswith("+}"):
            if index >= len(parts):
                return None
            parameters[segment[1:-2]] = "/".join(parts[index:])
            return parameters if index == len(segments) - 1 else None
        if index >= len(parts):
            return None
        if segment.startswith("{") and segment.endswith("}"):
            parameters[segment[1:-1]] = parts[index]
        elif segment != parts[index]:
            return None
    return parameters if len(parts) == len(segments) else None


def function_of_integration(uri: str) -> str:
    """The function (ARN, possibly qualified) an AWS_PROXY integration URI points at."""
    found = re.search(r"/functions/(arn:[^/]+)/invocations", uri)
    return found.group(1) if found else uri


@dataclass(frozen=True)
class HttpRequest:
    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str


def build_event(
    request: HttpRequest,
    route: Route,
    path_parameters: dict[str, str],
    *,
    api_id: str,
    stage: str,
    account_id: str,
    domain: str,
    request_id: str,
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The payload format 2.0 event API Gateway sends for `request` on `route`.

    `authorizer` is what the route's authorizer passes on (``{"jwt": {"claims": ...,
    "scopes": ...}}``), delivered as ``requestContext.authorizer``.
    """
    headers, cookies = _headers_and_cookies(request)
    query = _query_parameters(request.raw_query)
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": domain.split(".", 1)[0],
            "http": {
                "method": request.method.upper(),
                "path": request.raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.key,
            "stage": stage,
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if request.body:
        event.update(_encoded_body(request.body, headers.get("content-type", "")))
    return event


def _query_parameters(raw_query: str) -> dict[str, str]:
    """The query string's parameters (repeats joined with commas), as API Gateway passes them."""
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    return query


def _encoded_body(body: bytes, content_type: str) -> dict[str, Any]:
    """``body`` as text when it is UTF-8 of a text type, else base64 with ``isBase64Encoded``."""
    if content_type.startswith(TEXT_TYPES) and _is_utf8(body):
        return {"body": body.decode("utf-8")}
    return {"body": base64.b64encode(body).decode("ascii"), "isBase64Encoded": True}


def _headers_and_cookies(request: HttpRequest) -> tuple[dict[str, str], list[str]]:
    """Headers by lower-case name (repeats joined with commas), and the cookies apart."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        lower = name.lower()
        if lower == "cookie":
            cookies += [part.strip() for part in value.split(";") if part.strip()]
            continue
        headers[lower] = f"{headers[lower]},{value}" if lower in headers else value
    return headers, cookies


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def http_response(payload: bytes) -> tuple[int, dict[str, str], bytes]:
    """The HTTP response API Gateway makes of a function's payload format 2.0 answer."""
    try:
        result = json.loads(payload) if payload else None
    except ValueError:
        return INTERNAL_ERROR
    if isinstance(result, dict) and "statusCode" in result:
        try:
            status = int(result["statusCode"])
        except (TypeError, ValueError):
            return INTERNAL_ERROR
        headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        body = result.get("body")
        if body is None:
            data = b""
        elif result.get("isBase64Encoded"):
            data = base64.b64decode(str(body))
        else:
            data = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
        if result.get("cookies"):
            headers["set-cookie"] = ", ".join(str(c) for c in result["cookies"])
        return status, headers, data
    # Anything else is the body of a 200 (API Gateway's inference for format 2.0).
    return 200, {"content-type": "application/json"}, payload
