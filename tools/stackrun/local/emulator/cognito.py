"""Cognito user pools in the emulator: per-pool signing keys, discovery, the token endpoint.

Installed by ``server.py`` (``install_patches`` and ``build_app``); listed there as h, i, j.
Each closes a gap between moto (5.2.x) and Cognito that would let a caller or a token verifier
that is wrong for AWS pass against the emulator, or one that is right for AWS fail there.

h. Per-pool signing keys
    moto signs the tokens of every user pool with one RSA key shipped inside moto (kid
    ``dummy``) and serves that same public key as every pool's JWKS, so a token of one pool
    (or of one emulated account) verifies against any other pool's keys. In Cognito each pool
    has its own keys: one for ID tokens and one for access tokens, both listed in
    ``https://cognito-idp.<region>.amazonaws.com/<pool id>/.well-known/jwks.json``. Here every
    pool gets its two RSA-2048 keys when it is created (kid: 32 random bytes in base64, the
    shape of Cognito's kids); ``CognitoIdpUserPool.create_jwt`` (every token moto issues:
    password, refresh and admin flows) signs with the pool's key for the token's use, header
    ``{"kid": <that key's kid>, "alg": "RS256"}``. The JWKS URL answers the pool's two public
    keys (the ID token key first: a verifier must pick the key by ``kid``, as in AWS), and
    ``404 {"message": "User pool <id> does not exist."}`` for an unknown pool. The pool is
    looked up by id across every account and region of ``cognitoidp_backends`` (and must be in
    the region of the host name).

i. OpenID discovery
    moto answers ``/<pool id>/.well-known/openid-configuration`` for any pool id, existing or
    not, with a ``jwks_uri`` built from the host the request was sent to and without any
    endpoint of the pool's domain. Here it is answered like Cognito: 404 for an unknown pool;
    ``issuer`` ``https://cognito-idp.<region>.amazonaws.com/<pool id>`` (the ``iss`` of the
    pool's tokens), ``jwks_uri`` under it, the fixed lists Cognito publishes, and, when the
    pool has a domain, ``authorization_endpoint``, ``token_endpoint``, ``userinfo_endpoint``,
    ``revocation_endpoint`` and ``end_session_endpoint`` on
    ``https://<domain>.auth.<region>.amazoncognito.com``.

    Both well-known documents are served for the ``cognito-idp.<region>.amazonaws.com`` host
    (how ``stackrun.aws.awshttp`` reaches them) and also for the emulator's own address (moto's
    documented server-mode URL ``https://127.0.0.1:<port>/<pool id>/.well-known/jwks.json``),
    with the same content.

j. The OAuth2 token endpoint, client credentials grant
    moto has no token endpoint: a request for ``<domain>.auth.<region>.amazoncognito.com``
    reaches moto's host dispatcher, which knows no such host and hands it to S3.
    ``CognitoEndpoints``, a WSGI middleware placed before the dispatcher, answers
    ``POST /oauth2/token`` for those hosts as Cognito documents it: form-encoded body
    (``application/x-www-form-urlencoded``, else ``invalid_request``), ``grant_type``
    (missing: ``invalid_request``; anything but ``client_credentials``:
    ``unsupported_grant_type``), optional space-separated ``scope``, client authentication by
    HTTP Basic ``client_id:client_secret`` or ``client_id``/``client_secret`` in the body.
    The pool is the one whose domain (``CreateUserPoolDomain``) is the host's first label, in
    the host's region, in any account. Errors are ``400 {"error": ...}``: ``invalid_client``
    (unknown client, client without a secret, wrong secret), ``unauthorized_client``
    (``client_credentials`` not in ``AllowedOAuthFlows`` or
    ``AllowedOAuthFlowsUserPoolClient`` not true), ``invalid_scope`` (a requested scope the
    client is not allowed, or that no resource server of the pool defines; no scope requested
    means all the client's allowed resource-server scopes). The answer is
    ``200 {"access_token", "expires_in", "token_type": "Bearer"}``, the token signed with the
    pool's access-token key and carrying Cognito's claims for this grant: ``sub`` and
    ``client_id`` (the client id), ``token_use`` ``access``, ``scope`` (granted scopes,
    space-separated), ``auth_time``, ``iss``, ``exp``, ``iat``, ``version`` 2, ``jti`` (a
    UUID). Its lifetime is the client's ``AccessTokenValidity`` in the unit of
    ``TokenValidityUnits.AccessToken`` (default unit: hours), 60 minutes when unset. The
    reason for an error is written to the emulator's log, with the client id but never the
    secret. Other paths on these hosts answer 404; the ``authorization_code`` and
    ``refresh_token`` grants (which need the hosted UI) are ``unsupported_grant_type``.

    To keep "which pool owns this domain" unambiguous, ``CreateUserPoolDomain`` refuses, as
    Cognito does, a domain that another existing pool of the region holds in any account
    (``InvalidParameterException: Domain already associated with another user pool.``); moto
    would silently re-point it.

k. ``UpdateResourceServer`` and ``DeleteResourceServer``
    Not implemented by moto (it answers 500). The provider calls the first when an
    ``aws_cognito_resource_server``'s name or scopes change and the second when it is
    destroyed, retrying the 500 for about half an hour, so the destroy of an identity stack
    never finished. Here an update replaces the name and the scopes (omitted scopes: none,
    as in Cognito), a delete removes the resource server, both ``ResourceNotFoundException``
    for an unknown pool or identifier. Scopes of a deleted or changed resource server are no
    longer granted by the token endpoint (``invalid_scope``), even if a client still lists
    them.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

TOKEN_PATH = "/oauth2/token"
CLIENT_CREDENTIALS = "client_credentials"
DEFAULT_ACCESS_TOKEN_SECONDS = 60 * 60
# Cognito's default unit for AccessTokenValidity (and IdTokenValidity) is hours.
DEFAULT_ACCESS_TOKEN_UNIT = "hours"
_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
_MAX_BODY = 64 * 1024
_KEY_BITS = 2048
_KEYS_ATTRIBUTE = "_stackrun_signing_keys"
_TOKEN_USES = ("id", "access")  # JWKS order: the ID token key first, as a reminder to match kid
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

_keys_lock = threading.Lock()


# --- patch h: per-pool signing keys -----------------------------------------------------------


def _new_key() -> Any:
    from joserfc import jwk

    kid = base64.b64encode(secrets.token_bytes(32)).decode()
    return jwk.RSAKey.generate_key(
        _KEY_BITS, parameters={"kid": kid, "alg": "RS256", "use": "sig"}, private=True
    )


def signing_keys(pool: Any) -> dict[str, Any]:
    """The pool's private keys by token use (``id``, ``access``), made on first need."""
    keys = getattr(pool, _KEYS_ATTRIBUTE, None)
    if keys is None:
        with _keys_lock:
            keys = getattr(pool, _KEYS_ATTRIBUTE, None)
            if keys is None:
                keys = {use: _new_key() for use in _TOKEN_USES}
                setattr(pool, _KEYS_ATTRIBUTE, keys)
                # What moto signs with before create_jwt re-signs; nothing else uses it.
                pool.json_web_key = keys["access"]
    return keys


