"""The JWT authorizer of an HTTP API, evaluated the way API Gateway documents it.

API Gateway's workflow for a route whose ``AuthorizationType`` is ``JWT``
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html):

1. take the token from the authorizer's identity source (``$request.header.Authorization``):
   the token alone, or prefixed with ``Bearer`` (any case);
2. decode it;
3. check its algorithm (RSA only) and signature with the key named by its ``kid`` in the
   issuer's key set: ``<issuer>/.well-known/openid-configuration`` names the ``jwks_uri``;
4. check the claims: ``iss`` is the configured issuer, ``aud`` (``client_id`` when there is no
   ``aud``) is one of the configured audience entries, ``exp`` is after now, ``nbf`` and ``iat``
   are not after now;
5. when the route has authorization scopes, the token's ``scope``/``scp`` must hold one.

A failure of steps 1-4 is ``401 {"message":"Unauthorized"}`` with a ``www-authenticate``
challenge, of step 5 ``403 {"message":"Forbidden"}``; the integration is not invoked. On
success the integration's event gets ``requestContext.authorizer.jwt`` (claims as strings,
see `render_claims`, and ``scopes``).

Everything here is pure logic except `discover_jwks` (two HTTPS GETs through `awshttp`, so a
Cognito issuer resolves to the emulator) and the per-issuer cache of key sets, `KeyCache`.
Nothing here ever writes the token anywhere: a `Decision` carries a short reason only.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from stackrun.aws import awshttp

# "Currently, only RSA-based algorithms are supported": RSASSA-PKCS1-v1_5 with SHA-2.
RSA_ALGORITHMS: dict[str, type[hashes.HashAlgorithm]] = {
    "RS256": hashes.SHA256,
    "RS384": hashes.SHA384,
    "RS512": hashes.SHA512,
}
# How long a fetched key set is used before it is fetched again (API Gateway: "can cache the
# public key for two hours"; locally shorter). An unknown kid refetches at once.
JWKS_TTL_SECONDS = 300.0
DEFAULT_IDENTITY_SOURCE = "$request.header.Authorization"

JSON_CONTENT = {"content-type": "application/json"}
UNAUTHORIZED_BODY = b'{"message":"Unauthorized"}'
FORBIDDEN_BODY = b'{"message":"Forbidden"}'

# A JWKS fetcher: issuer -> its JSON Web Key Set ({"keys": [...]}); raises KeyFetchError.
JwksFetcher = Callable[[str], dict[str, Any]]

_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")
_BEARER = re.compile(r"^bearer(?:\s+|$)", re.IGNORECASE)
_IDENTITY_SOURCE = re.compile(r"^\$request\.(header|querystring)\.(.+)$")


class KeyFetchError(Exception):
    """The issuer's key set cannot be fetched (unreachable, not found, not a key set)."""


class AuthorizerConfigError(Exception):
    """The authorizer cannot be evaluated locally (not JWT, no issuer, unknown source)."""


# ---- the authorizer's configuration ---------------------------------------------------------


@dataclass(frozen=True)
class JwtAuthorizer:
    """A JWT authorizer as GetAuthorizer describes it."""

    authorizer_id: str
    issuer: str
    audience: tuple[str, ...]
    identity_source: tuple[str, ...] = (DEFAULT_IDENTITY_SOURCE,)

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> JwtAuthorizer:
        """From an apigatewayv2 GetAuthorizer answer (boto3 shape)."""
        if item.get("AuthorizerType") != "JWT":
            raise AuthorizerConfigError(
                f"authorizer {item.get('AuthorizerId')} is of type {item.get('AuthorizerType')}, "
                "not JWT"
            )
        config = item.get("JwtConfiguration") or {}
        issuer = config.get("Issuer") or ""
        if not issuer:
            raise AuthorizerConfigError(f"authorizer {item.get('AuthorizerId')} has no issuer")
        sources = item.get("IdentitySource") or [DEFAULT_IDENTITY_SOURCE]
        if isinstance(sources, str):
            sources = [sources]
        for source in sources:
            found = _IDENTITY_SOURCE.match(source)
            if not found or found.group(1) != "header":
                # A query string source would put the token into the logged request line.
                raise AuthorizerConfigError(
                    f"identity source {source!r} is not served locally (only "
                    "$request.header.<name>)"
                )
        return cls(
            authorizer_id=str(item.get("AuthorizerId", "")),
            issuer=issuer,
            audience=tuple(str(entry) for entry in config.get("Audience") or ()),
            identity_source=tuple(sources),
        )


