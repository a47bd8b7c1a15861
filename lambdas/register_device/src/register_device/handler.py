"""``POST /projects/{project}/devices``: register a device in a project, safely retryable.

Request body: ``{"name": "...", "serial": "..." | null, "attributes": {...}}``; ``name`` is
1-100 characters without surrounding whitespace, ``serial`` (optional) 1-100 characters
without surrounding whitespace or null, ``attributes`` (optional, default ``{}``) any JSON
object. Nothing else is allowed.

- 201 ``{"device": {"id", "name", "serial", "attributes", "created_at"}}`` with
  ``Location: /projects/<project>/devices/<name>`` for a new device.
- 200 with the same body when a device of that name already exists in the project with the
  same serial and attributes: the request was a retry, nothing is created twice.
- 409 ``conflict`` when a device of that name exists with a different serial or attributes
  (the details name the fields that differ).
- 404 ``not_found`` for an unknown project; 400 for a malformed body.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fleet_common import db
from fleet_common.api import (
    build_app,
    json_response,
    make_handler,
    parse_json_body,
    path_param,
    timestamp,
)
from fleet_common.errors import Conflict, FieldError, InternalError, NotFound
from fleet_common.observability import logger, metrics, tracer
from fleet_common.validation import NAME_SCHEMA, string_schema, validate

__all__ = ["BODY_SCHEMA", "app", "handler", "register_device"]

BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": NAME_SCHEMA,
        "serial": string_schema(100, nullable=True),
        "attributes": {"type": "object"},
    },
    "required": ["name"],
    "additionalProperties": False,
}

# The project is locked against deletion (FOR KEY SHARE) while the device is inserted.
_SELECT_PROJECT = "SELECT id FROM project WHERE name = :project FOR KEY SHARE"
_INSERT_DEVICE = """
INSERT INTO device (project_id, name, serial, attributes)
VALUES (:project_id, :name, :serial, CAST(:attributes AS jsonb))
ON CONFLICT (project_id, name) DO NOTHING
RETURNING id, name, serial, attributes, created_at
"""
# jsonb equality is semantic: key order and insignificant number formatting do not matter.
_SELECT_EXISTING = """
SELECT id, name, serial, attributes, created_at,
       serial IS NOT DISTINCT FROM :serial AS same_serial,
       attributes = CAST(:attributes AS jsonb) AS same_attributes
FROM device
WHERE project_id = :project_id AND name = :name
"""

app = build_app()


def _device(row: list[Any]) -> dict[str, Any]:
    device_id, name, serial, attributes, created_at = row[:5]
    return {
        "id": device_id,
        "name": name,
        "serial": serial,
        "attributes": attributes,
        "created_at": timestamp(created_at),
    }


@tracer.capture_method
def register_device(
    project: str, name: str, serial: str | None, attributes: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """``(201, device)`` when created, ``(200, device)`` when an identical device exists.
    Raises :class:`NotFound` (project) or :class:`Conflict` (a different device)."""
    params = {"name": name, "serial": serial, "attributes": json.dumps(attributes)}
    # A conflicting row that disappears between the INSERT and the SELECT (deleted
    # concurrently) is retried once; it cannot happen twice in a row without a delete storm.
    for _attempt in range(2):
        with db.transaction() as conn:
            rows = conn.run(_SELECT_PROJECT, project=project)
            if not rows:
                raise NotFound(f'project "{project}" does not exist')
            project_id = rows[0][0]
            created = conn.run(_INSERT_DEVICE, project_id=project_id, **params)
            if created:
                return 201, _device(created[0])
            existing = conn.run(_SELECT_EXISTING, project_id=project_id, **params)
        if not existing:
            continue
        row = existing[0]
        same_serial, same_attributes = row[5], row[6]
        if same_serial and same_attributes:
            return 200, _device(row)
        differs = [
            FieldError(f"body.{field}", "differs from the registered device")
            for field, same in (("serial", same_serial), ("attributes", same_attributes))
            if not same
        ]
        raise Conflict(
            f'a device named "{name}" already exists in project "{project}" '
            "with a different serial or attributes",
            differs,
        )
    logger.error("device kept disappearing while being registered")
    raise InternalError("internal server error")


@app.post("/projects/<project>/devices")
def post_device(**_route_args: str) -> Any:
    project = path_param(app, "project")
    body = validate(parse_json_body(app.current_event), BODY_SCHEMA)
    tracer.put_annotation("project", project)
    status, device = register_device(
        project, body["name"], body.get("serial"), body.get("attributes") or {}
    )
    if status == 201:
        metrics.add_metric(name="DevicesRegistered", unit="Count", value=1)
        location = f"/projects/{quote(project, safe='')}/devices/{quote(device['name'], safe='')}"
        return json_response(201, {"device": device}, headers={"Location": location})
    metrics.add_metric(name="DeviceRegistrationsRepeated", unit="Count", value=1)
    return json_response(200, {"device": device})


handler = make_handler(app)
