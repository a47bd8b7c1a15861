"""The Cognito URLs that are not SDK APIs, answered before moto's host dispatch: each pool's JWKS
and OpenID discovery document, and the OAuth2 token endpoint's client credentials grant
(patches h, i, j; ``cognito.py`` tells what each closes)."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from .cognito import (
    TOKEN_PATH,
    find_pool,
    find_pool_by_domain,
    issuer,
    openid_configuration,
    public_jwks,
    sign,
)
from .middleware import WSGIApp

CLIENT_CREDENTIALS = "client_credentials"
DEFAULT_ACCESS_TOKEN_SECONDS = 60 * 60
# Cognito's default unit for AccessTokenValidity (and IdTokenValidity) is hours.
DEFAULT_ACCESS_TOKEN_UNIT = "hours"
_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
_MAX_BODY = 64 * 1024
_GRANTS_NEEDING_HOSTED_UI = {"authorization_code", "refresh_token"}
_AUTH_HOST = re.compile(
    r"^(?P<domain>[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)\.auth\.(?P<region>[a-z0-9-]+)"
    r"\.amazoncognito\.com$"
)
_IDP_HOST = re.compile(r"^cognito-idp\.(?P<region>[a-z0-9-]+)\.amazonaws\.com$")
_WELL_KNOWN = re.compile(
    r"^/(?P<pool>[^/]+)/\.well-known/(?P<document>jwks\.json|openid-configuration)$"
)
# On the emulator's own address only paths that can only be a pool's are taken.
_POOL_ID = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+_[0-9A-Za-z]+$")
_AWS_HOST_SUFFIXES = (".amazonaws.com", ".amazoncognito.com")


class TokenError(Exception):
    """An OAuth2 error answer: ``error`` goes to the client, ``reason`` to the log only."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(error)
        self.error = error
        self.reason = reason


def access_token_seconds(client: Any) -> int:
    """The client's access token lifetime, as Cognito computes it from the client's settings.

    moto stores ``AccessTokenValidity`` and ``TokenValidityUnits`` as given in
    ``CreateUserPoolClient``/``UpdateUserPoolClient``, in ``client.extended_config``.
    """
    config = client.extended_config
    value = config.get("AccessTokenValidity")
    if value in (None, ""):
        return DEFAULT_ACCESS_TOKEN_SECONDS
    units = config.get("TokenValidityUnits") or {}
    unit = str(units.get("AccessToken") or DEFAULT_ACCESS_TOKEN_UNIT).lower()
    try:
        return int(value) * _UNIT_SECONDS.get(unit, _UNIT_SECONDS[DEFAULT_ACCESS_TOKEN_UNIT])
    except (TypeError, ValueError):
        return DEFAULT_ACCESS_TOKEN_SECONDS


def _resource_server_scopes(pool: Any) -> set[str]:
    return {
        f"{identifier}/{scope['ScopeName']}"
        for identifier, server in list(pool.resource_servers.items())
        for scope in (getattr(server, "scopes", None) or [])
        if isinstance(scope, dict) and scope.get("ScopeName")
    }


def _client_credentials(
    authorization: str | None, form: dict[str, str]
) -> tuple[str | None, str | None]:
    """(client id, secret) from HTTP Basic or the body; only one way may give a secret."""
    body_id, body_secret = form.get("client_id"), form.get("client_secret")
    if not authorization:
        return body_id, body_secret
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise TokenError("invalid_client", "Authorization is not HTTP Basic")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise TokenError(
            "invalid_client", "Authorization: Basic is not base64 of id:secret"
        ) from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise TokenError("invalid_client", "Authorization: Basic is not client_id:client_secret")
    if body_secret is not None:
        raise TokenError("invalid_request", "client_secret both in Authorization and in the body")
    if body_id is not None and body_id != client_id:
        raise TokenError("invalid_client", "client_id in the body differs from Authorization")
    return client_id, secret


