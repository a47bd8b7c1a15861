"""Settings, credentials and the cached connection, against a real PostgreSQL and moto."""

from __future__ import annotations

import json
import socket
import ssl
from pathlib import Path

import boto3
import pg8000.exceptions
import pytest

from fleet_common import db
from fleet_common.config import RDS_CA_BUNDLE, ConfigError, Settings, ssl_context_for
from fleet_common.errors import Conflict

BASE_ENV = {"DB_HOST": "db.example", "DB_NAME": "fleet", "DB_SECRET_ARN": "arn:secret"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_settings_defaults_and_errors(tmp_path):
    settings = Settings.from_env(BASE_ENV)
    assert (settings.port, settings.sslmode, settings.ca_bundle) == (5432, "verify-full", None)
    with pytest.raises(ConfigError, match="DB_HOST, DB_NAME, DB_SECRET_ARN"):
        Settings.from_env({})
    for port in ("x", "0", "70000"):
        with pytest.raises(ConfigError, match="DB_PORT"):
            Settings.from_env({**BASE_ENV, "DB_PORT": port})
    with pytest.raises(ConfigError, match="DB_SSLMODE"):
        Settings.from_env({**BASE_ENV, "DB_SSLMODE": "prefer"})
    with pytest.raises(ConfigError, match="DB_CA_BUNDLE"):
        Settings.from_env({**BASE_ENV, "DB_CA_BUNDLE": str(tmp_path / "missing.pem")})
    assert Settings.from_env({**BASE_ENV, "DB_SSLMODE": " Disable "}).sslmode == "disable"


def test_ssl_modes():
    assert ssl_context_for("disable") is False
    require = ssl_context_for("require")
    assert isinstance(require, ssl.SSLContext)
    assert (require.check_hostname, require.verify_mode) == (False, ssl.CERT_NONE)
    verify_ca = ssl_context_for("verify-ca")
    assert (verify_ca.check_hostname, verify_ca.verify_mode) == (False, ssl.CERT_REQUIRED)
    full = ssl_context_for("verify-full")
    assert (full.check_hostname, full.verify_mode) == (True, ssl.CERT_REQUIRED)
    with pytest.raises(ConfigError):
        ssl_context_for("allow")


def test_verification_uses_the_shipped_rds_bundle_not_the_system_store():
    from cryptography import x509

    bundle = Path(RDS_CA_BUNDLE).read_bytes()
    shipped = {cert.subject.rfc4514_string() for cert in x509.load_pem_x509_certificates(bundle)}
    # the CA the postgres module pins (ca_cert_identifier rds-ca-rsa2048-g1), for eu-west-1
    assert any("Amazon RDS eu-west-1 Root CA RSA2048 G1" in name for name in shipped)
    trusted = {
        x509.load_der_x509_certificate(der).subject.rfc4514_string()
        for der in ssl_context_for("verify-full").get_ca_certs(binary_form=True)
    }
    assert trusted == shipped  # the shipped bundle, and nothing of the system's store


def test_connection_is_reused_across_transactions(fleet_api_env):
    with db.transaction() as conn:
        first = conn
        pid = conn.run("SELECT pg_backend_pid()")[0][0]
    with db.transaction(read_only=True) as conn:
        assert conn is first
        assert conn.run("SELECT pg_backend_pid()")[0][0] == pid
        assert conn.run("SHOW transaction_read_only")[0][0] == "on"


def test_reconnects_when_closed_or_dropped_by_the_server(fleet_api_env):
    with db.transaction() as conn:
        pid = conn.run("SELECT pg_backend_pid()")[0][0]
    conn.close()  # closed locally
    with db.transaction() as conn2:
        assert conn2 is not conn
        pid2 = conn2.run("SELECT pg_backend_pid()")[0][0]
    assert pid2 != pid
    # Dropped by the server while idle (restart, failover): found at BEGIN, reconnected.
    admin = fleet_api_env.connect()
    try:
        admin.run("SELECT pg_terminate_backend(:pid)", pid=pid2)
    finally:
        admin.close()
    with db.transaction() as conn3:
        assert conn3.run("SELECT 1")[0][0] == 1
        assert conn3.run("SELECT pg_backend_pid()")[0][0] != pid2


def test_transaction_commits_or_rolls_back(fleet_api_env):
    with db.transaction() as conn:
        conn.run("INSERT INTO team (name) VALUES (:n)", n="kept")
    with pytest.raises(Conflict), db.transaction() as conn:
        conn.run("INSERT INTO team (name) VALUES (:n)", n="rolled back")
        raise Conflict("stop")
    with pytest.raises(pg8000.exceptions.DatabaseError), db.transaction() as conn:
        conn.run("INSERT INTO team (name) VALUES (:n)", n=" not trimmed ")
    names = [r[0] for r in fleet_api_env.query("SELECT name FROM team ORDER BY name")]
    assert names == ["kept"]
    with db.transaction() as conn:  # the connection survived the failed transaction
        assert conn.run("SELECT count(*) FROM team")[0][0] == 1


def test_new_settings_mean_a_new_connection(fleet_api_env, monkeypatch):
    conn, reused = db.get_connection()
    assert not reused
    assert db.get_connection() == (conn, True)
    monkeypatch.setenv("DB_SSLMODE", "DISABLE")  # same settings once normalised: reused
    assert db.get_connection() == (conn, True)
    monkeypatch.setenv("DB_PORT", f"0{fleet_api_env.database.port}")  # same port, new text
    assert db.get_connection() == (conn, True)
    monkeypatch.setenv("DB_NAME", "postgres")
    conn2, reused2 = db.get_connection()
    assert conn2 is not conn and not reused2


def test_secret_is_fetched_once_and_cached(fleet_api_env):
    with db.transaction():
        pass
    db.close_connection()
    # The secret is gone from Secrets Manager, but the cached credentials still serve.
    boto3.client("secretsmanager").delete_secret(
        SecretId=fleet_api_env.secret_arn, ForceDeleteWithoutRecovery=True
    )
    with db.transaction() as conn:
        assert conn.run("SELECT current_user")[0][0] == fleet_api_env.database.user


def _server_checks_passwords(env) -> bool:
    try:
        import pg8000.native

        pg8000.native.Connection(
            user=env.database.user,
            password="certainly-not-the-password",
            host=env.database.host,
            port=env.database.port,
            database=env.database.database,
        ).close()
    except pg8000.exceptions.DatabaseError:
        return True
    return False


def test_rotated_password_is_fetched_again_once(fleet_api_env, fleet_logs):
    if not _server_checks_passwords(fleet_api_env):
        pytest.skip("the test server accepts any password (trust authentication)")
    client = boto3.client("secretsmanager")
    user = fleet_api_env.database.user
    stale = "stale-password-0123"
    client.put_secret_value(
        SecretId=fleet_api_env.secret_arn,
        SecretString=json.dumps({"username": user, "password": stale}),
    )
    db.get_credentials(fleet_api_env.secret_arn)  # cached: the stale one
    client.put_secret_value(
        SecretId=fleet_api_env.secret_arn,
        SecretString=json.dumps({"username": user, "password": fleet_api_env.password}),
    )
    with db.transaction() as conn:
        assert conn.run("SELECT 1")[0][0] == 1
    text = fleet_logs.text()
    assert "fetching the secret again" in text
    assert stale not in text and fleet_api_env.password not in text


def test_wrong_fresh_password_fails_without_retry(fleet_api_env):
    if not _server_checks_passwords(fleet_api_env):
        pytest.skip("the test server accepts any password (trust authentication)")
    boto3.client("secretsmanager").put_secret_value(
        SecretId=fleet_api_env.secret_arn,
        SecretString=json.dumps({"username": fleet_api_env.database.user, "password": "nope"}),
    )
    with pytest.raises(pg8000.exceptions.DatabaseError) as info:
        db.get_connection()
    assert db.sqlstate(info.value) in db.AUTH_FAILED_SQLSTATES
    assert "nope" not in str(info.value)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("not json", "is not a JSON object"),
        ("[1]", "is not a JSON object"),
        ('{"username": "u"}', "lacks string field"),
    ],
)
def test_unusable_secrets_are_config_errors(fleet_api_env, secret, message):
    boto3.client("secretsmanager").put_secret_value(
        SecretId=fleet_api_env.secret_arn, SecretString=secret
    )
    with pytest.raises(ConfigError, match=message) as info:
        db.get_credentials(fleet_api_env.secret_arn)
    assert info.value.__cause__ is None


def test_unreachable_database_raises_interface_error(fleet_api_env, monkeypatch):
    monkeypatch.setenv("DB_HOST", "127.0.0.1")
    monkeypatch.setenv("DB_PORT", str(_free_port()))
    with pytest.raises(pg8000.exceptions.InterfaceError), db.transaction():
        pass


def test_credentials_repr_hides_the_password():
    assert "hunter2" not in repr(db.Credentials("u", "hunter2"))