def public_jwks(pool: Any) -> dict[str, Any]:
    keys = signing_keys(pool)
    return {"keys": [keys[use].as_dict(private=False) for use in _TOKEN_USES]}


def sign(pool: Any, token_use: str, claims: dict[str, Any]) -> str:
    """A JWT with Cognito's header, signed with the pool's key for ``token_use``."""
    from joserfc import jwt

    key = signing_keys(pool)["id" if token_use == "id" else "access"]
    header = {"kid": key.kid, "alg": "RS256"}
    return jwt.encode(header, claims, key, default_type=None)


def _patch_pool_init(original: Callable[..., None]) -> Callable[..., None]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        signing_keys(self)

    __init__.__stackrun_patched__ = True  # type: ignore[attr-defined]
    return __init__


def _patch_create_jwt(original: Callable[..., tuple[str, int]]) -> Callable[..., tuple[str, int]]:
    """moto's claims, re-signed with the pool's key and kid (moto hard-codes kid ``dummy``)."""

    def create_jwt(
        self: Any, client_id: str, username: str, token_use: str, *args: Any, **kwargs: Any
    ) -> tuple[str, int]:
        from joserfc import jws

        token, expires_in = original(self, client_id, username, token_use, *args, **kwargs)
        claims = json.loads(jws.extract_compact(token.encode()).payload)
        return sign(self, token_use, claims), expires_in

    create_jwt.__stackrun_patched__ = True  # type: ignore[attr-defined]
    return create_jwt