def issue_client_credentials_token(
    pool: Any, authorization: str | None, form: dict[str, str]
) -> dict[str, Any]:
    """The token endpoint's answer for a client credentials request (raises TokenError)."""
    grant_type = form.get("grant_type")
    if not grant_type:
        raise TokenError("invalid_request", "grant_type is missing")
    if grant_type != CLIENT_CREDENTIALS:
        reason = f"grant_type {grant_type!r} is not supported"
        if grant_type in _GRANTS_NEEDING_HOSTED_UI:
            reason += " by the emulator (no hosted UI); only client_credentials is"
        raise TokenError("unsupported_grant_type", reason)
    client = _authenticated_client(pool, authorization, form)
    granted = _granted_scopes(pool, client, form.get("scope", "").split())
    lifetime = access_token_seconds(client)
    now = int(time.time())
    claims = {
        "sub": client.id,
        "token_use": "access",
        "scope": " ".join(granted),
        "auth_time": now,
        "iss": issuer(pool),
        "exp": now + lifetime,
        "iat": now,
        "version": 2,
        "jti": str(uuid.uuid4()),
        "client_id": client.id,
    }
    return {
        "access_token": sign(pool, "access", claims),
        "expires_in": lifetime,
        "token_type": "Bearer",
    }


def _authenticated_client(pool: Any, authorization: str | None, form: dict[str, str]) -> Any:
    """The pool's client the request authenticates as, allowed the client credentials flow."""
    client_id, secret = _client_credentials(authorization, form)
    if not client_id:
        raise TokenError("invalid_client", "no client_id (Authorization: Basic or body)")
    client = pool.clients.get(client_id)
    if client is None:
        raise TokenError("invalid_client", f"no client {client_id} in user pool {pool.id}")
    if not client.generate_secret:
        raise TokenError("invalid_client", f"client {client_id} has no secret")
    if secret is None or not hmac.compare_digest(secret.encode(), client.secret.encode()):
        raise TokenError("invalid_client", f"wrong or missing secret for client {client_id}")

    config = client.extended_config
    if CLIENT_CREDENTIALS not in (config.get("AllowedOAuthFlows") or []):
        raise TokenError(
            "unauthorized_client",
            f"client {client_id}: client_credentials not in AllowedOAuthFlows",
        )
    if str(config.get("AllowedOAuthFlowsUserPoolClient")).lower() != "true":
        raise TokenError(
            "unauthorized_client",
            f"client {client_id}: AllowedOAuthFlowsUserPoolClient is not true",
        )
    return client


def _granted_scopes(pool: Any, client: Any, requested: list[str]) -> list[str]:
    """The scopes asked for, each allowed and defined; none asked for: all allowed and defined."""
    allowed = list(client.extended_config.get("AllowedOAuthScopes") or [])
    defined = _resource_server_scopes(pool)
    if not requested:
        granted = [scope for scope in allowed if scope in defined]
        if not granted:
            raise TokenError(
                "invalid_scope", f"client {client.id} is allowed no resource-server scope"
            )
        return granted
    for scope in requested:
        if scope not in allowed:
            raise TokenError("invalid_scope", f"client {client.id} is not allowed scope {scope!r}")
        if scope not in defined:
            raise TokenError(
                "invalid_scope", f"no resource server of {pool.id} defines scope {scope!r}"
            )
    return list(dict.fromkeys(requested))


def _host(environ: dict[str, Any]) -> str:
    host = (environ.get("HTTP_HOST") or "").strip().lower()
    if host.startswith("["):  # [::1]:4566
        return host[: host.find("]") + 1]
    return host.partition(":")[0]


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise TokenError("invalid_request", "Content-Length is not a number") from None
    if length > _MAX_BODY:
        raise TokenError("invalid_request", f"body larger than {_MAX_BODY} bytes")
    if length <= 0:
        return b""
    body: bytes = environ["wsgi.input"].read(length)
    return body


def _parse_form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise TokenError("invalid_request", "the body is not UTF-8") from None
    form: dict[str, str] = {}
    for name, values in parse_qs(text, keep_blank_values=True).items():
        if len(values) > 1:
            raise TokenError("invalid_request", f"parameter {name!r} given more than once")
        form[name] = values[0]
    return form


