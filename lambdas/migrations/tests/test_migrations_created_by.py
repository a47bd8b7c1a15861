"""0003_created_by on a database that already holds rows, and the string limits of the schema
agreeing with the API's (fleet_common.limits)."""

from __future__ import annotations

import pg8000.exceptions
import pytest
from fleet_common.limits import MAX_NAME_LENGTH, MAX_SERIAL_LENGTH, MAX_SUB_LENGTH

from fleet_migrations.runner import apply_migrations, current_version, discover

NOT_NULL, CHECK = "23502", "23514"


def _sqlstate(exc: BaseException) -> str:
    return exc.args[0]["C"]


def _rejected(conn, sql: str, sqlstate: str, **params) -> None:
    with pytest.raises(pg8000.exceptions.DatabaseError) as excinfo:
        conn.run(sql, **params)
    assert _sqlstate(excinfo.value) == sqlstate, excinfo.value


def _before_0003(conn, long_serial: bool = False) -> tuple[int, int]:
    """The schema of 0001 and 0002 with a team, two projects and three devices in it."""
    assert apply_migrations(conn, discover()[:2]) == ["0001_core.sql", "0002_devices.sql"]
    team = conn.run("INSERT INTO team (name) VALUES ('ops') RETURNING id")[0][0]
    project = conn.run(
        "INSERT INTO project (team_id, name) VALUES (:t, 'old-a') RETURNING id", t=team
    )[0][0]
    conn.run("INSERT INTO project (team_id, name) VALUES (:t, 'old-b')", t=team)
    conn.run(
        "INSERT INTO device (project_id, name, serial, attributes) VALUES "
        "(:p, 'd1', 'SN-1', '{\"a\": 1}'), (:p, 'd2', NULL, '{}'), (:p, 'd3', :serial, '{}')",
        p=project,
        serial="s" * (128 if long_serial else 100),
    )
    return team, project


def _check_validated(conn, name: str) -> bool:
    return conn.run("SELECT convalidated FROM pg_constraint WHERE conname = :n", n=name)[0][0]


def test_existing_rows_get_unknown_and_new_rows_must_name_their_creator(conn):
    team, project = _before_0003(conn)
    before = conn.run("SELECT id, name, serial, attributes, updated_at FROM device ORDER BY id")

    assert apply_migrations(conn, discover()[:3]) == ["0003_created_by.sql"]
    assert current_version(conn) == 3

    # Old rows: the fixed 'unknown', nothing else touched (updated_at included).
    assert conn.run("SELECT name, created_by FROM project ORDER BY id") == [
        ["old-a", "unknown"],
        ["old-b", "unknown"],
    ]
    assert conn.run("SELECT created_by FROM device") == [["unknown"]] * 3
    after = conn.run("SELECT id, name, serial, attributes, updated_at FROM device ORDER BY id")
    assert after == before

    # New rows: created_by is required (the default is gone), 1..256 characters.
    for table, columns, values in (
        ("project", "team_id, name", f"{team}, 'new'"),
        ("device", "project_id, name", f"{project}, 'new'"),
    ):
        _rejected(conn, f"INSERT INTO {table} ({columns}) VALUES ({values})", NOT_NULL)
        _rejected(
            conn, f"INSERT INTO {table} ({columns}, created_by) VALUES ({values}, NULL)", NOT_NULL
        )
        _rejected(conn, f"INSERT INTO {table} ({columns}, created_by) VALUES ({values}, '')", CHECK)
        _rejected(
            conn,
            f"INSERT INTO {table} ({columns}, created_by) VALUES ({values}, :by)",
            CHECK,
            by="c" * (MAX_SUB_LENGTH + 1),
        )
        conn.run(
            f"INSERT INTO {table} ({columns}, created_by) VALUES ({values}, :by)",
            by="é" * MAX_SUB_LENGTH,
        )
        _rejected(conn, f"UPDATE {table} SET created_by = '' WHERE name = 'new'", CHECK)
    assert _check_validated(conn, "project_created_by_check")
    assert _check_validated(conn, "device_created_by_check")
    # Every serial complied: the new 100-character serial check is validated.
    assert _check_validated(conn, "device_serial_check")


def test_a_longer_serial_written_before_does_not_fail_the_migration(conn):
    _, project = _before_0003(conn, long_serial=True)
    assert apply_migrations(conn, discover()[:3]) == ["0003_created_by.sql"]
    # The old row stays as it was; the check binds new rows, not validated against old ones.
    assert conn.run("SELECT char_length(serial) FROM device WHERE name = 'd3'") == [[128]]
    assert not _check_validated(conn, "device_serial_check")
    _rejected(
        conn,
        "INSERT INTO device (project_id, name, serial, created_by) VALUES (:p, 'n', :s, 'c')",
        CHECK,
        p=project,
        s="s" * (MAX_SERIAL_LENGTH + 1),
    )


def test_the_schema_limits_are_the_api_limits(conn):
    apply_migrations(conn)
    ok, over = "n" * MAX_NAME_LENGTH, "n" * (MAX_NAME_LENGTH + 1)
    team = conn.run("INSERT INTO team (name) VALUES (:n) RETURNING id", n=ok)[0][0]
    _rejected(conn, "INSERT INTO team (name) VALUES (:n)", CHECK, n=over)
    project = conn.run(
        "INSERT INTO project (team_id, name, created_by) VALUES (:t, :n, 'c') RETURNING id",
        t=team,
        n=ok,
    )[0][0]
    _rejected(
        conn,
        "INSERT INTO project (team_id, name, created_by) VALUES (:t, :n, 'c')",
        CHECK,
        t=team,
        n=over,
    )
    insert_device = (
        "INSERT INTO device (project_id, name, serial, created_by) VALUES (:p, :n, :s, :by)"
    )
    by = "b" * MAX_SUB_LENGTH
    conn.run(insert_device, p=project, n=ok, s="s" * MAX_SERIAL_LENGTH, by=by)
    _rejected(conn, insert_device, CHECK, p=project, n=over, s=None, by=by)
    _rejected(conn, insert_device, CHECK, p=project, n="x", s="s" * (MAX_SERIAL_LENGTH + 1), by=by)
    _rejected(conn, insert_device, CHECK, p=project, n="y", s=None, by=by + "b")
