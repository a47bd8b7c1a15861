"""Shared defaults (live/_defaults/<stack>.toml) merged under each environment's stack.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackrun import cli
from stackrun.aws.target import Target
from stackrun.config import list_environments, load_environment
from stackrun.config.defaults import explain, merge
from stackrun.deploy import fingerprint
from stackrun.errors import ConfigError
from stackrun.terraform.render import render_stack
from stackrun.terraform.workspace import Workspace

DEFAULTS = "live/_defaults/020_app.toml"
STACK = "live/dev/020_app/stack.toml"


def _errors(repo, env: str = "dev") -> str:
    with pytest.raises(ConfigError) as caught:
        load_environment(repo.root, env)
    return str(caught.value)


def _shared_app(repo) -> None:
    """dev and stage, each with 010_net and a 020_app whose module and dependencies come
    from live/_defaults/020_app.toml; the size is dev's own."""
    repo.standard()
    repo.env("stage", account="222222222222")
    repo.stack("stage", "010_net", 'module = "networkish"\n[inputs]\nname = "fleet-stage"\n')
    repo.write(
        DEFAULTS,
        """
        module = "consumer"
        [inputs]
        size = 1
        [dependencies]
        vpc_id = "010_net.vpc_id"
        subnet_ids = "010_net.subnet_ids"
        """,
    )
    repo.stack("dev", "020_app", "[inputs]\nsize = 2\n")
    repo.stack("stage", "020_app", "")


def test_tables_merge_key_by_key_the_environment_wins_arrays_are_replaced():
    defaults = {
        "module": "api",
        "inputs": {"name": "x", "zones": ["a", "b"], "fn": {"f": {"memory": 256, "routes": ["/"]}}},
        "lambdas": {"input": "fn"},
    }
    override = {"inputs": {"zones": ["c"], "fn": {"f": {"memory": 512}, "g": {"memory": 1}}}}
    merged, sources = merge(defaults, override, Path("d.toml"), Path("s.toml"))
    assert merged == {
        "module": "api",
        "inputs": {
            "name": "x",
            "zones": ["c"],  # replaced, not ["a", "b", "c"]
            "fn": {"f": {"memory": 512, "routes": ["/"]}, "g": {"memory": 1}},
        },
        "lambdas": {"input": "fn"},
    }
    assert sources[("inputs", "zones")] == {Path("s.toml")}
    assert sources[("inputs", "fn", "f", "routes")] == {Path("d.toml")}
    assert sources[("inputs", "fn", "f", "memory")] == {Path("s.toml")}
    assert sources[("inputs", "fn", "g")] == {Path("s.toml")}
    assert sources[("inputs", "fn", "f")] == {Path("d.toml"), Path("s.toml")}
    assert defaults["inputs"]["fn"]["f"] == {"memory": 256, "routes": ["/"]}  # left as it was


def test_a_value_of_another_kind_replaces_a_default_table():
    merged, sources = merge(
        {"inputs": {"tags": {"a": "1"}}}, {"inputs": {"tags": "none"}}, Path("d"), Path("s")
    )
    assert merged == {"inputs": {"tags": "none"}}
    assert ("inputs", "tags", "a") not in sources


def test_each_environment_gets_the_defaults_under_its_own_values(repo):
    _shared_app(repo)
    dev = load_environment(repo.root, "dev").stack("020_app")
    stage = load_environment(repo.root, "stage").stack("020_app")
    assert dev.module.name == stage.module.name == "consumer"
    assert dict(dev.inputs) == {"size": 2}
    assert dict(stage.inputs) == {"size": 1}
    assert [d.input_name for d in dev.dependencies] == ["vpc_id", "subnet_ids"]
    assert dev.upstream == stage.upstream == ("010_net",)


