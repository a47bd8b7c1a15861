"""Who is calling: the verified caller of a request, from what API Gateway's JWT authorizer put
into the event.

Every route of the HTTP API has a JWT authorizer: API Gateway verifies the token (signature,
issuer, audience, expiry, and the route's scopes: ``fleet/read`` for GET, ``fleet/write`` for
POST) and hands the function its claims in the payload 2.0 event, at
``requestContext.authorizer.jwt.claims`` (a dict of strings) and
``requestContext.authorizer.jwt.scopes``. The function never sees an unverified token's claims
there, and it never reads the ``Authorization`` header itself.

For a Cognito client-credentials token the claims are ``sub`` (= the app client id),
``client_id``, ``scope`` (space-separated), ``iss``, ``token_use``, ...; an external OIDC issuer
gives ``sub``, ``aud`` and often ``azp``. :class:`Caller` keeps what the API uses:

- ``sub``: the caller's identity, stored as ``created_by``. Required: 1..256 characters
  (:data:`~fleet_common.limits.MAX_SUB_LENGTH`), no NUL or unpaired surrogates.
- ``client_id``: the ``client_id`` claim, else ``azp``, else ``None`` (for the logs).
- ``scopes``: ``jwt.scopes``, else the ``scope`` (or ``scp``) claim split on spaces.

An event without such claims cannot come through the authorizer;
:func:`fleet_common.api.make_handler` still answers it 401 ``unauthorized`` before any route (or
database) work: defence in depth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from .errors import Unauthorized
from .limits import MAX_CLIENT_ID_LENGTH, MAX_SUB_LENGTH
from .validation import text_errors

__all__ = ["Caller", "caller", "caller_from_event", "identify", "verified_claims"]

NO_IDENTITY = "the request carries no verified identity"
UNUSABLE_SUB = "the verified identity has no usable sub claim"


@dataclass(frozen=True)
class Caller:
    """The verified caller of one request."""

    sub: str
    client_id: str | None
    scopes: tuple[str, ...]

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def log_keys(self) -> dict[str, str | None]:
        """The logger keys of the caller: ``caller_sub`` and ``caller_client_id``."""
        return {"caller_sub": self.sub, "caller_client_id": self.client_id}


def verified_claims(event: Any) -> Mapping[str, Any] | None:
    """``requestContext.authorizer.jwt.claims`` of an HTTP API event when it is a non-empty
    object, else ``None``."""
    node: Any = event
    for key in ("requestContext", "authorizer", "jwt", "claims"):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node if isinstance(node, Mapping) and node else None


def _usable(value: Any, max_length: int) -> TypeGuard[str]:
    return isinstance(value, str) and 1 <= len(value) <= max_length and not text_errors(value)


def _scopes(event: Mapping[str, Any], claims: Mapping[str, Any]) -> tuple[str, ...]:
    listed = event["requestContext"]["authorizer"]["jwt"].get("scopes")
    found: list[str] = []
    if isinstance(listed, list) and listed:
        found = [s for s in listed if isinstance(s, str)]
    else:
        for name in ("scope", "scp"):
            value = claims.get(name)
            if isinstance(value, str) and value.strip():
                found = value.split()
                break
            if isinstance(value, list) and value:
                found = [s for s in value if isinstance(s, str)]
                break
    return tuple(dict.fromkeys(s for s in found if s))


def identify(event: Any) -> Caller:
    """The verified caller of ``event``; :class:`~fleet_common.errors.Unauthorized` (401)
    when it has no verified claims or no usable ``sub``."""
    claims = verified_claims(event)
    if claims is None:
        raise Unauthorized(NO_IDENTITY)
    sub = claims.get("sub")
    if not _usable(sub, MAX_SUB_LENGTH):
        raise Unauthorized(UNUSABLE_SUB)
    client_id = next(
        (
            claims[name]
            for name in ("client_id", "azp")
            if _usable(claims.get(name), MAX_CLIENT_ID_LENGTH)
        ),
        None,
    )
    return Caller(sub=sub, client_id=client_id, scopes=_scopes(event, claims))


def caller_from_event(event: Any) -> Caller | None:
    """Like :func:`identify`, ``None`` instead of raising."""
    try:
        return identify(event)
    except Unauthorized:
        return None


def caller(app: Any) -> Caller:
    """The verified caller of the request ``app`` (an ``APIGatewayHttpResolver``) is handling;
    401 when there is none (``make_handler`` has answered such requests already)."""
    return identify(app.current_event.raw_event)