# ---- the outcome -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """Allowed (with the event's ``requestContext.authorizer``), or the answer that refuses.

    `reason` is a short word or two for the access line ("no token", "signature", "scope");
    it never contains the token.
    """

    status: int  # 200 allowed, 401, 403
    reason: str = ""
    context: dict[str, Any] | None = None
    challenge: str = ""  # www-authenticate

    @property
    def allowed(self) -> bool:
        return self.status == 200

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of the refusal, as API Gateway answers it."""
        body = FORBIDDEN_BODY if self.status == 403 else UNAUTHORIZED_BODY
        return self.status, {**JSON_CONTENT, "www-authenticate": self.challenge}, body


def _unauthorized(reason: str, description: str | None) -> Decision:
    if description is None:  # no token at all: RFC 6750 3.1, no error code
        return Decision(401, reason, challenge="Bearer")
    challenge = f'Bearer scope="" error="invalid_token" error_description="{description}"'
    return Decision(401, reason, challenge=challenge)


def _forbidden(route_scopes: Sequence[str]) -> Decision:
    wanted = " ".join(route_scopes)
    challenge = (
        f'Bearer scope="{wanted}" error="insufficient_scope" '
        f'error_description="the token does not have any of the scopes [{wanted}]"'
    )
    return Decision(403, "scope", challenge=challenge)


# ---- the evaluation --------------------------------------------------------------------------


def authorize(
    authorizer: JwtAuthorizer,
    route_scopes: Sequence[str],
    headers: Iterable[tuple[str, str]],
    keys: KeyCache,
    *,
    raw_query: str = "",
    now: float | None = None,
) -> Decision:
    """API Gateway's decision on one request to a route with `authorizer` and `route_scopes`."""
    token = identity(authorizer.identity_source, headers, raw_query)
    if not token:
        return _unauthorized("no token", None)
    try:
        header, claims, signed, signature = decode(token)
    except ValueError:
        return _unauthorized("malformed", "the token is not a valid JWT")
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in RSA_ALGORITHMS:
        return _unauthorized("algorithm", "the token's signing algorithm is not supported")
    if "crit" in header:
        return _unauthorized("malformed", "the token has critical header parameters")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        return _unauthorized("kid", "the token has no key id")
    try:
        jwk = keys.key(authorizer.issuer, kid)
    except KeyFetchError:
        return _unauthorized("keys unavailable", "the issuer's signing keys cannot be fetched")
    if jwk is None:
        return _unauthorized("kid", "the token's key id is not in the issuer's key set")
    if not _key_allows(jwk, algorithm):
        return _unauthorized("algorithm", "the token's signing algorithm is not its key's")
    if not verify_signature(jwk, algorithm, signed, signature):
        return _unauthorized("signature", "the token does not have a valid signature")
    moment = time.time() if now is None else now
    refusal = _check_claims(authorizer, claims, moment)
    if refusal is not None:
        return refusal
    scopes = token_scopes(claims)
    if route_scopes and not any(scope in scopes for scope in route_scopes):
        return _forbidden(route_scopes)
    context = {
        "jwt": {
            "claims": render_claims(claims),
            # The token's scopes when the route requires scopes, else null (as API Gateway).
            "scopes": scopes if route_scopes else None,
        }
    }
    return Decision(200, context=context)


