"""The test helpers themselves: every package's tests stand on them, so they are checked
against what they promise (the test server's URL, scratch databases, the fixtures' database,
secret and logs, the events' shape, the reproducible property settings)."""

from __future__ import annotations

import base64
import json

import boto3
import pytest
from fleet_common import db
from fleet_common.identity import Caller, identify
from fleet_common.observability import logger
from hypothesis import given
from hypothesis import strategies as st

from fleet_testing.events import (
    DEFAULT_CLAIMS,
    TEST_CLIENT_ID,
    TEST_SUB,
    TEST_TOKEN,
    http_event,
    invoke,
    jwt_claims,
)
from fleet_testing.proptest import database_rows, property_settings, seed_projects
from fleet_testing.pytest_plugin import (
    TABLES,
    URL_ENV,
    FleetEnv,
    TestServer,
    scratch_database,
    test_server,
)

# ---- the test server -------------------------------------------------------------------------


def test_the_server_comes_from_the_url_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_ENV, "postgresql://fleet%40ci:p%3Ass%2Fw@db.test:6543/my%20db")
    assert test_server() == TestServer(
        host="db.test", port=6543, user="fleet@ci", password="p:ss/w", database="my db"
    )
    monkeypatch.setenv(URL_ENV, "postgres://fleet@db.test/?sslmode=require")
    assert test_server() == TestServer(
        host="db.test",
        port=5432,
        user="fleet",
        password=None,
        database="postgres",
        sslmode="require",
    )


def test_without_a_server_the_tests_fail_saying_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(URL_ENV, raising=False)
    with pytest.raises(pytest.fail.Exception, match=rf"{URL_ENV} is not set.*nox -s testdb"):
        test_server()
    monkeypatch.setenv(URL_ENV, "mysql://fleet@db.test/x")
    with pytest.raises(pytest.fail.Exception, match="must look like postgresql://"):
        test_server()


def _database_exists(name: str) -> bool:
    admin = test_server().connect()
    try:
        return bool(admin.run("SELECT 1 FROM pg_database WHERE datname = :n", n=name))
    finally:
        admin.close()


def test_a_scratch_database_is_new_empty_and_dropped_afterwards() -> None:
    with scratch_database("fleet_testing_scratch") as database:
        assert database.database.startswith("fleet_testing_scratch_")
        assert _database_exists(database.database)
        conn = database.connect()
        try:
            tables = conn.run(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            )
        finally:
            conn.close()
        assert tables == [[0]]
    assert not _database_exists(database.database)


# ---- the fixtures ----------------------------------------------------------------------------


def test_the_module_database_holds_the_migrated_schema(fleet_database: TestServer) -> None:
    conn = fleet_database.connect()
    try:
        rows = conn.run(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    finally:
        conn.close()
    assert set(TABLES) <= {name for (name,) in rows}


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_starts_on_empty_tables(fleet_api_env: FleetEnv, run: int) -> None:
    """The second run would find the first one's project if the fixture left rows behind."""
    conn = fleet_api_env.connect()
    try:
        assert all(rows == [] for rows in database_rows(conn).values())
        seed_projects(conn, {f"project-{run}": "team"})
        assert len(database_rows(conn)["project"]) == 1
    finally:
        conn.close()


def test_the_handlers_connect_through_the_mocked_secret(fleet_api_env: FleetEnv) -> None:
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=fleet_api_env.secret_arn)
    assert json.loads(secret["SecretString"]) == {
        "username": fleet_api_env.database.user,
        "password": fleet_api_env.password,
    }
    with db.transaction(read_only=True) as conn:
        assert conn.run("SELECT current_database()") == [[fleet_api_env.database.database]]


def test_the_log_is_captured(fleet_logs) -> None:
    logger.info("captured line", extra={"marker": "fleet-testing"})
    records = [r for r in fleet_logs.records() if r.get("marker") == "fleet-testing"]
    assert [r["message"] for r in records] == ["captured line"]
    assert "captured line" in fleet_logs.text()


# ---- events ----------------------------------------------------------------------------------


def test_an_event_carries_the_default_verified_caller() -> None:
    event = http_event(
        "get", "/projects/p/devices", "GET /projects/{project}/devices", {"project": "p"}
    )
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["headers"]["authorization"] == f"Bearer {TEST_TOKEN}"
    assert event["requestContext"]["authorizer"]["jwt"]["claims"] == dict(DEFAULT_CLAIMS)
    assert identify(event) == Caller(
        sub=TEST_SUB, client_id=TEST_CLIENT_ID, scopes=("fleet/read", "fleet/write")
    )
    other = http_event("GET", "/x", claims=jwt_claims("someone", client_id="app", scopes=[]))
    assert identify(other) == Caller(sub="someone", client_id="app", scopes=())


def test_an_event_without_claims_has_no_identity_at_all() -> None:
    event = http_event("POST", "/projects", body={"name": "x"}, claims=None)
    assert "authorizer" not in event["requestContext"]
    assert "authorization" not in event["headers"]
    assert json.loads(event["body"]) == {"name": "x"}


def test_queries_and_bodies_are_shaped_as_api_gateway_sends_them() -> None:
    event = http_event("GET", "/d", query={"tag": ["a b", "c"], "limit": "5"})
    assert event["rawQueryString"] == "tag=a+b&tag=c&limit=5"
    assert event["queryStringParameters"] == {"tag": "a b,c", "limit": "5"}
    event = http_event("POST", "/d", body="é", base64_body=True)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]).decode() == "é"
    assert event["headers"]["content-length"] == "2"  # bytes, not characters


def test_invoke_unpacks_the_response() -> None:
    def handler(event, context):
        assert context.get_remaining_time_in_millis() > 0
        body = base64.b64encode(json.dumps({"path": event["rawPath"]}).encode()).decode()
        headers = {"Content-Type": "application/json"}
        return {"statusCode": 201, "headers": headers, "body": body, "isBase64Encoded": True}

    result = invoke(handler, http_event("GET", "/here"))
    assert (result.status, result.json) == (201, {"path": "/here"})
    assert result.headers == {"content-type": "application/json"}


# ---- property settings -----------------------------------------------------------------------


def test_property_settings_are_reproducible_and_sized_by_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FLEET_PROPERTY_EXAMPLES", raising=False)
    chosen = property_settings(max_examples=7)
    assert (chosen.max_examples, chosen.derandomize, chosen.database) == (7, True, None)
    monkeypatch.setenv("FLEET_PROPERTY_EXAMPLES", "11")
    assert property_settings(max_examples=7).max_examples == 11

    def draws() -> list[int]:
        seen: list[int] = []

        @property_settings(max_examples=5)
        @given(st.integers())
        def record(value: int) -> None:
            seen.append(value)

        record()
        return seen

    assert draws() == draws()
