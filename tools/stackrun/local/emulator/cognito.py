"""Cognito user pools in the emulator: per-pool signing keys, discovery, the token endpoint.

Installed by ``server.py`` (``install_patches`` and ``build_app``); listed there as h, i, j, k.
The URLs that are not SDK APIs (JWKS, discovery, the token endpoint) are answered by
``cognito_endpoints.py``.
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
import json
import secrets
import threading
from collections.abc import Callable, Iterable
from typing import Any

TOKEN_PATH = "/oauth2/token"
_KEY_BITS = 2048
_KEYS_ATTRIBUTE = "_stackrun_signing_keys"
_TOKEN_USES = ("id", "access")  # JWKS order: the ID token key first, as a reminder to match kid
_keys_lock = threading.Lock()


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
