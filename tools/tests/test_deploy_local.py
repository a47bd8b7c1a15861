"""The stack runner end to end: real terraform, real stackrun CLI, against the local emulator.

Every test here runs `python -m stackrun` as a subprocess in a throwaway repository whose
environments are their own emulated accounts, and then looks into those accounts with boto3.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

pytestmark = pytest.mark.terraform


def _bucket(repo, env: str) -> str:
    from stackrun.config import load_environment

    return load_environment(repo.root, env).backend


def test_deploy_bootstraps_backend_applies_in_order_and_converges(local_repo):
    repo = local_repo
    repo.env("alpha", "210000000001")
    repo.producer_consumer("alpha")

    first = repo.run("deploy", "alpha", "--local")
    assert first.returncode == 0, first.text
    text = first.stdout
    # order: bootstrap, then 010, then 020
    assert (
        text.index("000_bootstrap: creating the state backend")
        < text.index("deploying 010_producer")
        < text.index("deploying 020_consumer")
    )
    assert "020_consumer             applied" in text

    backend = _bucket(repo, "alpha")
    s3 = repo.client("alpha", "s3")
    assert s3.get_bucket_versioning(Bucket=backend.bucket)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=backend.bucket)["ServerSideEncryptionConfiguration"][
        "Rules"
    ]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("aws:kms", "AES256")
    block = s3.get_public_access_block(Bucket=backend.bucket)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    policy = json.loads(s3.get_bucket_policy(Bucket=backend.bucket)["Policy"])
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert any(
        s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
        for s in deny
    ), policy
    table = repo.client("alpha", "dynamodb").describe_table(TableName=backend.lock_table)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=backend.bucket)["Contents"])
    assert keys == [  # each state, and beside it the record of its last apply (fingerprint.py)
        "alpha/000_bootstrap/stackrun-applied.json",
        "alpha/000_bootstrap/terraform.tfstate",
        "alpha/010_producer/stackrun-applied.json",
        "alpha/010_producer/terraform.tfstate",
        "alpha/020_consumer/stackrun-applied.json",
        "alpha/020_consumer/terraform.tfstate",
    ]
    # outputs were handed on: plain, list and sensitive values
    outputs = repo.outputs("alpha")
    assert outputs["020_consumer"]["copied"] == "v1|/alpha-producer/value,/alpha-producer/other"
    assert outputs["010_producer"]["token"] == "<sensitive>"
    assert outputs["010_producer"]["account_id"] == "210000000001"
    # the log of each stack is kept
    assert "Apply complete" in (repo.cache("alpha") / "logs" / "020_consumer.log").read_text()
    # a sensitive output never lands in generated files, logs or the console
    for path in repo.cache("alpha").rglob("*"):
        if path.is_file() and ".terraform" not in path.parts:
            assert "token-v1" not in path.read_text(errors="replace"), path
    assert "token-v1" not in first.text

    again = repo.run("deploy", "alpha", "--local")
    assert again.returncode == 0, again.text
    assert "010_producer             skipped" in again.stdout
    assert "020_consumer             skipped" in again.stdout
    assert "creating the state backend" not in again.stdout

    plan = repo.run("plan", "alpha", "--local", "--detailed-exitcode")
    assert plan.returncode == 0, plan.text

    # change one input: plan names the stack and exits 2, deploy applies it, downstream follows
    repo.producer_consumer("alpha", value="v2")
    plan = repo.run("plan", "alpha", "--local", "--detailed-exitcode")
    assert plan.returncode == 2, plan.text
    summary = plan.stdout[plan.stdout.index("plan alpha: summary") :]
    assert "010_producer             changes      0 to add, 1 to change, 0 to destroy" in summary
    assert "000_bootstrap            unchanged" in summary
    deploy = repo.run("deploy", "alpha", "--local")
    assert deploy.returncode == 0, deploy.text
    assert repo.outputs("alpha")["020_consumer"]["copied"].startswith("v2|")
    assert repo.run("plan", "alpha", "--local", "--detailed-exitcode").returncode == 0
    for run in (again, plan, deploy):
        assert "token-v1" not in run.text and "token-v2" not in run.text


def test_destroy_runs_in_reverse_order_and_keeps_the_backend(local_repo):
    repo = local_repo
    repo.env("bravo", "210000000002")
    repo.producer_consumer("bravo")
    assert repo.run("deploy", "bravo", "--local").returncode == 0

    destroyed = repo.run("destroy", "bravo", "--local")
    assert destroyed.returncode == 0, destroyed.text
    text = destroyed.stdout
    assert text.index("destroying 020_consumer") < text.index("destroying 010_producer")
    ssm = repo.client("bravo", "ssm")
    assert ssm.describe_parameters()["Parameters"] == []
    backend = _bucket(repo, "bravo")
    repo.client("bravo", "s3").head_bucket(Bucket=backend.bucket)
    repo.client("bravo", "dynamodb").describe_table(TableName=backend.lock_table)
    # destroying again is a no-op, deploying again brings everything back
    assert repo.run("destroy", "bravo", "--local").returncode == 0
    assert repo.run("deploy", "bravo", "--local").returncode == 0
    assert len(ssm.describe_parameters()["Parameters"]) == 2


def test_environments_land_in_their_own_accounts_and_the_provider_guards_it(local_repo):
    repo = local_repo
    repo.env("charlie", "210000000003")
    repo.env("delta", "210000000004")
    repo.write(
        "live/charlie/010_producer/stack.toml", 'module = "producer"\n[inputs]\nname = "charlie"\n'
    )
    repo.write(
        "live/delta/010_producer/stack.toml", 'module = "producer"\n[inputs]\nname = "delta"\n'
    )
    assert repo.run("deploy", "charlie", "--local").returncode == 0
    assert repo.run("deploy", "delta", "--local").returncode == 0
    assert repo.outputs("charlie")["010_producer"]["account_id"] == "210000000003"
    assert repo.outputs("delta")["010_producer"]["account_id"] == "210000000004"
    names = [p["Name"] for p in repo.client("delta", "ssm").describe_parameters()["Parameters"]]
    assert names == ["/delta/value"]

    # delta's provider, pointed at charlie's account, refuses to act there
    workdir = repo.cache("delta") / "stacks" / "010_producer"
    provider = json.loads((workdir / "provider.tf.json").read_text())
    aws = provider["provider"]["aws"][0]
    assert aws["allowed_account_ids"] == ["210000000004"]
    aws["assume_role"][0]["role_arn"] = "arn:aws:iam::210000000003:role/deploy"
    (workdir / "provider.tf.json").write_text(json.dumps(provider))
    from stackrun.config import load_environment
    from stackrun.terraform.workspace import Workspace

    workspace = Workspace(load_environment(repo.root, "delta"), repo.target())
    result = subprocess.run(
        ["terraform", "plan", "-input=false", "-no-color", "-lock=false"],
        cwd=workdir,
        env=workspace.base_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "210000000003" in result.stderr and "not allowed" in result.stderr, result.stderr


def test_two_concurrent_deploys_of_one_environment_never_interleave(local_repo):
    repo = local_repo
    repo.env("echo", "210000000005")
    repo.producer_consumer("echo")
    assert repo.run("bootstrap", "echo", "--local").returncode == 0
    backend = _bucket(repo, "echo")
    dynamodb = repo.client("echo", "dynamodb")

    first = repo.start("deploy", "echo", "--local")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        item = dynamodb.get_item(
            TableName=backend.lock_table, Key={"LockID": {"S": "stackrun-guard/echo"}}
        ).get("Item")
        if item:
            break
        time.sleep(0.2)
    else:
        first.kill()
        pytest.fail("the first deploy never took the environment guard")

    impatient = repo.run("deploy", "echo", "--local", "--lock-timeout", "1s")
    assert impatient.returncode == 1
    assert "environment 'echo' is being changed by another run" in impatient.stderr
    assert "held by: deploy by" in impatient.stderr
    unlock_hint = r"nox -s unlock -- echo --guard [0-9a-f-]{36} --local$"
    assert re.search(unlock_hint, impatient.stderr, re.MULTILINE)

    patient = repo.start("deploy", "echo", "--local")
    out_first, err_first = first.communicate(timeout=600)
    out_patient, err_patient = patient.communicate(timeout=600)
    assert first.returncode == 0, out_first + err_first
    assert patient.returncode == 0, out_patient + err_patient
    assert "waiting for environment 'echo'" in err_patient
    # the second run came after the first and found nothing to do
    assert "020_consumer             skipped" in out_patient
    assert repo.run("plan", "echo", "--local", "--detailed-exitcode").returncode == 0
    assert repo.held_locks("echo") == []
    assert "Item" not in dynamodb.get_item(
        TableName=backend.lock_table, Key={"LockID": {"S": "stackrun-guard/echo"}}
    )


def test_a_failing_stack_stops_the_run_and_later_stacks_are_untouched(local_repo):
    repo = local_repo
    repo.env("foxtrot", "210000000006")
    repo.producer_consumer("foxtrot")
    # an SSM parameter name under the reserved /ssm prefix: only the provider or API can tell
    repo.write(
        "live/foxtrot/015_broken/stack.toml", 'module = "producer"\n[inputs]\nname = "ssm"\n'
    )
    result = repo.run("deploy", "foxtrot", "--local")
    assert result.returncode == 1
    assert "stack 015_broken failed at `terraform" in result.stderr
    assert "ssm" in result.stderr
    assert "Error:" in result.stderr
    assert "020_consumer             not started" in result.stdout
    names = [p["Name"] for p in repo.client("foxtrot", "ssm").describe_parameters()["Parameters"]]
    assert names == ["/foxtrot-producer/value"]

    (repo.root / "live/foxtrot/015_broken/stack.toml").write_text(
        'module = "producer"\n[inputs]\nname = "fixed"\n'
    )
    rerun = repo.run("deploy", "foxtrot", "--local")
    assert rerun.returncode == 0, rerun.text
    assert "010_producer             skipped" in rerun.stdout
    assert "015_broken               applied" in rerun.stdout
    assert repo.run("plan", "foxtrot", "--local", "--detailed-exitcode").returncode == 0
    assert repo.held_locks("foxtrot") == []


def test_invalid_configuration_is_reported_before_anything_is_created(local_repo):
    repo = local_repo
    repo.env("golf", "210000000007")
    repo.producer_consumer("golf")
    repo.write(
        "live/golf/030_bad/stack.toml",
        'module = "consumer"\n[dependencies]\nupstream_value = "040_later.value"\n',
    )
    result = repo.run("deploy", "golf", "--local")
    assert result.returncode == 1
    assert "live/golf/030_bad/stack.toml: key 'dependencies.upstream_value'" in result.stderr
    assert "Traceback" not in result.stderr
    buckets = repo.account_client("210000000007", "s3").list_buckets()["Buckets"]
    assert buckets == []


def test_plan_of_an_environment_never_deployed_reports_pending_and_creates_nothing(local_repo):
    repo = local_repo
    repo.env("hotel", "210000000008")
    repo.producer_consumer("hotel")
    plan = repo.run("plan", "hotel", "--local", "--detailed-exitcode")
    assert plan.returncode == 2, plan.text
    assert "000_bootstrap            pending" in plan.stdout
    assert "020_consumer             pending" in plan.stdout
    assert "state backend not created yet" in plan.stdout
    assert repo.account_client("210000000008", "s3").list_buckets()["Buckets"] == []
    output = repo.run("output", "hotel", "--local")
    assert output.returncode == 1
    assert "hotel has no state backend yet" in output.stderr


def _status(run, stack: str) -> str:
    summary = run.stdout[run.stdout.rindex(": summary") :]
    line = next(line for line in summary.splitlines() if line.strip().startswith(stack))
    return line.split()[1]


def test_unchanged_stacks_are_skipped_and_every_kind_of_change_reaches_apply(local_repo):
    repo = local_repo
    repo.env("lima", "210000000012")
    repo.producer_consumer("lima")
    assert repo.run("deploy", "lima", "--local").returncode == 0

    again = repo.run("deploy", "lima", "--local")
    assert again.returncode == 0, again.text
    assert [_status(again, s) for s in ("000_bootstrap", "010_producer", "020_consumer")] == [
        "skipped",
        "skipped",
        "skipped",
    ]
    assert "unchanged since its last apply" in again.stdout
    assert "Refreshing state" not in again.stdout  # no terraform ran for them

    # a module file (even one that changes no resource) is planned again
    module = repo.root / "modules/consumer/main.tf"
    module.write_text(module.read_text() + "\n# a comment\n")
    touched = repo.run("deploy", "lima", "--local")
    assert (_status(touched, "010_producer"), _status(touched, "020_consumer")) == (
        "skipped",
        "unchanged",
    )

    # an input: its stack is applied, and the stack consuming its outputs follows
    repo.producer_consumer("lima", value="v2")
    changed = repo.run("deploy", "lima", "--local")
    assert (_status(changed, "010_producer"), _status(changed, "020_consumer")) == (
        "applied",
        "applied",
    )
    assert repo.outputs("lima")["020_consumer"]["copied"].startswith("v2|")

    # the provider requirement (what terraform init installs)
    project = repo.root / "live/project.toml"
    text = project.read_text().replace(
        'lock_timeout = "2m"', 'lock_timeout = "2m"\naws_provider_version = ">= 5.0, < 7.0"'
    )
    assert "aws_provider_version" in text
    project.write_text(text)
    provider = repo.run("deploy", "lima", "--local")
    assert provider.returncode == 0, provider.text
    assert "skipped" not in {_status(provider, s) for s in ("010_producer", "020_consumer")}

    # drift made outside terraform is not seen by the fingerprint: plan (which refreshes and
    # never skips) reports it, and deploy --all repairs it
    ssm = repo.client("lima", "ssm")
    ssm.put_parameter(Name="/lima-producer/value", Value="drifted", Type="String", Overwrite=True)
    assert _status(repo.run("deploy", "lima", "--local"), "010_producer") == "skipped"
    assert repo.run("plan", "lima", "--local", "--detailed-exitcode").returncode == 2
    forced = repo.run("deploy", "lima", "--local", "--all")
    assert _status(forced, "010_producer") == "applied"
    assert ssm.get_parameter(Name="/lima-producer/value")["Parameter"]["Value"] == "v2"
    assert repo.run("plan", "lima", "--local", "--detailed-exitcode").returncode == 0


def test_independent_stacks_run_side_by_side_with_prefixed_output(local_repo):
    from test_interrupts_local import SLEEPER

    repo = local_repo
    repo.env("mike", "210000000013")
    repo.producer_consumer("mike")  # 010_producer -> 020_consumer
    repo.write("modules/sleeper/main.tf", SLEEPER)
    # 015_slow depends on nothing: it may run beside 010_producer
    repo.write("live/mike/015_slow/stack.toml", 'module = "sleeper"\n[inputs]\nrevision = "a"\n')
    result = repo.run("deploy", "mike", "--local", "--parallelism", "2")
    assert result.returncode == 0, result.text
    out = result.stdout
    # 015_slow started before 010_producer had finished, and 020 came after 010
    assert out.index("[015_slow] ") < out.index("<== 010_producer")
    assert out.index("<== 010_producer") < out.index("deploying 020_consumer")
    assert "[010_producer] " in out
    summary = out[out.rindex("deploy mike: summary") :]
    for stack in ("010_producer", "015_slow", "020_consumer"):
        assert f"{stack:<24} applied" in summary
    # order in the summary is the directory order, whatever finished first
    assert summary.index("010_producer") < summary.index("015_slow") < summary.index("020_consumer")
    assert repo.run("plan", "mike", "--local", "--detailed-exitcode").returncode == 0


def test_every_stack_inits_read_only_with_the_repository_provider_lock(local_repo):
    from stackrun.terraform import LOCK_FILE_NAME, provider_lock

    repo = local_repo
    repo.env("kappa", "210000000051")  # unique: the worker's emulator is shared
    repo.producer_consumer("kappa")
    lock = provider_lock(repo.root)

    first = repo.run("deploy", "kappa", "--local")
    assert first.returncode == 0, first.text
    stacks = sorted((repo.cache("kappa") / "stacks").iterdir())
    assert [stack.name for stack in stacks] == ["000_bootstrap", "010_producer", "020_consumer"]
    for stack in stacks:
        assert (stack / LOCK_FILE_NAME).read_text() == lock.read_text(), stack.name

    # A lock file whose checksum the installed provider does not match: the next init (the lock
    # changed, so every stack inits again) refuses instead of selecting and recording another.
    text = lock.read_text()
    checksum = re.search(r'"(h1:[^"]+)"', text)
    assert checksum is not None, text
    lock.write_text(text.replace(checksum.group(1), "h1:" + "A" * 43 + "="))
    second = repo.run("plan", "kappa", "--local")
    assert second.returncode != 0, second.text
    assert "checksums" in second.text, second.text
    # the failing init read the new lock (copied in) and, read-only, did not rewrite it
    assert any((stack / LOCK_FILE_NAME).read_text() == lock.read_text() for stack in stacks)
