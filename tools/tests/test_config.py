"""Discovery and validation of live/: every malformed case is a clear error naming file and key."""

from __future__ import annotations

from types import ModuleType

import pytest

from stackrun.config import apply_overrides, list_environments, load_environment
from stackrun.errors import ConfigError


def _errors(repo, env: str = "dev") -> str:
    with pytest.raises(ConfigError) as caught:
        load_environment(repo.root, env)
    return str(caught.value)


def test_valid_environment_is_loaded_in_number_order(repo):
    repo.standard()
    repo.stack("dev", "005_first", 'module = "networkish"\n[inputs]\nname = "x"\n')
    environment = load_environment(repo.root, "dev")
    assert [s.name for s in environment.stacks] == ["005_first", "010_net", "020_app"]
    app = environment.stack("020_app")
    assert app.upstream == ("010_net",)
    assert {
        d.input_name: [(r.stack, r.output) for r in d.references] for d in app.dependencies
    } == {
        "vpc_id": [("010_net", "vpc_id")],
        "subnet_ids": [("010_net", "subnet_ids")],
    }
    assert environment.deploy_role_arn == "arn:aws:iam::111111111111:role/deploy"
    assert environment.backend.bucket == "fleet-tfstate-111111111111-eu-west-1"
    assert environment.state_key("010_net") == "dev/010_net/terraform.tfstate"
    assert environment.default_tags["Environment"] == "dev"


def test_the_environment_owns_the_keys_of_its_objects_in_the_state_bucket(repo):
    repo.standard()
    repo.env("stage", account="222222222222")
    repo.stack("stage", "010_net", 'module = "networkish"\n[inputs]\nname = "fleet-stage"\n')
    dev, stage = load_environment(repo.root, "dev"), load_environment(repo.root, "stage")
    key = dev.state_key("010_net")
    assert key == "dev/010_net/terraform.tfstate"
    assert stage.state_key("010_net") == "stage/010_net/terraform.tfstate"
    assert dev.state_key("020_app") != key
    # terraform's two locks of that state: the object beside it and the lock table's item
    assert dev.state_lockfile_key("010_net") == "dev/010_net/terraform.tfstate.tflock"
    assert dev.state_lock_id("010_net") == f"{dev.backend.bucket}/{key}"
    assert stage.state_lock_id("010_net").startswith("fleet-tfstate-222222222222-eu-west-1/")
    # stackrun's own records sit beside the states, apart from every stack's folder
    assert dev.record_key("release") == "dev/_stackrun/release.json"
    assert stage.record_key("pins") == "stage/_stackrun/pins.json"


def test_the_package_exports_what_other_rooms_use_and_nothing_else():
    import stackrun.config as config

    public = {
        name
        for name, value in vars(config).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)  # not its modules
    }
    assert public == set(config.__all__)
    assert {"Environment", "Stack", "load_environment", "apply_overrides"} <= public


def test_unknown_environment_names_the_known_ones(repo):
    repo.standard()
    message = _errors(repo, "qa")
    assert "unknown environment 'qa'" in message
    assert "known environments: dev" in message


def test_unknown_key_in_stack_file(repo):
    repo.standard()
    repo.stack("dev", "030_x", 'module = "networkish"\nmodle = "typo"\n[inputs]\nname = "n"\n')
    message = _errors(repo)
    assert "live/dev/030_x/stack.toml: key 'modle': unknown key" in message


def test_unknown_key_in_env_and_project_files(repo):
    repo.standard()
    repo.env("dev", extra='regoin = "eu-west-1"\n')
    repo.write(
        "live/project.toml",
        '[project]\nname = "fleet"\ndefault_region = "eu-west-1"\n[backend]\nbuckets = "x"\n',
    )
    message = _errors(repo)
    assert "live/project.toml: key 'backend.buckets': unknown key" in message


def test_unknown_key_in_env_file(repo):
    repo.standard()
    repo.env("dev", extra='regoin = "eu-west-1"\n')
    assert "live/dev/env.toml: key 'regoin': unknown key" in _errors(repo)


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("module = 5\n", "module", "expected the name of a folder under modules/, got int 5"),
        ('module = "networkish"\ninputs = "x"\n', "inputs", "expected a table of module inputs"),
        (
            'module = "consumer"\n[dependencies]\nvpc_id = 3\n',
            "dependencies",
            'expected a table of input = "NNN_stack.output"',
        ),
    ],
)
def test_wrong_types_in_stack_file(repo, text, key, expected):
    repo.standard()
    repo.stack("dev", "030_x", text)
    message = _errors(repo)
    assert f"live/dev/030_x/stack.toml: key '{key}'" in message
    assert expected in message


