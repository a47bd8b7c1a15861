"""Error answers: every bad request is a 4xx with the documented JSON body, never a 500.

The functions answer ``{"error": {"code", "message", "details": [{"path", "problem"}]}}``; a
request no route matches never reaches a function, and API Gateway answers it with
``404 {"message": "Not Found"}``.
"""

from __future__ import annotations

from typing import Any

import pytest

from fleet_itest import TEAM, Api, assert_error, segment, unique_name

NOT_JSON = "the request body is not valid JSON"
STR = "must be a string"
SPACE = "must not start or end with whitespace"
NUL = "must not contain NUL characters"


@pytest.fixture(scope="module")
def project_devices(api: Api) -> str:
    """The devices path of a project made for this module."""
    project = unique_name("errors")
    api.request("POST", "/projects", json={"name": project, "team": TEAM}).expect(201)
    return f"/projects/{segment(project)}/devices"


# ---- bodies that are not a JSON object: 400 bad_request -----------------------------------------

BAD_BODIES = [
    pytest.param(None, {"body": "is required"}, id="no-body"),
    pytest.param("", {"body": "is required"}, id="empty-body"),
    pytest.param("[]", {"body": "must be an object"}, id="array"),
    pytest.param('"text"', {"body": "must be an object"}, id="string"),
    pytest.param('{"name": NaN, "team": "t"}', {"body": "NaN is not valid JSON"}, id="nan"),
    pytest.param('{"name": "p", "team": ', None, id="truncated"),
    pytest.param("name=p&team=t", None, id="form-encoded"),
]


def _check_bad_body(response: Any, details: dict[str, str] | None) -> None:
    error = assert_error(response, 400, "bad_request", details)
    if details is None:  # invalid JSON: the problem says where, the message says what
        assert error["message"] == NOT_JSON, response.describe(f"message must be {NOT_JSON!r}")
        problems = [(d["path"], d["problem"]) for d in error["details"]]
        assert len(problems) == 1 and problems[0][0] == "body", response.describe()
        assert problems[0][1].startswith("invalid JSON at line "), response.describe(
            "the problem must locate the JSON error"
        )


@pytest.mark.parametrize(("raw", "details"), BAD_BODIES)
def test_create_project_rejects_bodies_that_are_not_objects(
    api: Api, raw: str | None, details: dict[str, str] | None
) -> None:
    _check_bad_body(api.request("POST", "/projects", raw_body=raw), details)


@pytest.mark.parametrize(("raw", "details"), BAD_BODIES)
def test_register_device_rejects_bodies_that_are_not_objects(
    api: Api, project_devices: str, raw: str | None, details: dict[str, str] | None
) -> None:
    _check_bad_body(api.request("POST", project_devices, raw_body=raw), details)


# ---- JSON objects with bad fields: 400 validation_error, one detail per field -------------------


PROJECT_FIELD_ERRORS = {
    "empty": ({}, {"body.name": "is required", "body.team": "is required"}),
    "no-team": ({"name": "p"}, {"body.team": "is required"}),
    "wrong-types": ({"name": 5, "team": ["x"]}, {"body.name": STR, "body.team": STR}),
    "null-and-bool": ({"name": None, "team": True}, {"body.name": STR, "body.team": STR}),
    "extra-field": ({"name": "p", "team": "t", "owner": "me"}, {"body.owner": "is not allowed"}),
    "blank": ({"name": "", "team": " t"}, {"body.name": "must not be empty", "body.team": SPACE}),
    "too-long": ({"name": "x" * 101, "team": "t"}, {"body.name": "must be at most 100 characters"}),
    "nul": ({"name": "a\u0000b", "team": "t"}, {"body.name": NUL}),
}


@pytest.mark.parametrize(
    ("body", "details"), list(PROJECT_FIELD_ERRORS.values()), ids=list(PROJECT_FIELD_ERRORS)
)
def test_create_project_field_errors(
    api: Api, body: dict[str, Any], details: dict[str, str]
) -> None:
    assert_error(api.request("POST", "/projects", json=body), 400, "validation_error", details)


DEVICE_FIELD_ERRORS = {
    "empty": ({}, {"body.name": "is required"}),
    "no-name": ({"serial": "S"}, {"body.name": "is required"}),
    "wrong-types": (
        {"name": 5, "serial": 123, "attributes": [], "x": 1},
        {
            "body.name": STR,
            "body.serial": "must be a string or null",
            "body.attributes": "must be an object",
            "body.x": "is not allowed",
        },
    ),
    "empty-serial": ({"name": "d", "serial": ""}, {"body.serial": "must not be empty"}),
    "null-attributes": (
        {"name": "d", "attributes": None},
        {"body.attributes": "must be an object"},
    ),
    "whitespace": ({"name": "d ", "serial": "s"}, {"body.name": SPACE}),
    "nul": ({"name": "d", "attributes": {"k": "a\u0000"}}, {"body.attributes.k": NUL}),
}


@pytest.mark.parametrize(
    ("body", "details"), list(DEVICE_FIELD_ERRORS.values()), ids=list(DEVICE_FIELD_ERRORS)
)
def test_register_device_field_errors(
    api: Api, project_devices: str, body: dict[str, Any], details: dict[str, str]
) -> None:
    response = api.request("POST", project_devices, json=body)
    assert_error(response, 400, "validation_error", details)


def test_rejected_requests_store_nothing(api: Api, project_devices: str) -> None:
    """The validation failures above left the module's project without devices."""
    response = api.request("GET", project_devices).expect(200)
    assert response.body == {"devices": [], "next_cursor": None}, response.describe(
        "a rejected registration must not store a device"
    )


# ---- requests no route matches: API Gateway's own 404 -------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/itest-no-such-route"),
        ("GET", "/projects"),
        ("DELETE", "/projects"),
        ("GET", "/projects/itest-x/devices/extra"),
        ("PUT", "/projects/itest-x/devices"),
    ],
)
def test_unknown_route_is_api_gateway_404(api: Api, method: str, path: str) -> None:
    response = api.request(method, path)
    response.expect(404)
    assert response.body == {"message": "Not Found"}, response.describe(
        'API Gateway answers an unmatched route with {"message": "Not Found"}'
    )