def test_nested_tables_of_lambdas_merge(repo):
    repo.functions_stack("dev", {"list_devices": "memory_size = 256\n", "migrations": ""})
    repo.write(
        "live/_defaults/030_api.toml",
        """
        [lambdas]
        invoke_on_deploy = ["migrations"]
        [lambdas.canary]
        share = 0.25
        duration = "1m"
        max_error_rate = 0.05
        max_errors = 3
        [inputs.functions.list_devices]
        memory_size = 128
        timeout = 10
        """,
    )
    stack = load_environment(repo.root, "dev").stack("030_api")
    assert stack.lambdas_input == "functions"  # from the stack.toml's [lambdas]
    assert stack.invoke_on_deploy == ("migrations",)  # from the defaults' [lambdas]
    assert list(stack.canary) == ["list_devices"]
    assert stack.inputs["functions"]["list_devices"] == {"memory_size": 256, "timeout": 10}


def test_an_unknown_key_in_a_defaults_file_names_that_file_and_key(repo):
    _shared_app(repo)
    repo.write(DEFAULTS, 'modle = "typo"\n' + repo.root.joinpath(DEFAULTS).read_text())
    message = _errors(repo)
    assert f"{DEFAULTS}: key 'modle': unknown key" in message
    assert STACK not in message
    assert message.count("'modle'") == 1  # checked on its own and merged: reported once


def test_a_defaults_input_the_module_lacks_names_the_defaults_file(repo):
    _shared_app(repo)
    repo.write(DEFAULTS, 'module = "consumer"\n[inputs]\nsise = 3\n')
    repo.stack(
        "dev",
        "020_app",
        '[dependencies]\nvpc_id = "010_net.vpc_id"\nsubnet_ids = "010_net.subnet_ids"\n',
    )
    message = _errors(repo)
    assert f"{DEFAULTS}: key 'inputs.sise': module 'consumer' has no variable 'sise'" in message


def test_an_environment_value_wins_over_a_wrong_default_that_is_still_reported(repo):
    _shared_app(repo)
    repo.write(DEFAULTS, 'module = "consumer"\ninputs = 3\n')  # a table expected
    repo.stack(
        "dev",
        "020_app",
        '[inputs]\nsize = 2\n[dependencies]\nvpc_id = "010_net.vpc_id"\n'
        'subnet_ids = "010_net.subnet_ids"\n',
    )
    message = _errors(repo)
    assert f"{DEFAULTS}: key 'inputs': expected a table of module inputs, got int 3" in message


def test_a_problem_in_the_environment_file_still_names_it(repo):
    _shared_app(repo)
    repo.stack("dev", "020_app", '[inputs]\nsize = "two"\nbogus = 1\n')
    message = _errors(repo)
    assert f"{STACK}: key 'inputs.bogus': module 'consumer' has no variable" in message
    assert DEFAULTS not in message


def test_a_missing_required_input_names_the_stack_file_when_both_fill_the_table(repo):
    _shared_app(repo)
    repo.write(DEFAULTS, 'module = "consumer"\n[inputs]\nsize = 1\n')
    message = _errors(repo)
    assert f"{STACK}: key 'inputs.vpc_id': missing: module 'consumer' requires" in message


def test_a_defaults_file_that_is_not_toml_is_reported(repo):
    _shared_app(repo)
    repo.write(DEFAULTS, "module = \n")
    assert f"{DEFAULTS}: not valid TOML" in _errors(repo)


def test_a_defaults_file_for_a_stack_folder_no_environment_has_is_an_error(repo):
    _shared_app(repo)
    repo.write("live/_defaults/040_gone.toml", 'module = "consumer"\n')
    message = _errors(repo)
    assert (
        "live/_defaults/040_gone.toml: no environment has a stack folder '040_gone' "
        "(live/<env>/040_gone/) to give these defaults to; stack folders: 010_net, 020_app"
    ) in message
    assert "040_gone" in _errors(repo, "stage")  # whichever environment is loaded


def test_a_file_of_defaults_not_named_after_a_stack_folder_is_an_error(repo):
    _shared_app(repo)
    repo.write("live/_defaults/api.toml", 'module = "consumer"\n')
    assert "live/_defaults/api.toml: not a defaults file: expected <NNN_name>.toml" in _errors(repo)


