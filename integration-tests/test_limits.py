"""Bounded input (docs/api.md#limits): a request over a limit is a 4xx naming the field, and
nothing is stored; a request exactly at the limit is accepted.

The numbers are the documented contract (``fleet_common.limits`` holds them in code; this suite
is black-box and states them as the API's users read them).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleet_itest import TEAM, Api, assert_error, segment, unique_name

pytestmark = pytest.mark.writes

MAX_BODY_BYTES = 16 * 1024
MAX_NAME = 100
MAX_KEYS = 32
MAX_KEY_LENGTH = 64
MAX_DEPTH = 4
MAX_ATTRIBUTES_BYTES = 4096


def nested(depth: int) -> dict[str, Any]:
    """``{"k": {"k": ... 1}}`` nesting ``depth`` levels (an object is one more than its member)."""
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


def attributes_of_size(size: int) -> dict[str, str]:
    """An attributes object whose compact JSON is exactly ``size`` bytes."""
    overhead = len(json.dumps({"a": ""}, separators=(",", ":")))
    return {"a": "x" * (size - overhead)}


@pytest.fixture(scope="module")
def devices(api: Api) -> str:
    project = unique_name("limits")
    api.request("POST", "/projects", json={"name": project, "team": TEAM}).expect(201)
    return f"/projects/{segment(project)}/devices"


def device_names(api: Api, path: str) -> list[str]:
    listed = api.request("GET", path, query={"limit": "100"}).expect(200)
    return [device["name"] for device in listed.json_object()["devices"]]


OVER_LIMIT_DEVICES = {
    "long-name": ({"name": "n" * (MAX_NAME + 1)}, "body.name", "must be at most 100 characters"),
    "long-serial": (
        {"name": "d", "serial": "s" * (MAX_NAME + 1)},
        "body.serial",
        "must be at most 100 characters",
    ),
    "too-many-keys": (
        {"name": "d", "attributes": {f"k{i}": i for i in range(MAX_KEYS + 1)}},
        "body.attributes",
        "must not have an object with more than 32 keys",
    ),
    "too-many-nested-keys": (
        {"name": "d", "attributes": {"inner": {f"k{i}": i for i in range(MAX_KEYS + 1)}}},
        "body.attributes",
        "must not have an object with more than 32 keys",
    ),
    "long-key": (
        {"name": "d", "attributes": {"k" * (MAX_KEY_LENGTH + 1): 1}},
        "body.attributes",
        "has a key that is empty or longer than 64 characters",
    ),
    "empty-key": (
        {"name": "d", "attributes": {"": 1}},
        "body.attributes",
        "has a key that is empty or longer than 64 characters",
    ),
    "too-deep": (
        {"name": "d", "attributes": nested(MAX_DEPTH + 1)},
        "body.attributes",
        "must not nest more than 4 levels deep",
    ),
    "too-large": (
        {"name": "d", "attributes": attributes_of_size(MAX_ATTRIBUTES_BYTES + 1)},
        "body.attributes",
        "must be at most 4096 bytes as JSON",
    ),
}


@pytest.mark.parametrize("case", OVER_LIMIT_DEVICES.values(), ids=list(OVER_LIMIT_DEVICES))
def test_a_device_over_a_limit_is_400_naming_the_field_and_not_stored(
    api: Api, devices: str, case: tuple[dict[str, Any], str, str]
) -> None:
    body, field, problem = case
    assert_error(api.request("POST", devices, json=body), 400, "validation_error", {field: problem})
    assert body["name"] not in device_names(api, devices)


def test_a_device_exactly_at_every_limit_is_registered(api: Api, devices: str) -> None:
    widest = {f"k{i:0{MAX_KEY_LENGTH - 1}d}": i for i in range(MAX_KEYS)}
    assert len(json.dumps(widest, separators=(",", ":"))) <= MAX_ATTRIBUTES_BYTES
    for name, attributes in [
        ("d" * MAX_NAME, nested(MAX_DEPTH)),
        ("widest", widest),
        ("largest", attributes_of_size(MAX_ATTRIBUTES_BYTES)),
    ]:
        body = {"name": name, "serial": "s" * MAX_NAME, "attributes": attributes}
        created = api.request("POST", devices, json=body).expect(201)
        assert created.json_object()["device"]["attributes"] == attributes, created.describe()
    assert {"d" * MAX_NAME, "widest", "largest"} <= set(device_names(api, devices))


@pytest.mark.parametrize("route", ["projects", "devices"])
def test_a_body_over_16_kib_is_413_and_nothing_is_stored(
    api: Api, devices: str, route: str
) -> None:
    name = unique_name("big")
    # valid JSON whose only fault is its size: padding in an unknown field
    document = {"name": name, "team": TEAM} if route == "projects" else {"name": name}
    document["padding"] = ""
    document["padding"] = "p" * (MAX_BODY_BYTES + 1 - len(json.dumps(document).encode()))
    raw = json.dumps(document)
    assert len(raw.encode()) == MAX_BODY_BYTES + 1
    path = "/projects" if route == "projects" else devices
    assert_error(
        api.request("POST", path, raw_body=raw),
        413,
        "payload_too_large",
        {"body": f"must be at most {MAX_BODY_BYTES} bytes"},
    )
    if route == "projects":
        api.request("GET", f"/projects/{segment(name)}/devices").expect(404)
    else:
        assert name not in device_names(api, devices)


def test_a_project_name_over_the_limit_is_400_and_not_created(api: Api) -> None:
    name = "p" * (MAX_NAME + 1)
    assert_error(
        api.request("POST", "/projects", json={"name": name, "team": "t" * (MAX_NAME + 1)}),
        400,
        "validation_error",
        {
            "body.name": "must be at most 100 characters",
            "body.team": "must be at most 100 characters",
        },
    )
    api.request("GET", f"/projects/{segment(name)}/devices").expect(404)