def identity(
    sources: Sequence[str], headers: Iterable[tuple[str, str]], raw_query: str = ""
) -> str | None:
    """The token of the (first) identity source: ``Bearer `` stripped, any case."""
    headers = list(headers)
    for source in sources:
        found = _IDENTITY_SOURCE.match(source)
        if not found:
            continue
        kind, name = found.groups()
        if kind == "header":
            values = [value for key, value in headers if key.lower() == name.lower()]
        else:
            values = [value for key, value in parse_qsl(raw_query) if key == name]
        if not values:
            continue
        value = ",".join(values).strip()  # repeated headers are joined, as API Gateway does
        bearer = _BEARER.match(value)
        if bearer:
            value = value[bearer.end() :].strip()
        return value or None
    return None


def decode(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signed bytes, signature) of a compact JWS; ValueError if malformed."""
    parts = token.split(".")
    if len(parts) != 3 or not all(_SEGMENT.match(part) for part in parts):
        raise ValueError("not three base64url segments")
    header = _json_object(_b64url(parts[0]))
    claims = _json_object(_b64url(parts[1]))
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), _b64url(parts[2])


def _b64url(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"not base64url: {error}") from None


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _key_allows(jwk: dict[str, Any], algorithm: str) -> bool:
    """An RSA signing key, for this algorithm when the key names one."""
    if jwk.get("kty") != "RSA":
        return False
    if jwk.get("use") not in (None, "sig"):
        return False
    if jwk.get("alg") not in (None, algorithm):
        return False
    operations = jwk.get("key_ops")
    return operations is None or (isinstance(operations, list) and "verify" in operations)


def verify_signature(jwk: dict[str, Any], algorithm: str, signed: bytes, signature: bytes) -> bool:
    """RSASSA-PKCS1-v1_5 verification of `signed` with the RSA public key `jwk`."""
    try:
        numbers = rsa.RSAPublicNumbers(
            e=int.from_bytes(_b64url(str(jwk["e"])), "big"),
            n=int.from_bytes(_b64url(str(jwk["n"])), "big"),
        )
        key = numbers.public_key()
    except (KeyError, ValueError):
        return False
    try:
        key.verify(signature, signed, padding.PKCS1v15(), RSA_ALGORITHMS[algorithm]())
    except InvalidSignature:
        return False
    return True


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _check_claims(authorizer: JwtAuthorizer, claims: dict[str, Any], now: float) -> Decision | None:
    """The first claim API Gateway refuses, in the order its documentation lists them."""
    if claims.get("iss") != authorizer.issuer:
        return _unauthorized("issuer", "the token does not have a valid issuer")
    if "aud" in claims:  # client_id only counts when there is no aud
        audience = claims["aud"]
        presented = audience if isinstance(audience, list) else [audience]
    else:
        presented = [claims.get("client_id")]
    if not any(isinstance(entry, str) and entry in authorizer.audience for entry in presented):
        return _unauthorized("audience", "the token does not have a valid audience")
    expires = _number(claims.get("exp"))
    if expires is None:
        return _unauthorized("no exp", "the token has no valid expiry")
    if expires <= now:
        return _unauthorized("expired", "the token has expired")
    if "nbf" in claims:
        not_before = _number(claims["nbf"])
        if not_before is None or not_before > now:
            return _unauthorized("not yet valid", "the token is not valid yet")
    issued = _number(claims.get("iat"))
    if issued is None or issued > now:
        return _unauthorized("iat", "the token does not have a valid issue time")
    return None


def token_scopes(claims: dict[str, Any]) -> list[str]:
    """The scopes a token carries: ``scope`` and ``scp``, space-separated strings or lists."""
    scopes: list[str] = []
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            items = value.split()
        elif isinstance(value, list):
            items = [item for item in value if isinstance(item, str)]
        else:
            continue
        scopes += [item for item in items if item not in scopes]
    return scopes


def render_claims(claims: dict[str, Any]) -> dict[str, str]:
    """The claims as payload format 2.0 carries them: every value a string.

    Strings as they are; numbers and booleans as their JSON text (``"1700000000"``,
    ``"true"``); arrays as ``"[a b]"`` (items rendered the same way, space-separated);
    objects as compact JSON text; null claims are left out.
    """
    return {name: _render(value) for name, value in claims.items() if value is not None}


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(_render(item) for item in value if item is not None) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(value)  # numbers, booleans


# ---- the issuer's keys -----------------------------------------------------------------------


def discover_jwks(
    issuer: str,
    *,
    endpoint: str | None = None,
    ca_bundle: Path | str | None = None,
    timeout: float = awshttp.DEFAULT_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """The issuer's key set: its OpenID configuration's ``jwks_uri``, fetched.

    Both GETs go through `awshttp.request`: with `endpoint` (the emulator) a Cognito issuer
    (``https://cognito-idp.<region>.amazonaws.com/<pool>``) is answered by the emulator.
    """
    configuration = _get_json(
        issuer.rstrip("/") + "/.well-known/openid-configuration", endpoint, ca_bundle, timeout
    )
    jwks_uri = configuration.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri:
        raise KeyFetchError(f"the OpenID configuration of {issuer} names no jwks_uri")
    jwks = _get_json(jwks_uri, endpoint, ca_bundle, timeout)
    if not isinstance(jwks.get("keys"), list):
        raise KeyFetchError(f"{jwks_uri} is not a JSON Web Key Set")
    return jwks


def _get_json(
    url: str, endpoint: str | None, ca_bundle: Path | str | None, timeout: float
) -> dict[str, Any]:
    try:
        answer = awshttp.request(url, endpoint=endpoint, ca_bundle=ca_bundle, timeout=timeout)
    except (OSError, ValueError) as error:
        raise KeyFetchError(f"GET {url}: {error}") from None
    if answer.status != 200:
        raise KeyFetchError(f"GET {url}: HTTP {answer.status}")
    try:
        document = json.loads(answer.body)
    except ValueError:
        raise KeyFetchError(f"GET {url}: not JSON") from None
    if not isinstance(document, dict):
        raise KeyFetchError(f"GET {url}: not a JSON object")
    return document


@dataclass
class _Entry:
    keys: list[dict[str, Any]]
    fetched: float


@dataclass
class KeyCache:
    """The key sets of issuers, each fetched at most once per `ttl` seconds, and once more
    when a token names a key id the cached set does not have (a rotated key)."""

    fetch: JwksFetcher
    ttl: float = JWKS_TTL_SECONDS
    clock: Callable[[], float] = time.monotonic
    _entries: dict[str, _Entry] = field(default_factory=dict, repr=False)
    _locks: dict[str, threading.Lock] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def key(self, issuer: str, kid: str) -> dict[str, Any] | None:
        """The JWK `kid` of `issuer`, or None; KeyFetchError when the set cannot be fetched."""
        with self._lock:
            issuer_lock = self._locks.setdefault(issuer, threading.Lock())
        with issuer_lock:  # one fetch per issuer at a time; other issuers are not held up
            entry = self._entries.get(issuer)
            fetched_now = False
            if entry is None or self.clock() - entry.fetched >= self.ttl:
                entry = self._refresh(issuer)
                fetched_now = True
            found = _find(entry.keys, kid)
            if found is None and not fetched_now:
                found = _find(self._refresh(issuer).keys, kid)
            return found

    def _refresh(self, issuer: str) -> _Entry:
        try:
            jwks = self.fetch(issuer)
        except KeyFetchError:
            raise
        except Exception as error:  # an injected fetcher's own failure
            raise KeyFetchError(f"{issuer}: {type(error).__name__}: {error}") from None
        keys = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(keys, list):
            raise KeyFetchError(f"the key set of {issuer} has no keys list")
        entry = _Entry([key for key in keys if isinstance(key, dict)], self.clock())
        self._entries[issuer] = entry
        return entry


def _find(keys: list[dict[str, Any]], kid: str) -> dict[str, Any] | None:
    return next((key for key in keys if key.get("kid") == kid), None)
