"""Keyset pagination of ``GET /projects/{project}/devices``: ``limit`` and ``cursor``."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from fleet_itest import TEAM, Api, assert_error, segment, unique_name

# These tests create projects and devices (see README: `-m "not writes"` skips them).
pytestmark = pytest.mark.writes

DEVICES = 5


@pytest.fixture(scope="module")
def paged_project(api: Api) -> tuple[str, list[dict[str, Any]]]:
    """A new project with ``DEVICES`` devices registered one after the other (so their
    ``(created_at, id)`` order is their registration order), and those devices."""
    project = unique_name("pages")
    api.request("POST", "/projects", json={"name": project, "team": TEAM}).expect(201)
    path = f"/projects/{segment(project)}/devices"
    devices = []
    for i in range(DEVICES):
        response = api.request("POST", path, json={"name": f"dev-{i:02d}", "serial": f"SN-{i}"})
        devices.append(response.expect(201).json_object()["device"])
    return path, devices


def read_all(api: Api, path: str, limit: str | None) -> tuple[list[dict[str, Any]], list[int]]:
    """Every device of the listing following ``next_cursor``; and the page sizes."""
    seen: list[dict[str, Any]] = []
    sizes: list[int] = []
    cursor: str | None = None
    for _ in range(DEVICES + 2):  # bounded: a cursor that never ends fails below
        query = {"limit": limit} if limit else {}
        if cursor is not None:
            query["cursor"] = cursor
        response = api.request("GET", path, query=query or None).expect(200)
        page = response.json_object()
        assert set(page) == {"devices", "next_cursor"}, response.describe("not a listing")
        assert isinstance(page["devices"], list), response.describe("devices must be a list")
        seen.extend(page["devices"])
        sizes.append(len(page["devices"]))
        cursor = page["next_cursor"]
        if cursor is None:
            return seen, sizes
        assert isinstance(cursor, str) and cursor, response.describe("bad next_cursor")
        if limit:
            assert len(page["devices"]) == int(limit), response.describe(
                "only the last page may be shorter than limit"
            )
    pytest.fail(f"GET {api.url(path)}: next_cursor still set after {DEVICES + 2} pages")


@pytest.mark.parametrize(
    ("limit", "pages"),
    [("1", [1] * DEVICES), ("2", [2, 2, 1]), (str(DEVICES), [DEVICES]), ("100", [DEVICES])],
)
def test_pages_follow_the_cursor(
    api: Api, paged_project: tuple[str, list[dict[str, Any]]], limit: str, pages: list[int]
) -> None:
    path, registered = paged_project
    seen, sizes = read_all(api, path, limit)
    ids = [d["id"] for d in seen]
    assert len(ids) == len(set(ids)), f"limit={limit}: a device came twice: {ids}"
    assert seen == registered, (
        f"limit={limit}: expected every device once, oldest first\n"
        f"  registered: {[d['name'] for d in registered]}\n"
        f"  listed:     {[d['name'] for d in seen]}"
    )
    assert sizes == pages, f"limit={limit}: page sizes {sizes}, expected {pages} (no empty page)"
    keys = [(d["created_at"], d["id"]) for d in seen]
    assert keys == sorted(keys), f"limit={limit}: not ordered by (created_at, id): {keys}"


def test_default_limit_returns_one_page(
    api: Api, paged_project: tuple[str, list[dict[str, Any]]]
) -> None:
    path, registered = paged_project
    seen, sizes = read_all(api, path, None)
    assert (seen, sizes) == (registered, [DEVICES]), "the default limit (20) holds 5 devices"


def _cursor(payload: Any) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "abc",
        "!!!",
        "A" * 201,
        _cursor(["2025-01-02T03:04:05.123456+00:00", 0]),
        _cursor(["2025-01-02T03:04:05", 1]),
        _cursor({"id": 1}),
    ],
    ids=["garbage", "short", "alphabet", "too-long", "id-0", "naive-time", "object"],
)
def test_malformed_cursor_is_400(
    api: Api, paged_project: tuple[str, list[dict[str, Any]]], cursor: str
) -> None:
    path, _ = paged_project
    response = api.request("GET", path, query={"cursor": cursor})
    assert_error(response, 400, "validation_error", {"query.cursor": "is not a valid cursor"})


def test_padded_real_cursor_is_400(
    api: Api, paged_project: tuple[str, list[dict[str, Any]]]
) -> None:
    """Only the canonical form of a cursor is accepted (here: a real one plus padding)."""
    path, _ = paged_project
    first = api.request("GET", path, query={"limit": "1"}).expect(200).json_object()
    cursor = first["next_cursor"]
    assert isinstance(cursor, str), f"GET {api.url(path)}?limit=1: no next_cursor: {first}"
    api.request("GET", path, query={"limit": "1", "cursor": cursor}).expect(200)
    response = api.request("GET", path, query={"limit": "1", "cursor": cursor + "="})
    assert_error(response, 400, "validation_error", {"query.cursor": "is not a valid cursor"})


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1", "1.5", "1e1"])
def test_bad_limit_is_400(
    api: Api, paged_project: tuple[str, list[dict[str, Any]]], limit: str
) -> None:
    path, _ = paged_project
    assert_error(
        api.request("GET", path, query={"limit": limit}),
        400,
        "validation_error",
        {"query.limit": "must be an integer between 1 and 100"},
    )


def test_devices_added_while_paging_come_last(
    api: Api, new_project: Callable[..., str], devices_path: Callable[[str], str]
) -> None:
    """Keyset pagination: a device registered between two pages appears on a later page and
    never shifts what the cursor already passed."""
    path = devices_path(new_project("keyset"))
    for name in ("a", "b", "c"):
        api.request("POST", path, json={"name": name}).expect(201)
    first = api.request("GET", path, query={"limit": "2"}).expect(200).json_object()
    assert isinstance(first["next_cursor"], str), f"GET {api.url(path)}?limit=2: {first}"
    api.request("POST", path, json={"name": "d"}).expect(201)
    rest = (
        api.request("GET", path, query={"limit": "2", "cursor": first["next_cursor"]})
        .expect(200)
        .json_object()
    )
    names = [d["name"] for d in first["devices"] + rest["devices"]]
    assert (names, rest["next_cursor"]) == (["a", "b", "c", "d"], None), (
        f"GET {api.url(path)}: pages {first} then {rest}"
    )
