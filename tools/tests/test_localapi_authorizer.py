"""The local API's JWT authorizer (stackrun.local.api.authorizer), as API Gateway evaluates it.

Tokens are minted with joserfc (an implementation independent of the one under test) from RSA
keys generated here; the issuer's key set comes from a fake fetcher, so nothing is fetched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import RSAKey

from stackrun.aws import awshttp
from stackrun.local.api import authorizer as jwtauth
from stackrun.local.api.authorizer import JwtAuthorizer, KeyCache, KeyFetchError

ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TestPool"
AUTHORIZER = JwtAuthorizer("auth01", ISSUER, ("client-a", "client-b"))
READ = ("fleet/read",)
NOW = 1_800_000_000


@pytest.fixture(scope="module")
def signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})


@pytest.fixture(scope="module")
def impostor_key() -> RSAKey:
    """Another key that claims the same kid."""
    return RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})


class FakeJwks:
    """issuer -> key set, counting fetches; `fail` makes it unreachable."""

    def __init__(self, *keys: RSAKey):
        self.keys = [key.as_dict(private=False) for key in keys]
        self.fetches: list[str] = []
        self.fail = False

    def __call__(self, issuer: str) -> dict[str, Any]:
        self.fetches.append(issuer)
        if self.fail:
            raise KeyFetchError(f"{issuer}: connection refused")
        return {"keys": list(self.keys)}


@pytest.fixture
def jwks(signing_key) -> FakeJwks:
    return FakeJwks(signing_key)


@pytest.fixture
def keys(jwks) -> KeyCache:
    return KeyCache(jwks)


def claims(**overrides: Any) -> dict[str, Any]:
    """An access token's claims as Cognito issues them, valid at NOW."""
    values: dict[str, Any] = {
        "sub": "user-1",
        "iss": ISSUER,
        "client_id": "client-a",
        "token_use": "access",
        "scope": "fleet/read openid",
        "auth_time": NOW - 60,
        "iat": NOW - 60,
        "exp": NOW + 3600,
        "jti": "j-1",
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not ...}


def mint(key: RSAKey, payload: dict[str, Any] | None = None, **header: Any) -> str:
    return jwt.encode({"alg": "RS256", "kid": "k1", **header}, payload or claims(), key)


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decide(token: str | None, keys: KeyCache, scopes=READ, *, header: str = "Authorization"):
    headers = [("Host", "localhost")]
    if token is not None:
        headers.append((header, token))
    return jwtauth.authorize(AUTHORIZER, scopes, headers, keys, now=NOW)


def assert_unauthorized(decision, reason: str) -> None:
    assert (decision.status, decision.reason, decision.context) == (401, reason, None)
    status, headers, body = decision.response()
    assert (status, body) == (401, b'{"message":"Unauthorized"}')
    assert headers["content-type"] == "application/json"
    assert headers["www-authenticate"].startswith("Bearer")


# ---- the token in the identity source ------------------------------------------------------


def test_a_valid_token_is_allowed_with_its_claims_and_scopes(signing_key, keys):
    decision = decide(f"Bearer {mint(signing_key)}", keys)
    assert decision.allowed and decision.reason == ""
    assert decision.context == {
        "jwt": {
            "claims": {
                "sub": "user-1",
                "iss": ISSUER,
                "client_id": "client-a",
                "token_use": "access",
                "scope": "fleet/read openid",
                "auth_time": str(NOW - 60),
                "iat": str(NOW - 60),
                "exp": str(NOW + 3600),
                "jti": "j-1",
            },
            "scopes": ["fleet/read", "openid"],
        }
    }


@pytest.mark.parametrize("prefix", ["", "Bearer ", "bearer ", "BEARER   ", " Bearer\t"])
def test_the_token_is_taken_alone_or_after_bearer_in_any_case(signing_key, keys, prefix):
    assert decide(prefix + mint(signing_key), keys).allowed


def test_the_identity_header_is_found_in_any_case(signing_key, keys):
    assert decide(mint(signing_key), keys, header="authorization").allowed


@pytest.mark.parametrize("value", [None, "", "Bearer", "Bearer   ", "   "])
def test_a_missing_token_is_401_with_a_bare_bearer_challenge(keys, jwks, value):
    decision = decide(value, keys)
    assert_unauthorized(decision, "no token")
    assert decision.response()[1]["www-authenticate"] == "Bearer"
    assert jwks.fetches == []  # nothing is fetched for a request without a token


