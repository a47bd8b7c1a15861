"""Cognito in the emulator (patches h, i, j of ``stackrun.local.emulator.cognito``), against
the real server: per-pool signing keys and JWKS, OpenID discovery, the OAuth2 token endpoint."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError
from joserfc.jwk import KeySet, RSAKey
from joserfc.jwt import JWTClaimsRegistry

from stackrun.aws import awshttp
from stackrun.local.emulator.cognito_endpoints import access_token_seconds

REGION = "eu-west-1"
OTHER_ACCOUNT = "222233334444"


@dataclass(frozen=True)
class Aws:
    endpoint: str
    ca_bundle: Path
    log: Path

    def client(self, service: str, **credentials: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            verify=str(self.ca_bundle),
            region_name=REGION,
            aws_access_key_id=credentials.get("aws_access_key_id", "test"),
            aws_secret_access_key=credentials.get("aws_secret_access_key", "test"),
            aws_session_token=credentials.get("aws_session_token"),
            config=Config(retries={"max_attempts": 1}, connect_timeout=10, read_timeout=10),
        )

    def get(self, url: str) -> awshttp.HttpAnswer:
        return awshttp.request(url, endpoint=self.endpoint, ca_bundle=self.ca_bundle)


@dataclass(frozen=True)
class Client:
    id: str
    secret: str | None


@dataclass(frozen=True)
class Pool:
    id: str
    domain: str
    clients: dict[str, Client]

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{REGION}.amazonaws.com/{self.id}"

    @property
    def token_url(self) -> str:
        return f"https://{self.domain}.auth.{REGION}.amazoncognito.com/oauth2/token"


@pytest.fixture(scope="module")
def aws(emulator: tuple[Path, int]) -> Aws:
    state_dir, port = emulator
    return Aws(
        f"https://127.0.0.1:{port}", state_dir / "tls" / "ca.pem", state_dir / "emulator.log"
    )


def _suffix() -> str:
    return uuid.uuid4().hex[:10]


def _create_client(idp: Any, pool_id: str, name: str, secret: bool = True, **config: Any) -> Client:
    created = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName=name, GenerateSecret=secret, **config
    )["UserPoolClient"]
    return Client(created["ClientId"], created.get("ClientSecret"))


MACHINE = {
    "AllowedOAuthFlows": ["client_credentials"],
    "AllowedOAuthFlowsUserPoolClient": True,
}


@pytest.fixture(scope="module")
def pool(aws: Aws) -> Pool:
    """What the environment's terraform creates: pool, domain, resource server, clients."""
    idp = aws.client("cognito-idp")
    pool_id = idp.create_user_pool(PoolName=f"fleet-{_suffix()}")["UserPool"]["Id"]
    domain = f"fleet-{_suffix()}"
    idp.create_user_pool_domain(UserPoolId=pool_id, Domain=domain)
    idp.create_resource_server(
        UserPoolId=pool_id,
        Identifier="fleet",
        Name="fleet",
        Scopes=[
            {"ScopeName": "read", "ScopeDescription": "read"},
            {"ScopeName": "write", "ScopeDescription": "write"},
        ],
    )
    clients = {
        "reader": _create_client(
            idp,
            pool_id,
            "reader",
            **MACHINE,
            AllowedOAuthScopes=["fleet/read"],
            AccessTokenValidity=15,
            TokenValidityUnits={"AccessToken": "minutes"},
        ),
        "default-validity": _create_client(
            idp, pool_id, "default", **MACHINE, AllowedOAuthScopes=["fleet/read", "fleet/write"]
        ),
        "validity-in-hours": _create_client(
            idp,
            pool_id,
            "hours",
            **MACHINE,
            AllowedOAuthScopes=["fleet/read"],
            AccessTokenValidity=2,
        ),
        "no-secret": _create_client(
            idp, pool_id, "public", secret=False, **MACHINE, AllowedOAuthScopes=["fleet/read"]
        ),
        "code-flow": _create_client(
            idp,
            pool_id,
            "web",
            AllowedOAuthFlows=["code"],
            AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthScopes=["fleet/read"],
            CallbackURLs=["https://example.com/callback"],
        ),
        "oauth-disabled": _create_client(
            idp,
            pool_id,
            "disabled",
            AllowedOAuthFlows=["client_credentials"],
            AllowedOAuthFlowsUserPoolClient=False,
            AllowedOAuthScopes=["fleet/read"],
        ),
    }
    return Pool(pool_id, domain, clients)


