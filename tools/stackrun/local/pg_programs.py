"""Where the PostgreSQL server programs are: initdb, pg_ctl and the postgres next to them.

Standard library only (no database driver): `nox -s doctor` looks for them before any
virtualenv exists, and the local database servers (local/postgres/) start them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from stackrun.errors import StackrunError

# What the local database servers run: initdb creates a data folder, pg_ctl starts the postgres
# of its own installation.
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
# Debian and Ubuntu keep each major's programs off PATH, in /usr/lib/postgresql/<major>/bin.
DEBIAN_LAYOUT = Path("/usr/lib/postgresql")
INSTALL_HINT = (
    "install the PostgreSQL server (e.g. `sudo apt-get install postgresql`, "
    "`brew install postgresql@15`) or put its bin folder on PATH"
)


class ProgramNotFound(StackrunError):
    """A PostgreSQL server program is not installed (or not where its siblings are)."""


def program(name: str) -> str:
    """``pg_ctl`` from PATH (or Debian's /usr/lib/postgresql/N/bin); its siblings next to it.

    initdb must come from the same installation as pg_ctl, which starts the ``postgres`` next to
    itself.
    """
    pg_ctl = shutil.which("pg_ctl") or _newest_debian_pg_ctl()
    if pg_ctl is None:
        raise ProgramNotFound(
            "PostgreSQL server programs (initdb, pg_ctl, postgres) not found on PATH nor under "
            f"{DEBIAN_LAYOUT}/*/bin; {INSTALL_HINT}"
        )
    if name == "pg_ctl":
        return pg_ctl
    sibling = Path(pg_ctl).resolve().parent / name
    found = str(sibling) if sibling.exists() else shutil.which(name)
    if found is None:
        raise ProgramNotFound(f"PostgreSQL program {name!r} not found next to {pg_ctl}")
    return found


def _newest_debian_pg_ctl() -> str | None:
    installed = sorted(
        DEBIAN_LAYOUT.glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return str(installed[-1]) if installed else None
