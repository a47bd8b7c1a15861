"""`stackrun testdb`: the local PostgreSQL the lambda tests use, and its URL."""

from __future__ import annotations

import argparse
from pathlib import Path

from stackrun.commands.spec import Command
from stackrun.paths import test_database_dir

COMMAND = Command(
    "testdb",
    help="start the local PostgreSQL that lambda tests use and print its URL",
    description="""
        Start (or reuse) a local PostgreSQL under .stackrun/testdb/ with a test role that may
        create databases, and print postgresql://... for FLEET_TEST_DATABASE_URL. The password
        is generated once and kept in .stackrun/testdb/url (mode 0600).
    """,
)


def run(args: argparse.Namespace, root: Path) -> int:
    from stackrun.local.postgres.for_tests import test_database_url

    print(test_database_url(test_database_dir(root)))
    return 0