@pytest.mark.parametrize(
    "value",
    [
        "Basic dXNlcjpwYXNz",  # not Bearer-shaped: the whole value is taken as the token
        "Bearer abc",
        "Bearer a.b",
        "Bearer a.b.c.d",
        "Bearer ...",
        "Bearer !!!.???.###",
        "Bearer " + b64({"alg": "RS256"}) + "." + b64(b"not json") + ".c2ln",
        "Bearer " + b64(b"[1, 2]") + "." + b64(claims()) + ".c2ln",
        "Bearer " + b64({"alg": "RS256", "kid": "k1"}) + "." + b64(claims()) + ".a",  # bad b64
    ],
)
def test_a_malformed_token_is_401(keys, value):
    decision = decide(value, keys)
    assert_unauthorized(decision, "malformed")
    assert 'error="invalid_token"' in decision.response()[1]["www-authenticate"]


def test_the_refusal_names_the_reason_never_the_token(signing_key, keys):
    token = mint(signing_key, claims(exp=NOW - 1))
    decision = decide(f"Bearer {token}", keys)
    assert decision.status == 401
    for text in (decision.reason, decision.challenge, repr(decision), str(decision.response())):
        assert token not in text
        assert token.split(".")[1] not in text


# ---- algorithm, key and signature ------------------------------------------------------------


def test_alg_none_is_refused(keys):
    token = f"{b64({'alg': 'none', 'kid': 'k1'})}.{b64(claims())}."
    assert_unauthorized(decide(f"Bearer {token}", keys), "malformed")  # no signature segment
    token = f"{b64({'alg': 'none', 'kid': 'k1'})}.{b64(claims())}.c2ln"
    assert_unauthorized(decide(f"Bearer {token}", keys), "algorithm")


def test_hs256_is_refused_even_when_keyed_with_the_public_key(signing_key, keys):
    """The classic confusion: an HMAC over the token, keyed with the published RSA key."""
    public = json.dumps(signing_key.as_dict(private=False)).encode()
    signed = f"{b64({'alg': 'HS256', 'kid': 'k1'})}.{b64(claims())}"
    mac = hmac.new(public, signed.encode(), hashlib.sha256).digest()
    decision = decide(f"Bearer {signed}.{b64(mac)}", keys)
    assert_unauthorized(decision, "algorithm")


@pytest.mark.parametrize("alg", ["ES256", "PS256", "EdDSA", "RS1", "rs256"])
def test_other_algorithms_are_refused(signing_key, keys, alg):
    token = mint(signing_key)
    _, payload, signature = token.split(".")
    forged = f"{b64({'alg': alg, 'kid': 'k1'})}.{payload}.{signature}"
    assert_unauthorized(decide(forged, keys), "algorithm")


def test_an_algorithm_the_key_does_not_allow_is_refused(keys):
    key = RSAKey.generate_key(2048, parameters={"kid": "k384", "use": "sig"})
    keys.fetch.keys.append({**key.as_dict(private=False), "alg": "RS384"})  # published for RS384
    token = jwt.encode({"alg": "RS256", "kid": "k384"}, claims(), key)
    assert_unauthorized(decide(token, keys), "algorithm")
    token = jwt.encode({"alg": "RS384", "kid": "k384"}, claims(), key, algorithms=["RS384"])
    assert decide(token, keys).allowed


def test_a_token_without_a_kid_is_refused(signing_key, keys):
    token = jwt.encode({"alg": "RS256"}, claims(), signing_key)
    assert_unauthorized(decide(token, keys), "kid")


def test_an_unknown_kid_refetches_the_key_set_once_then_refuses(signing_key, keys, jwks):
    assert decide(mint(signing_key), keys).allowed
    assert len(jwks.fetches) == 1
    assert_unauthorized(decide(mint(signing_key, kid="other"), keys), "kid")
    assert jwks.fetches == [ISSUER, ISSUER]  # one refetch, no more


def test_a_rotated_key_is_picked_up_by_the_refetch(signing_key, keys, jwks):
    assert decide(mint(signing_key), keys).allowed
    rotated = RSAKey.generate_key(2048, parameters={"kid": "k2", "alg": "RS256", "use": "sig"})
    jwks.keys.append(rotated.as_dict(private=False))
    assert decide(jwt.encode({"alg": "RS256", "kid": "k2"}, claims(), rotated), keys).allowed
    assert decide(mint(signing_key), keys).allowed
    assert len(jwks.fetches) == 2


