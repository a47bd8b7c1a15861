"""apply_migrations() against a real PostgreSQL database (a fresh one per test)."""

from __future__ import annotations

import logging
import threading
import time

import pg8000.exceptions
import pytest

from fleet_migrations.runner import (
    LOCK_KEY,
    Migration,
    MigrationError,
    apply_migrations,
    current_version,
    discover,
)

ALL = ["0001_core.sql", "0002_devices.sql", "0003_created_by.sql", "0004_roles.sql"]
RECORDED = [
    (1, "0001_core.sql"),
    (2, "0002_devices.sql"),
    (3, "0003_created_by.sql"),
    (4, "0004_roles.sql"),
]
LATEST = 4
TABLES = {"team", "app_user", "project", "device", "model", "app", "schema_migrations"}


def _regclass_exists(conn, name: str) -> bool:
    return conn.run("SELECT to_regclass(:n) IS NOT NULL", n=name)[0][0]


def _recorded(conn) -> list[tuple[int, str]]:
    rows = conn.run("SELECT version, name FROM schema_migrations ORDER BY version")
    return [(v, n) for v, n in rows]


def _sqlstate(exc: BaseException) -> str:
    return exc.args[0]["C"]


# --- schema ------------------------------------------------------------------------------


def test_fresh_database_gets_the_full_schema(conn):
    assert apply_migrations(conn) == ALL
    assert current_version(conn) == LATEST
    assert _recorded(conn) == RECORDED

    tables = {
        r[0]
        for r in conn.run(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
    }
    assert tables == TABLES

    # Every registry table: bigint identity id, created_at timestamptz not null default now().
    for table in TABLES - {"schema_migrations"}:
        cols = {
            name: (data_type, nullable, default, identity)
            for name, data_type, nullable, default, identity in conn.run(
                "SELECT column_name, data_type, is_nullable, column_default, is_identity "
                "FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = :t",
                t=table,
            )
        }
        assert cols["id"][0] == "bigint" and cols["id"][3] == "YES", table
        assert cols["created_at"] == ("timestamp with time zone", "NO", "now()", "NO"), table

    device_cols = {
        name: (data_type, nullable, default)
        for name, data_type, nullable, default in conn.run(
            "SELECT column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_name = 'device'"
        )
    }
    assert device_cols["serial"] == ("text", "YES", None)
    assert device_cols["attributes"] == ("jsonb", "NO", "'{}'::jsonb")
    assert device_cols["updated_at"] == ("timestamp with time zone", "NO", "now()")
    # 0003: who created each project and device; no default (new rows must say).
    assert device_cols["created_by"] == ("text", "NO", None)
    project_cols = {
        name: (data_type, nullable, default)
        for name, data_type, nullable, default in conn.run(
            "SELECT column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_name = 'project'"
        )
    }
    assert project_cols["created_by"] == ("text", "NO", None)

    # Foreign keys and their ON DELETE actions (c = cascade, r = restrict).
    fks = {
        (child, parent, action)
        for child, parent, action in conn.run(
            "SELECT conrelid::regclass::text, confrelid::regclass::text, confdeltype::text "
            "FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace"
        )
    }
    assert fks == {
        ("app_user", "team", "c"),
        ("project", "team", "r"),
        ("device", "project", "c"),
        ("model", "project", "c"),
        ("app", "project", "c"),
    }

    uniques = {
        (table, tuple(cols))
        for table, cols in conn.run(
            "SELECT c.conrelid::regclass::text, "
            "       array_agg(a.attname::text ORDER BY k.ord) "
            "FROM pg_constraint c "
            "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
            "WHERE c.contype = 'u' AND c.connamespace = 'public'::regnamespace "
            "GROUP BY c.oid, c.conrelid"
        )
    }
    assert uniques == {
        ("team", ("name",)),
        ("project", ("name",)),
        ("device", ("project_id", "name")),
        ("model", ("project_id", "name")),
        ("app", ("project_id", "name")),
    }

    device_indexes = {
        name: tuple(cols)
        for name, cols in conn.run(
            "SELECT i.relname::text, array_agg(a.attname::text ORDER BY k.ord) "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum "
            "WHERE x.indrelid = 'device'::regclass GROUP BY i.relname"
        )
    }
    assert device_indexes["device_project_id_created_at_id_idx"] == (
        "project_id",
        "created_at",
        "id",
    )
    assert device_indexes["device_project_id_name_key"] == ("project_id", "name")

    checks = {
        r[0]
        for r in conn.run(
            "SELECT conname::text FROM pg_constraint "
            "WHERE contype = 'c' AND connamespace = 'public'::regnamespace"
        )
    }
    for name in (
        "team_name_check",
        "project_name_check",
        "device_name_check",
        "model_name_check",
        "app_name_check",
        "app_user_display_name_check",
        "device_attributes_check",
        "device_serial_check",
        "project_created_by_check",
        "device_created_by_check",
    ):
        assert name in checks


def test_schema_behaves(conn):
    apply_migrations(conn)
    team = conn.run("INSERT INTO team (name) VALUES ('ops') RETURNING id")[0][0]
    project = conn.run(
        "INSERT INTO project (team_id, name, created_by) VALUES (:t, 'fleet-a', 'c1') RETURNING id",
        t=team,
    )[0][0]
    conn.run(
        "INSERT INTO app_user (team_id, email, display_name) VALUES (:t, 'a@b.io', 'A')", t=team
    )
    device, attributes, created, updated = conn.run(
        "INSERT INTO device (project_id, name, created_by) VALUES (:p, 'dev-1', 'c1') "
        "RETURNING id, attributes, created_at, updated_at",
        p=project,
    )[0]
    assert attributes == {} and created == updated

    def rejected(sql: str, sqlstate: str, **params) -> None:
        with pytest.raises(pg8000.exceptions.DatabaseError) as excinfo:
            conn.run(sql, **params)
        assert _sqlstate(excinfo.value) == sqlstate, excinfo.value

    check, unique, fk = "23514", "23505", "23503"
    rejected("INSERT INTO team (name) VALUES ('')", check)
    rejected("INSERT INTO team (name) VALUES (' ops')", check)
    rejected("INSERT INTO team (name) VALUES (repeat('x', 101))", check)
    rejected(
        "INSERT INTO project (team_id, name, created_by) VALUES (:t, 'fleet-a', 'c')",
        unique,
        t=team,
    )
    rejected(
        "INSERT INTO device (project_id, name, created_by) VALUES (:p, 'dev-1', 'c')",
        unique,
        p=project,
    )
    rejected(
        "INSERT INTO device (project_id, name, created_by) VALUES (:p, '', 'c')", check, p=project
    )
    rejected(
        "INSERT INTO device (project_id, name, attributes, created_by) "
        "VALUES (:p, 'd2', '[]', 'c')",
        check,
        p=project,
    )
    rejected(
        "INSERT INTO app_user (team_id, email, display_name) VALUES (:t, 'A@B.IO', 'B')",
        unique,
        t=team,
    )
    rejected("INSERT INTO model (project_id, name) VALUES (999, 'm')", fk)
    # The identity is GENERATED ALWAYS: clients cannot pick ids.
    rejected("INSERT INTO team (id, name) VALUES (42, 'x')", "428C9")

    # The same name is fine in another project.
    other = conn.run(
        "INSERT INTO project (team_id, name, created_by) VALUES (:t, 'fleet-b', 'c') RETURNING id",
        t=team,
    )[0][0]
    conn.run("INSERT INTO device (project_id, name, created_by) VALUES (:p, 'dev-1', 'c')", p=other)
    conn.run("INSERT INTO model (project_id, name) VALUES (:p, 'm1')", p=project)
    conn.run("INSERT INTO app (project_id, name) VALUES (:p, 'a1')", p=project)

    # updated_at follows updates (trigger), created_at does not.
    time.sleep(0.01)
    conn.run("UPDATE device SET serial = 'SN-1' WHERE id = :d", d=device)
    created2, updated2 = conn.run(
        "SELECT created_at, updated_at FROM device WHERE id = :d", d=device
    )[0]
    assert created2 == created and updated2 > updated

    # A team with projects cannot be deleted; deleting a project takes its things with it.
    rejected("DELETE FROM team WHERE id = :t", fk, t=team)
    conn.run("DELETE FROM project WHERE id = :p", p=project)
    assert conn.run("SELECT count(*) FROM device WHERE project_id = :p", p=project)[0][0] == 0
    assert conn.run("SELECT count(*) FROM model")[0][0] == 0
    conn.run("DELETE FROM project WHERE id = :p", p=other)
    conn.run("DELETE FROM team WHERE id = :t", t=team)
    assert conn.run("SELECT count(*) FROM app_user")[0][0] == 0


def test_keyset_pagination_query_can_use_the_index(conn):
    apply_migrations(conn)
    conn.run("SET enable_seqscan = off")
    plan = "\n".join(
        r[0]
        for r in conn.run(
            "EXPLAIN SELECT id, name FROM device "
            "WHERE project_id = 1 AND (created_at, id) > (now(), 0) "
            "ORDER BY created_at, id LIMIT 50"
        )
    )
    assert "device_project_id_created_at_id_idx" in plan, plan


# --- runner ------------------------------------------------------------------------------


def test_second_run_applies_nothing(conn):
    assert apply_migrations(conn) == ALL
    assert apply_migrations(conn) == []
    assert current_version(conn) == LATEST


def test_current_version_of_an_empty_database_is_zero(conn):
    assert current_version(conn) == 0


def test_new_migration_is_applied_once(conn):
    apply_migrations(conn)
    extra = Migration(
        version=5,
        name="0005_device_owner.sql",
        sql="ALTER TABLE device ADD COLUMN owner text;",
    )
    migrations = [*discover(), extra]
    assert apply_migrations(conn, migrations) == ["0005_device_owner.sql"]
    assert apply_migrations(conn, migrations) == []
    assert _recorded(conn)[-1] == (5, "0005_device_owner.sql")
    assert current_version(conn) == 5


def test_migrations_are_applied_in_version_order_whatever_the_list_order(conn):
    a = Migration(version=1, name="0001_a.sql", sql="CREATE TABLE a (id int);")
    b = Migration(version=2, name="0002_b.sql", sql="CREATE TABLE b (a_id int);")
    assert apply_migrations(conn, [b, a]) == ["0001_a.sql", "0002_b.sql"]


def test_multi_statement_file_with_dollar_quoting_runs_whole(conn):
    sql = """
    CREATE TABLE counter (n int NOT NULL);
    INSERT INTO counter VALUES (0);
    -- a function body full of semicolons, in dollar quotes
    CREATE FUNCTION bump(by int) RETURNS int LANGUAGE plpgsql AS $body$
    DECLARE result int;
    BEGIN
        UPDATE counter SET n = n + by RETURNING n INTO result;  -- ';' inside
        RETURN result;
    END;
    $body$;
    COMMENT ON TABLE counter IS 'semi;colons; in a string';
    SELECT bump(2);
    """
    assert apply_migrations(conn, [Migration(1, "0001_counter.sql", sql)]) == ["0001_counter.sql"]
    assert conn.run("SELECT n FROM counter")[0][0] == 2
    assert conn.run("SELECT bump(3)")[0][0] == 5


def test_failing_migration_rolls_back_entirely_and_names_the_file(conn):
    bad = Migration(
        version=5,
        name="0005_bad.sql",
        sql="""
        CREATE TABLE half_done (id int);
        ALTER TABLE device ADD COLUMN half_done_col text;
        INSERT INTO half_done VALUES (1);
        SELECT 1 / 0;
        CREATE TABLE never_reached (id int);
        """,
    )
    with pytest.raises(MigrationError) as excinfo:
        apply_migrations(conn, [*discover(), bad])
    message = str(excinfo.value)
    assert message.startswith("migration 0005_bad.sql failed:")
    assert "division by zero" in message
    assert "22012" in message

    # The migrations before it were committed; nothing of 0005 survives.
    assert _recorded(conn) == RECORDED
    assert not _regclass_exists(conn, "half_done")
    assert not _regclass_exists(conn, "never_reached")
    assert conn.run(
        "SELECT count(*) FROM information_schema.columns WHERE column_name = 'half_done_col'"
    ) == [[0]]
    assert current_version(conn) == LATEST

    # The connection is usable afterwards, and a fixed 0005 goes in.
    fixed = Migration(version=5, name="0005_bad.sql", sql="CREATE TABLE half_done (id int);")
    assert apply_migrations(conn, [*discover(), fixed]) == ["0005_bad.sql"]


def test_failing_migration_stops_the_run(conn):
    bad = Migration(version=1, name="0001_bad.sql", sql="CREATE TABLE t (id nosuchtype);")
    later = Migration(version=2, name="0002_later.sql", sql="CREATE TABLE later (id int);")
    with pytest.raises(MigrationError, match=r"^migration 0001_bad\.sql failed: .*nosuchtype"):
        apply_migrations(conn, [bad, later])
    assert _recorded(conn) == []
    assert not _regclass_exists(conn, "later")


def test_migration_with_transaction_control_is_refused(conn):
    sneaky = Migration(
        version=1, name="0001_sneaky.sql", sql="CREATE TABLE sneaky (id int); COMMIT;"
    )
    with pytest.raises(MigrationError, match=r"0001_sneaky\.sql ended the runner's transaction"):
        apply_migrations(conn, [sneaky])
    assert _recorded(conn) == []


def test_changed_checksum_is_refused_naming_the_file(conn):
    original = Migration(version=1, name="0001_core.sql", sql="CREATE TABLE t (id int);")
    apply_migrations(conn, [original])
    edited = Migration(version=1, name="0001_core.sql", sql="CREATE TABLE t (id bigint);")
    newer = Migration(version=2, name="0002_next.sql", sql="CREATE TABLE next (id int);")
    with pytest.raises(MigrationError, match=r"^migration 0001_core\.sql was already applied"):
        apply_migrations(conn, [edited, newer])
    # Nothing was run: neither the edited file again nor anything after it.
    assert _recorded(conn) == [(1, "0001_core.sql")]
    assert not _regclass_exists(conn, "next")
    stored = conn.run("SELECT checksum FROM schema_migrations WHERE version = 1")[0][0]
    assert stored == original.checksum


def test_renamed_applied_migration_is_refused(conn):
    apply_migrations(conn, [Migration(1, "0001_core.sql", "SELECT 1;")])
    with pytest.raises(MigrationError, match=r"0001_base\.sql.*applied as 0001_core\.sql"):
        apply_migrations(conn, [Migration(1, "0001_base.sql", "SELECT 1;")])


def test_pending_migration_older_than_an_applied_one_is_refused(conn):
    one = Migration(1, "0001_a.sql", "SELECT 1;")
    three = Migration(3, "0003_c.sql", "SELECT 3;")
    apply_migrations(conn, [one, three])
    two = Migration(2, "0002_b.sql", "CREATE TABLE b (id int);")
    with pytest.raises(MigrationError, match=r"0002_b\.sql is pending but the newer 0003_c\.sql"):
        apply_migrations(conn, [one, two, three])
    assert not _regclass_exists(conn, "b")


def test_database_ahead_of_the_code_is_a_warning(conn, caplog):
    apply_migrations(conn)
    newer = Migration(5, "0005_newer.sql", "SELECT 1;")
    apply_migrations(conn, [*discover(), newer])
    with caplog.at_level(logging.WARNING, logger="fleet_migrations"):
        assert apply_migrations(conn) == []
    assert "0005_newer.sql" in caplog.text
    assert current_version(conn) == 5


def test_duplicate_versions_in_an_injected_list_are_refused(conn):
    with pytest.raises(MigrationError, match="duplicate migration version 0001"):
        apply_migrations(conn, [Migration(1, "0001_a.sql", "SELECT 1"), *discover()])
    assert not _regclass_exists(conn, "schema_migrations")


# --- concurrency -------------------------------------------------------------------------

SLOW = Migration(
    version=5,
    name="0005_slow.sql",
    sql="SELECT pg_sleep(0.5); CREATE TABLE slow_marker (id int);",
)


def _run_in_threads(db, migrations, n: int = 2) -> list[list[str] | BaseException]:
    conns = [db.connect() for _ in range(n)]
    barrier = threading.Barrier(n)
    results: list[list[str] | BaseException] = [[] for _ in range(n)]

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = apply_migrations(conns[i], migrations)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for c in conns:
        c.close()
    return results


def test_concurrent_runners_apply_each_migration_exactly_once(db, conn):
    migrations = [*discover(), SLOW]
    results = _run_in_threads(db, migrations, n=3)
    for r in results:
        assert isinstance(r, list), r
    applied = [name for r in results for name in r]
    assert sorted(applied) == [*ALL, "0005_slow.sql"]
    assert _recorded(conn) == [*RECORDED, (5, "0005_slow.sql")]


def test_runner_waits_for_the_lock(db, conn):
    """While another session holds the lock, a runner applies nothing; then it applies all."""
    conn.run("SELECT pg_advisory_lock(:k)", k=LOCK_KEY)
    other = db.connect()
    result: list = []
    thread = threading.Thread(target=lambda: result.append(apply_migrations(other)))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        waiting = 0
        while time.monotonic() < deadline and not waiting:
            waiting = conn.run(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )[0][0]
            time.sleep(0.05)
        assert waiting == 1, "the runner did not queue on the advisory lock"
        assert not _regclass_exists(conn, "schema_migrations")
    finally:
        conn.run("SELECT pg_advisory_unlock(:k)", k=LOCK_KEY)
        thread.join(timeout=30)
        other.close()
    assert result == [ALL]
    # And the runner released the lock when done.
    assert conn.run("SELECT pg_try_advisory_lock(:k)", k=LOCK_KEY)[0][0] is True


def test_runner_gives_up_waiting_for_the_lock_and_names_the_holder(db, conn):
    conn.run("SELECT pg_advisory_lock(:k)", k=LOCK_KEY)
    holder = conn.run("SELECT pg_backend_pid()")[0][0]
    other = db.connect()
    try:
        started = time.monotonic()
        with pytest.raises(MigrationError) as caught:
            apply_migrations(other, lock_wait_seconds=0.5)
        waited = time.monotonic() - started
    finally:
        other.close()
        conn.run("SELECT pg_advisory_unlock(:k)", k=LOCK_KEY)
    message = str(caught.value)
    assert "held the migration lock for more than 0.5 s" in message
    assert f"pid {holder}" in message
    assert "nothing was applied" in message
    assert waited < 10
    assert not _regclass_exists(conn, "schema_migrations")


def test_a_migration_waits_for_its_table_lock_only_within_lock_timeout(db, conn):
    """DDL behind a long transaction fails after lock_timeout (instead of queueing every query
    of the table behind it), is rolled back, and applies on the next run."""
    apply_migrations(conn)
    version = LATEST + 1
    notes = Migration(version, f"{version:04d}_notes.sql", "ALTER TABLE device ADD notes text;")
    reader = db.connect()
    reader.run("BEGIN")
    reader.run("SELECT count(*) FROM device")  # holds ACCESS SHARE on device until COMMIT
    runner = db.connect()
    try:
        with pytest.raises(MigrationError) as caught:
            apply_migrations(runner, [*discover(), notes], lock_timeout_seconds=0.5)
        message = str(caught.value)
        assert f"migration {notes.name} failed" in message
        assert "55P03" in message and "lock_timeout" in message
        assert "the next deploy runs it again" in message
        assert _recorded(conn) == RECORDED
    finally:
        reader.run("COMMIT")
        reader.close()
    assert apply_migrations(runner, [*discover(), notes]) == [notes.name]
    # the session's lock_timeout does not outlive the run
    assert runner.run("SHOW lock_timeout") == [["0"]]
    runner.close()
