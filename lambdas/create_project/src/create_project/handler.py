"""``POST /projects``: create a project, and its team on first use.

Request body (at most 16 KiB): ``{"name": "...", "team": "..."}``, both strings of 1-100
characters without leading or trailing whitespace; nothing else is allowed.

- 201 ``{"project": {"id", "name", "team", "created_by", "created_at"}}``,
  ``Location: /projects/<name>`` (the name percent-encoded). ``created_by`` is the verified
  caller's ``sub``.
- 400 ``bad_request`` (body not a JSON object) or ``validation_error`` (one detail per field).
- 401 ``unauthorized`` without a verified caller (cannot pass API Gateway's JWT authorizer).
- 409 ``conflict`` when a project of that name exists (project names are global). Nothing is
  created then, not even the team.
- 413 ``payload_too_large`` for a body over 16 KiB.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fleet_common import db
from fleet_common.api import build_app, json_response, make_handler, parse_json_body, timestamp
from fleet_common.errors import Conflict, FieldError
from fleet_common.identity import caller
from fleet_common.observability import metrics, tracer
from fleet_common.validation import NAME_SCHEMA, validate

__all__ = ["BODY_SCHEMA", "app", "create_project", "handler"]

BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": NAME_SCHEMA, "team": NAME_SCHEMA},
    "required": ["name", "team"],
    "additionalProperties": False,
}

# The team is created when missing (ON CONFLICT DO NOTHING, so concurrent first uses of a team
# do not fail), then read back and locked against deletion until the project row exists.
_INSERT_TEAM = "INSERT INTO team (name) VALUES (:team) ON CONFLICT (name) DO NOTHING"
_SELECT_TEAM = "SELECT id FROM team WHERE name = :team FOR KEY SHARE"
_INSERT_PROJECT = """
INSERT INTO project (team_id, name, created_by) VALUES (:team_id, :name, :created_by)
ON CONFLICT (name) DO NOTHING
RETURNING id, name, created_by, created_at
"""

app = build_app()


@tracer.capture_method
def create_project(name: str, team: str, created_by: str) -> dict[str, Any]:
    """Create the project (and the team when new) in one transaction, recording
    ``created_by``. Raises :class:`Conflict`, which rolls everything back (the team insert
    too), when the project name is taken."""
    with db.transaction() as conn:
        conn.run(_INSERT_TEAM, team=team)
        ((team_id,),) = conn.run(_SELECT_TEAM, team=team)
        rows = conn.run(_INSERT_PROJECT, team_id=team_id, name=name, created_by=created_by)
        if not rows:
            raise Conflict(
                f'a project named "{name}" already exists',
                [FieldError("body.name", "is already taken")],
            )
    ((project_id, project_name, project_created_by, created_at),) = rows
    return {
        "id": project_id,
        "name": project_name,
        "team": team,
        "created_by": project_created_by,
        "created_at": timestamp(created_at),
    }


@app.post("/projects")
def post_project() -> Any:
    created_by = caller(app).sub
    body = validate(parse_json_body(app.current_event), BODY_SCHEMA)
    name, team = body["name"], body["team"]
    tracer.put_annotation("project", name)
    project = create_project(name, team, created_by)
    metrics.add_metric(name="ProjectsCreated", unit="Count", value=1)
    location = f"/projects/{quote(name, safe='')}"
    return json_response(201, {"project": project}, headers={"Location": location})


handler = make_handler(app)