def _patch_create_domain(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_user_pool_domain(
        self: Any, user_pool_id: str, domain: str, *args: Any, **kwargs: Any
    ) -> Any:
        from moto.cognitoidp.exceptions import InvalidParameterException

        holder = find_pool_by_domain(domain, self.region_name)
        if holder is not None and (holder.account_id, holder.id) != (
            self.account_id,
            user_pool_id,
        ):
            raise InvalidParameterException("Domain already associated with another user pool.")
        return original(self, user_pool_id, domain, *args, **kwargs)

    create_user_pool_domain.__stackrun_patched__ = True  # type: ignore[attr-defined]
    return create_user_pool_domain


# --- patch k: UpdateResourceServer and DeleteResourceServer -----------------------------------


def update_resource_server(self: Any) -> Any:
    """``UpdateResourceServer``, which moto lacks: new name and scopes."""
    from moto.core.responses import ActionResult

    server = self.backend.describe_resource_server(
        self._get_param("UserPoolId"), self._get_param("Identifier")
    )
    server.name = self._get_param("Name")
    server.scopes = self._get_param("Scopes") or []
    return ActionResult({"ResourceServer": server.to_json()})


def delete_resource_server(self: Any) -> Any:
    """``DeleteResourceServer``, which moto lacks."""
    from moto.core.responses import EmptyResult

    user_pool_id, identifier = self._get_param("UserPoolId"), self._get_param("Identifier")
    self.backend.describe_resource_server(user_pool_id, identifier)  # raises when unknown
    self.backend.user_pools[user_pool_id].resource_servers.pop(identifier, None)
    return EmptyResult()


def install_patches() -> None:
    """Apply patches h, j and k to moto's Cognito classes; safe to call more than once."""
    from moto.cognitoidp.models import CognitoIdpBackend, CognitoIdpUserPool
    from moto.cognitoidp.responses import CognitoIdpResponse

    CognitoIdpResponse.update_resource_server = update_resource_server  # type: ignore[attr-defined]
    CognitoIdpResponse.delete_resource_server = delete_resource_server  # type: ignore[attr-defined]

    if not getattr(CognitoIdpUserPool.__init__, "__stackrun_patched__", False):
        CognitoIdpUserPool.__init__ = _patch_pool_init(CognitoIdpUserPool.__init__)  # type: ignore[method-assign]
    if not getattr(CognitoIdpUserPool.create_jwt, "__stackrun_patched__", False):
        CognitoIdpUserPool.create_jwt = _patch_create_jwt(CognitoIdpUserPool.create_jwt)  # type: ignore[method-assign]
    create_domain = CognitoIdpBackend.create_user_pool_domain
    if not getattr(create_domain, "__stackrun_patched__", False):
        CognitoIdpBackend.create_user_pool_domain = _patch_create_domain(create_domain)  # type: ignore[method-assign]


# --- finding pools ----------------------------------------------------------------------------


def _backends(region: str | None = None) -> Iterable[Any]:
    """Every Cognito backend moto has made (one per account and region), without making any.

    The dict methods are used on purpose: moto's ``__getitem__`` would create backends.
    """
    from moto.cognitoidp.models import cognitoidp_backends

    for account_backends in list(dict.values(cognitoidp_backends)):
        for region_name, backend in list(dict.items(account_backends)):
            if region is None or region_name == region:
                yield backend


def find_pool(pool_id: str, region: str | None = None) -> Any:
    """The user pool with this id in any account (and in ``region`` if given), or None."""
    for backend in _backends(region):
        pool = backend.user_pools.get(pool_id)
        if pool is not None:
            return pool
    return None


def find_pool_by_domain(domain: str, region: str) -> Any:
    """The existing user pool that holds ``domain`` in ``region``, in any account, or None.

    moto keeps a domain when its pool is deleted; such a domain belongs to no pool.
    """
    for backend in _backends(region):
        entry = backend.user_pool_domains.get(domain)
        if entry is None:
            continue
        pool = backend.user_pools.get(entry.user_pool_id)
        if pool is not None:
            return pool
    return None


def issuer(pool: Any) -> str:
    return f"https://cognito-idp.{pool.region}.amazonaws.com/{pool.id}"


def domain_url(pool: Any) -> str | None:
    """``https://<domain>.auth.<region>.amazoncognito.com`` (or the custom domain), if any."""
    entry = pool.domain
    if entry is None:
        return None
    if "." in entry.domain:  # a custom domain
        return f"https://{entry.domain}"
    return f"https://{entry.domain}.auth.{pool.region}.amazoncognito.com"


# --- patch i: OpenID discovery ----------------------------------------------------------------


def openid_configuration(pool: Any) -> dict[str, Any]:
    """The discovery document Cognito publishes for ``pool``."""
    document: dict[str, Any] = {
        "id_token_signing_alg_values_supported": ["RS256"],
        "issuer": issuer(pool),
        "jwks_uri": f"{issuer(pool)}/.well-known/jwks.json",
        "response_types_supported": ["code", "token"],
        "scopes_supported": ["openid", "email", "phone", "profile"],
        "subject_types_supported": ["public"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }
    base = domain_url(pool)
    if base is not None:
        document.update(
            {
                "authorization_endpoint": f"{base}/oauth2/authorize",
                "end_session_endpoint": f"{base}/logout",
                "revocation_endpoint": f"{base}/oauth2/revoke",
                "token_endpoint": f"{base}{TOKEN_PATH}",
                "userinfo_endpoint": f"{base}/oauth2/userInfo",
            }
        )
    return dict(sorted(document.items()))


# --- patch j: the token endpoint --------------------------------------------------------------


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

    allowed = list(config.get("AllowedOAuthScopes") or [])
    defined = _resource_server_scopes(pool)
    requested = form.get("scope", "").split()
    if requested:
        for scope in requested:
            if scope not in allowed:
                raise TokenError(
                    "invalid_scope", f"client {client_id} is not allowed scope {scope!r}"
                )
            if scope not in defined:
                raise TokenError(
                    "invalid_scope", f"no resource server of {pool.id} defines scope {scope!r}"
                )
        granted = list(dict.fromkeys(requested))
    else:
        granted = [scope for scope in allowed if scope in defined]
        if not granted:
            raise TokenError(
                "invalid_scope", f"client {client_id} is allowed no resource-server scope"
            )

    lifetime = access_token_seconds(client)
    now = int(time.time())
    claims = {
        "sub": client_id,
        "token_use": "access",
        "scope": " ".join(granted),
        "auth_time": now,
        "iss": issuer(pool),
        "exp": now + lifetime,
        "iat": now,
        "version": 2,
        "jti": str(uuid.uuid4()),
        "client_id": client_id,
    }
    return {
        "access_token": sign(pool, "access", claims),
        "expires_in": lifetime,
        "token_type": "Bearer",
    }


# --- the middleware ---------------------------------------------------------------------------


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
    return environ["wsgi.input"].read(length)


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
