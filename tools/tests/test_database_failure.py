"""What a failed migrations run shows: the module's error line, else the end of its output."""

from __future__ import annotations

import json

from stackrun.database import _failure_detail

LOG = "\n".join(
    json.dumps({"level": "INFO", "message": message})
    for message in ("connecting to the database", "applying migration 0004_x.sql")
)


def test_the_error_line_is_shown_not_the_last_log_line():
    stderr = f"{LOG}\nerror: duplicate migration version 0001: 0001_a.sql and 0001_b.sql\n"
    assert _failure_detail("", stderr) == (
        "    error: duplicate migration version 0001: 0001_a.sql and 0001_b.sql"
    )


def test_a_crash_shows_the_end_of_the_traceback():
    stderr = (
        f'{LOG}\nTraceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
        "botocore.errorfactory.ResourceNotFoundException: secret not found\n"
    )
    detail = _failure_detail("", stderr)
    assert detail.splitlines()[-1] == (
        "    botocore.errorfactory.ResourceNotFoundException: secret not found"
    )
    assert "Traceback (most recent call last):" in detail