def test_account_id_must_be_a_quoted_12_digit_string(repo):
    repo.standard()
    repo.write("live/dev/env.toml", 'account_id = 111111111111\ndeploy_role = "deploy"\n')
    message = _errors(repo)
    assert "live/dev/env.toml: key 'account_id': expected a quoted string of 12 digits" in message
    repo.write("live/dev/env.toml", 'account_id = "1234"\ndeploy_role = "deploy"\n')
    assert "expected exactly 12 digits, got '1234'" in _errors(repo)


def test_two_environments_cannot_share_an_account(repo):
    repo.standard()
    repo.env("prod", account="111111111111")
    message = _errors(repo, "prod")
    assert "live/prod/env.toml: key 'account_id'" in message
    assert "also used by environment 'dev'" in message


def test_role_arn_must_be_in_the_environment_account(repo):
    repo.standard()
    repo.write(
        "live/dev/env.toml",
        'account_id = "111111111111"\ndeploy_role = "arn:aws:iam::222222222222:role/deploy"\n',
    )
    assert "the role's account 222222222222 is not this environment's" in _errors(repo)


def test_module_that_does_not_exist(repo):
    repo.standard()
    repo.stack("dev", "030_x", 'module = "netwrok"\n')
    message = _errors(repo)
    assert "live/dev/030_x/stack.toml: key 'module': no module 'netwrok' under modules/" in message
    assert "available: consumer, networkish" in message


def test_two_stacks_with_one_number(repo):
    repo.standard()
    repo.stack("dev", "010_other", 'module = "networkish"\n[inputs]\nname = "n"\n')
    message = _errors(repo)
    assert "stack number 010 is also used by 010_net" in message


def test_badly_named_stack_folder(repo):
    repo.standard()
    (repo.root / "live/dev/network").mkdir()
    assert "live/dev/network: not a stack folder name: expected NNN_<name>" in _errors(repo)


def test_reference_to_a_later_stack(repo):
    repo.standard()
    repo.stack(
        "dev",
        "005_early",
        'module = "consumer"\n[dependencies]\n'
        'vpc_id = "010_net.vpc_id"\nsubnet_ids = "010_net.subnet_ids"\n',
    )
    message = _errors(repo)
    assert "live/dev/005_early/stack.toml: key 'dependencies.vpc_id'" in message
    assert "is not earlier than this one" in message


def test_reference_to_a_missing_stack(repo):
    repo.standard()
    repo.stack(
        "dev",
        "020_app",
        'module = "consumer"\n[dependencies]\n'
        'vpc_id = "015_ghost.vpc_id"\nsubnet_ids = "010_net.subnet_ids"\n',
    )
    assert "stack '015_ghost' does not exist in this environment" in _errors(repo)


def test_reference_to_an_output_that_does_not_exist(repo):
    repo.standard()
    repo.stack(
        "dev",
        "020_app",
        'module = "consumer"\n[dependencies]\n'
        'vpc_id = "010_net.vpc"\nsubnet_ids = "010_net.subnet_ids"\n',
    )
    message = _errors(repo)
    assert (
        "key 'dependencies.vpc_id': stack '010_net' (module 'networkish') has no output 'vpc'"
        in message
    )
    assert "its outputs: secret, subnet_ids, vpc_id" in message


def test_malformed_reference(repo):
    repo.standard()
    repo.stack(
        "dev",
        "020_app",
        'module = "consumer"\n[dependencies]\n'
        'vpc_id = "net.vpc_id"\nsubnet_ids = "010_net.subnet_ids"\n',
    )
    assert "expected \"NNN_stack.output\", got 'net.vpc_id'" in _errors(repo)


def test_input_the_module_does_not_declare(repo):
    repo.standard()
    repo.stack("dev", "010_net", 'module = "networkish"\n[inputs]\nname = "n"\nsize = 3\n')
    message = _errors(repo)
    assert (
        "live/dev/010_net/stack.toml: key 'inputs.size': module 'networkish' has no variable"
        in message
    )


def test_missing_required_input(repo):
    repo.standard()
    repo.stack("dev", "010_net", 'module = "networkish"\n')
    message = _errors(repo)
    assert (
        "key 'inputs.name': missing: module 'networkish' requires variable 'name' (Name prefix)"
        in message
    )


def test_invalid_toml_is_reported_with_the_file(repo):
    repo.standard()
    repo.stack("dev", "010_net", 'module = "networkish\n')
    assert "live/dev/010_net/stack.toml: not valid TOML" in _errors(repo)


def test_all_problems_are_reported_together(repo):
    repo.standard()
    repo.stack("dev", "010_net", 'module = "networkish"\nextra = 1\n')
    repo.env("dev", extra='regoin = "x"\n')
    message = _errors(repo)
    assert "'extra'" in message and "'regoin'" in message and "'inputs.name'" in message


