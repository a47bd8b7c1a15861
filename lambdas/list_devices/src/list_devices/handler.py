"""``GET /projects/{project}/devices?limit=N&cursor=X``: a project's devices, oldest first.

- 200 ``{"devices": [{"id", "name", "serial", "attributes", "created_at"}, ...],
  "next_cursor": "..." | null}``. ``limit`` is 1-100 (default 20). Pass ``next_cursor`` back as
  ``cursor`` for the next page; it is ``null`` on the last page.
- 400 ``validation_error`` for a bad ``limit`` or ``cursor``; 404 ``not_found`` for an unknown
  project.

Keyset pagination on ``(created_at, id)``, served by the index
``device (project_id, created_at, id)``: a page costs the same however deep it is, and devices
added while paging never shift the pages. One row more than ``limit`` is read to know whether
another page exists, so the last page has ``next_cursor: null`` (no empty extra page).
"""

from __future__ import annotations

from typing import Any

from fleet_common import db
from fleet_common.api import (
    build_app,
    json_response,
    make_handler,
    path_param,
    query_param,
    timestamp,
)
from fleet_common.errors import NotFound
from fleet_common.observability import tracer
from fleet_common.pagination import Cursor, decode_cursor, encode_cursor, parse_limit

__all__ = ["app", "handler", "list_devices"]

_SELECT_PROJECT = "SELECT id FROM project WHERE name = :project"
_FIRST_PAGE = """
SELECT id, name, serial, attributes, created_at
FROM device
WHERE project_id = :project_id
ORDER BY created_at, id
LIMIT :fetch
"""
_NEXT_PAGE = """
SELECT id, name, serial, attributes, created_at
FROM device
WHERE project_id = :project_id
  AND (created_at, id) > (CAST(:after_created_at AS timestamptz), CAST(:after_id AS bigint))
ORDER BY created_at, id
LIMIT :fetch
"""

app = build_app()


@tracer.capture_method
def list_devices(project: str, limit: int, after: Cursor | None) -> tuple[list[Any], bool]:
    """``(rows, more)``: up to ``limit`` devices after ``after``, and whether more follow.
    Raises :class:`NotFound` for an unknown project."""
    with db.transaction(read_only=True) as conn:
        rows = conn.run(_SELECT_PROJECT, project=project)
        if not rows:
            raise NotFound(f'project "{project}" does not exist')
        project_id = rows[0][0]
        if after is None:
            devices = conn.run(_FIRST_PAGE, project_id=project_id, fetch=limit + 1)
        else:
            devices = conn.run(
                _NEXT_PAGE,
                project_id=project_id,
                after_created_at=after.created_at,
                after_id=after.id,
                fetch=limit + 1,
            )
    return devices[:limit], len(devices) > limit


@app.get("/projects/<project>/devices")
def get_devices(**_route_args: str) -> Any:
    project = path_param(app, "project")
    limit = parse_limit(query_param(app, "limit"))
    cursor_text = query_param(app, "cursor")
    after = decode_cursor(cursor_text) if cursor_text is not None else None
    rows, more = list_devices(project, limit, after)
    devices = [
        {
            "id": device_id,
            "name": name,
            "serial": serial,
            "attributes": attributes,
            "created_at": timestamp(created_at),
        }
        for device_id, name, serial, attributes, created_at in rows
    ]
    next_cursor = encode_cursor(rows[-1][4], rows[-1][0]) if more else None
    return json_response(200, {"devices": devices, "next_cursor": next_cursor})


handler = make_handler(app)