def test_the_key_set_is_cached_per_issuer_for_the_ttl(signing_key, jwks):
    clock = [1000.0]
    keys = KeyCache(jwks, ttl=300, clock=lambda: clock[0])
    for _ in range(3):
        assert decide(mint(signing_key), keys).allowed
    assert len(jwks.fetches) == 1
    clock[0] += 301
    assert decide(mint(signing_key), keys).allowed
    assert len(jwks.fetches) == 2


def test_an_unreachable_key_set_is_401(signing_key, keys, jwks):
    jwks.fail = True
    decision = decide(mint(signing_key), keys)
    assert_unauthorized(decision, "keys unavailable")
    jwks.fail = False
    assert decide(mint(signing_key), keys).allowed  # a failure is not cached


def test_a_failing_injected_fetcher_is_401_too(signing_key):
    def broken(issuer: str) -> dict[str, Any]:
        raise RuntimeError("boom")

    assert_unauthorized(decide(mint(signing_key), KeyCache(broken)), "keys unavailable")
    assert_unauthorized(decide(mint(signing_key), KeyCache(lambda _: {})), "keys unavailable")


def test_a_token_signed_by_another_key_with_the_same_kid_is_refused(impostor_key, keys):
    decision = decide(mint(impostor_key), keys)
    assert_unauthorized(decision, "signature")
    assert (
        'error_description="the token does not have a valid signature"'
        in (decision.response()[1]["www-authenticate"])
    )


def test_a_non_rsa_or_encryption_key_is_not_used(signing_key):
    public = signing_key.as_dict(private=False)
    for key in ({**public, "use": "enc"}, {**public, "kty": "EC"}, {**public, "key_ops": []}):
        keys = KeyCache(lambda _, key=key: {"keys": [key]})
        assert_unauthorized(decide(mint(signing_key), keys), "algorithm")


# ---- claims ----------------------------------------------------------------------------------


def test_the_issuer_must_be_the_configured_one_exactly(signing_key, keys):
    for issuer in (ISSUER + "/", ISSUER.upper(), "https://evil.example.com", ...):
        decision = decide(mint(signing_key, claims(iss=issuer)), keys)
        assert_unauthorized(decision, "issuer")


def test_aud_must_match_one_audience_entry(signing_key, keys):
    assert decide(mint(signing_key, claims(aud="client-b", client_id=...)), keys).allowed
    assert decide(mint(signing_key, claims(aud=["x", "client-a"], client_id=...)), keys).allowed
    decision = decide(mint(signing_key, claims(aud="client-c", client_id=...)), keys)
    assert_unauthorized(decision, "audience")
    assert decision.response()[1]["www-authenticate"] == (
        'Bearer scope="" error="invalid_token" '
        'error_description="the token does not have a valid audience"'
    )


def test_client_id_counts_only_without_aud(signing_key, keys):
    # aud present and wrong: a right client_id does not help (API Gateway evaluates aud)
    token = mint(signing_key, claims(aud="client-c", client_id="client-a"))
    assert_unauthorized(decide(token, keys), "audience")
    assert_unauthorized(decide(mint(signing_key, claims(client_id="client-c")), keys), "audience")
    assert_unauthorized(decide(mint(signing_key, claims(client_id=...)), keys), "audience")
    assert_unauthorized(decide(mint(signing_key, claims(aud=[], client_id=...)), keys), "audience")


def test_an_expired_token_is_refused_without_leeway(signing_key, keys):
    assert_unauthorized(decide(mint(signing_key, claims(exp=NOW - 1)), keys), "expired")
    assert_unauthorized(decide(mint(signing_key, claims(exp=NOW)), keys), "expired")
    assert decide(mint(signing_key, claims(exp=NOW + 1)), keys).allowed
    assert_unauthorized(decide(mint(signing_key, claims(exp=...)), keys), "no exp")
    assert_unauthorized(decide(mint(signing_key, claims(exp="soon")), keys), "no exp")


def test_a_token_not_valid_yet_is_refused(signing_key, keys):
    assert_unauthorized(decide(mint(signing_key, claims(nbf=NOW + 1)), keys), "not yet valid")
    assert decide(mint(signing_key, claims(nbf=NOW)), keys).allowed
    assert decide(mint(signing_key, claims(nbf=NOW - 10)), keys).allowed


def test_a_token_issued_in_the_future_is_refused(signing_key, keys):
    assert_unauthorized(decide(mint(signing_key, claims(iat=NOW + 1)), keys), "iat")
    assert_unauthorized(decide(mint(signing_key, claims(iat=...)), keys), "iat")
    assert decide(mint(signing_key, claims(iat=NOW)), keys).allowed


