"""The Lambda handler and the CLI: Secrets Manager through moto (in process), a real database."""

from __future__ import annotations

import contextlib
import io
import json
import ssl
import subprocess
import sys
import uuid
from dataclasses import dataclass

import boto3
import pg8000.exceptions
import pytest
from fleet_common import db as fleet_db
from fleet_common.observability import logger as fleet_common_logger
from moto import mock_aws

from fleet_migrations import __main__ as cli
from fleet_migrations import handler as h
from fleet_migrations.runner import Migration, MigrationError, discover

ALL = ["0001_core.sql", "0002_devices.sql", "0003_created_by.sql", "0004_roles.sql"]
REGION = "eu-west-1"


@dataclass
class FakeLambdaContext:
    function_name: str = "fleet-migrations"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:fleet-migrations"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    """No real AWS: fake credentials, a region, no endpoint or profile from the outside."""
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    for var in ("DB_HOST", "DB_PORT", "DB_NAME", "DB_SECRET_ARN", "DB_SSLMODE", "DB_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    h.reset_caches()
    yield
    h.reset_caches()


@pytest.fixture
def log_stream():
    """Everything the powertools loggers write (ours, and fleet_common.db's for credentials and
    connections), at DEBUG level, into a StringIO."""
    stream = io.StringIO()
    saved = []
    for log in (h.logger, fleet_common_logger):
        handler = log.registered_handler
        saved.append((log, handler, handler.stream, log.log_level))
        handler.setStream(stream)
        log.setLevel("DEBUG")
    yield stream
    for log, handler, old_stream, old_level in saved:
        handler.stream = old_stream  # not setStream(): it flushes the current, maybe closed, one
        log.setLevel(old_level)


def _password_for(db) -> str:
    # With trust authentication the server ignores the password, so any distinctive value does.
    return db.password or f"unused-{uuid.uuid4().hex}"


def _create_secret(username: str, password: str) -> str:
    client = boto3.client("secretsmanager", region_name=REGION)
    secret = client.create_secret(
        Name=f"rds!db-{uuid.uuid4()}",
        SecretString=json.dumps({"username": username, "password": password}),
    )
    return secret["ARN"]


def _point_env_at(monkeypatch, db, secret_arn: str) -> None:
    monkeypatch.setenv("DB_HOST", db.host)
    monkeypatch.setenv("DB_PORT", str(db.port))
    monkeypatch.setenv("DB_NAME", db.database)
    monkeypatch.setenv("DB_SECRET_ARN", secret_arn)
    monkeypatch.setenv("DB_SSLMODE", db.sslmode)


def _count_get_secret_value() -> list[str]:
    calls: list[str] = []
    fleet_db._secrets_client().meta.events.register(
        "before-parameter-build.secrets-manager.GetSecretValue",
        lambda params, **_: calls.append(params["SecretId"]),
    )
    return calls


# --- handler against the real database ---------------------------------------------------


@mock_aws
def test_handler_applies_migrations_and_caches_the_secret(db, monkeypatch, log_stream):
    password = _password_for(db)
    arn = _create_secret(db.user, password)
    _point_env_at(monkeypatch, db, arn)
    calls = _count_get_secret_value()

    first = h.handler({}, FakeLambdaContext())
    second = h.handler({"anything": 1}, FakeLambdaContext())

    assert first == {"applied": ALL, "current_version": 4, "roles": []}
    assert second == {"applied": [], "current_version": 4, "roles": []}
    assert calls == [arn], "the secret should be fetched once and cached across invocations"

    logs = log_stream.getvalue()
    assert "0001_core.sql" in logs and '"service":"fleet-migrations"' in logs
    assert password not in logs
    assert "SecretString" not in logs


@mock_aws
def test_handler_failure_names_the_migration_and_keeps_the_password_out_of_logs(
    db, monkeypatch, log_stream
):
    password = _password_for(db)
    _point_env_at(monkeypatch, db, _create_secret(db.user, password))
    bad = Migration(5, "0005_bad.sql", "CREATE TABLE oops (id int); SELECT 1 / 0;")
    monkeypatch.setattr(h, "discover", lambda: [*discover(), bad])

    with pytest.raises(MigrationError, match=r"^migration 0005_bad\.sql failed"):
        h.handler({}, FakeLambdaContext())

    logs = log_stream.getvalue()
    assert "0005_bad.sql" in logs
    assert password not in logs

    conn = db.connect()
    try:
        assert conn.run("SELECT max(version) FROM schema_migrations") == [[4]]
    finally:
        conn.close()


def test_a_duplicate_version_fails_naming_both_files_before_any_connection(monkeypatch, tmp_path):
    (tmp_path / "0001_core.sql").write_text("SELECT 1;\n")
    (tmp_path / "0001_again.sql").write_text("SELECT 2;\n")
    monkeypatch.setattr(h, "discover", lambda: discover(tmp_path))

    def no_connection(settings):
        raise AssertionError("connected although the migrations are invalid")

    monkeypatch.setattr(h, "open_connection", no_connection)
    settings = h.Settings(host="db.invalid", port=5432, database="fleet", secret_arn="arn")
    with pytest.raises(MigrationError, match=r"^duplicate migration version 0001: 0001_"):
        h.run(settings)


@mock_aws
def test_stale_cached_password_is_refreshed_against_the_real_server(db, monkeypatch, log_stream):
    if not db.password:
        pytest.skip("the test server's URL has no password, so it cannot reject a wrong one")
    probe = None
    with contextlib.suppress(pg8000.exceptions.DatabaseError):
        probe = h._connect(
            h.Settings(db.host, db.port, db.database, "x", db.sslmode),
            h.Credentials(db.user, "definitely-wrong"),
        )
    if probe is not None:
        probe.close()
        pytest.skip("the test server accepts any password (trust authentication)")

    arn = _create_secret(db.user, db.password)
    _point_env_at(monkeypatch, db, arn)
    # What a rotation leaves behind:
    fleet_db._credentials[arn] = h.Credentials(db.user, "rotated-away")
    calls = _count_get_secret_value()

    assert h.handler({}, FakeLambdaContext()) == {"applied": ALL, "current_version": 4, "roles": []}
    assert calls == [arn]
    assert "rotated-away" not in log_stream.getvalue()
    assert db.password not in log_stream.getvalue()


def test_connection_is_named_fleet_migrations_and_has_no_socket_timeout(db):
    conn = h._connect(
        h.Settings(db.host, db.port, db.database, "x", db.sslmode),
        h.Credentials(db.user, _password_for(db)),
    )
    try:
        assert conn.run("SHOW application_name") == [["fleet-migrations"]]
        assert conn._usock.gettimeout() is None  # a migration may take longer than the API's
    finally:
        conn.close()


@mock_aws
def test_cli_prints_the_result_as_json(db, monkeypatch, capsys, log_stream):
    _point_env_at(monkeypatch, db, _create_secret(db.user, _password_for(db)))
    assert cli.main([]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"applied": ALL, "current_version": 4, "roles": []}
    assert "applying migration 0001_core.sql" in err  # the log went to stderr

    assert cli.main([]) == 0
    out, _ = capsys.readouterr()
    assert json.loads(out) == {"applied": [], "current_version": 4, "roles": []}


# --- no database needed ------------------------------------------------------------------


def test_cli_reports_missing_configuration(capsys, log_stream):
    assert cli.main([]) == 1
    _, err = capsys.readouterr()
    assert "missing environment variable(s): DB_HOST, DB_NAME, DB_SECRET_ARN" in err


def test_module_entry_point_help():
    done = subprocess.run(
        [sys.executable, "-m", "fleet_migrations", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "DB_SECRET_ARN" in done.stdout


@mock_aws
def test_auth_failure_with_cached_credentials_refetches_once(monkeypatch):
    arn = _create_secret("master", "old-password")
    settings = h.Settings("db.internal", 5432, "fleet", arn)
    assert h.get_credentials(arn).password == "old-password"  # cached now
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=arn, SecretString=json.dumps({"username": "master", "password": "new-password"})
    )
    calls = _count_get_secret_value()
    attempts: list[str] = []

    def fake_connect(settings, credentials):
        attempts.append(credentials.password)
        if credentials.password != "new-password":
            raise pg8000.exceptions.DatabaseError(
                {"S": "FATAL", "C": "28P01", "M": 'password authentication failed for "master"'}
            )
        return "connection"

    monkeypatch.setattr(h, "_connect", fake_connect)
    assert h.open_connection(settings) == "connection"
    assert attempts == ["old-password", "new-password"]
    assert calls == [arn]
    assert h.get_credentials(arn).password == "new-password"


@mock_aws
def test_other_connection_errors_and_fresh_credentials_are_not_retried(monkeypatch):
    arn = _create_secret("master", "pw")
    settings = h.Settings("db.internal", 5432, "fleet", arn)
    calls = _count_get_secret_value()
    attempts: list[str] = []

    def rejecting(settings, credentials):
        attempts.append(credentials.password)
        raise pg8000.exceptions.DatabaseError({"S": "FATAL", "C": "28P01", "M": "nope"})

    monkeypatch.setattr(h, "_connect", rejecting)
    with pytest.raises(pg8000.exceptions.DatabaseError):
        h.open_connection(settings)  # just fetched: no point fetching again
    assert attempts == ["pw"] and calls == [arn]

    def missing_db(settings, credentials):
        attempts.append(credentials.password)
        raise pg8000.exceptions.DatabaseError({"S": "FATAL", "C": "3D000", "M": "no database"})

    monkeypatch.setattr(h, "_connect", missing_db)
    with pytest.raises(pg8000.exceptions.DatabaseError):
        h.open_connection(settings)  # cached, but not an authentication failure
    assert attempts == ["pw", "pw"] and calls == [arn]


@mock_aws
@pytest.mark.parametrize(
    ("secret_string", "message"),
    [
        ("not json at all", "is not a JSON object"),
        ('["a"]', "is not a JSON object"),
        ('{"username": "u"}', "lacks string field(s): password"),
    ],
)
def test_unusable_secret_is_a_config_error_without_its_content(secret_string, message):
    client = boto3.client("secretsmanager", region_name=REGION)
    arn = client.create_secret(Name=f"s-{uuid.uuid4()}", SecretString=secret_string)["ARN"]
    with pytest.raises(h.ConfigError) as excinfo:
        h.get_credentials(arn)
    assert message in str(excinfo.value)
    assert excinfo.value.__cause__ is None
    assert secret_string not in str(excinfo.value)


def test_settings_from_env():
    env = {"DB_HOST": "h", "DB_NAME": "fleet", "DB_SECRET_ARN": "arn:x"}
    s = h.Settings.from_env(env)
    assert (s.host, s.port, s.database, s.secret_arn, s.sslmode, s.ca_bundle) == (
        "h",
        5432,
        "fleet",
        "arn:x",
        "verify-full",
        None,
    )
    assert h.Settings.from_env({**env, "DB_PORT": "6543", "DB_SSLMODE": "disable"}).port == 6543
    with pytest.raises(h.ConfigError, match="DB_HOST, DB_SECRET_ARN"):
        h.Settings.from_env({"DB_NAME": "fleet"})
    with pytest.raises(h.ConfigError, match="DB_PORT"):
        h.Settings.from_env({**env, "DB_PORT": "five"})
    with pytest.raises(h.ConfigError, match="DB_SSLMODE"):
        h.Settings.from_env({**env, "DB_SSLMODE": "prefer"})
    with pytest.raises(h.ConfigError, match="DB_CA_BUNDLE"):
        h.Settings.from_env({**env, "DB_CA_BUNDLE": "/nonexistent/ca.pem"})


def test_ssl_contexts():
    assert h.ssl_context_for("disable") is False  # not None: None means "prefer" to pg8000

    require = h.ssl_context_for("require")
    assert isinstance(require, ssl.SSLContext)
    assert require.verify_mode == ssl.CERT_NONE and not require.check_hostname
    assert require.minimum_version >= ssl.TLSVersion.TLSv1_2

    ca = ssl.get_default_verify_paths().cafile or ssl.get_default_verify_paths().openssl_cafile
    for mode in ("require", "verify-full"):
        ctx = h.ssl_context_for(mode, ca)
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname, mode
    verify_ca = h.ssl_context_for("verify-ca", ca)
    assert verify_ca.verify_mode == ssl.CERT_REQUIRED and not verify_ca.check_hostname

    with pytest.raises(h.ConfigError):
        h.ssl_context_for("allow")


def test_credentials_repr_hides_the_password():
    assert "s3cret" not in repr(h.Credentials("master", "s3cret"))
