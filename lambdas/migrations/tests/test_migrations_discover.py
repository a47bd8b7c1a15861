"""discover() and Migration: no database needed."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest

from fleet_migrations.runner import Migration, MigrationError, discover


def test_packaged_migrations_are_found_in_order():
    migrations = discover()
    assert [(m.version, m.name) for m in migrations] == [
        (1, "0001_core.sql"),
        (2, "0002_devices.sql"),
        (3, "0003_created_by.sql"),
        (4, "0004_roles.sql"),
    ]
    sql_dir = resources.files("fleet_migrations") / "sql"
    for m in migrations:
        text = (sql_dir / m.name).read_text(encoding="utf-8")
        assert m.sql == text
        assert m.checksum == hashlib.sha256(text.encode()).hexdigest()


def test_discover_reads_a_directory(tmp_path):
    (tmp_path / "0002_second.sql").write_text("SELECT 2;")
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / ".gitkeep").write_text("")
    (tmp_path / "__pycache__").mkdir()
    assert [m.name for m in discover(tmp_path)] == ["0001_first.sql", "0002_second.sql"]
    assert [m.name for m in discover(str(tmp_path))] == ["0001_first.sql", "0002_second.sql"]


@pytest.mark.parametrize(
    "bad_name",
    [
        "1_core.sql",
        "00001_core.sql",
        "0003-devices.sql",
        "0003_Devices.sql",
        "0003_devices.SQL",
        "0003_.sql",
        "0003_devices.sql.bak",
        "README.md",
    ],
)
def test_malformed_file_name_is_an_error_naming_the_file(tmp_path, bad_name):
    (tmp_path / "0001_core.sql").write_text("SELECT 1;")
    (tmp_path / bad_name).write_text("SELECT 2;")
    with pytest.raises(MigrationError, match="malformed") as excinfo:
        discover(tmp_path)
    assert bad_name in str(excinfo.value)


def test_duplicate_version_is_an_error_naming_both_files(tmp_path):
    (tmp_path / "0001_core.sql").write_text("SELECT 1;")
    (tmp_path / "0001_other.sql").write_text("SELECT 2;")
    with pytest.raises(MigrationError, match="duplicate migration version 0001") as excinfo:
        discover(tmp_path)
    assert "0001_core.sql" in str(excinfo.value)
    assert "0001_other.sql" in str(excinfo.value)


def test_empty_file_is_an_error(tmp_path):
    (tmp_path / "0001_core.sql").write_text("  \n")
    with pytest.raises(MigrationError, match=r"0001_core\.sql is empty"):
        discover(tmp_path)


def test_subdirectory_is_an_error(tmp_path):
    (tmp_path / "0001_core").mkdir()
    with pytest.raises(MigrationError, match="0001_core"):
        discover(tmp_path)


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(MigrationError, match="does not exist"):
        discover(tmp_path / "nope")


def test_migration_checks_its_name_and_version():
    with pytest.raises(MigrationError, match="does not match"):
        Migration(version=4, name="0003_x.sql", sql="SELECT 1")
    with pytest.raises(MigrationError, match="malformed"):
        Migration(version=3, name="3_x.sql", sql="SELECT 1")
    with pytest.raises(MigrationError, match="start at 0001"):
        Migration(version=0, name="0000_x.sql", sql="SELECT 1")


def test_checksum_ignores_line_ending_style():
    lf = Migration(version=1, name="0001_x.sql", sql="SELECT 1;\nSELECT 2;\n")
    crlf = Migration(version=1, name="0001_x.sql", sql="SELECT 1;\r\nSELECT 2;\r\n")
    changed = Migration(version=1, name="0001_x.sql", sql="SELECT 1;\nSELECT 3;\n")
    assert lf.checksum == crlf.checksum != changed.checksum