def test_toml_dates_are_not_accepted_as_inputs(repo):
    repo.standard()
    repo.stack("dev", "010_net", 'module = "networkish"\n[inputs]\nname = 1979-05-27\n')
    assert "key 'inputs.name': expected a string, number, bool, array or table" in _errors(repo)


def test_the_repository_live_folder_is_valid():
    from conftest import REPO_ROOT

    names = list_environments(REPO_ROOT)
    assert names == ["dev", "prod", "stage"]
    accounts = {load_environment(REPO_ROOT, name).account_id for name in names}
    assert len(accounts) == 3


def test_a_table_of_references_builds_a_map_input(repo):
    repo.standard()
    repo.module("mapper", 'variable "settings" {\n  type = map(string)\n}\n')
    repo.stack(
        "dev",
        "030_map",
        'module = "mapper"\n[dependencies]\n'
        'settings = { vpc = "010_net.vpc_id", first = "010_net.secret" }\n',
    )
    stack = load_environment(repo.root, "dev").stack("030_map")
    (dependency,) = stack.dependencies
    assert dependency.shape == "map"
    assert dependency.value({"010_net": {"vpc_id": "v", "secret": "s"}}) == {
        "vpc": "v",
        "first": "s",
    }
    repo.stack(
        "dev", "030_map", 'module = "mapper"\n[dependencies]\nsettings = { vpc = "010_net.nope" }\n'
    )
    assert "key 'dependencies.settings': stack '010_net' (module 'networkish') has no output" in (
        _errors(repo)
    )


def test_lambdas_input_must_name_function_packages(repo):
    repo.standard()
    repo.module("api", 'variable "functions" {\n  type = any\n}\n')
    repo.write("lambdas/hello/pyproject.toml", '[project]\nname = "hello"\n')
    repo.stack(
        "dev",
        "030_api",
        'module = "api"\n[lambdas]\ninput = "functions"\n'
        "[inputs.functions.hello]\nmemory_size = 256\n",
    )
    stack = load_environment(repo.root, "dev").stack("030_api")
    assert stack.functions == ("hello",)
    repo.stack(
        "dev",
        "030_api",
        'module = "api"\n[lambdas]\ninput = "functions"\n'
        '[inputs.functions.ghost]\n[inputs.functions.hello]\nhandler = "x.y"\n',
    )
    message = _errors(repo)
    assert "key 'inputs.functions.ghost': no function package lambdas/ghost/" in message
    assert "key 'inputs.functions.hello.handler': set by stackrun from the build" in message


@pytest.mark.parametrize("name", ["Dev", "dev_1", "1dev", "dév", "dev\n", "d" * 32])
def test_an_environment_folder_name_must_be_a_plain_lowercase_name(repo, name):
    repo.standard()
    repo.env(name, account="222222222222")
    assert name in list_environments(repo.root)  # listed, so that loading it reports it
    message = _errors(repo, name)
    assert f"live/{name}: not an environment folder name: expected 1 to 31 lowercase" in message


@pytest.mark.parametrize("name", ["", "..", "../live/dev", "dev/010_net"])
def test_an_environment_name_that_is_not_a_folder_name_is_refused(repo, name):
    repo.standard()
    assert "not an environment folder name" in _errors(repo, name)


def test_an_empty_module_name_asks_for_a_folder_of_modules(repo):
    repo.standard()
    repo.stack("dev", "030_x", 'module = ""\n')
    assert (
        "live/dev/030_x/stack.toml: key 'module': expected the name of a folder under modules/, "
        "got '' (available: consumer, networkish)"
    ) in _errors(repo)


def test_a_bad_account_id_is_reported_once_on_env_toml(repo):
    repo.standard()
    repo.write("live/dev/env.toml", 'account_id = "111111111111\\n"\ndeploy_role = "deploy"\n')
    with pytest.raises(ConfigError) as caught:
        load_environment(repo.root, "dev")
    (issue,) = caught.value.issues
    assert (str(issue.file), issue.key) == ("live/dev/env.toml", "account_id")
    assert "expected exactly 12 digits" in issue.message


def test_a_function_key_must_be_a_folder_name_of_lambdas(repo):
    repo.standard()
    repo.module("api", 'variable "functions" {\n  type = any\n}\n')
    repo.write("lambdas/hello/pyproject.toml", '[project]\nname = "hello"\n')
    repo.stack(
        "dev",
        "030_api",
        'module = "api"\n[lambdas]\ninput = "functions"\n[inputs.functions."../lambdas/hello"]\n',
    )
    assert (
        "key 'inputs.functions.../lambdas/hello': expected a function name: the name of a folder "
        "under lambdas/"
    ) in _errors(repo)


