"""Rendering of a stack's working directory, without terraform."""

from __future__ import annotations

import json
from pathlib import Path

from stackrun.aws.target import Target
from stackrun.config import load_environment
from stackrun.terraform import cli_config_env, extract_errors, parse_json_document
from stackrun.terraform.render import dependency_variables, escape_literal, render_stack

AWS = Target()


def _render(repo, target: Target = AWS) -> tuple[Path, dict, dict, dict]:
    repo.standard()
    environment = load_environment(repo.root, "dev")
    stack = environment.stack("020_app")
    workdir = repo.root / ".stackrun" / "aws" / "dev" / "stacks" / "020_app"
    render_stack(environment, stack, target, workdir, frozenset({"vpc_id"}))
    docs = [
        json.loads((workdir / n).read_text())
        for n in ("main.tf.json", "backend.tf.json", "provider.tf.json")
    ]
    return workdir, *docs


def test_main_calls_the_module_with_inputs_and_dependency_variables(repo):
    workdir, main, _, _ = _render(repo)
    module = main["module"]["stack"]
    assert (workdir / module["source"]).resolve() == (repo.root / "modules/consumer").resolve()
    assert module["source"].startswith("../")
    assert module["size"] == 2
    assert module["vpc_id"] == "${var.vpc_id}"
    assert main["variable"]["vpc_id"]["sensitive"] is True
    assert main["variable"]["subnet_ids"]["sensitive"] is False
    assert main["variable"]["vpc_id"]["type"] == "any"
    assert main["output"]["id"] == {"value": "${module.stack.id}", "sensitive": True}
    assert main["terraform"]["required_providers"]["aws"]["source"] == "hashicorp/aws"


def test_backend_uses_env_stack_key_both_locks_and_the_deploy_role(repo):
    _, _, backend, _ = _render(repo)
    s3 = backend["terraform"]["backend"]["s3"]
    assert s3["key"] == "dev/020_app/terraform.tfstate"
    assert s3["bucket"] == "fleet-tfstate-111111111111-eu-west-1"
    assert s3["dynamodb_table"] == "fleet-tf-locks"
    assert s3["use_lockfile"] is True
    assert s3["encrypt"] is True
    assert s3["assume_role"]["role_arn"] == "arn:aws:iam::111111111111:role/deploy"
    assert "endpoints" not in s3


def test_provider_guards_the_account_and_tags_everything(repo):
    _, _, _, provider = _render(repo)
    aws = provider["provider"]["aws"][0]
    assert aws["allowed_account_ids"] == ["111111111111"]
    assert aws["assume_role"][0]["role_arn"] == "arn:aws:iam::111111111111:role/deploy"
    assert aws["region"] == "eu-west-1"
    tags = aws["default_tags"][0]["tags"]
    assert tags["Environment"] == "dev" and tags["Stack"] == "020_app"
    assert tags["ManagedBy"] == "stackrun"
    assert "endpoints" not in aws


def test_local_target_points_provider_and_backend_at_the_emulator(repo):
    target = Target(endpoint="https://127.0.0.1:4566", ca_bundle=Path("/x/ca.pem"))
    _, _, backend, provider = _render(repo, target)
    aws = provider["provider"]["aws"][0]
    # endpoints come from AWS_ENDPOINT_URL (the block costs ~2 s per validation)
    assert "endpoints" not in aws
    assert aws["custom_ca_bundle"] == "/x/ca.pem"
    assert aws["allowed_account_ids"] == ["111111111111"]
    s3 = backend["terraform"]["backend"]["s3"]
    assert s3["endpoints"]["s3"] == "https://127.0.0.1:4566"
    assert s3["use_path_style"] is True
    env = target.subprocess_env(
        {
            "AWS_PROFILE": "prod",
            "AWS_SECRET_ACCESS_KEY": "real",
            "AWS_ENDPOINT_URL": "https://real.example",
            "AWS_ENDPOINT_URL_LAMBDA": "https://lambda.example",
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
        }
    )
    assert "AWS_PROFILE" not in env
    assert env["AWS_SECRET_ACCESS_KEY"] != "real"
    assert env["AWS_ENDPOINT_URL"] == "https://127.0.0.1:4566"
    assert "AWS_ENDPOINT_URL_LAMBDA" not in env
    assert "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS" not in env


def test_literal_inputs_are_escaped_so_terraform_keeps_them_literal():
    assert escape_literal({"a": ["${x}", "%{if}"], "b": 1}) == {"a": ["$${x}", "%%{if}"], "b": 1}


def test_dependency_values_are_hcl_safe_json(repo):
    repo.standard()
    stack = load_environment(repo.root, "dev").stack("020_app")
    values = dependency_variables(
        stack, {"010_net": {"vpc_id": "vpc-${evil}", "subnet_ids": ["a", "b"], "secret": "s"}}
    )
    assert values == {"TF_VAR_vpc_id": '"vpc-$${evil}"', "TF_VAR_subnet_ids": '["a", "b"]'}


