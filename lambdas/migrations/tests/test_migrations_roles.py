"""One database role per job: what each role may do, against a real PostgreSQL database, and
how the roles get their passwords (Secrets Manager through moto, in process)."""

from __future__ import annotations

import json
import uuid

import boto3
import pg8000.exceptions
import pg8000.native
import pytest
from moto import mock_aws

from fleet_migrations.roles import provision_roles, role_secrets_from_env
from fleet_migrations.runner import MigrationError, apply_migrations

REGION = "eu-west-1"
ROLES = ("fleet_reader", "fleet_writer")
INSUFFICIENT_PRIVILEGE = "42501"


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, **kwargs) -> None:
        self.lines.append(f"{message} {kwargs}")


@pytest.fixture
def aws(monkeypatch):
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


def _empty_secrets(client) -> dict[str, str]:
    """One secret per role, without a value: as the postgres module creates them."""
    return {
        role: client.create_secret(Name=f"fleet-{uuid.uuid4().hex[:8]}/role/{role}")["ARN"]
        for role in ROLES
    }


def _login(db, client, secret_arn: str) -> pg8000.native.Connection:
    """Connect as a function does: with the credentials in the role's secret."""
    credentials = json.loads(client.get_secret_value(SecretId=secret_arn)["SecretString"])
    return pg8000.native.Connection(
        user=credentials["username"],
        password=credentials["password"],
        host=db.host,
        port=db.port,
        database=db.database,
        ssl_context=db.sslmode != "disable",
    )


def _refused(conn, sql: str, **params) -> str:
    with pytest.raises(pg8000.exceptions.DatabaseError) as caught:
        conn.run(sql, **params)
    return caught.value.args[0]["C"]


@pytest.fixture
def provisioned(db, conn, aws):
    apply_migrations(conn)
    secrets = _empty_secrets(aws)
    log = _Log()
    assert provision_roles(conn, secrets, aws, log) == list(ROLES)
    conn.run("INSERT INTO team (name) VALUES ('core')")
    conn.run(
        "INSERT INTO project (team_id, name, created_by) "
        "SELECT id, 'pumps', 'seed' FROM team WHERE name = 'core'"
    )
    conn.run(
        "INSERT INTO device (project_id, name, created_by) "
        "SELECT id, 'p-1', 'seed' FROM project WHERE name = 'pumps'"
    )
    return secrets, log


def test_each_role_secret_holds_its_role_and_a_generated_password(db, conn, aws, provisioned):
    secrets, log = provisioned
    passwords = set()
    for role, arn in secrets.items():
        document = json.loads(aws.get_secret_value(SecretId=arn)["SecretString"])
        assert document["username"] == role
        assert len(document["password"]) >= 40
        passwords.add(document["password"])
        assert document["password"] not in "\n".join(log.lines)
    assert len(passwords) == 2
    # the server was sent a SCRAM verifier, never the password
    for role in ROLES:
        assert conn.run("SELECT rolcanlogin FROM pg_roles WHERE rolname = :r", r=role) == [[True]]


def test_the_reader_reads_projects_and_devices_and_cannot_write(db, aws, provisioned):
    secrets, _ = provisioned
    reader = _login(db, aws, secrets["fleet_reader"])
    try:
        rows = reader.run(
            "SELECT d.name FROM device d JOIN project p ON p.id = d.project_id "
            "WHERE p.name = 'pumps'"
        )
        assert rows == [["p-1"]]
        for sql in (
            "INSERT INTO device (project_id, name, created_by) SELECT id, 'x', 'r' FROM project",
            "UPDATE device SET serial = 'changed'",
            "DELETE FROM device",
            "INSERT INTO project (team_id, name, created_by) VALUES (1, 'x', 'r')",
            "UPDATE project SET name = 'renamed'",
            "DELETE FROM project",
            "TRUNCATE device",
            "SELECT name FROM team",  # not what list_devices reads
            "ALTER TABLE device ADD COLUMN x int",
            "CREATE TABLE reader_table (id int)",
        ):
            assert _refused(reader, sql) == INSUFFICIENT_PRIVILEGE, sql
    finally:
        reader.close()


