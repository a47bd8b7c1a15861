"""Test fixtures: a fresh, empty PostgreSQL database per test, on the server named by
FLEET_TEST_DATABASE_URL (postgresql://user:password@host:port/dbname; the user needs CREATEDB
and CREATEROLE, as the RDS master user has: 0004_roles creates the job roles).

The server, its URL parsing and the create/drop of scratch databases come from
``fleet_testing.pytest_plugin`` (the ``test`` extra installs fleet-testing); unlike its
module-scoped, already migrated ``fleet_database``, these databases start without any schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fleet_testing.pytest_plugin import TestServer, scratch_database


@pytest.fixture
def db() -> Iterator[TestServer]:
    """A brand-new, empty database (dropped afterwards); ``db.connect()`` opens connections."""
    with scratch_database("fleet_mig_test") as database:
        yield database


@pytest.fixture
def conn(db: TestServer) -> Iterator[Any]:
    connection = db.connect()
    try:
        yield connection
    finally:
        connection.close()