def _basic(client: Client, secret: str | None = None) -> str:
    pair = f"{client.id}:{client.secret if secret is None else secret}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _token_request(
    aws: Aws,
    pool: Pool,
    client: Client | None,
    form: dict[str, str] | None = None,
    *,
    secret: str | None = None,
    content_type: str = "application/x-www-form-urlencoded",
    method: str = "POST",
    url: str | None = None,
) -> awshttp.HttpAnswer:
    headers = {"Content-Type": content_type}
    if client is not None:
        headers["Authorization"] = _basic(client, secret)
    body = {"grant_type": "client_credentials"} if form is None else form
    return awshttp.request(
        url or pool.token_url,
        method=method,
        data=urlencode(body).encode() if method == "POST" else None,
        headers=headers,
        endpoint=aws.endpoint,
        ca_bundle=aws.ca_bundle,
    )


def _error(answer: awshttp.HttpAnswer) -> str:
    assert answer.status == 400, (answer.status, answer.body)
    return json.loads(answer.body)["error"]


def _jwks(aws: Aws, pool_id: str) -> dict[str, Any]:
    answer = aws.get(f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}/.well-known/jwks.json")
    assert answer.status == 200, answer.body
    return json.loads(answer.body)


def _verify(aws: Aws, pool_id: str, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a token verified with the pool's JWKS (fetched via awshttp)."""
    verified = jwt.decode(token, KeySet.import_key_set(_jwks(aws, pool_id)), algorithms=["RS256"])
    JWTClaimsRegistry(leeway=5).validate(verified.claims)
    return dict(verified.header), verified.claims


# --- the token endpoint -----------------------------------------------------------------------


def test_client_credentials_token_verifies_with_the_pool_jwks(aws: Aws, pool: Pool) -> None:
    reader = pool.clients["reader"]
    answer = _token_request(aws, pool, reader)
    assert answer.status == 200, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.headers["cache-control"] == "no-store"
    body = json.loads(answer.body)
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 15 * 60)

    header, claims = _verify(aws, pool.id, body["access_token"])
    assert header == {"alg": "RS256", "kid": header["kid"]}
    assert header["kid"] in {key["kid"] for key in _jwks(aws, pool.id)["keys"]}
    assert set(claims) == {
        "sub",
        "token_use",
        "scope",
        "auth_time",
        "iss",
        "exp",
        "iat",
        "version",
        "jti",
        "client_id",
    }
    assert claims["sub"] == claims["client_id"] == reader.id
    assert (claims["token_use"], claims["scope"], claims["version"]) == ("access", "fleet/read", 2)
    assert claims["iss"] == pool.issuer
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert claims["auth_time"] == claims["iat"]
    assert str(uuid.UUID(claims["jti"])) == claims["jti"]
    again = json.loads(_token_request(aws, pool, reader).body)["access_token"]
    assert _verify(aws, pool.id, again)[1]["jti"] != claims["jti"]


def test_token_lifetime_follows_the_client_settings(aws: Aws, pool: Pool) -> None:
    for name, seconds in (("default-validity", 60 * 60), ("validity-in-hours", 2 * 3600)):
        body = json.loads(_token_request(aws, pool, pool.clients[name]).body)
        assert body["expires_in"] == seconds
        claims = _verify(aws, pool.id, body["access_token"])[1]
        assert claims["exp"] - claims["iat"] == seconds


def test_scopes_requested_and_granted(aws: Aws, pool: Pool) -> None:
    both = pool.clients["default-validity"]
    granted = json.loads(_token_request(aws, pool, both).body)["access_token"]
    assert _verify(aws, pool.id, granted)[1]["scope"] == "fleet/read fleet/write"
    form = {"grant_type": "client_credentials", "scope": "fleet/write"}
    one = json.loads(_token_request(aws, pool, both, form).body)["access_token"]
    assert _verify(aws, pool.id, one)[1]["scope"] == "fleet/write"

    reader = pool.clients["reader"]
    for scope in ("fleet/write", "fleet/read fleet/write", "fleet/admin", "openid"):
        form = {"grant_type": "client_credentials", "scope": scope}
        assert _error(_token_request(aws, pool, reader, form)) == "invalid_scope"


