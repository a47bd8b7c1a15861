"""live/ loads to exactly the configuration of the snapshot fixture, every environment and stack.

The fixture was written by config_snapshot.py (the same functions as here) before the shared
defaults of live/_defaults/ existed: moving a setting into the defaults must change nothing
that any stack deploys. A deliberate change of live/ writes the fixture again (see
config_snapshot.py) and its diff is reviewed with the change.
"""

from __future__ import annotations

import json

import pytest

from config_snapshot import FIXTURE, REPO_ROOT, live_document, render

SNAPSHOT = json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def loaded() -> dict:
    return json.loads(render(live_document(REPO_ROOT)))


def test_same_project_and_environments(loaded):
    assert loaded["project"] == SNAPSHOT["project"]
    assert sorted(loaded["environments"]) == sorted(SNAPSHOT["environments"])


@pytest.mark.parametrize(
    ("env", "stack"),
    [
        (env, stack)
        for env, document in sorted(SNAPSHOT["environments"].items())
        for stack in document["stacks"]
    ],
)
def test_stack_is_loaded_as_in_the_snapshot(loaded, env, stack):
    assert (
        loaded["environments"][env]["stacks"][stack]
        == SNAPSHOT["environments"][env]["stacks"][stack]
    )


@pytest.mark.parametrize("env", sorted(SNAPSHOT["environments"]))
def test_environment_settings_as_in_the_snapshot(loaded, env):
    def settings(document: dict) -> dict:
        return {key: value for key, value in document.items() if key != "stacks"}

    assert settings(loaded["environments"][env]) == settings(SNAPSHOT["environments"][env])
    assert list(loaded["environments"][env]["stacks"]) == list(
        SNAPSHOT["environments"][env]["stacks"]
    )