def test_times_use_the_real_clock_by_default(signing_key, keys):
    now = int(time.time())
    token = mint(signing_key, claims(iat=now - 5, exp=now + 60))
    assert jwtauth.authorize(AUTHORIZER, READ, [("authorization", token)], keys).allowed
    token = mint(signing_key, claims(iat=now - 120, exp=now - 60))
    expired = jwtauth.authorize(AUTHORIZER, READ, [("authorization", token)], keys)
    assert expired.reason == "expired"


# ---- scopes ----------------------------------------------------------------------------------


def test_a_token_without_the_routes_scope_is_403(signing_key, keys):
    decision = decide(mint(signing_key, claims(scope="fleet/read")), keys, ("fleet/write",))
    assert (decision.status, decision.reason, decision.context) == (403, "scope", None)
    status, headers, body = decision.response()
    assert (status, body) == (403, b'{"message":"Forbidden"}')
    assert headers["www-authenticate"].startswith('Bearer scope="fleet/write" ')
    assert 'error="insufficient_scope"' in headers["www-authenticate"]
    assert decide(mint(signing_key, claims(scope=...)), keys).status == 403


def test_one_of_the_routes_scopes_is_enough(signing_key, keys):
    route = ("fleet/admin", "fleet/audit")
    assert decide(mint(signing_key, claims(scope="openid fleet/audit")), keys, route).allowed
    assert decide(mint(signing_key, claims(scope="fleet/read")), keys, route).status == 403
    # scopes are whole words: no prefix or substring matches
    assert decide(mint(signing_key, claims(scope="fleet/reader")), keys).status == 403


@pytest.mark.parametrize(
    ("token_claims", "scopes"),
    [
        ({"scope": "fleet/read"}, ["fleet/read"]),
        ({"scope": ..., "scp": "profile fleet/read"}, ["profile", "fleet/read"]),
        ({"scope": ..., "scp": ["fleet/read", "x"]}, ["fleet/read", "x"]),
        ({"scope": "a", "scp": ["fleet/read", "a"]}, ["a", "fleet/read"]),
    ],
)
def test_scopes_come_from_the_scope_or_scp_claim(signing_key, keys, token_claims, scopes):
    decision = decide(mint(signing_key, claims(**token_claims)), keys)
    assert decision.allowed
    assert decision.context["jwt"]["scopes"] == scopes


def test_a_route_without_scopes_takes_any_valid_token_and_scopes_are_null(signing_key, keys):
    decision = decide(mint(signing_key, claims(scope=...)), keys, ())
    assert decision.allowed
    assert decision.context["jwt"]["scopes"] is None
    # an ID token (aud, no scope) is valid there too
    id_token = claims(scope=..., client_id=..., aud="client-a", token_use="id")
    assert decide(mint(signing_key, id_token), keys, ()).allowed


# ---- what the integration receives -----------------------------------------------------------


def test_claims_are_rendered_as_api_gateway_renders_them():
    rendered = jwtauth.render_claims(
        {
            "sub": "u",
            "exp": 1700000000,
            "ratio": 0.5,
            "email_verified": True,
            "admin": False,
            "cognito:groups": ["admin", "ops"],
            "mixed": ["a", 1, True],
            "empty": [],
            "nothing": None,
            "address": {"country": "JP", "zip": "100"},
        }
    )
    assert rendered == {
        "sub": "u",
        "exp": "1700000000",
        "ratio": "0.5",
        "email_verified": "true",
        "admin": "false",
        "cognito:groups": "[admin ops]",
        "mixed": "[a 1 true]",
        "empty": "[]",
        "address": '{"country":"JP","zip":"100"}',
    }


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner),
            max_leaves=6,
        ),
        max_size=6,
    )
)
def test_every_rendered_claim_is_a_string(values):
    rendered = jwtauth.render_claims(values)
    assert all(isinstance(value, str) for value in rendered.values())
    assert set(rendered) == {name for name, value in values.items() if value is not None}


# ---- properties: a token is all or nothing -----------------------------------------------------

