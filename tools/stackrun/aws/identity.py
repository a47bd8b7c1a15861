"""Access tokens for the environment's API: the OAuth2 client credentials grant of one app client.

The identity stack (the stack whose outputs include `token_endpoint` and `clients`, from
modules/identity) names the pool's token endpoint and, per app client, its id, the Secrets
Manager secret holding its id and secret, and the scopes it may request. A token is fetched the
way any machine caller fetches one: read the client's secret, POST
`grant_type=client_credentials` with HTTP Basic client authentication to the token endpoint.
Against the local target both calls go to the emulator (stackrun.aws.awshttp).

The token and the client secret are never printed except the token itself, once, on stdout.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from stackrun.aws import awshttp
from stackrun.errors import StackrunError
from stackrun.terraform.workspace import Workspace

IDENTITY_OUTPUTS = ("token_endpoint", "clients")


class TokenError(StackrunError):
    """No token can be had (no identity stack, an external issuer, a refused request)."""


@dataclass(frozen=True)
class Identity:
    """What the identity stack says about getting tokens (no secrets)."""

    stack: str
    issuer: str | None
    token_endpoint: str | None
    clients: Mapping[str, Mapping[str, Any]]  # name -> {client_id, secret_arn, scopes}

    def document(self) -> dict[str, Any]:
        """For `output`'s target document: issuer, token endpoint, client ids and scopes."""
        return {
            "stack": self.stack,
            "issuer": self.issuer,
            "token_endpoint": self.token_endpoint,
            "clients": {
                name: {"client_id": c.get("client_id"), "scopes": list(c.get("scopes") or [])}
                for name, c in sorted(self.clients.items())
            },
        }


def find_identity(outputs: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Identity | None:
    """The identity stack among `{stack: {output: {value, ...}}}`, or None."""
    for stack, values in outputs.items():
        if all(name in values for name in IDENTITY_OUTPUTS):
            issuer = values.get("issuer", {}).get("value")
            return Identity(
                stack=stack,
                issuer=issuer,
                token_endpoint=values["token_endpoint"]["value"],
                clients=values["clients"]["value"] or {},
            )
    return None


def choose_client(
    identity: Identity, client: str | None, scopes: Sequence[str]
) -> tuple[str, Mapping[str, Any]]:
    """The named client (it must allow `scopes`), or the first by name that allows them all."""
    if not identity.clients:
        raise TokenError(f"{identity.stack} defines no app clients ([inputs.clients.<name>])")
    if client is not None:
        chosen = identity.clients.get(client)
        if chosen is None:
            known = ", ".join(sorted(identity.clients))
            raise TokenError(f"no app client {client!r} in {identity.stack} (clients: {known})")
        missing = [s for s in scopes if s not in (chosen.get("scopes") or [])]
        if missing:
            raise TokenError(
                f"client {client!r} may not request {', '.join(missing)} "
                f"(its scopes: {', '.join(chosen.get('scopes') or [])})"
            )
        return client, chosen
    for name in sorted(identity.clients):
        allowed = identity.clients[name].get("scopes") or []
        if all(s in allowed for s in scopes):
            return name, identity.clients[name]
    offered = "; ".join(
        f"{name}: {', '.join(client.get('scopes') or [])}"
        for name, client in sorted(identity.clients.items())
    )
    raise TokenError(f"no app client may request {', '.join(scopes)} ({offered})")


def request_token(
    token_endpoint: str,
    client_id: str,
    client_secret: str,
    scopes: Sequence[str],
    *,
    endpoint: str | None = None,
    ca_bundle: Any = None,
) -> str:
    """POST the client credentials grant; the access token, or TokenError naming the answer."""
    form = {"grant_type": "client_credentials"}
    if scopes:
        form["scope"] = " ".join(scopes)
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    answer = awshttp.request(
        token_endpoint,
        method="POST",
        data=urlencode(form).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"Basic {basic}",
        },
        endpoint=endpoint,
        ca_bundle=ca_bundle,
    )
    try:
        body = json.loads(answer.body or b"{}")
    except ValueError:
        body = {}
    if answer.status != 200 or not isinstance(body, dict) or "access_token" not in body:
        error = body.get("error") if isinstance(body, dict) else None
        raise TokenError(
            f"the token endpoint {token_endpoint} answered {answer.status}"
            + (f" {error}" if error else "")
        )
    return str(body["access_token"])


def fetch_token(
    workspace: Workspace,
    outputs: Mapping[str, Mapping[str, Mapping[str, Any]]],
    client: str | None = None,
    scopes: Sequence[str] = (),
) -> tuple[str, str]:
    """(client name, access token) for the environment's API."""
    environment, target = workspace.environment, workspace.target
    identity = find_identity(outputs)
    if identity is None:
        raise TokenError(
            f"{environment.name} has no deployed identity stack (outputs token_endpoint and "
            "clients, modules/identity): deploy it first"
        )
    if identity.token_endpoint is None:
        issuer = environment.identity.issuer if environment.identity else identity.issuer
        raise TokenError(
            f"{environment.name} uses the external issuer {issuer} ([identity] in "
            f"live/{environment.name}/env.toml): get tokens from that issuer"
        )
    name, chosen = choose_client(identity, client, scopes)
    secrets = target.client(environment, "secretsmanager")
    try:
        text = secrets.get_secret_value(SecretId=chosen["secret_arn"])["SecretString"]
    except Exception as error:  # an AWS error: names the secret, never holds its value
        raise TokenError(
            f"cannot read the secret of client {name!r} ({chosen.get('secret_arn')}): {error}"
        ) from None
    try:
        secret = json.loads(text)
        client_id, client_secret = str(secret["client_id"]), str(secret["client_secret"])
    except (ValueError, KeyError, TypeError):  # `from None`: the document is the secret
        raise TokenError(
            f"the secret of client {name!r} ({chosen.get('secret_arn')}) is not JSON with "
            "client_id and client_secret"
        ) from None
    token = request_token(
        identity.token_endpoint,
        client_id,
        client_secret,
        scopes,
        endpoint=target.endpoint,
        ca_bundle=target.ca_bundle,
    )
    return name, token