def test_the_writer_adds_rows_as_the_functions_do_and_cannot_delete_or_change_the_schema(
    db, aws, provisioned
):
    secrets, _ = provisioned
    writer = _login(db, aws, secrets["fleet_writer"])
    try:
        # create_project's and register_device's statements
        writer.run("INSERT INTO team (name) VALUES ('edge') ON CONFLICT (name) DO NOTHING")
        ((team_id,),) = writer.run("SELECT id FROM team WHERE name = 'edge' FOR KEY SHARE")
        writer.run(
            "INSERT INTO project (team_id, name, created_by) VALUES (:t, 'fans', 'w') "
            "ON CONFLICT (name) DO NOTHING RETURNING id, name, created_by, created_at",
            t=team_id,
        )
        ((project_id,),) = writer.run("SELECT id FROM project WHERE name = 'fans' FOR KEY SHARE")
        writer.run(
            "INSERT INTO device (project_id, name, serial, attributes, created_by) "
            "VALUES (:p, 'f-1', NULL, CAST('{}' AS jsonb), 'w') "
            "ON CONFLICT (project_id, name) DO NOTHING RETURNING id",
            p=project_id,
        )
        for sql in (
            "DELETE FROM device",
            "DELETE FROM project",
            "DELETE FROM team",
            "TRUNCATE device",
            "UPDATE device SET serial = 'changed'",
            "UPDATE project SET name = 'renamed'",
            "UPDATE project SET created_by = 'someone else'",
            "SELECT * FROM app_user",
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (99, 'x', 'y')",
            "CREATE TABLE writer_table (id int)",
        ):
            assert _refused(writer, sql) == INSUFFICIENT_PRIVILEGE, sql
        for sql in (
            "ALTER TABLE device ADD COLUMN x int",
            "ALTER TABLE project DROP COLUMN created_by",
            "DROP TABLE device",
            "DROP TABLE project CASCADE",
            "CREATE INDEX writer_index ON device (serial)",
        ):
            # only a table's owner may change or drop it: "must be owner of table"
            assert _refused(writer, sql) == INSUFFICIENT_PRIVILEGE, sql
    finally:
        writer.close()


def test_a_second_run_keeps_the_passwords_and_a_cleared_secret_gets_a_new_one(
    db, conn, aws, provisioned
):
    secrets, _ = provisioned
    before = {arn: aws.get_secret_value(SecretId=arn)["SecretString"] for arn in secrets.values()}
    provision_roles(conn, secrets, aws, _Log())
    after = {arn: aws.get_secret_value(SecretId=arn)["SecretString"] for arn in secrets.values()}
    assert after == before
    _login(db, aws, secrets["fleet_reader"]).close()
    # a secret whose value is not the role's credentials gets a new password (rotation)
    aws.put_secret_value(SecretId=secrets["fleet_writer"], SecretString="{}")
    provision_roles(conn, secrets, aws, _Log())
    rotated = aws.get_secret_value(SecretId=secrets["fleet_writer"])["SecretString"]
    assert rotated != before[secrets["fleet_writer"]]
    _login(db, aws, secrets["fleet_writer"]).close()


def test_a_secret_for_a_role_no_migration_created_is_an_error(conn, aws):
    apply_migrations(conn)
    arn = aws.create_secret(Name=f"x-{uuid.uuid4().hex[:8]}/role/fleet_admin")["ARN"]
    with pytest.raises(MigrationError, match=r"database role 'fleet_admin'.*does not exist"):
        provision_roles(conn, {"fleet_admin": arn}, aws, _Log())


@pytest.mark.parametrize("text", ["[]", "not json", '{"fleet_reader": 3}', '{"": "arn"}'])
def test_a_malformed_role_secrets_variable_is_an_error(text):
    with pytest.raises(MigrationError, match="DB_ROLE_SECRETS must be a JSON object"):
        role_secrets_from_env({"DB_ROLE_SECRETS": text})
