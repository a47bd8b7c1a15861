"""``POST /projects/{project}/devices``: register a device in a project, safely retryable.

Request body (at most 16 KiB): ``{"name": "...", "serial": "..." | null, "attributes": {...}}``;
``name`` is 1-100 characters without surrounding whitespace, ``serial`` (optional) 1-100
characters without surrounding whitespace or null, ``attributes`` (optional, default ``{}``) a
JSON object within the limits of :mod:`fleet_common.limits` (every object in it at most 32
keys of 1-64 characters, at most 4 levels deep, at most 4 KiB as compact JSON). Nothing else
is allowed.

- 201 ``{"device": {"id", "name", "serial", "attributes", "created_by", "created_at"}}`` with
  ``Location: /projects/<project>/devices/<name>`` for a new device; ``created_by`` is the
  verified caller's ``sub``.
- 200 with the same body when a device of that name already exists in the project with the
  same serial and attributes: the request was a retry, nothing is created twice. This holds
  whoever sends the retry: ``created_by`` stays the original creator's (the registration is
  the same fact, and every reader may see ``created_by`` anyway).
- 409 ``conflict`` when a device of that name exists with a different serial or attributes
  (the details name the fields that differ).
- 401 without a verified caller; 404 ``not_found`` for an unknown project; 400 for a
  malformed body or one over a limit (``validation_error`` on the field); 413 for a body over
  16 KiB. Nothing is stored on any of these.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fleet_common import db
from fleet_common.api import (
    build_app,
    device_body,
    json_response,
    make_handler,
    parse_json_body,
    path_param,
)
from fleet_common.errors import Conflict, FieldError, InternalError, NotFound
from fleet_common.identity import caller
from fleet_common.observability import logger, metrics, tracer
from fleet_common.validation import NAME_SCHEMA, SERIAL_SCHEMA, attributes_problem, validate

__all__ = ["BODY_CHECKS", "BODY_SCHEMA", "app", "handler", "register_device"]

BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": NAME_SCHEMA,
        "serial": SERIAL_SCHEMA,
        "attributes": {"type": "object"},
    },
    "required": ["name"],
    "additionalProperties": False,
}
#: What the schema cannot say: the limits of ``attributes`` (fleet_common.limits).
BODY_CHECKS = {"attributes": attributes_problem}

# The project is locked against deletion (FOR KEY SHARE) while the device is inserted.
_SELECT_PROJECT = "SELECT id FROM project WHERE name = :project FOR KEY SHARE"
_INSERT_DEVICE = """
INSERT INTO device (project_id, name, serial, attributes, created_by)
VALUES (:project_id, :name, :serial, CAST(:attributes AS jsonb), :created_by)
ON CONFLICT (project_id, name) DO NOTHING
RETURNING id, name, serial, attributes, created_by, created_at
"""
# jsonb equality is semantic: key order and insignificant number formatting do not matter.
_SELECT_EXISTING = """
SELECT id, name, serial, attributes, created_by, created_at,
       serial IS NOT DISTINCT FROM :serial AS same_serial,
       attributes = CAST(:attributes AS jsonb) AS same_attributes
FROM device
WHERE project_id = :project_id AND name = :name
"""

app = build_app()


@tracer.capture_method
def register_device(
    project: str, name: str, serial: str | None, attributes: dict[str, Any], created_by: str
) -> tuple[int, dict[str, Any]]:
    """``(201, device)`` when created (by ``created_by``), ``(200, device)`` when an identical
    device exists (its ``created_by`` unchanged, whoever asks). Raises :class:`NotFound`
    (project) or :class:`Conflict` (a different device)."""
    params = {"name": name, "serial": serial, "attributes": json.dumps(attributes)}
    # A conflicting row that disappears between the INSERT and the SELECT (deleted
    # concurrently) is retried once; it cannot happen twice in a row without a delete storm.
    for _attempt in range(2):
        with db.transaction() as conn:
            rows = conn.run(_SELECT_PROJECT, project=project)
            if not rows:
                raise NotFound(f'project "{project}" does not exist')
            project_id = rows[0][0]
            created = conn.run(
                _INSERT_DEVICE, project_id=project_id, created_by=created_by, **params
            )
            if created:
                return 201, device_body(created[0])
            existing = conn.run(_SELECT_EXISTING, project_id=project_id, **params)
        if not existing:
            continue
        row = existing[0]
        same_serial, same_attributes = row[6], row[7]
        if same_serial and same_attributes:
            if row[4] != created_by:
                logger.info(
                    "device registration repeated by another caller",
                    extra={"device_id": row[0], "created_by": row[4]},
                )
            return 200, device_body(row)
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
    created_by = caller(app).sub
    project = path_param(app, "project")
    body = validate(parse_json_body(app.current_event), BODY_SCHEMA, checks=BODY_CHECKS)
    tracer.put_annotation("project", project)
    status, device = register_device(
        project, body["name"], body.get("serial"), body.get("attributes") or {}, created_by
    )
    if status == 201:
        metrics.add_metric(name="DevicesRegistered", unit="Count", value=1)
        location = f"/projects/{quote(project, safe='')}/devices/{quote(device['name'], safe='')}"
        return json_response(201, {"device": device}, headers={"Location": location})
    metrics.add_metric(name="DeviceRegistrationsRepeated", unit="Count", value=1)
    return json_response(200, {"device": device})


handler = make_handler(app)