def test_client_authentication(aws: Aws, pool: Pool) -> None:
    reader = pool.clients["reader"]
    assert reader.secret
    # client_secret_post: the credentials in the body instead of HTTP Basic
    in_body = {
        "grant_type": "client_credentials",
        "client_id": reader.id,
        "client_secret": reader.secret,
    }
    assert _token_request(aws, pool, None, in_body).status == 200

    assert _error(_token_request(aws, pool, reader, secret="wrong")) == "invalid_client"
    assert _error(_token_request(aws, pool, reader, secret="")) == "invalid_client"
    unknown = Client("1234567890abcdefghijklmnop", "x")
    assert _error(_token_request(aws, pool, unknown)) == "invalid_client"
    no_secret = pool.clients["no-secret"]
    assert no_secret.secret is None
    assert _error(_token_request(aws, pool, no_secret, secret="")) == "invalid_client"
    anonymous = _token_request(aws, pool, None)
    assert _error(anonymous) == "invalid_client"


def test_clients_not_allowed_the_grant_are_unauthorized(aws: Aws, pool: Pool) -> None:
    for name in ("code-flow", "oauth-disabled"):
        assert _error(_token_request(aws, pool, pool.clients[name])) == "unauthorized_client"


def test_malformed_requests(aws: Aws, pool: Pool) -> None:
    reader = pool.clients["reader"]
    assert _error(_token_request(aws, pool, reader, {})) == "invalid_request"
    assert _error(_token_request(aws, pool, reader, {"scope": "fleet/read"})) == "invalid_request"
    json_body = _token_request(aws, pool, reader, content_type="application/json")
    assert _error(json_body) == "invalid_request"
    for grant in ("password", "authorization_code", "refresh_token"):
        answer = _token_request(aws, pool, reader, {"grant_type": grant})
        assert _error(answer) == "unsupported_grant_type"

    assert _token_request(aws, pool, reader, method="GET").status == 405
    other_path = pool.token_url.replace("/oauth2/token", "/oauth2/authorize")
    assert _token_request(aws, pool, reader, url=other_path).status == 404
    unknown_domain = f"https://nobody-{_suffix()}.auth.{REGION}.amazoncognito.com/oauth2/token"
    assert _token_request(aws, pool, reader, url=unknown_domain).status == 404
    other_region = pool.token_url.replace(REGION, "us-east-1")
    assert _token_request(aws, pool, reader, url=other_region).status == 404


def test_client_secrets_are_not_logged(aws: Aws, pool: Pool) -> None:
    reader = pool.clients["reader"]
    assert _token_request(aws, pool, reader).status == 200
    _token_request(aws, pool, reader, secret=reader.secret + "x")
    log = aws.log.read_text(errors="replace")
    assert "cognito: token request" in log  # the reasons are logged ...
    for client in pool.clients.values():
        if client.secret:
            assert client.secret not in log  # ... never a secret


# --- per-pool keys ----------------------------------------------------------------------------


def test_each_pool_has_its_own_keys(aws: Aws, pool: Pool) -> None:
    idp = aws.client("cognito-idp")
    other_id = idp.create_user_pool(PoolName=f"other-{_suffix()}")["UserPool"]["Id"]
    token = json.loads(_token_request(aws, pool, pool.clients["reader"]).body)["access_token"]

    ours, theirs = _jwks(aws, pool.id), _jwks(aws, other_id)
    for jwks in (ours, theirs):
        assert len(jwks["keys"]) == 2  # ID token key and access token key, as in Cognito
        for key in jwks["keys"]:
            assert (key["kty"], key["alg"], key["use"], key["e"]) == ("RSA", "RS256", "sig", "AQAB")
            assert len(base64.urlsafe_b64decode(key["n"] + "==")) == 256  # RSA-2048
            assert "d" not in key  # public keys only
    assert {k["kid"] for k in ours["keys"]}.isdisjoint({k["kid"] for k in theirs["keys"]})
    assert "dummy" not in {k["kid"] for k in ours["keys"] + theirs["keys"]}

    with pytest.raises(InvalidKeyIdError):
        jwt.decode(token, KeySet.import_key_set(theirs), algorithms=["RS256"])
    for key in theirs["keys"]:  # not even when the kid is ignored
        with pytest.raises(BadSignatureError):
            jws.deserialize_compact(token, RSAKey.import_key(key), algorithms=["RS256"])


