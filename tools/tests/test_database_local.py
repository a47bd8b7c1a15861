"""The repository's own live/ stacks (network + PostgreSQL) deployed to the emulator.

Real terraform, the real stackrun CLI, a real PostgreSQL behind the emulated RDS instance, and
the real migrations package.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import pg8000.exceptions
import pg8000.native
import pytest

from emulated_repo import REPO_ROOT, Run
from stackrun.local import postgres
from stackrun.local.api.authorizer import decode as decode_jwt
from stackrun.paths import emulated_rds_account_dir, emulated_rds_dir, emulated_rds_endpoint_file

pytestmark = pytest.mark.terraform

SCHEMA_TABLES = {"team", "app_user", "project", "device", "model", "app", "schema_migrations"}


def _endpoint(repo, env: str) -> dict[str, Any]:
    """Where the emulated instance's clients connect: database.json beside the instances' data,
    in the emulator's state."""
    from stackrun.config import load_environment

    account = load_environment(repo.root, env).account_id
    file = emulated_rds_endpoint_file(repo.emulator_dir, account)
    endpoint: dict[str, Any] = json.loads(file.read_text())
    return endpoint


def _connect(repo, env: str, secret_arn: str | None = None) -> pg8000.native.Connection:
    """Connect as a client would: endpoint of the local server, credentials from the secret
    (default: the master user's)."""
    endpoint = _endpoint(repo, env)
    secret = json.loads(
        repo.client(env, "secretsmanager").get_secret_value(
            SecretId=secret_arn or endpoint["secret_arn"]
        )["SecretString"]
    )
    return pg8000.native.Connection(
        user=secret["username"],
        password=secret["password"],
        host=endpoint["host"],
        port=endpoint["port"],
        database=endpoint["db_name"],
        # verify-full, as the functions connect: the server's certificate is the emulator CA's
        ssl_context=ssl.create_default_context(cafile=endpoint["ca_bundle"]),
    )


def _tables(connection) -> set[str]:
    rows = connection.run(
        "select table_name from information_schema.tables where table_schema = 'public'"
    )
    return {row[0] for row in rows}


# Appended to list_devices' handler module: a visible change in its answers.
REVISION_WRAPPER = """

_unchanged_handler = handler


def handler(event, context):
    response = _unchanged_handler(event, context)
    response.setdefault("headers", {})["x-fleet-revision"] = "2"
    return response
"""


def _http(
    method: str, url: str, document: dict | None = None, token: str | None = None
) -> tuple[int, dict, Any]:
    """(status, lower-cased headers, parsed JSON body) of one call to the local API."""
    data = json.dumps(document).encode() if document is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    if token is not None:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            status, headers, body = reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, error.headers, error.read()
    return status, {k.lower(): v for k, v in headers.items()}, json.loads(body or b"null")


# Appended to dev's 030_api/stack.toml; merged with [lambdas] of live/_defaults/030_api.toml.
CANARY = """
[lambdas.canary]
share = 0.25
duration = "20s"
max_error_rate = 0.5
max_errors = 3
"""

# Appended to list_devices' handler module: a version that fails every call.
RAISING_WRAPPER = """

def handler(event, context):
    raise RuntimeError("this version is broken")
"""


def _deploy_under_traffic(repo, url: str, token: str, limit: int = 1500):
    """Deploy dev while calling `url` from the moment the canary starts until the deploy ends
    (bounded: at most `limit` requests). Returns the run and (status, served by) per request."""
    output = repo.root / "deploy-under-traffic.log"
    errors = repo.root / "deploy-under-traffic.err"
    with output.open("w") as stdout, errors.open("w") as stderr:
        process = subprocess.Popen(
            repo.command("deploy", "dev", "--local"),
            cwd=repo.root,
            env=repo.environ(),
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
        while process.poll() is None and "% of live's traffic" not in output.read_text():
            time.sleep(0.2)
        answers: list[tuple[int, str]] = []
        while process.poll() is None and len(answers) < limit:
            status, headers, _ = _http("GET", url, token=token)
            answers.append((status, headers.get("x-stackrun-function", "")))
            time.sleep(0.02)
        process.wait(timeout=900)
    run = Run(process.returncode, output.read_text(), errors.read_text())
    return run, answers


def _integration(repo, env: str, *pytest_args: str) -> subprocess.CompletedProcess[str]:
    """Run integration-tests/ against the locally deployed `env`, as `nox -s integration`."""
    target = repo.root / f"target-{env}.json"
    written = repo.run("output", env, "--local", "--output-file", str(target))
    assert written.returncode == 0, written.text
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(REPO_ROOT / "integration-tests"),
            "-p",
            "no:cacheprovider",
            *pytest_args,
        ],
        env=dict(
            repo.environ(),
            FLEET_TARGET_FILE=str(target),
            FLEET_TOKEN_COMMAND=f"{sys.executable} -m stackrun token",
        ),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