def test_defaults_is_not_an_environment(repo, monkeypatch, capsys):
    _shared_app(repo)
    assert list_environments(repo.root) == ["dev", "stage"]
    monkeypatch.setenv("STACKRUN_ROOT", str(repo.root))
    assert cli.run(["validate"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "dev: ok (2 stacks, account 111111111111)",
        "stage: ok (2 stacks, account 222222222222)",
    ]


def test_explain_prints_every_merged_value_with_its_file(repo, monkeypatch, capsys):
    _shared_app(repo)
    monkeypatch.setenv("STACKRUN_ROOT", str(repo.root))
    assert cli.run(["validate", "--explain", "dev", "020_app"]) == 0
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        "dev: ok (2 stacks, account 111111111111)",
        f"dev 020_app: {DEFAULTS}, under {STACK} (the environment's values win)",
        f'module = "consumer" # {DEFAULTS}',
        f"inputs.size = 2 # {STACK}",
        f'dependencies.vpc_id = "010_net.vpc_id" # {DEFAULTS}',
        f'dependencies.subnet_ids = "010_net.subnet_ids" # {DEFAULTS}',
    ]


def test_explain_without_a_stack_explains_each_and_names_a_wrong_one(repo, monkeypatch, capsys):
    _shared_app(repo)
    monkeypatch.setenv("STACKRUN_ROOT", str(repo.root))
    assert cli.run(["validate", "--explain", "stage"]) == 0
    out = capsys.readouterr().out
    assert "\n\nstage 020_app: " in out  # a blank line between stacks
    out = " ".join(out.split())
    assert "stage 010_net: live/stage/010_net/stack.toml (the environment's values win)" in out
    assert "inputs.size = 1 # live/_defaults/020_app.toml" in out
    with pytest.raises(cli.StackrunError, match="no stack '030_x' in stage; its stacks: 010_net"):
        cli.run(["validate", "--explain", "stage", "030_x"])
    with pytest.raises(cli.StackrunError, match="validate --explain needs an environment"):
        cli.run(["validate", "--explain"])


def _fingerprint(repo, env: str = "dev") -> str:
    """The deploy fingerprint of env's 020_app, rendered from the files as they are."""
    environment = load_environment(repo.root, env)
    stack = environment.stack("020_app")
    workspace = Workspace(environment, Target())
    render_stack(environment, stack, workspace.target, workspace.workdir(stack.name))
    return fingerprint.compute(workspace, stack, {}, "7")


def test_the_fingerprint_follows_the_merged_settings_not_the_files(repo):
    """The fingerprint is over the rendered configuration (the merged inputs): a changed
    default re-applies every environment that takes it; moving a value between the stack.toml
    and the defaults, or a comment, re-applies nothing."""
    _shared_app(repo)
    dev, stage = _fingerprint(repo), _fingerprint(repo, "stage")
    defaults = repo.root / DEFAULTS
    defaults.write_text("# shared by dev and stage\n" + defaults.read_text())
    repo.stack("dev", "020_app", "")
    defaults.write_text(defaults.read_text().replace("size = 1", "size = 2"))
    repo.stack("stage", "020_app", "[inputs]\nsize = 1\n")
    assert (_fingerprint(repo), _fingerprint(repo, "stage")) == (dev, stage)

    defaults.write_text(defaults.read_text().replace("size = 2", "size = 3"))
    assert _fingerprint(repo) != dev
    assert _fingerprint(repo, "stage") == stage  # its own size = 1 wins
    repo.stack("stage", "020_app", "")
    assert _fingerprint(repo, "stage") != stage


def test_explain_names_env_toml_for_the_issuer_stackrun_adds(repo):
    repo.env("dev", extra='[identity]\nissuer = "https://idp.example.com"\naudience = ["api"]\n')
    repo.module("idp", 'variable "external_issuer" {\n  type    = any\n  default = null\n}\n')
    repo.write("live/_defaults/025_identity.toml", 'module = "idp"\n')
    repo.stack("dev", "025_identity", "")
    lines = explain(load_environment(repo.root, "dev"), "025_identity")
    assert [" ".join(line.split()) for line in lines[1:]] == [
        'module = "idp" # live/_defaults/025_identity.toml',
        'inputs.external_issuer = {"issuer": "https://idp.example.com", "audience": ["api"]} '
        "# live/dev/env.toml [identity], by stackrun",
    ]