def test_tokens_of_moto_flows_are_signed_with_the_pool_keys(aws: Aws, pool: Pool) -> None:
    idp = aws.client("cognito-idp")
    app = _create_client(
        idp, pool.id, "app", secret=False, ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"]
    )
    user = f"user-{_suffix()}"
    idp.admin_create_user(UserPoolId=pool.id, Username=user, MessageAction="SUPPRESS")
    idp.admin_set_user_password(
        UserPoolId=pool.id, Username=user, Password="Passw0rd!Passw0rd", Permanent=True
    )
    result = idp.admin_initiate_auth(
        UserPoolId=pool.id,
        ClientId=app.id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": user, "PASSWORD": "Passw0rd!Passw0rd"},
    )["AuthenticationResult"]

    access_header, access = _verify(aws, pool.id, result["AccessToken"])
    id_header, identity = _verify(aws, pool.id, result["IdToken"])
    assert (access["token_use"], access["scope"]) == ("access", "aws.cognito.signin.user.admin")
    assert (access["client_id"], access["iss"]) == (app.id, pool.issuer)
    assert (identity["token_use"], identity["aud"]) == ("id", app.id)
    # Cognito signs ID and access tokens with different keys of the pool.
    assert access_header["kid"] != id_header["kid"]
    assert {access_header["kid"], id_header["kid"]} == {
        k["kid"] for k in _jwks(aws, pool.id)["keys"]
    }
    # moto's own API still accepts its access token.
    assert idp.get_user(AccessToken=result["AccessToken"])["Username"] == user


# --- discovery --------------------------------------------------------------------------------


def test_openid_configuration(aws: Aws, pool: Pool) -> None:
    answer = aws.get(f"{pool.issuer}/.well-known/openid-configuration")
    assert answer.status == 200, answer.body
    document = json.loads(answer.body)
    base = f"https://{pool.domain}.auth.{REGION}.amazoncognito.com"
    assert document["issuer"] == pool.issuer
    assert document["jwks_uri"] == f"{pool.issuer}/.well-known/jwks.json"
    assert document["token_endpoint"] == pool.token_url == f"{base}/oauth2/token"
    assert document["authorization_endpoint"] == f"{base}/oauth2/authorize"
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert document["subject_types_supported"] == ["public"]
    assert document["response_types_supported"] == ["code", "token"]
    # What a verifier does with it: the jwks_uri and the token endpoint work as published.
    assert (
        aws.get(document["jwks_uri"]).body == aws.get(f"{pool.issuer}/.well-known/jwks.json").body
    )
    assert (
        _token_request(aws, pool, pool.clients["reader"], url=document["token_endpoint"]).status
        == 200
    )

    idp = aws.client("cognito-idp")
    bare_id = idp.create_user_pool(PoolName=f"bare-{_suffix()}")["UserPool"]["Id"]
    bare = json.loads(
        aws.get(
            f"https://cognito-idp.{REGION}.amazonaws.com/{bare_id}/.well-known/openid-configuration"
        ).body
    )
    assert bare["issuer"].endswith(f"/{bare_id}")
    assert "token_endpoint" not in bare and "authorization_endpoint" not in bare


def test_unknown_pools_are_not_found(aws: Aws, pool: Pool) -> None:
    for document in ("jwks.json", "openid-configuration"):
        missing = aws.get(
            f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_Nope12345/.well-known/{document}"
        )
        assert missing.status == 404
        assert "does not exist" in json.loads(missing.body)["message"]
        # A pool is served under the host of its own region only.
        elsewhere = aws.get(
            f"https://cognito-idp.us-east-1.amazonaws.com/{pool.id}/.well-known/{document}"
        )
        assert elsewhere.status == 404


def test_well_known_documents_on_the_emulator_address(aws: Aws, pool: Pool) -> None:
    """moto's documented server-mode URL serves the same documents."""
    direct = awshttp.request(
        f"{aws.endpoint}/{pool.id}/.well-known/jwks.json", ca_bundle=aws.ca_bundle
    )
    assert direct.status == 200
    assert json.loads(direct.body) == _jwks(aws, pool.id)


# --- domains ----------------------------------------------------------------------------------


