"""The release record's format, its comparison with what is live, and pytest's counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackrun.release import releases
from stackrun.release.releases import LiveFunction, Release, ReleaseError


def _release(**functions: str) -> Release:
    return Release(
        environment="stage",
        commit="abc",
        deployed_at="2026-12-07T05:00:00Z",
        functions={
            key.replace("__", "/"): LiveFunction(f"fleet-stage-{key}", "3", sha)
            for key, sha in functions.items()
        },
    )


def test_a_record_round_trips_through_its_document():
    release = _release(**{"030_api__list_devices": "aa" * 32})
    tested = Release.parse({**release.document(), "tested": {"result": "passed", "at": "t"}})
    assert tested.functions == release.functions and tested.passed
    assert not release.passed
    with pytest.raises(ReleaseError, match="format 2"):
        Release.parse({**release.document(), "format": 2})


def test_mismatches_name_the_function_and_both_hashes():
    release = _release(**{"030_api__a": "11" * 32, "030_api__b": "22" * 32})
    live = {
        "030_api/a": LiveFunction("fleet-stage-a", "4", "33" * 32),
        "030_api/c": LiveFunction("fleet-stage-c", "1", "44" * 32),
    }
    lines = releases.live_mismatches(release, live)
    assert lines == [
        f"030_api/a (fleet-stage-a): live version 4 has sha256 {'33' * 32}, the release "
        f"record has {'11' * 32}",
        "030_api/b: in the release record, but not deployed",
        "030_api/c: live, but not in the release record",
    ]
    assert releases.live_mismatches(release, dict(release.functions)) == []


def test_junit_counts(tmp_path: Path):
    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuites><testsuite tests="10" failures="2" errors="1" skipped="3"/></testsuites>'
    )
    assert releases.junit_counts(report) == {"passed": 4, "failed": 2, "errors": 1, "skipped": 3}
    with pytest.raises(ReleaseError, match="cannot read"):
        releases.junit_counts(tmp_path / "missing.xml")


def test_the_record_key_has_one_owner(repo):
    from stackrun.config import load_environment

    repo.standard()
    environment = load_environment(repo.root, "dev")
    assert environment.record_key("release") == "dev/_stackrun/release.json"
    assert environment.record_key("pins") == "dev/_stackrun/pins.json"
