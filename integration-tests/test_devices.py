"""Projects and devices through the API: create, register, list back, retry, conflict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fleet_itest import TEAM, TIMESTAMP, Api, ApiResponse, assert_error, segment, unique_name

# These tests create projects and devices (see README: `-m "not writes"` skips them).
pytestmark = pytest.mark.writes

DEVICE_FIELDS = {"id", "name", "serial", "attributes", "created_by", "created_at"}


def device_of(response: ApiResponse) -> dict[str, Any]:
    """The ``device`` of a register answer, checked against the documented shape."""
    body = response.json_object()
    assert set(body) == {"device"}, response.describe('expected exactly {"device": {...}}')
    device = body["device"]
    assert isinstance(device, dict) and set(device) == DEVICE_FIELDS, response.describe(
        f"a device has exactly the fields {sorted(DEVICE_FIELDS)}"
    )
    assert type(device["id"]) is int and device["id"] > 0, response.describe("id: positive int")
    assert TIMESTAMP.fullmatch(str(device["created_at"])), response.describe(
        "created_at must be RFC 3339 UTC with microseconds (2025-01-02T03:04:05.123456Z)"
    )
    return device


def listing(api: Api, path: str, **query: str) -> dict[str, Any]:
    response = api.request("GET", path, query=query or None).expect(200)
    body = response.json_object()
    assert set(body) == {"devices", "next_cursor"}, response.describe(
        "a listing is exactly {devices, next_cursor}"
    )
    return body


def test_create_project_then_its_name_is_taken(
    api: Api, devices_path: Callable[[str], str]
) -> None:
    name = unique_name("project")
    created = api.request("POST", "/projects", json={"name": name, "team": TEAM}).expect(201)
    project = created.json_object().get("project")
    assert isinstance(project, dict), created.describe('expected {"project": {...}}')
    assert set(project) == {"id", "name", "team", "created_by", "created_at"}, created.describe(
        "a project has exactly id, name, team, created_by, created_at"
    )
    assert (project["name"], project["team"]) == (name, TEAM), created.describe()
    assert type(project["id"]) is int and TIMESTAMP.fullmatch(project["created_at"]), (
        created.describe("id must be an int, created_at RFC 3339 UTC with microseconds")
    )
    assert created.headers.get("location") == f"/projects/{segment(name)}", created.describe(
        "Location must name the new project"
    )

    # Project names are global: another team cannot take it either.
    again = api.request("POST", "/projects", json={"name": name, "team": f"{TEAM}-other"})
    assert_error(again, 409, "conflict", {"body.name": "is already taken"})

    assert listing(api, devices_path(name)) == {"devices": [], "next_cursor": None}


def test_register_list_and_idempotent_retry(
    api: Api, new_project: Callable[..., str], devices_path: Callable[[str], str]
) -> None:
    project = new_project("devices")
    path = devices_path(project)
    body = {"name": "cam-01", "serial": "SN-0001", "attributes": {"fw": "1.2.3", "zone": {"n": 7}}}

    created = api.request("POST", path, json=body).expect(201)
    device = device_of(created)
    assert (device["name"], device["serial"], device["attributes"]) == (
        body["name"],
        body["serial"],
        body["attributes"],
    ), created.describe("the device must be stored as sent")
    assert created.headers.get("location") == f"{path}/cam-01", created.describe(
        "Location must name the new device"
    )
    assert listing(api, path) == {"devices": [device], "next_cursor": None}

    # A retry (same content, keys in another order) answers 200 with the same device.
    retry = {"attributes": {"zone": {"n": 7}, "fw": "1.2.3"}, "serial": "SN-0001", "name": "cam-01"}
    repeated = api.request("POST", path, json=retry).expect(200)
    assert device_of(repeated) == device, repeated.describe("a retry must return the same device")

    # The same name with other content is a conflict naming the fields that differ.
    assert_error(
        api.request("POST", path, json={**body, "serial": "SN-9999"}),
        409,
        "conflict",
        {"body.serial": "differs from the registered device"},
    )
    assert_error(
        api.request("POST", path, json={**body, "attributes": {"fw": "2.0.0"}}),
        409,
        "conflict",
        {"body.attributes": "differs from the registered device"},
    )
    # Omitted fields compare as null / {}: both differ here.
    assert_error(
        api.request("POST", path, json={"name": "cam-01"}),
        409,
        "conflict",
        {
            "body.serial": "differs from the registered device",
            "body.attributes": "differs from the registered device",
        },
    )
    # Neither the retry nor the conflicts created anything.
    assert listing(api, path) == {"devices": [device], "next_cursor": None}


def test_data_written_by_one_function_is_read_by_another(
    api: Api, new_project: Callable[..., str], devices_path: Callable[[str], str]
) -> None:
    """create_project writes the project, register_device finds it and writes devices,
    list_devices reads them: three separately deployed functions sharing the database."""
    project = new_project("shared-db")
    path = devices_path(project)
    writer = api.routes.get("POST /projects/{project}/devices")
    reader = api.routes.get("GET /projects/{project}/devices")
    creator = api.routes.get("POST /projects")
    assert writer and reader and creator, f"routes output lacks a device route: {api.routes}"
    names = {api.functions[key]["function_name"] for key in (writer, reader, creator)}
    assert len(names) == 3, (
        f"the routes must be served by three different functions to prove anything: {names}"
    )

    attributes = {
        "text": "ünïcödé ✓",
        "int": 10**15,
        "float": 1.5,
        "flag": True,
        "none": None,
        "list": [1, "two", {"three": [3]}],
    }
    written = [
        device_of(api.request("POST", path, json={"name": "rich", "attributes": attributes})),
        device_of(api.request("POST", path, json={"name": "plain", "serial": None})),
    ]
    read = listing(api, path)["devices"]
    assert read == written, (
        f"GET {api.url(path)}: what list_devices read differs from what register_device wrote\n"
        f"  written: {written}\n  read:    {read}"
    )
    assert written[0]["attributes"] == attributes and written[1]["serial"] is None


@pytest.mark.parametrize(
    ("suffix", "device_name"),
    [(" c?d#é&x=1%", "cam 01 ü?#%"), (" a/b", "cam/01")],
    ids=["reserved-characters", "slash"],
)
def test_names_with_reserved_characters_round_trip(
    api: Api,
    new_project: Callable[..., str],
    devices_path: Callable[[str], str],
    suffix: str,
    device_name: str,
) -> None:
    """Names with a space, '?', '#', '%', non-ASCII text, or '/' still reach their routes when
    each path segment is percent-encoded, and Location headers are percent-encoded. (A '/'
    arrives as %2F: API Gateway routes on the encoded path, then decodes ``pathParameters``;
    the functions rebuild the route from those. A failure only in [slash] points there.)"""
    project = new_project(name=unique_name("names") + suffix)
    path = devices_path(project)
    created = api.request("POST", path, json={"name": device_name}).expect(201)
    device = device_of(created)
    assert (device["name"], device["serial"], device["attributes"]) == (device_name, None, {}), (
        created.describe("defaults: serial null, attributes {}")
    )
    assert created.headers.get("location") == f"{path}/{segment(device_name)}", created.describe(
        "Location must be percent-encoded"
    )
    assert listing(api, path)["devices"] == [device]


def test_unknown_project_is_404(api: Api, devices_path: Callable[[str], str]) -> None:
    path = devices_path(unique_name("missing"))
    assert_error(api.request("GET", path), 404, "not_found", {})
    assert_error(api.request("POST", path, json={"name": "d"}), 404, "not_found", {})