SEGMENT_TEXT = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ", max_size=400
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(replacement=SEGMENT_TEXT)
def test_any_change_to_the_payload_segment_is_401(signing_key, keys, replacement):
    header, payload, signature = mint(signing_key).split(".")
    if replacement == payload:
        return
    decision = decide(f"Bearer {header}.{replacement}.{signature}", keys)
    assert decision.status == 401 and decision.context is None


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_byte_changed_in_the_claims_is_401(signing_key, keys, data):
    """The claims JSON re-encoded with one byte changed (often still valid JSON): refused."""
    header, payload, signature = mint(signing_key).split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    index = data.draw(st.integers(0, len(raw) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda byte: byte != raw[index]))
    raw[index] = value
    decision = decide(f"Bearer {header}.{b64(bytes(raw))}.{signature}", keys)
    assert decision.status == 401 and decision.context is None


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    changes=st.fixed_dictionaries(
        {},
        optional={
            "iss": st.sampled_from([ISSUER, ISSUER + "x", "https://other"]),
            "exp": st.integers(NOW - 100, NOW + 100),
            "nbf": st.integers(NOW - 100, NOW + 100),
            "iat": st.integers(NOW - 100, NOW + 100),
            "client_id": st.sampled_from(["client-a", "client-b", "client-z"]),
            "scope": st.sampled_from(["fleet/read", "fleet/write", "openid", ""]),
        },
    )
)
def test_a_validly_signed_token_is_allowed_exactly_when_every_rule_holds(
    signing_key, keys, changes
):
    token_claims = claims(**changes)
    decision = decide(mint(signing_key, token_claims), keys)
    valid = (
        token_claims["iss"] == ISSUER
        and token_claims["client_id"] in AUTHORIZER.audience
        and token_claims["exp"] > NOW
        and token_claims.get("nbf", NOW) <= NOW
        and token_claims["iat"] <= NOW
    )
    expected = (200 if "fleet/read" in token_claims["scope"].split() else 403) if valid else 401
    assert decision.status == expected


# ---- the authorizer's configuration and the key set's discovery -------------------------------


def test_the_authorizer_is_read_from_get_authorizer():
    item = {
        "AuthorizerId": "wvpghxoe",
        "AuthorizerType": "JWT",
        "IdentitySource": ["$request.header.Authorization"],
        "JwtConfiguration": {"Audience": ["c1", "c2"], "Issuer": ISSUER},
        "Name": "fleet-dev-jwt",
    }
    assert JwtAuthorizer.from_api(item) == JwtAuthorizer(
        "wvpghxoe", ISSUER, ("c1", "c2"), ("$request.header.Authorization",)
    )
    with pytest.raises(jwtauth.AuthorizerConfigError, match="not JWT"):
        JwtAuthorizer.from_api({**item, "AuthorizerType": "REQUEST"})
    with pytest.raises(jwtauth.AuthorizerConfigError, match="no issuer"):
        JwtAuthorizer.from_api({**item, "JwtConfiguration": {"Audience": ["c1"]}})
    with pytest.raises(jwtauth.AuthorizerConfigError, match="not served locally"):
        JwtAuthorizer.from_api({**item, "IdentitySource": ["$request.querystring.token"]})


def test_the_key_set_is_discovered_through_the_emulator(monkeypatch):
    calls: list[tuple[str, dict[str, Any]]] = []
    documents = {
        f"{ISSUER}/.well-known/openid-configuration": {
            "issuer": ISSUER,
            "jwks_uri": f"{ISSUER}/.well-known/jwks.json",
        },
        f"{ISSUER}/.well-known/jwks.json": {"keys": [{"kid": "k1", "kty": "RSA"}]},
    }

    def request(url: str, **kwargs: Any) -> awshttp.HttpAnswer:
        calls.append((url, kwargs))
        if url not in documents:
            return awshttp.HttpAnswer(404, {}, b"{}")
        return awshttp.HttpAnswer(200, {}, json.dumps(documents[url]).encode())

    monkeypatch.setattr(awshttp, "request", request)
    jwks = jwtauth.discover_jwks(ISSUER, endpoint="https://127.0.0.1:4566", ca_bundle="/ca.pem")
    assert jwks == {"keys": [{"kid": "k1", "kty": "RSA"}]}
    assert [url for url, _ in calls] == list(documents)
    assert all(
        (kwargs["endpoint"], kwargs["ca_bundle"]) == ("https://127.0.0.1:4566", "/ca.pem")
        for _, kwargs in calls
    )
    with pytest.raises(KeyFetchError, match="HTTP 404"):
        jwtauth.discover_jwks("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Gone")

    def unreachable(url: str, **kwargs: Any) -> awshttp.HttpAnswer:
        raise OSError(f"GET {url}: connection refused")

    monkeypatch.setattr(awshttp, "request", unreachable)
    with pytest.raises(KeyFetchError, match="connection refused"):
        jwtauth.discover_jwks(ISSUER)