def test_a_domain_belongs_to_one_pool_in_the_region(aws: Aws, pool: Pool) -> None:
    credentials = aws.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/deploy", RoleSessionName="cognito"
    )["Credentials"]
    other_idp = aws.client(
        "cognito-idp",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    other_id = other_idp.create_user_pool(PoolName=f"other-{_suffix()}")["UserPool"]["Id"]
    with pytest.raises(ClientError) as taken:
        other_idp.create_user_pool_domain(UserPoolId=other_id, Domain=pool.domain)
    assert taken.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "already associated with another user pool" in str(taken.value)

    # A domain of its own works in that account, and its token endpoint finds that pool.
    own = f"fleet-{_suffix()}"
    other_idp.create_user_pool_domain(UserPoolId=other_id, Domain=own)
    other_idp.create_resource_server(
        UserPoolId=other_id,
        Identifier="fleet",
        Name="fleet",
        Scopes=[{"ScopeName": "read", "ScopeDescription": "r"}],
    )
    client = _create_client(other_idp, other_id, "m", **MACHINE, AllowedOAuthScopes=["fleet/read"])
    other = Pool(other_id, own, {"m": client})
    token = json.loads(_token_request(aws, other, client).body)["access_token"]
    assert _verify(aws, other_id, token)[1]["iss"] == other.issuer
    # The first pool's domain does not know the other account's client.
    assert _error(_token_request(aws, pool, client)) == "invalid_client"


# --- resource servers -------------------------------------------------------------------------


def test_resource_servers_can_be_updated_and_deleted(aws: Aws) -> None:
    """What the provider calls when scopes change and on destroy (moto lacks both)."""
    idp = aws.client("cognito-idp")
    pool_id = idp.create_user_pool(PoolName=f"rs-{_suffix()}")["UserPool"]["Id"]
    domain = f"rs-{_suffix()}"
    idp.create_user_pool_domain(UserPoolId=pool_id, Domain=domain)
    read = {"ScopeName": "read", "ScopeDescription": "read"}
    write = {"ScopeName": "write", "ScopeDescription": "write"}
    idp.create_resource_server(UserPoolId=pool_id, Identifier="fleet", Name="fleet", Scopes=[read])
    client = _create_client(
        idp, pool_id, "m", **MACHINE, AllowedOAuthScopes=["fleet/read", "fleet/write"]
    )
    pool = Pool(pool_id, domain, {"m": client})
    granted = json.loads(_token_request(aws, pool, client).body)["access_token"]
    assert _verify(aws, pool_id, granted)[1]["scope"] == "fleet/read"  # fleet/write undefined

    updated = idp.update_resource_server(
        UserPoolId=pool_id, Identifier="fleet", Name="renamed", Scopes=[read, write]
    )["ResourceServer"]
    assert (updated["Name"], updated["Scopes"]) == ("renamed", [read, write])
    described = idp.describe_resource_server(UserPoolId=pool_id, Identifier="fleet")
    assert described["ResourceServer"]["Scopes"] == [read, write]
    granted = json.loads(_token_request(aws, pool, client).body)["access_token"]
    assert _verify(aws, pool_id, granted)[1]["scope"] == "fleet/read fleet/write"

    idp.delete_resource_server(UserPoolId=pool_id, Identifier="fleet")
    with pytest.raises(ClientError) as gone:
        idp.describe_resource_server(UserPoolId=pool_id, Identifier="fleet")
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert _error(_token_request(aws, pool, client)) == "invalid_scope"
    for call in (idp.delete_resource_server, idp.describe_resource_server):
        with pytest.raises(ClientError) as unknown:
            call(UserPoolId=pool_id, Identifier="fleet")
        assert unknown.value.response["Error"]["Code"] == "ResourceNotFoundException"


# --- token lifetime in isolation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "seconds"),
    [
        ({}, 3600),
        ({"AccessTokenValidity": 1}, 3600),  # Cognito's default unit is hours
        ({"AccessTokenValidity": 5, "TokenValidityUnits": {"AccessToken": "minutes"}}, 300),
        ({"AccessTokenValidity": 1, "TokenValidityUnits": {"AccessToken": "days"}}, 86400),
        ({"AccessTokenValidity": 900, "TokenValidityUnits": {"AccessToken": "seconds"}}, 900),
        ({"AccessTokenValidity": 3, "TokenValidityUnits": {"IdToken": "minutes"}}, 3 * 3600),
    ],
)
def test_access_token_lifetime(config: dict[str, Any], seconds: int) -> None:
    assert access_token_seconds(SimpleNamespace(extended_config=config)) == seconds