MIGRATIONS = ["0001_core.sql", "0002_devices.sql", "0003_created_by.sql", "0004_roles.sql"]
# the database role each API function connects as
ROLES = {
    "create_project": "fleet_writer",
    "list_devices": "fleet_reader",
    "register_device": "fleet_writer",
}


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _migrations_dir(repo):
    return repo.root / "lambdas/migrations/src/fleet_migrations/sql"


@pytest.mark.longest
def test_prod_has_deletion_protection_and_multi_az(local_repo):
    repo = local_repo
    repo.use_real_live("prod", "stage")  # prod promotes from stage (env.toml promote_from)
    refused = repo.run("deploy", "prod", "--local")
    assert refused.returncode == 1
    assert "prod is protected" in refused.stderr

    deployed = repo.run("deploy", "prod", "--local", "--yes")
    assert deployed.returncode == 0, deployed.text
    identifier = repo.outputs("prod")["020_postgres"]["instance_identifier"]
    instance = repo.client("prod", "rds").describe_db_instances(DBInstanceIdentifier=identifier)[
        "DBInstances"
    ][0]
    assert instance["DeletionProtection"] is True
    assert instance["MultiAZ"] is True
    assert instance["BackupRetentionPeriod"] >= 14
    assert instance["StorageEncrypted"] is True
    assert instance["PubliclyAccessible"] is False

    # destroy refuses before touching anything while deletion protection is on
    refused = repo.run("destroy", "prod", "--local", "--yes")
    assert refused.returncode == 1, refused.text
    assert "refusing to destroy prod: deletion protection is on" in refused.stderr
    assert "020_postgres: module.stack.aws_db_instance.this (fleet-prod)" in refused.stderr
    assert "025_identity: module.stack.aws_cognito_user_pool.this" in refused.stderr
    assert "--lift-deletion-protection" in refused.stderr
    assert "destroying" not in refused.stdout
    functions = repo.client("prod", "lambda").list_functions()["Functions"]
    assert len(functions) == 4  # the API stack (destroyed first otherwise) is untouched

    # --lift-deletion-protection deploys only the protected stacks (no other stack is
    # applied, no function published, no canary watched), then destroys everything
    destroyed = repo.run("destroy", "prod", "--local", "--yes", "--lift-deletion-protection")
    assert destroyed.returncode == 0, destroyed.text
    lifting = destroyed.stdout.split("destroying", 1)[0]
    assert "lifting deletion protection first: deploy 020_postgres, 025_identity" in lifting
    deployed_stacks = re.findall(r"==> \[\d+/\d+\] deploying (\S+)", lifting)
    assert deployed_stacks == ["020_postgres", "025_identity"], lifting
    assert repo.client("prod", "rds").describe_db_instances()["DBInstances"] == []
    assert repo.client("prod", "lambda").list_functions()["Functions"] == []


