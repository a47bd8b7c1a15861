"""The local PostgreSQL server behind the emulated RDS instance: real initdb/pg_ctl/postgres.

Every cluster lives under the test's tmp_path (under /tmp/pytest-of-<user>, a 0700 folder: when
the tests run as root, the module must let its unprivileged server user through) and is stopped
at teardown.
"""

from __future__ import annotations

import os
import shutil
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackrun.local import postgres
from stackrun.local.emulator.ca import ensure_certificates
from stackrun.local.postgres import (
    LocalDatabaseError,
    LocalServer,
    ServerTLS,
    connections,
    data_folder,
    os_account,
    postmaster,
    roles,
)

pytestmark = pytest.mark.skipif(
    shutil.which("pg_ctl") is None or shutil.which("initdb") is None,
    reason="PostgreSQL server programs (initdb, pg_ctl) not on PATH",
)

DB = "fleet_registry"
USER = "fleet_admin"
PASSWORD = "Pw-4f9c1e7a-never-logged"


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A folder for clusters; every server under it is stopped afterwards."""
    yield tmp_path
    postgres.stop_all(tmp_path)


@pytest.fixture
def server(root: Path) -> LocalServer:
    return postgres.ensure_server(root / "dev" / "postgres")


def _files_containing(folder: Path, needle: bytes) -> list[Path]:
    hits = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_socket():
            try:
                if needle in path.read_bytes():
                    hits.append(path)
            except OSError:
                pass
    return hits


def test_with_tls_only_verified_tls_gets_in_and_a_certificate_of_another_ca_is_refused(
    root: Path,
) -> None:
    ours, theirs = ensure_certificates(root / "ca-ours"), ensure_certificates(root / "ca-theirs")
    data_dir = root / "dev" / "postgres"
    server = postgres.ensure_server(data_dir)  # a server started before TLS was asked for
    postgres.ensure_database(server, DB, USER, PASSWORD)
    postgres.connect(server, DB, USER, PASSWORD).close()

    # TLS asked for: the running server is reconfigured in place, same port
    server = postgres.ensure_server(data_dir, tls=ServerTLS(ours.server_cert, ours.server_key))
    verify_full = ssl.create_default_context(cafile=str(ours.ca_cert))  # chain and host name
    conn = postgres.connect(server, DB, USER, PASSWORD, ssl_context=verify_full)
    try:
        assert conn.run("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == [[True]]
    finally:
        conn.close()

    another_ca = ssl.create_default_context(cafile=str(theirs.ca_cert))
    with pytest.raises(LocalDatabaseError, match="certificate verify failed"):
        postgres.connect(server, DB, USER, PASSWORD, ssl_context=another_ca)
    with pytest.raises(LocalDatabaseError, match=r"no pg_hba\.conf entry"):
        postgres.connect(server, DB, USER, PASSWORD)  # plain TCP: refused, as with rds.force_ssl
    assert postgres.ensure_server(data_dir, tls=ServerTLS(ours.server_cert, ours.server_key)) == (
        server
    )


def test_a_tls_reload_that_fails_is_an_error_and_the_next_good_one_works(root: Path) -> None:
    ours, theirs = ensure_certificates(root / "ca-ours"), ensure_certificates(root / "ca-theirs")
    data_dir = root / "dev" / "postgres"
    server = postgres.ensure_server(data_dir)
    postgres.ensure_database(server, DB, USER, PASSWORD)
    mismatched = ServerTLS(ours.server_cert, theirs.server_key)  # a key of another certificate
    with pytest.raises(LocalDatabaseError, match="did not turn TLS on"):
        postgres.ensure_server(data_dir, tls=mismatched)
    with pytest.raises(LocalDatabaseError, match="did not turn TLS on"):
        postgres.ensure_server(data_dir, tls=mismatched)  # still: not taken for done
    server = postgres.ensure_server(data_dir, tls=ServerTLS(ours.server_cert, ours.server_key))
    verify_full = ssl.create_default_context(cafile=str(ours.ca_cert))
    postgres.connect(server, DB, USER, PASSWORD, ssl_context=verify_full).close()


def test_database_and_master_user_over_tcp(server: LocalServer) -> None:
    postgres.ensure_database(server, DB, USER, PASSWORD)
    postgres.ensure_database(server, DB, USER, PASSWORD)  # idempotent

    conn = postgres.connect(server, DB, USER, PASSWORD)
    try:
        assert conn.run("SELECT current_user, current_database()") == [[USER, DB]]
        # like the RDS master user: CREATEDB, CREATEROLE, no superuser
        assert conn.run(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ) == [[False, True, True]]
        assert conn.run(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ) == [[USER]]
        conn.run("CREATE TABLE t (id int)")  # owns the database: may create in public
    finally:
        conn.close()

    assert server.host == "127.0.0.1"
    assert postgres.server_status(server.data_dir).startswith(f"running on 127.0.0.1:{server.port}")


def test_same_password_keeps_the_stored_verifier(server: LocalServer) -> None:
    postgres.ensure_database(server, DB, USER, PASSWORD)
    query = "SELECT rolpassword FROM pg_authid WHERE rolname = :name"
    admin = connections.admin_connect(server)
    try:
        [[first]] = admin.run(query, name=USER)
        postgres.ensure_database(server, DB, USER, PASSWORD)
        [[second]] = admin.run(query, name=USER)
    finally:
        admin.close()
    assert first.startswith("SCRAM-SHA-256$4096:")
    assert second == first


def test_wrong_password_is_refused(server: LocalServer) -> None:
    postgres.ensure_database(server, DB, USER, PASSWORD)
    with pytest.raises(LocalDatabaseError, match="password authentication failed") as caught:
        postgres.connect(server, DB, USER, "not-the-password")
    assert "not-the-password" not in str(caught.value)


def test_superuser_cannot_log_in_over_tcp(server: LocalServer) -> None:
    with pytest.raises(LocalDatabaseError, match=r"rejects connection|no pg_hba.conf entry"):
        postgres.connect(server, "postgres", postgres.ADMIN_ROLE, "anything")


def test_changing_the_password(server: LocalServer) -> None:
    postgres.ensure_database(server, DB, USER, PASSWORD)
    postgres.ensure_database(server, DB, USER, "Second-password-9d2b")

    postgres.connect(server, DB, USER, "Second-password-9d2b").close()
    with pytest.raises(LocalDatabaseError, match="password authentication failed"):
        postgres.connect(server, DB, USER, PASSWORD)


def test_password_never_reaches_the_server(server: LocalServer) -> None:
    # Log every statement and connection server-wide: still, no plaintext may show up anywhere.
    admin = connections.admin_connect(server)
    try:
        admin.run("ALTER SYSTEM SET log_statement = 'all'")
        admin.run("ALTER SYSTEM SET log_connections = on")
        admin.run("SELECT pg_reload_conf()")
    finally:
        admin.close()
    deadline = time.monotonic() + 10
    while True:
        probe = connections.admin_connect(server)
        try:
            [[setting]] = probe.run("SHOW log_statement")
        finally:
            probe.close()
        if setting == "all" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert setting == "all"

    changed = "Changed-password-51c3"
    postgres.ensure_database(server, DB, USER, PASSWORD)
    postgres.ensure_database(server, DB, USER, changed)
    conn = postgres.connect(server, DB, USER, changed)
    try:
        conn.run("SELECT 'statement-logging-works'")
    finally:
        conn.close()
    with pytest.raises(LocalDatabaseError):
        postgres.connect(server, DB, USER, PASSWORD)

    log = (server.data_dir / "server.log").read_text()
    assert "statement-logging-works" in log
    for secret in (PASSWORD, changed):
        assert secret not in log
        assert _files_containing(server.data_dir, secret.encode()) == []


def test_second_ensure_server_reuses_the_running_server(
    root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data_dir = root / "dev" / "postgres"
    first = postgres.ensure_server(data_dir)
    assert f"local PostgreSQL for {data_dir}" in capfd.readouterr().err
    pid_file = data_dir / "postmaster.pid"
    before = (pid_file.read_bytes(), pid_file.stat().st_mtime_ns)

    started = time.monotonic()
    second = postgres.ensure_server(data_dir)
    assert time.monotonic() - started < 2

    assert second == first
    assert (pid_file.read_bytes(), pid_file.stat().st_mtime_ns) == before
    assert capfd.readouterr().err == ""  # no progress line when nothing is started
    with pytest.raises(LocalDatabaseError, match="already runs on"):
        postgres.ensure_server(data_dir, port=first.port + 1 if first.port < 65535 else 1024)


def test_stop_and_start_again_keeps_port_and_data(server: LocalServer) -> None:
    postgres.ensure_database(server, DB, USER, PASSWORD)
    conn = postgres.connect(server, DB, USER, PASSWORD)
    try:
        conn.run("CREATE TABLE kept (v text)")
        conn.run("INSERT INTO kept VALUES ('still here')")
    finally:
        conn.close()

    assert postgres.stop_server(server.data_dir) is True
    assert postgres.server_status(server.data_dir) == (
        f"stopped (last ran on 127.0.0.1:{server.port})"
    )
    assert not (server.data_dir / "postmaster.pid").exists()
    assert postgres.stop_server(server.data_dir) is False
    with pytest.raises(LocalDatabaseError):
        postgres.connect(server, DB, USER, PASSWORD)

    again = postgres.ensure_server(server.data_dir)
    assert again == server
    conn = postgres.connect(again, DB, USER, PASSWORD)
    try:
        assert conn.run("SELECT v FROM kept") == [["still here"]]
    finally:
        conn.close()


def test_explicit_port_is_used_and_recorded(root: Path) -> None:
    probe = postmaster.free_port("127.0.0.1")
    data_dir = root / "stage" / "postgres"
    server = postgres.ensure_server(data_dir, port=probe)
    assert server.port == probe
    postgres.stop_server(data_dir)
    assert postgres.ensure_server(data_dir).port == probe


def test_stop_all(root: Path) -> None:
    dirs = [root / "a" / "postgres", root / "nested" / "b" / "postgres"]
    for data_dir in dirs:
        postgres.ensure_server(data_dir)
    (root / "not-a-cluster").mkdir()

    assert sorted(postgres.stop_all(root)) == sorted(d.resolve() for d in dirs)
    for data_dir in dirs:
        assert postgres.server_status(data_dir).startswith("stopped")
    assert postgres.stop_all(root) == []


def test_long_data_folder_gets_a_short_socket_folder(root: Path) -> None:
    data_dir = root / ("deep-" * 12) / "postgres"
    socket_dir = data_folder.socket_folder(data_dir.resolve())
    assert socket_dir != data_dir.resolve()
    assert len(str(socket_dir / ".s.PGSQL.65535")) <= 107
    try:
        server = postgres.ensure_server(data_dir)
        postgres.ensure_database(server, DB, USER, PASSWORD)
        postgres.connect(server, DB, USER, PASSWORD).close()
        assert (socket_dir / f".s.PGSQL.{server.port}").is_socket()
        assert socket_dir.stat().st_mode & 0o777 == 0o700
    finally:
        postgres.stop_server(data_dir)
        shutil.rmtree(socket_dir, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root must hand the server to another user")
def test_as_root_the_server_runs_unprivileged(server: LocalServer) -> None:
    owner = server.data_dir.stat().st_uid
    assert owner != 0
    pid = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    assert Path(f"/proc/{pid}").stat().st_uid == owner


@pytest.mark.skipif(os.geteuid() != 0, reason="only root must hand the server to another user")
def test_as_root_a_folder_closed_again_is_handled(root: Path) -> None:
    # What every pytest session start does to /tmp/pytest-of-root: back to 0700, which also
    # empties the ACL mask, so the server's user loses its way in while the server runs.
    closed = root / "closed"
    closed.mkdir(mode=0o700)
    data_dir = closed / "env" / "postgres"
    server = postgres.ensure_server(data_dir)
    postgres.ensure_database(server, DB, USER, PASSWORD)

    os.chmod(closed, 0o700)
    assert postgres.server_status(data_dir).startswith("running")
    postgres.connect(server, DB, USER, PASSWORD).close()  # the running server does not care
    assert postgres.ensure_server(data_dir) == server
    assert postgres.stop_server(data_dir) is True

    os.chmod(closed, 0o700)
    assert postgres.ensure_server(data_dir) == server  # the way in is granted again
    postgres.connect(server, DB, USER, PASSWORD).close()


FAKE = LocalServer(Path("/nonexistent/postgres"), "127.0.0.1", 5432)  # never reached


@pytest.mark.parametrize(
    "name", ["", "1abc", "has-dash", "has space", 'x"; DROP ROLE y; --', "é", "a" * 64]
)
def test_invalid_identifiers_are_rejected(name: str) -> None:
    with pytest.raises(LocalDatabaseError, match=r"database name .* is not valid"):
        postgres.ensure_database(FAKE, name, USER, PASSWORD)
    with pytest.raises(LocalDatabaseError, match=r"user name .* is not valid"):
        postgres.ensure_database(FAKE, DB, name, PASSWORD)


@pytest.mark.parametrize("name", ["public", "pg_monitor", postgres.ADMIN_ROLE])
def test_reserved_user_names_are_rejected(name: str) -> None:
    with pytest.raises(LocalDatabaseError, match="is reserved"):
        postgres.ensure_database(FAKE, DB, name, PASSWORD)


@pytest.mark.parametrize("name", ["postgres", "template0", "template1"])
def test_reserved_database_names_are_rejected(name: str) -> None:
    with pytest.raises(LocalDatabaseError, match="is reserved"):
        postgres.ensure_database(FAKE, name, USER, PASSWORD)


def test_unusable_password_is_rejected_without_echoing_it() -> None:
    with pytest.raises(LocalDatabaseError, match="non-empty"):
        postgres.ensure_database(FAKE, DB, USER, "")
    with pytest.raises(LocalDatabaseError, match="SASLprep") as caught:
        postgres.ensure_database(FAKE, DB, USER, "ctl-\x07-secret")
    assert "secret" not in str(caught.value)


def test_non_loopback_host_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(LocalDatabaseError, match="loopback"):
        postgres.ensure_server(tmp_path / "pg", host="0.0.0.0")
    assert not (tmp_path / "pg").exists()


def test_scram_verifier_round_trip() -> None:
    verifier = roles._scram_verifier(PASSWORD)
    assert verifier.startswith("SCRAM-SHA-256$4096:")
    assert PASSWORD not in verifier
    assert roles._scram_matches(verifier, PASSWORD)
    assert not roles._scram_matches(verifier, PASSWORD + "x")
    assert not roles._scram_matches(None, PASSWORD)
    assert not roles._scram_matches("md5abc", PASSWORD)


def test_search_acl_adds_only_search_for_the_user() -> None:
    acl = os_account._acl_with_search(None, 0o40700, 101)
    entries = [
        os_account._ACL_ENTRY.unpack_from(acl, offset)
        for offset in range(os_account._ACL_HEADER.size, len(acl), os_account._ACL_ENTRY.size)
    ]
    undefined = os_account._ACL_UNDEFINED_ID
    assert entries == [
        (os_account._ACL_USER_OBJ, 0o7, undefined),
        (os_account._ACL_USER, 0o1, 101),
        (os_account._ACL_GROUP_OBJ, 0o0, undefined),
        (os_account._ACL_MASK, 0o1, undefined),
        (os_account._ACL_OTHER, 0o0, undefined),
    ]
    # idempotent on its own output
    assert os_account._acl_with_search(acl, 0o40710, 101) == acl
