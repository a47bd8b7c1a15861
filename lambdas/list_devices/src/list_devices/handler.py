"""``GET /projects/{project}/devices?limit=N&cursor=X``: a project's devices, oldest first.

- 200 ``{"devices": [{"id", "name", "serial", "attributes", "created_by", "created_at"}, ...],
  "next_cursor": "..." | null}``. ``limit`` is 1-100 (default 20). Pass ``next_cursor`` back as
  ``cursor`` for the next page; it is ``null`` on the last page.
- 400 ``validation_error`` for a bad ``limit`` or ``cursor``; 401 without a verified caller;
  404 ``not_found`` for an unknown project.

Keyset pagination on ``(created_at, id)``, served by the index
``device (project_id, created_at, id)``: a page costs the same however deep it is, and devices
added while paging never shift the pages. One row more than ``limit`` is read to know whether
another page exists, so the last page has ``next_cursor: null`` (no empty extra page).

A page is also capped in bytes, whatever the database holds (rows stored before the API's
limits, or written around it, can be big): its JSON body never passes
:data:`~fleet_common.limits.MAX_PAGE_BYTES` (1 MiB). Devices stop being added before the body
would pass it, and ``next_cursor`` then continues after the last device returned, so a page
may hold fewer than ``limit`` devices while more follow (never zero: the first device always
fits, see below). Attributes stored larger than
:data:`~fleet_common.limits.MAX_LISTED_ATTRIBUTES_BYTES` (64 KiB, as PostgreSQL writes the
jsonb) are not read at all: such a device is listed with ``"attributes": null`` (never
otherwise null: the database only holds objects there). Devices within the API's limits are
always listed in full, and a page of 100 of them stays well under 1 MiB.
"""

from __future__ import annotations

from typing import Any

from fleet_common import db
from fleet_common.api import (
    build_app,
    device_body,
    json_response,
    make_handler,
    path_param,
    query_param,
)
from fleet_common.errors import NotFound
from fleet_common.identity import caller
from fleet_common.limits import MAX_CURSOR_LENGTH, MAX_LISTED_ATTRIBUTES_BYTES, MAX_PAGE_BYTES
from fleet_common.observability import tracer
from fleet_common.pagination import Cursor, decode_cursor, encode_cursor, parse_limit
from fleet_common.validation import compact_json

__all__ = ["app", "handler", "list_devices", "page_of"]

_SELECT_PROJECT = "SELECT id FROM project WHERE name = :project"
# Oversized attributes stay in the database (NULL instead): the page is built from at most
# `fetch` rows of bounded size, whatever was stored.
_COLUMNS = """
SELECT id, name, serial,
       CASE WHEN octet_length(attributes::text) > :max_attributes_bytes THEN NULL
            ELSE attributes END AS attributes,
       created_by, created_at
"""
_FIRST_PAGE = (
    _COLUMNS
    + """
FROM device
WHERE project_id = :project_id
ORDER BY created_at, id
LIMIT :fetch
"""
)
_NEXT_PAGE = (
    _COLUMNS
    + """
FROM device
WHERE project_id = :project_id
  AND (created_at, id) > (CAST(:after_created_at AS timestamptz), CAST(:after_id AS bigint))
ORDER BY created_at, id
LIMIT :fetch
"""
)
# The body around the devices, with room for the longest cursor: '{"devices":[],"next_cursor":'
# + '"<cursor>"' + '}'.
_ENVELOPE_BYTES = len('{"devices":[],"next_cursor":}') + MAX_CURSOR_LENGTH + 2

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
        sizes = {"max_attributes_bytes": MAX_LISTED_ATTRIBUTES_BYTES, "fetch": limit + 1}
        if after is None:
            devices = conn.run(_FIRST_PAGE, project_id=project_id, **sizes)
        else:
            devices = conn.run(
                _NEXT_PAGE,
                project_id=project_id,
                after_created_at=after.created_at,
                after_id=after.id,
                **sizes,
            )
    return devices[:limit], len(devices) > limit


def page_of(rows: list[Any], more: bool) -> dict[str, Any]:
    """The response body for ``rows`` (``more``: rows follow them), cut short so that its
    compact JSON stays within ``MAX_PAGE_BYTES``; ``next_cursor`` follows the last device
    returned. The first device is always returned (the cursor must move on), and fits: with
    its attributes capped by the query, a device is far below the page cap."""
    devices: list[dict[str, Any]] = []
    used = _ENVELOPE_BYTES
    last = None
    for row in rows:
        device_id, *_, created_at = row
        device = device_body(row)
        size = len(compact_json(device).encode("utf-8")) + (1 if devices else 0)  # the comma
        if devices and used + size > MAX_PAGE_BYTES:
            more = True
            break
        devices.append(device)
        used += size
        last = (created_at, device_id)
    next_cursor = encode_cursor(*last) if more and last is not None else None
    return {"devices": devices, "next_cursor": next_cursor}


@app.get("/projects/<project>/devices")
def get_devices(**_route_args: str) -> Any:
    caller(app)  # make_handler answered 401 already without a verified caller
    project = path_param(app, "project")
    limit = parse_limit(query_param(app, "limit"))
    cursor_text = query_param(app, "cursor")
    after = decode_cursor(cursor_text) if cursor_text is not None else None
    rows, more = list_devices(project, limit, after)
    return json_response(200, page_of(rows, more))


handler = make_handler(app)