def test_rendering_twice_does_not_touch_unchanged_files(repo):
    workdir, *_ = _render(repo)
    before = {p.name: p.stat().st_mtime_ns for p in workdir.iterdir()}
    environment = load_environment(repo.root, "dev")
    render_stack(
        environment, environment.stack("020_app"), Target(), workdir, frozenset({"vpc_id"})
    )
    assert {p.name: p.stat().st_mtime_ns for p in workdir.iterdir()} == before


def test_provider_mirror_becomes_a_cli_config(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "registry.terraform.io").mkdir(parents=True)
    monkeypatch.delenv("TF_CLI_CONFIG_FILE", raising=False)
    monkeypatch.setenv("STACKRUN_PROVIDER_MIRROR", str(mirror))
    env = cli_config_env(tmp_path / "cache", None)
    config = Path(env["TF_CLI_CONFIG_FILE"]).read_text()
    assert f'path    = "{mirror}"' in config
    assert "filesystem_mirror" in config and "direct" in config


def test_a_wrong_mirror_is_a_clear_error(tmp_path, monkeypatch):
    import pytest

    from stackrun.errors import StackrunError

    monkeypatch.delenv("TF_CLI_CONFIG_FILE", raising=False)
    monkeypatch.setenv("STACKRUN_PROVIDER_MIRROR", str(tmp_path / "nope"))
    with pytest.raises(StackrunError, match="not an unpacked filesystem mirror"):
        cli_config_env(tmp_path / "cache", None)


def test_without_a_mirror_providers_go_to_one_shared_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CLI_CONFIG_FILE", raising=False)
    monkeypatch.delenv("STACKRUN_PROVIDER_MIRROR", raising=False)
    monkeypatch.delenv("TF_PLUGIN_CACHE_DIR", raising=False)
    env = cli_config_env(tmp_path / "cache", None)
    assert env["TF_PLUGIN_CACHE_DIR"] == str(tmp_path / "cache" / "plugin-cache")


def test_an_existing_user_cli_config_is_used_as_is(tmp_path, monkeypatch):
    config = tmp_path / "rc"
    config.write_text("")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(config))
    monkeypatch.setenv("STACKRUN_PROVIDER_MIRROR", str(tmp_path / "ignored"))
    assert cli_config_env(tmp_path / "cache", None) == {}


def test_errors_are_extracted_from_terraform_output():
    output = "Initializing...\nplan stuff\n\nError: bad thing\n\n  with x,\n  on y line 1\n\n"
    assert extract_errors(output) == "    Error: bad thing\n\n    with x,\n    on y line 1"
    assert "last line" in extract_errors("a\nb\nlast line\n")


def test_json_document_is_parsed_even_with_trailing_warnings():
    assert parse_json_document('{"a": {"value": 1}}\nWarning: something\n') == {"a": {"value": 1}}


def test_a_target_assumes_the_deploy_role_once_and_shares_its_clients(repo, monkeypatch):
    from datetime import UTC, datetime, timedelta

    import boto3

    repo.standard()
    environment = load_environment(repo.root, "dev")
    assumed: list[str] = []
    lifetime = [timedelta(hours=1)]

    class FakeSts:
        def assume_role(self, RoleArn: str, RoleSessionName: str) -> dict:
            assumed.append(RoleArn)
            return {
                "Credentials": {
                    "AccessKeyId": f"key{len(assumed)}",
                    "SecretAccessKey": "secret",
                    "SessionToken": "token",
                    "Expiration": datetime.now(UTC) + lifetime[0],
                }
            }

    class FakeBase:
        def client(self, service: str, **kwargs) -> FakeSts:
            assert service == "sts"
            return FakeSts()

    monkeypatch.setattr(Target, "base_session", lambda self, region: FakeBase())
    target = Target(endpoint="https://127.0.0.1:4566", ca_bundle=Path("/x/ca.pem"))
    s3 = target.client(environment, "s3")
    assert target.client(environment, "s3") is s3
    dynamodb = target.client(environment, "dynamodb")
    assert dynamodb.meta.service_model.service_name == "dynamodb"
    assert isinstance(target.session(environment), boto3.Session)
    assert assumed == ["arn:aws:iam::111111111111:role/deploy"]
    assert s3.meta.endpoint_url == "https://127.0.0.1:4566"

    # Config options over the target's: a client of their own, cached like the others
    patient = target.client(
        environment, "lambda", read_timeout=900, retries={"total_max_attempts": 1}
    )
    assert patient.meta.config.read_timeout == 900
    assert patient.meta.config.retries["total_max_attempts"] == 1
    assert target.client(
        environment, "lambda", read_timeout=900, retries={"total_max_attempts": 1}
    ) is (patient)
    assert target.client(environment, "lambda").meta.config.read_timeout == 60
    assert len(assumed) == 1

    # another command (another Target) assumes the role for itself
    Target(endpoint="https://127.0.0.1:4566", ca_bundle=Path("/x/ca.pem")).client(environment, "s3")
    assert len(assumed) == 2

    # credentials close to expiry are replaced, and the clients with them
    lifetime[0] = timedelta(minutes=5)
    short = Target(endpoint="https://127.0.0.1:4566", ca_bundle=Path("/x/ca.pem"))
    first = short.client(environment, "s3")
    second = short.client(environment, "s3")
    assert len(assumed) == 4 and first is not second
    assert second._request_signer._credentials.access_key == "key4"
