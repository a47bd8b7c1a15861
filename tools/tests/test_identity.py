"""Choosing the app client `stackrun token` asks for a token (no AWS calls: see
test_database_local for tokens fetched from the emulated pool)."""

from __future__ import annotations

import pytest

from stackrun.aws.identity import Identity, TokenError, choose_client, find_identity

CLIENTS = {
    "ci": {"client_id": "c1", "secret_arn": "arn:ci", "scopes": ["fleet/read", "fleet/write"]},
    "reader": {"client_id": "c2", "secret_arn": "arn:reader", "scopes": ["fleet/read"]},
}


def _identity(clients=CLIENTS) -> Identity:
    return Identity("025_identity", "https://issuer", "https://pool/oauth2/token", clients)


def test_the_identity_stack_is_the_one_with_a_token_endpoint_and_clients():
    outputs = {
        "020_postgres": {"endpoint": {"value": "db"}},
        "025_identity": {
            "issuer": {"value": "https://issuer"},
            "token_endpoint": {"value": "https://pool/oauth2/token"},
            "clients": {"value": CLIENTS},
        },
    }
    identity = find_identity(outputs)
    assert identity == _identity()
    assert identity.document()["clients"] == {
        "ci": {"client_id": "c1", "scopes": ["fleet/read", "fleet/write"]},
        "reader": {"client_id": "c2", "scopes": ["fleet/read"]},
    }
    assert "secret_arn" not in str(identity.document())
    assert find_identity({"020_postgres": outputs["020_postgres"]}) is None


def test_the_first_client_by_name_that_may_request_every_scope_is_chosen():
    assert choose_client(_identity(), None, ["fleet/read"])[0] == "ci"
    assert choose_client(_identity(), None, ["fleet/write"])[0] == "ci"
    assert choose_client(_identity(), "reader", ["fleet/read"])[0] == "reader"
    assert choose_client(_identity(), None, [])[0] == "ci"


@pytest.mark.parametrize(
    ("client", "scopes", "message"),
    [
        ("reader", ["fleet/write"], "client 'reader' may not request fleet/write (its scopes: "),
        ("nobody", [], "no app client 'nobody' in 025_identity (clients: ci, reader)"),
        (None, ["fleet/admin"], "no app client may request fleet/admin (ci: fleet/read, "),
    ],
)
def test_a_client_that_cannot_have_the_scopes_is_refused_by_name(client, scopes, message):
    with pytest.raises(TokenError) as caught:
        choose_client(_identity(), client, scopes)
    assert message in str(caught.value)


def test_an_identity_stack_without_clients_says_where_to_add_them():
    with pytest.raises(TokenError, match=r"\[inputs.clients.<name>\]"):
        choose_client(_identity({}), None, ["fleet/read"])
