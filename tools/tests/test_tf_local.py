"""`stackrun tf` end to end: real terraform in a deployed stack's working dir, on the emulator.

One small protected environment (two SSM stacks, the second taking the first's outputs) is
deployed once; then state list, console (the stack's inputs reach terraform), the typed
confirmation of a state-writing command, the state lock and the environment guard held by
someone else, and a state rm + import round trip that leaves nothing to plan.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest

pytestmark = pytest.mark.terraform

ENV = "tango"
ACCOUNT = "270000000001"
RESOURCE = "module.stack.aws_ssm_parameter.this"


def _serial(repo, stack: str) -> int:
    from stackrun.config import load_environment

    environment = load_environment(repo.root, ENV)
    state = repo.client(ENV, "s3").get_object(
        Bucket=environment.backend.bucket, Key=environment.state_key(stack)
    )
    return json.loads(state["Body"].read())["serial"]


def _hold(repo, lock_id: str, info: dict[str, str], expires: int | None = None) -> None:
    """Put a lock item as another holder would (a terraform elsewhere, or another run)."""
    from stackrun.config import load_environment

    item = {"LockID": {"S": lock_id}, "Info": {"S": json.dumps(info)}}
    if expires is not None:
        item["Expires"] = {"N": str(expires)}
    table = load_environment(repo.root, ENV).backend.lock_table
    repo.client(ENV, "dynamodb").put_item(TableName=table, Item=item)


def _release(repo, lock_id: str) -> None:
    from stackrun.config import load_environment

    table = load_environment(repo.root, ENV).backend.lock_table
    repo.client(ENV, "dynamodb").delete_item(TableName=table, Key={"LockID": {"S": lock_id}})


def _state_list(repo, stack: str) -> list[str]:
    listed = repo.run("tf", ENV, stack, "--local", "--", "state", "list")
    assert listed.returncode == 0, listed.text
    return listed.stdout.split()


def test_tf_runs_terraform_in_a_deployed_stack_with_its_inputs_guard_and_locks(local_repo):
    repo = local_repo
    repo.env(ENV, ACCOUNT, "protected = true\n")
    repo.producer_consumer(ENV)
    deployed = repo.run("deploy", ENV, "--local", "--yes")
    assert deployed.returncode == 0, deployed.text

    # state list: terraform's stdout is the command's stdout, stackrun's lines go to stderr
    assert _state_list(repo, "020_consumer") == [RESOURCE]

    # console evaluates the configuration a deploy applies: the upstream outputs arrive
    console = subprocess.run(
        repo.command("tf", ENV, "020_consumer", "--local", "--", "console"),
        # piped, terraform's console prints the value of the last line
        input="nonsensitive(jsonencode([var.upstream_value, var.upstream_names, "
        "module.stack.copied]))\n",
        cwd=repo.root,
        env=repo.environ(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert console.returncode == 0, console.stdout + console.stderr
    names = [f"/{ENV}-producer/value", f"/{ENV}-producer/other"]
    assert json.loads(json.loads(console.stdout)) == ["v1", names, "v1|" + ",".join(names)]

    _a_protected_environment_needs_the_confirmation(repo)
    _a_held_state_lock_is_waited_for_then_named(repo)
    _a_held_guard_keeps_state_writing_commands_out(repo)

    # a state rm + import round trip (confirmed with --yes): the import evaluates the stack's
    # inputs and upstream values, and leaves nothing to plan
    serial = _serial(repo, "020_consumer")
    removed = repo.run("tf", ENV, "020_consumer", "--local", "--yes", "--", "state", "rm", RESOURCE)
    assert removed.returncode == 0, removed.text
    assert _state_list(repo, "020_consumer") == []
    imported = repo.run(
        "tf", ENV, "020_consumer", "--local", "--yes", "--",
        "import", RESOURCE, f"/{ENV}-consumer/copy",
    )  # fmt: skip
    assert imported.returncode == 0, imported.text
    assert _state_list(repo, "020_consumer") == [RESOURCE]
    assert _serial(repo, "020_consumer") > serial
    planned = repo.run("plan", ENV, "--local", "--detailed-exitcode")
    assert planned.returncode == 0, planned.text
    assert repo.held_locks(ENV) == []


def _a_protected_environment_needs_the_confirmation(repo) -> None:
    serial = _serial(repo, "020_consumer")
    moved = RESOURCE.replace(".this", ".moved")
    refused = repo.run("tf", ENV, "020_consumer", "--local", "--", "state", "mv", RESOURCE, moved)
    assert refused.returncode == 1
    assert (
        f"{ENV} is protected (live/{ENV}/env.toml): terraform state mv needs a typed "
        "confirmation; pass --yes" in refused.stderr
    )
    assert _serial(repo, "020_consumer") == serial
    # on a terminal it asks for the environment's name: a wrong one changes nothing
    code, screen = repo.run_on_terminal(
        "tf",
        ENV,
        "020_consumer",
        "--local",
        "--",
        "state",
        "mv",
        RESOURCE,
        moved,
        answer="not-" + ENV,
    )
    assert code == 1, screen
    assert f"{ENV} is protected. Type its name to terraform state mv" in screen
    assert "not confirmed; nothing was changed" in screen
    assert _serial(repo, "020_consumer") == serial


def _a_held_state_lock_is_waited_for_then_named(repo) -> None:
    from stackrun.config import load_environment

    lock_id = load_environment(repo.root, ENV).state_lock_id("020_consumer")
    holder = str(uuid.uuid4())
    _hold(
        repo,
        lock_id,
        {
            "ID": holder,
            "Operation": "OperationTypeApply",
            "Info": "",
            "Who": "someone@elsewhere",
            "Version": "1.11.0",
            "Created": "2026-12-07T10:00:00Z",
            "Path": lock_id,
        },
    )
    serial = _serial(repo, "020_consumer")
    started = time.monotonic()
    blocked = repo.run(
        "tf", ENV, "020_consumer", "--local", "--yes", "--lock-timeout", "4s", "--",
        "state", "mv", RESOURCE, RESOURCE.replace(".this", ".moved"),
    )  # fmt: skip
    waited = time.monotonic() - started
    _release(repo, lock_id)
    assert blocked.returncode == 1, blocked.text
    assert "Error acquiring the state lock" in blocked.stderr
    assert holder in blocked.stderr and "someone@elsewhere" in blocked.stderr
    assert f"nox -s unlock -- {ENV} 020_consumer {holder} --local" in blocked.stderr
    assert waited >= 4, waited
    assert _serial(repo, "020_consumer") == serial


def _a_held_guard_keeps_state_writing_commands_out(repo) -> None:
    guard = f"stackrun-guard/{ENV}"
    _hold(
        repo,
        guard,
        {"ID": str(uuid.uuid4()), "Operation": "deploy", "Who": "ci@runner", "PID": "1"},
        expires=int(time.time()) + 600,
    )
    try:
        blocked = repo.run(
            "tf", ENV, "020_consumer", "--local", "--yes", "--lock-timeout", "2s", "--",
            "state", "rm", RESOURCE,
        )  # fmt: skip
        # reading commands do not take the guard
        assert _state_list(repo, "020_consumer") == [RESOURCE]
    finally:
        _release(repo, guard)
    assert blocked.returncode == 1, blocked.text
    assert f"environment '{ENV}' is being changed by another run" in blocked.stderr
    assert "deploy by ci@runner" in blocked.stderr