def _log(message: str) -> None:
    print(f"cognito: {message}", file=sys.stderr, flush=True)


class CognitoEndpoints:
    """WSGI middleware: the Cognito URLs that are not SDK APIs (patches h, i and j).

    It must run before moto's ``DomainDispatcherApplication``, which would hand a request for
    ``<domain>.auth.<region>.amazoncognito.com`` to S3.
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        host = _host(environ)
        auth_host = _AUTH_HOST.match(host)
        if auth_host is not None:
            return self._auth_domain(environ, start_response, **auth_host.groupdict())
        method = environ.get("REQUEST_METHOD", "GET")
        well_known = _WELL_KNOWN.match(environ.get("PATH_INFO", ""))
        if well_known is not None and method in ("GET", "HEAD"):
            pool_id, document = well_known.group("pool", "document")
            idp_host = _IDP_HOST.match(host)
            if idp_host is not None:
                return self._well_known(
                    start_response, method, pool_id, document, idp_host.group("region")
                )
            if not host.endswith(_AWS_HOST_SUFFIXES) and _POOL_ID.match(pool_id):
                return self._well_known(start_response, method, pool_id, document, None)
        return self.app(environ, start_response)

    def _well_known(
        self,
        start_response: Callable[..., Any],
        method: str,
        pool_id: str,
        document: str,
        region: str | None,
    ) -> list[bytes]:
        pool = find_pool(pool_id, region)
        if pool is None:
            return _json(
                start_response,
                "404 Not Found",
                {
                    "code": "ResourceNotFoundException",
                    "message": f"User pool {pool_id} does not exist.",
                },
                method,
            )
        body = public_jwks(pool) if document == "jwks.json" else openid_configuration(pool)
        return _json(start_response, "200 OK", body, method)

    def _auth_domain(
        self, environ: dict[str, Any], start_response: Callable[..., Any], domain: str, region: str
    ) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if environ.get("PATH_INFO", "") != TOKEN_PATH:
            _log(
                f"{method} {environ.get('PATH_INFO', '')} on {domain}: only {TOKEN_PATH} is served"
            )
            return _json(start_response, "404 Not Found", {"error": "not_found"}, method)
        if method != "POST":
            return _json(
                start_response,
                "405 Method Not Allowed",
                {"error": "invalid_request"},
                method,
                [("Allow", "POST")],
            )
        pool = find_pool_by_domain(domain, region)
        if pool is None:
            _log(f"token request for {domain}.auth.{region}.amazoncognito.com: no such domain")
            return _json(start_response, "404 Not Found", {"error": "not_found"}, method)
        try:
            content_type = (environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
            if content_type != "application/x-www-form-urlencoded":
                raise TokenError(
                    "invalid_request", "Content-Type is not application/x-www-form-urlencoded"
                )
            form = _parse_form(_read_body(environ))
            answer = issue_client_credentials_token(pool, environ.get("HTTP_AUTHORIZATION"), form)
        except TokenError as error:
            _log(f"token request for {pool.id}: {error.error}: {error.reason}")
            return _json(start_response, "400 Bad Request", {"error": error.error}, method)
        except Exception as error:  # never let a traceback (with request data) reach the log
            _log(f"token request for {pool.id} failed: {type(error).__name__}")
            return _json(
                start_response, "500 Internal Server Error", {"error": "server_error"}, method
            )
        return _json(start_response, "200 OK", answer, method)


def _json(
    start_response: Callable[..., Any],
    status: str,
    body: dict[str, Any],
    method: str,
    extra_headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    data = json.dumps(body).encode()
    headers = [
        ("Content-Type", "application/json;charset=UTF-8"),
        ("Content-Length", str(len(data))),
        ("Cache-Control", "no-store"),
        ("Pragma", "no-cache"),
        *(extra_headers or []),
    ]
    start_response(status, headers)
    return [b""] if method == "HEAD" else [data]