def test_overrides_change_one_input_and_refuse_what_the_files_would(repo):
    repo.standard()
    repo.module("api", 'variable "functions" {\n  type = any\n}\n')
    repo.write("lambdas/hello/pyproject.toml", '[project]\nname = "hello"\n')
    repo.stack(
        "dev",
        "030_api",
        'module = "api"\n[lambdas]\ninput = "functions"\n[inputs.functions.hello]\n',
    )
    environment = load_environment(repo.root, "dev")
    changed = apply_overrides(environment, ["020_app.size = 5", "010_net.cidr=[1, 'x']"])
    assert dict(changed.stack("020_app").inputs) == {"size": 5}
    assert dict(changed.stack("010_net").inputs) == {"name": "fleet-dev", "cidr": [1, "x"]}
    assert changed.stack("030_api") == environment.stack("030_api")
    bad = [
        "020_app.size",
        "020_app.vpc_id=1",
        "030_api.functions={}",
        "020_app.size=nan",
        "020_app.size=1979-05-27",
        "020_app.size=1\nother = 2",
        "020_app.size=" + "[" * 3000,
    ]
    with pytest.raises(ConfigError) as caught:
        apply_overrides(environment, bad)
    assert [(str(i.file), i.key) for i in caught.value.issues] == [("--set", t) for t in bad]
    messages = [i.message for i in caught.value.issues]
    assert messages[0] == "expected NNN_stack.input=VALUE, got '020_app.size'"
    assert "comes from [dependencies]" in messages[1]
    assert "lists the functions of 030_api ([lambdas] input)" in messages[2]
    assert "expected a finite number" in messages[3]
    assert "expected a string, number, bool, array or table" in messages[4]
    assert messages[5].startswith("expected a TOML value")
    assert messages[6].startswith("expected a TOML value")


IDENTITY_MODULE = 'variable "external_issuer" {\n  type    = any\n  default = null\n}\n'


def test_env_identity_is_passed_to_the_module_that_takes_an_external_issuer(repo):
    repo.standard()
    repo.module("idp", IDENTITY_MODULE)
    repo.stack("dev", "025_identity", 'module = "idp"\n')
    environment = load_environment(repo.root, "dev")
    assert environment.identity is None
    # without [identity] the module gets null (and makes its own pool); other stacks get nothing
    assert dict(environment.stack("025_identity").inputs) == {"external_issuer": None}
    assert "external_issuer" not in environment.stack("020_app").inputs

    repo.env(
        "dev",
        extra='[identity]\nissuer = "https://login.example.com/tenant"\naudience = ["fleet-api"]\n',
    )
    environment = load_environment(repo.root, "dev")
    assert environment.identity.issuer == "https://login.example.com/tenant"
    assert dict(environment.stack("025_identity").inputs) == {
        "external_issuer": {"issuer": "https://login.example.com/tenant", "audience": ["fleet-api"]}
    }


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            'issuer = "http://login.example.com"\naudience = ["a"]',
            "key 'identity.issuer': expected an https:// URL without query, fragment or "
            "credentials (API Gateway fetches the issuer's keys over TLS), got "
            "'http://login.example.com'",
        ),
        (
            'issuer = "https://user:pw@login.example.com"\naudience = ["a"]',
            "key 'identity.issuer': expected an https:// URL",
        ),
        (
            'issuer = "https://login.example.com"\naudience = []',
            "key 'identity.audience': expected at least one audience value, got []",
        ),
        (
            'issuer = "https://login.example.com"\naudience = ["a", " "]',
            "key 'identity.audience[1]': expected a non-empty audience value, got ''",
        ),
        ('issuer = "https://login.example.com"', "key 'identity.audience'"),
        (
            'issuer = "https://login.example.com"\naudience = ["a"]\nissue = "x"',
            "key 'identity.issue': unknown key",
        ),
    ],
)
def test_a_bad_identity_table_names_the_key(repo, table, expected):
    repo.standard()
    repo.env("dev", extra=f"[identity]\n{table}\n")
    message = _errors(repo)
    assert "live/dev/env.toml: " + expected in message


def test_the_external_issuer_cannot_be_set_by_a_stack_or_override(repo):
    repo.standard()
    repo.module("idp", IDENTITY_MODULE)
    repo.stack("dev", "025_identity", 'module = "idp"\n[inputs]\nexternal_issuer = "x"\n')
    assert (
        "live/dev/025_identity/stack.toml: key 'inputs.external_issuer': set by stackrun from "
        "env.toml's [identity] table (issuer, audience); name an external issuer there"
    ) in _errors(repo)
    repo.stack("dev", "025_identity", 'module = "idp"\n')
    environment = load_environment(repo.root, "dev")
    with pytest.raises(ConfigError) as caught:
        apply_overrides(environment, ['025_identity.external_issuer = {issuer = "https://x"}'])
    assert "comes from env.toml's [identity] table" in str(caught.value)
