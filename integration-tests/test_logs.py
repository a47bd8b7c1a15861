"""Every routed function writes its log group.

The marker looked for is a value unique to this run that the function logs for the request:
a rejected request's ``request rejected`` line (INFO) carries ``error_message``, which names the
project (``project "itest-..." does not exist``, ``a project named "itest-..." already
exists``). When the server sends ``apigw-requestid``, that id is also accepted: the functions
log it as ``correlation_id`` on every line of the request.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from fleet_itest import TEAM, Api, ApiResponse, Logs, Target, segment, unique_name

# These tests create projects and devices (see README: `-m "not writes"` skips them).
pytestmark = pytest.mark.writes

Probe = Callable[[Api], tuple[list[ApiResponse], str]]


def _create_project_twice(api: Api) -> tuple[list[ApiResponse], str]:
    name = unique_name("logs")
    body = {"name": name, "team": TEAM}
    first = api.request("POST", "/projects", json=body).expect(201)
    second = api.request("POST", "/projects", json=body).expect(409)
    return [first, second], name


def _list_missing_project(api: Api) -> tuple[list[ApiResponse], str]:
    name = unique_name("logs-missing")
    return [api.request("GET", f"/projects/{segment(name)}/devices").expect(404)], name


def _register_in_missing_project(api: Api) -> tuple[list[ApiResponse], str]:
    name = unique_name("logs-missing")
    path = f"/projects/{segment(name)}/devices"
    return [api.request("POST", path, json={"name": "probe"}).expect(404)], name


#: Route key -> a request whose log line can be recognised. A new route needs one here.
PROBES: dict[str, Probe] = {
    "POST /projects": _create_project_twice,
    "GET /projects/{project}/devices": _list_missing_project,
    "POST /projects/{project}/devices": _register_in_missing_project,
}


def test_every_route_has_a_log_probe(target: Target) -> None:
    missing = sorted(set(target.routes) - set(PROBES))
    assert not missing, f"routes without a log probe in {__file__}: {missing}"


@pytest.mark.parametrize("route_key", sorted(PROBES))
def test_function_logs_the_request(api: Api, logs: Logs, target: Target, route_key: str) -> None:
    key = target.routes.get(route_key)
    assert key, f"route {route_key!r} is not in {target.api_stack}.routes: {dict(target.routes)}"
    group = api.log_group(key)
    started_ms = int(time.time() * 1000)

    responses, marker = PROBES[route_key](api)
    assert responses[-1].served_by == key, responses[-1].describe(f"expected {key} to serve it")

    markers = [marker, *(r.request_id for r in responses if r.request_id)]
    event = logs.wait_for(group, markers, since_ms=started_ms, timeout_s=30.0)
    assert event is not None, (
        f"{route_key} ({key}): no event in {group} containing any of {markers} within 30 s "
        f"of the requests\n"
        + "\n".join(r.describe("request made:") for r in responses)
        + f"\n  last lines of {group}:\n"
        + logs.tail_text(group)
    )
