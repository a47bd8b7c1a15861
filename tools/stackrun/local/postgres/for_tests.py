"""The local PostgreSQL that the lambdas' tests use (`stackrun testdb`, `nox -s testdb`).

Lambda packages test their SQL against a real PostgreSQL, found through
FLEET_TEST_DATABASE_URL. This starts one under .stackrun/testdb/ (reused while it runs) with a
role that may create databases, so each test can make and drop its own.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from stackrun.local import postgres
from stackrun.paths import postgres_data_dir

TEST_ROLE = "fleet_test"
TEST_DATABASE = "fleet_test"


def test_database_url(folder: Path) -> str:
    """Start (or reuse) the test server and return its postgresql:// URL."""
    folder.mkdir(parents=True, exist_ok=True)
    password_file = folder / "password"
    if not password_file.is_file():
        # A throwaway credential of a loopback-only test server, kept out of the repository.
        password_file.write_text(secrets.token_urlsafe(18))
        os.chmod(password_file, 0o600)
    password = password_file.read_text().strip()
    server = postgres.ensure_server(postgres_data_dir(folder))
    postgres.ensure_database(server, TEST_DATABASE, TEST_ROLE, password)
    url = f"postgresql://{TEST_ROLE}:{password}@{server.host}:{server.port}/{TEST_DATABASE}"
    url_file = folder / "url"
    url_file.write_text(url + "\n")
    os.chmod(url_file, 0o600)
    return url