def test_stopping_the_emulator_stops_the_local_databases(tmp_path):
    """`nox -s emulator-stop` takes the PostgreSQL servers behind emulated instances with it,
    and their data (the instances lived in the emulator's memory); the lambda tests' server
    under .stackrun/ is stopped too."""
    from stackrun.local.emulator import ensure_running, running_pid

    emulator_dir = tmp_path / "emulator"
    cache = tmp_path / "cache"
    ensure_running(emulator_dir, port=_free_port())
    instance = emulated_rds_account_dir(emulator_dir, "111111111111") / "db-TEST"
    behind_rds = postgres.ensure_server(instance / "postgres")
    testdb = postgres.ensure_server(cache / "testdb" / "postgres")
    assert "running" in postgres.server_status(behind_rds.data_dir)

    env = dict(
        os.environ,
        STACKRUN_EMULATOR_DIR=str(emulator_dir),
        STACKRUN_CACHE_DIR=str(cache),
        STACKRUN_ROOT=str(REPO_ROOT),
    )
    result = subprocess.run(
        [sys.executable, "-m", "stackrun", "emulator", "stop"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "stopped the local AWS emulator" in result.stdout
    assert f"stopped local PostgreSQL {behind_rds.data_dir} (behind an emulated" in result.stdout
    assert f"stopped local PostgreSQL {testdb.data_dir}" in result.stdout
    assert running_pid(emulator_dir) is None
    assert not postgres.server_status(testdb.data_dir).startswith("running")
    assert not emulated_rds_dir(emulator_dir).exists()


# The longest test of the suite stays last in this file: xdist cannot hand the test queued
# right after a running one to another worker, so a long test there would wait behind it.
@pytest.mark.longest
def test_dev_gets_network_database_and_schema_and_a_rerun_changes_nothing(local_repo):
    repo = local_repo
    repo.use_real_live("dev")
    first = repo.run("deploy", "dev", "--local")
    assert first.returncode == 0, first.text
    text = first.stdout
    assert text.index("000_bootstrap: creating") < text.index("deploying 010_network")
    assert text.index("deploying 010_network") < text.index("deploying 020_postgres")
    # the migrations function ran (through Lambda's Invoke API, in the local runtime) after the
    # database and before the API was deployed
    answered = text.index("027_migrations: migrations (version 1) answered in")
    assert text.index("deploying 020_postgres") < answered < text.index("deploying 030_api")
    assert f'"applied": {json.dumps(MIGRATIONS)}' in text

    outputs = repo.outputs("dev")
    network, database = outputs["010_network"], outputs["020_postgres"]

    # the database security group admits 5432 from the functions' group only
    ec2 = repo.client("dev", "ec2")
    rules = ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [network["db_security_group_id"]]}]
    )["SecurityGroupRules"]
    ingress = [rule for rule in rules if not rule["IsEgress"]]
    assert len(ingress) == 1
    assert ingress[0]["FromPort"] == ingress[0]["ToPort"] == 5432
    assert ingress[0]["ReferencedGroupInfo"]["GroupId"] == network["lambda_security_group_id"]
    assert "CidrIpv4" not in ingress[0]

    # the instance is encrypted and private; dev is disposable
    instance = repo.client("dev", "rds").describe_db_instances(
        DBInstanceIdentifier=database["instance_identifier"]
    )["DBInstances"][0]
    assert instance["StorageEncrypted"] is True
    assert instance["PubliclyAccessible"] is False
    assert instance["DeletionProtection"] is False
    assert instance["MultiAZ"] is False
    assert instance["DBSubnetGroup"]["DBSubnetGroupName"] == network["db_subnet_group_name"]
    assert instance["MasterUserSecret"]["SecretArn"] == database["master_user_secret_arn"]
    # the module's CA pin, which is also what RDS gives a new instance (emulator patch n)
    assert instance["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"

    # the server behind the instance is the emulator's, named by the instance's resource id
    # (a fresh clone against this emulator finds the same database, as in AWS)
    behind = emulated_rds_account_dir(repo.emulator_dir, instance["DBInstanceArn"].split(":")[4])
    served = postgres.server_status(behind / instance["DbiResourceId"] / "postgres")
    endpoint = _endpoint(repo, "dev")
    assert served.startswith(f"running on {endpoint['host']}:{endpoint['port']}"), served

    # a real PostgreSQL takes the credentials of the emulated secret and holds the schema
    connection = _connect(repo, "dev")
    assert _tables(connection) >= SCHEMA_TABLES
    assert connection.run("select current_database()") == [[database["db_name"]]]
    versions = connection.run("select version from schema_migrations order by version")
    assert versions == [[1], [2], [3], [4]]
    connection.close()

    # the functions: built from lambdas/, published, behind a "live" alias the API routes to
    api = outputs["030_api"]
    lambda_client = repo.client("dev", "lambda")
    functions = api["functions"]
    assert set(functions) == {"create_project", "list_devices", "register_device"}
    migrations = outputs["027_migrations"]["functions"]["migrations"]
    assert outputs["027_migrations"].get("api_id") is None  # no API: not reachable from outside
    # the emulator's Lambda Invoke runs the deployed function, as a client of AWS calls it
    reply = lambda_client.invoke(FunctionName=migrations["alias_arn"], Payload=b"{}")
    assert "FunctionError" not in reply
    assert json.loads(reply["Payload"].read()) == {
        "applied": [],
        "current_version": 4,
        "roles": ["fleet_reader", "fleet_writer"],
    }
    for name, function in {**functions, "migrations": migrations}.items():
        alias = lambda_client.get_alias(FunctionName=function["function_name"], Name="live")
        assert alias["FunctionVersion"] == "1", name
        configuration = lambda_client.get_function_configuration(
            FunctionName=function["function_name"], Qualifier="live"
        )
        manifest = json.loads((repo.root / "dist/lambdas" / f"{name}.json").read_text())
        assert configuration["CodeSha256"] == manifest["base64_sha256"]
        assert configuration["Architectures"] == ["arm64"]
        # each function connects with its own database role's secret; only the migrations
        # function with the master user's
        expected = (
            database["role_secret_arns"][ROLES[name]]
            if name in ROLES
            else database["master_user_secret_arn"]
        )
        assert configuration["Environment"]["Variables"]["DB_SECRET_ARN"] == expected, name
        assert set(configuration["VpcConfig"]["SubnetIds"]) == set(network["private_subnet_ids"])
        # ... and its IAM policy lets it read that one database secret: no function but the
        # migrations function may read the master secret
        iam = repo.client("dev", "iam")
        role_name = function["role_arn"].rsplit("/", 1)[1]
        document = iam.get_role_policy(RoleName=role_name, PolicyName="least-privilege")
        readable = {
            resource
            for statement in document["PolicyDocument"]["Statement"]
            if statement["Effect"] == "Allow"
            and "secretsmanager:GetSecretValue" in _as_list(statement["Action"])
            for resource in _as_list(statement["Resource"])
        }
        if name == "migrations":
            assert database["master_user_secret_arn"] in readable
        else:
            assert readable == {expected}, name
    gateway = repo.client("dev", "apigatewayv2")
    routes = {r["RouteKey"] for r in gateway.get_routes(ApiId=api["api_id"])["Items"]}
    assert routes == {
        "POST /projects",
        "GET /projects/{project}/devices",
        "POST /projects/{project}/devices",
    }
    integrations = gateway.get_integrations(ApiId=api["api_id"])["Items"]
    assert {i["PayloadFormatVersion"] for i in integrations} == {"2.0"}
    assert all(":live/invocations" in i["IntegrationUri"] for i in integrations)

    # the deploy ends by serving the API on loopback and calling it: the deployed zips answer
    # (the smoke call carries a token of the identity stack's pool: the function answers)
    assert "smoke GET http://127.0.0.1:" in first.stdout
    assert "with a token) -> 404" in first.stdout
    assert "served by fleet-dev-list_devices:1" in first.stdout
    url = outputs["target"]["api_urls"]["030_api"]
    # every route requires a token: none is a 401 from the gateway, a read token may not write
    assert _http("GET", url + "projects/pumps/devices")[0] == 401
    token_run = repo.run("token", "dev", "--local")
    assert token_run.returncode == 0, token_run.text
    token = token_run.stdout.strip().splitlines()[-1]
    read_run = repo.run("token", "dev", "--local", "--scope", "fleet/read")
    read_token = read_run.stdout.strip().splitlines()[-1]
    status, _, body = _http("POST", url + "projects", {"name": "x", "team": "y"}, read_token)
    assert (status, body) == (403, {"message": "Forbidden"})
    status, _, body = _http("POST", url + "projects", {"name": "pumps", "team": "core"}, token)
    assert status == 201, body
    status, _, body = _http("POST", url + "projects/pumps/devices", {"name": "p-1"}, token)
    assert status == 201, body
    # the caller is the token's verified sub (a client-credentials token's sub is its client id)
    caller = decode_jwt(token)[1]["sub"]
    assert body["device"]["created_by"] == caller
    connection = _connect(repo, "dev")
    stored = connection.run(
        "select p.created_by, d.created_by from project p join device d on d.project_id = p.id"
        " where p.name = 'pumps'"
    )
    connection.close()
    assert stored == [[caller, caller]]
    status, headers, body = _http("GET", url + "projects/pumps/devices", token=read_token)
    assert status == 200, body
    assert [device["name"] for device in body["devices"]] == ["p-1"]
    # with the functions' own credentials: list_devices' role cannot write, the write role
    # cannot delete or change the schema (lambdas/migrations/tests/test_migrations_roles.py
    # goes through every statement)
    reader = _connect(repo, "dev", database["role_secret_arns"]["fleet_reader"])
    writer = _connect(repo, "dev", database["role_secret_arns"]["fleet_writer"])
    try:
        assert reader.run("select count(*) from device") == [[1]]
        for connection, statement in (
            (reader, "insert into team (name) values ('intruder')"),
            (reader, "update device set serial = 'x'"),
            (reader, "delete from device"),
            (writer, "delete from device"),
            (writer, "alter table device add column x int"),
            (writer, "drop table device"),
        ):
            with pytest.raises(pg8000.exceptions.DatabaseError) as refused:
                connection.run(statement)
            assert refused.value.args[0]["C"] == "42501", statement  # insufficient_privilege
    finally:
        reader.close()
        writer.close()
    assert headers["x-stackrun-function"] == "fleet-dev-list_devices:1"
    assert "x-fleet-revision" not in headers

    again = repo.run("deploy", "dev", "--local")
    assert again.returncode == 0, again.text
    stacks = ("000_bootstrap", "010_network", "020_postgres", "025_identity", "027_migrations")
    for stack in (*stacks, "030_api"):
        assert f"{stack:<24} skipped" in again.stdout
    # ... and the migrations still run, answering at once that there is nothing to do
    assert '"applied": [], "current_version": 4' in again.stdout
    assert "build list_devices: unchanged (cached)" in again.stdout
    listed = repo.run("tf", "dev", "030_api", "--local", "--", "state", "list")
    assert listed.returncode == 0, listed.text
    assert 'module.stack.aws_lambda_alias.live["list_devices"]' in listed.stdout.splitlines()

    # a changed function publishes a new version of that function only; the answer changes
    # with the deploy, not with the source
    handler = repo.root / "lambdas/list_devices/src/list_devices/handler.py"
    handler.write_text(handler.read_text() + REVISION_WRAPPER)
    status, headers, _ = _http("GET", url + "projects/pumps/devices", token=read_token)
    assert (status, headers["x-stackrun-function"]) == (200, "fleet-dev-list_devices:1")
    assert "x-fleet-revision" not in headers
    # ... deployed with --stack 030_api: that stack alone applied, the others not even listed
    changed, report = repo.run_reported("deploy", "dev", "--local", "--stack", "030_api")
    assert changed.returncode == 0, changed.text
    assert report["selected"] == ["030_api"]
    assert [(s["name"], s["status"]) for s in report["stacks"]] == [("030_api", "applied")]
    assert "deploying 027_migrations" not in changed.stdout
    versions = {
        name: lambda_client.get_alias(FunctionName=function["function_name"], Name="live")[
            "FunctionVersion"
        ]
        for name, function in functions.items()
    }
    assert versions == {"create_project": "1", "list_devices": "2", "register_device": "1"}
    status, headers, body = _http("GET", url + "projects/pumps/devices", token=read_token)
    assert (status, headers["x-stackrun-function"]) == (200, "fleet-dev-list_devices:2")
    assert headers["x-fleet-revision"] == "2"
    assert [device["name"] for device in body["devices"]] == ["p-1"]
    # --stack 010_network+: the network and every stack downstream of it (not 025_identity)
    plan, report = repo.run_reported(
        "plan", "dev", "--local", "--detailed-exitcode", "--stack", "010_network+"
    )
    assert plan.returncode == 0, plan.text
    downstream = ["010_network", "020_postgres", "027_migrations", "030_api"]
    assert report["selected"] == downstream
    assert [(s["name"], s["status"]) for s in report["stacks"]] == [
        (name, "unchanged") for name in downstream
    ]
    # destroying the network alone is refused while the database (and more) consume it
    refused = repo.run("destroy", "dev", "--local", "--stack", "010_network")
    assert refused.returncode == 1, refused.text
    assert "  010_network: 020_postgres, 027_migrations, 030_api\n" in refused.stderr
    assert "nothing was destroyed" in refused.stderr
    assert "destroying" not in refused.stdout

    # one command moves list_devices' alias back to version 1 in seconds (no terraform runs)
    # and pins it: the local API serves version 1 right after; the next deploy keeps it there
    # and says so, plan sees no drift; unpin and a deploy move it to the newest version again
    def live_version(name: str) -> str:
        function = functions[name]["function_name"]
        return lambda_client.get_alias(FunctionName=function, Name="live")["FunctionVersion"]

    # (how fast is the bench's to say, not a timed assertion: this one failed a loaded machine)
    rolled = repo.run("rollback", "dev", "list_devices", "--local")
    assert rolled.returncode == 0, rolled.text
    assert "fleet-dev-list_devices: live moved from version 2 to 1" in rolled.stdout
    assert live_version("list_devices") == "1"
    status, headers, _ = _http("GET", url + "projects/pumps/devices", token=read_token)
    assert (status, headers["x-stackrun-function"]) == (200, "fleet-dev-list_devices:1")
    assert "x-fleet-revision" not in headers
    kept = repo.run("deploy", "dev", "--local")
    assert kept.returncode == 0, kept.text
    assert "list_devices is pinned to version 1 (rolled back from 2" in kept.stdout
    assert "stackrun unpin dev list_devices" in kept.stdout
    assert "list_devices pinned to 1" in kept.stdout  # the summary line of 030_api
    assert live_version("list_devices") == "1"
    plan = repo.run("plan", "dev", "--local", "--detailed-exitcode")
    assert plan.returncode == 0, plan.text
    assert "list_devices pinned to 1" in plan.stdout
    released = repo.run("unpin", "dev", "list_devices", "--local")
    assert released.returncode == 0, released.text
    assert repo.run("deploy", "dev", "--local").returncode == 0
    assert live_version("list_devices") == "2"
    status, headers, _ = _http("GET", url + "projects/pumps/devices", token=read_token)
    assert (status, headers["x-stackrun-function"]) == (200, "fleet-dev-list_devices:2")

    # the integration suite passes against the deployment; a broken handler setting (changed
    # outside terraform) makes it fail with the cause; plan sees the drift (deploy's fingerprint
    # cannot) and `deploy --all` repairs it
    passing = _integration(repo, "dev")
    assert passing.returncode == 0, passing.stdout[-3000:]
    register = functions["register_device"]["function_name"]
    lambda_client.update_function_configuration(FunctionName=register, Handler="nope.handler")
    version = lambda_client.publish_version(FunctionName=register)["Version"]
    lambda_client.update_alias(FunctionName=register, Name="live", FunctionVersion=version)
    failing = _integration(repo, "dev", "-k", "test_register_list_and_idempotent_retry")
    assert failing.returncode == 1, failing.stdout[-3000:]
    assert "Runtime.ImportModuleError" in failing.stdout, failing.stdout[-3000:]
    assert "No module named 'nope'" in failing.stdout, failing.stdout[-3000:]
    assert repo.run("plan", "dev", "--local", "--detailed-exitcode").returncode == 2
    repaired = repo.run("deploy", "dev", "--local", "--all")
    assert repaired.returncode == 0, repaired.text
    assert "030_api                  applied" in repaired.stdout
    assert _integration(repo, "dev", "-k", "register").returncode == 0

    # a new migration and new API code in one deploy: the migration is applied (by the
    # migration function's new version) before the API's alias moves to the new code
    (_migrations_dir(repo) / "0005_device_notes.sql").write_text(
        "alter table device add column notes text;\n"
    )
    handler.write_text(
        handler.read_text().replace('"x-fleet-revision"] = "2"', '"x-fleet-revision"] = "3"')
    )
    third = repo.run("deploy", "dev", "--local")
    assert third.returncode == 0, third.text
    answered = third.stdout.index("027_migrations: migrations (version 2) answered in")
    assert '"applied": ["0005_device_notes.sql"], "current_version": 5' in third.stdout
    assert answered < third.stdout.index("deploying 030_api")
    assert "030_api                  applied" in third.stdout
    status, headers, _ = _http("GET", url + "projects/pumps/devices", token=read_token)
    assert (headers["x-stackrun-function"], headers["x-fleet-revision"]) == (
        "fleet-dev-list_devices:3",
        "3",
    )
    fourth = repo.run("deploy", "dev", "--local", "--all")
    assert '"applied": [], "current_version": 5' in fourth.stdout

    # a failing migration rolls back and stops the deploy, naming it
    (_migrations_dir(repo) / "0006_broken.sql").write_text(
        "create table half_done (id int);\nselect 1 / 0;\n"
    )
    broken = repo.run("deploy", "dev", "--local")
    assert broken.returncode == 1
    assert "stack 027_migrations failed at invoke migrations" in broken.stderr
    assert "migration 0006_broken.sql failed: " in broken.stderr
    assert "030_api                  not started" in broken.stdout
    connection = _connect(repo, "dev")
    assert "half_done" not in _tables(connection)
    assert connection.run("select max(version) from schema_migrations") == [[5]]
    connection.close()
    (_migrations_dir(repo) / "0006_broken.sql").unlink()

    # a migration that fails on its first invoke (its table is locked by a long transaction:
    # it gives up after lock_timeout instead of queueing the API's queries) stops the deploy;
    # the next deploy, with nothing changed, runs it again and it is applied
    (_migrations_dir(repo) / "0006_device_tags.sql").write_text(
        "alter table device add column tags text[];\n"
    )
    blocker = _connect(repo, "dev")
    blocker.run("begin")
    blocker.run("select count(*) from device")
    try:
        blocked = repo.run("deploy", "dev", "--local")
    finally:
        blocker.run("commit")
        blocker.close()
    assert blocked.returncode == 1, blocked.text
    assert "stack 027_migrations failed at invoke migrations" in blocked.stderr
    assert "migration 0006_device_tags.sql failed" in blocked.stderr
    assert "lock_timeout" in blocked.stderr
    retried = repo.run("deploy", "dev", "--local")
    assert retried.returncode == 0, retried.text
    assert '"applied": ["0006_device_tags.sql"], "current_version": 6' in retried.stdout

    # canary releases: with [lambdas.canary] in 030_api, a version whose handler raises on
    # every call gets 25% of live's traffic and is rolled back by itself within the window,
    # with fewer than half of the requests sent meanwhile failed; the alias ends on the old
    # version, the next plan is clean and the next deploy leaves it alone. A healthy version
    # is promoted to all of the traffic, and terraform's state agrees
    api_stack = repo.root / "live/dev/030_api/stack.toml"
    plain_stack = api_stack.read_text()
    api_stack.write_text(plain_stack + CANARY)
    working = handler.read_text()
    handler.write_text(working + RAISING_WRAPPER)
    devices_url = url + "projects/pumps/devices"
    failing, answers = _deploy_under_traffic(repo, devices_url, read_token)
    assert failing.returncode == 1, failing.text
    assert "canary list_devices: version 4 gets 25% of live's traffic" in failing.stdout
    assert "canary list_devices: version 4 rolled back after" in failing.stdout
    assert "list_devices: version 4 rolled back by its canary" in failing.stderr
    window = answers[[served for _, served in answers].index("fleet-dev-list_devices:4") :]
    failed = [served for status, served in window if status != 200]
    assert failed and set(failed) == {"fleet-dev-list_devices:4"}, answers
    assert len(failed) < len(window) / 2, (len(failed), len(window))
    alias = lambda_client.get_alias(FunctionName=functions["list_devices"]["function_name"],
                                    Name="live")  # fmt: skip
    assert alias["FunctionVersion"] == "3"
    assert not alias.get("RoutingConfig", {}).get("AdditionalVersionWeights")
    status, headers, _ = _http("GET", devices_url, token=read_token)
    assert (status, headers["x-stackrun-function"]) == (200, "fleet-dev-list_devices:3")
    plan = repo.run("plan", "dev", "--local", "--detailed-exitcode")
    assert plan.returncode == 0, plan.text
    again = repo.run("deploy", "dev", "--local")
    assert again.returncode == 0, again.text
    assert "list_devices version 4 was rolled back by its canary" in again.stdout
    assert live_version("list_devices") == "3"

    handler.write_text(working.replace('"x-fleet-revision"] = "3"', '"x-fleet-revision"] = "5"'))
    healthy, answers = _deploy_under_traffic(repo, devices_url, read_token)
    assert healthy.returncode == 0, healthy.text
    assert "canary list_devices: version 5 healthy for 20s" in healthy.stdout
    assert {status for status, _ in answers} == {200}
    assert {served for _, served in answers} == {
        "fleet-dev-list_devices:3",
        "fleet-dev-list_devices:5",
    }
    assert live_version("list_devices") == "5"
    plan = repo.run("plan", "dev", "--local", "--detailed-exitcode")
    assert plan.returncode == 0, plan.text
    api_stack.write_text(plain_stack)

    # the password of the database never appears in anything stackrun wrote or printed
    secret = json.loads(
        repo.client("dev", "secretsmanager").get_secret_value(
            SecretId=database["master_user_secret_arn"]
        )["SecretString"]
    )
    password = secret["password"]
    # ... nor do the API's access tokens or the app clients' secrets (only `stackrun token`
    # prints a token, on its stdout, which is the caller's)
    client_secrets = [
        json.loads(
            repo.client("dev", "secretsmanager").get_secret_value(SecretId=client["secret_arn"])[
                "SecretString"
            ]
        )["client_secret"]
        for client in outputs["025_identity"]["clients"].values()
    ]
    # ... nor the database roles' passwords (set by the migrations function)
    role_passwords = [
        json.loads(
            repo.client("dev", "secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        )["password"]
        for arn in database["role_secret_arns"].values()
    ]
    secrets = [password, token, read_token, *client_secrets, *role_passwords]
    # ... nor do AWS secret keys (the deploy role's, the functions' role credentials)
    runs = (first, again, third, fourth, broken, blocked, retried, plan, repaired)
    printed = [run.text for run in runs]
    printed += [run.stdout + run.stderr for run in (passing, failing)]
    printed += [token_run.stderr, read_run.stderr]
    for text in printed:
        for value in secrets:
            assert value not in text
        assert "SecretAccessKey" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    # ... and the functions' logs (which name the caller's sub and client_id) hold none of them
    pages = repo.client("dev", "logs").get_paginator("filter_log_events")
    for function in (*functions.values(), migrations):
        pages_of_group = pages.paginate(logGroupName=function["log_group_name"])
        logged = "\n".join(event["message"] for page in pages_of_group for event in page["events"])
        assert caller in logged or function is migrations
        for value in secrets:
            assert value not in logged, function["log_group_name"]
    for path in (repo.root / ".stackrun").rglob("*"):
        if "functions" in path.parts:  # the deployed code, extracted for the local runtime
            continue
        if path.is_file() and "postgres" not in path.parts and path.stat().st_size < 5_000_000:
            text = path.read_text(errors="replace")
            for value in secrets:
                assert value not in text, path
            assert "SecretAccessKey" not in text and "AWS_SECRET_ACCESS_KEY" not in text, path

    destroyed = repo.run("destroy", "dev", "--local")
    assert destroyed.returncode == 0, destroyed.text
    assert repo.client("dev", "rds").describe_db_instances()["DBInstances"] == []


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
