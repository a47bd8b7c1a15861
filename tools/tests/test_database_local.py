"""The repository's own live/ stacks (network + PostgreSQL) deployed to the emulator.

Real terraform, the real stackrun CLI, a real PostgreSQL behind the emulated RDS instance, and
the real migrations package.
"""

from __future__ import annotations

import json

import pg8000.native
import pytest

pytestmark = pytest.mark.terraform

SCHEMA_TABLES = {"team", "app_user", "project", "device", "model", "app", "schema_migrations"}


def _connect(repo, env: str) -> pg8000.native.Connection:
    """Connect as a client would: endpoint of the local server, credentials from the secret."""
    endpoint = json.loads((repo.cache(env) / "database.json").read_text())
    secret = json.loads(
        repo.client(env, "secretsmanager").get_secret_value(SecretId=endpoint["secret_arn"])[
            "SecretString"
        ]
    )
    return pg8000.native.Connection(
        user=secret["username"],
        password=secret["password"],
        host=endpoint["host"],
        port=endpoint["port"],
        database=endpoint["db_name"],
    )


def _tables(connection) -> set[str]:
    rows = connection.run(
        "select table_name from information_schema.tables where table_schema = 'public'"
    )
    return {row[0] for row in rows}


def _migrations_dir(repo):
    return repo.root / "lambdas/migrations/src/fleet_migrations/sql"


def test_dev_gets_network_database_and_schema_and_a_rerun_changes_nothing(local_repo):
    repo = local_repo
    repo.use_real_live("dev")
    first = repo.run("deploy", "dev", "--local")
    assert first.returncode == 0, first.text
    text = first.stdout
    assert text.index("000_bootstrap: creating") < text.index("deploying 010_network")
    assert text.index("deploying 010_network") < text.index("deploying 020_postgres")
    assert "migrations applied: 0001_core.sql, 0002_devices.sql" in text

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

    # a real PostgreSQL takes the credentials of the emulated secret and holds the schema
    connection = _connect(repo, "dev")
    assert _tables(connection) >= SCHEMA_TABLES
    assert connection.run("select current_database()") == [[database["db_name"]]]
    versions = connection.run("select version from schema_migrations order by version")
    assert versions == [[1], [2]]
    connection.close()

    again = repo.run("deploy", "dev", "--local")
    assert again.returncode == 0, again.text
    for stack in ("000_bootstrap", "010_network", "020_postgres"):
        assert f"{stack:<24} unchanged" in again.stdout
    assert "migrations applied: none (schema up to date)" in again.stdout
    plan = repo.run("plan", "dev", "--local", "--detailed-exitcode")
    assert plan.returncode == 0, plan.text

    # a new migration is applied once, on the next deploy only
    (_migrations_dir(repo) / "0003_device_notes.sql").write_text(
        "alter table device add column notes text;\n"
    )
    third = repo.run("deploy", "dev", "--local")
    assert third.returncode == 0, third.text
    assert "migrations applied: 0003_device_notes.sql" in third.stdout
    fourth = repo.run("deploy", "dev", "--local")
    assert "migrations applied: none (schema up to date)" in fourth.stdout

    # a failing migration rolls back and stops the deploy, naming it
    (_migrations_dir(repo) / "0004_broken.sql").write_text(
        "create table half_done (id int);\nselect 1 / 0;\n"
    )
    broken = repo.run("deploy", "dev", "--local")
    assert broken.returncode == 1
    assert "stack 020_postgres failed at migrations" in broken.stderr
    assert "0004_broken.sql" in broken.stderr
    connection = _connect(repo, "dev")
    assert "half_done" not in _tables(connection)
    assert connection.run("select max(version) from schema_migrations") == [[3]]
    connection.close()
    (_migrations_dir(repo) / "0004_broken.sql").unlink()
    assert repo.run("deploy", "dev", "--local").returncode == 0

    # the password of the database never appears in anything stackrun wrote or printed
    secret = json.loads(
        repo.client("dev", "secretsmanager").get_secret_value(
            SecretId=database["master_user_secret_arn"]
        )["SecretString"]
    )
    password = secret["password"]
    for run in (first, again, third, fourth, broken, plan):
        assert password not in run.text
    for path in (repo.root / ".stackrun").rglob("*"):
        if path.is_file() and "postgres" not in path.parts and path.stat().st_size < 5_000_000:
            assert password not in path.read_text(errors="replace"), path

    destroyed = repo.run("destroy", "dev", "--local")
    assert destroyed.returncode == 0, destroyed.text
    assert repo.client("dev", "rds").describe_db_instances()["DBInstances"] == []


def test_prod_has_deletion_protection_and_multi_az(local_repo):
    repo = local_repo
    repo.use_real_live("prod")
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
