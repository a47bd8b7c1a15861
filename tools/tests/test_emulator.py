"""The local AWS emulator: a real server process over HTTPS, plus its patches in isolation."""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509
from moto.iam.access_control import PermissionResult

from stackrun.local.emulator import (
    Emulator,
    EmulatorError,
    ensure_running,
    process,
    running_pid,
    status,
    stop,
)
from stackrun.local.emulator.ca import ensure_certificates
from stackrun.local.emulator.middleware import request_scheme
from stackrun.local.emulator.moto_patches import bucket_get_permission

REGION = "eu-west-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tls_only_policy(bucket: str, *extra: dict[str, Any]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                *extra,
            ],
        }
    )


@dataclass(frozen=True)
class Running:
    state_dir: Path
    port: int
    emulator: Emulator

    def client(self, service: str, **credentials: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.emulator.endpoint,
            verify=str(self.emulator.ca_bundle),
            region_name=REGION,
            aws_access_key_id=credentials.get("aws_access_key_id", "test"),
            aws_secret_access_key=credentials.get("aws_secret_access_key", "test"),
            aws_session_token=credentials.get("aws_session_token"),
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                connect_timeout=10,
                read_timeout=10,
            ),
        )


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    state_dir = tmp_path_factory.mktemp("emulator-state")
    port = _free_port()
    emulator = ensure_running(state_dir, port=port)
    try:
        yield Running(state_dir, port, emulator)
    finally:
        stop(state_dir)


def _create_bucket(s3: Any, name: str) -> None:
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})


# --- the real server --------------------------------------------------------------------------


def test_running_emulator_is_reused(running: Running) -> None:
    pid = running_pid(running.state_dir)
    assert pid is not None
    again = ensure_running(running.state_dir, port=running.port)
    assert again == running.emulator
    assert running_pid(running.state_dir) == pid
    assert running.emulator.endpoint == f"https://127.0.0.1:{running.port}"
    assert f"running on {running.emulator.endpoint} (pid {pid})" == status(
        running.state_dir, port=running.port
    )


def test_running_emulator_is_not_moved_to_another_port(running: Running) -> None:
    with pytest.raises(EmulatorError, match="already runs on"):
        ensure_running(running.state_dir, port=_free_port())
    assert running_pid(running.state_dir) is not None


def test_serves_https_only_with_the_state_dir_ca(running: Running) -> None:
    context = ssl.create_default_context()  # system trust store only: must not verify
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        socket.create_connection(("127.0.0.1", running.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1"),
    ):
        pass


def test_a_stalled_client_does_not_block_others(running: Running) -> None:
    with socket.create_connection(("127.0.0.1", running.port), timeout=5):
        # connected, never shakes hands: others are still served
        assert running.client("sts").get_caller_identity()["Account"] == "123456789012"


def test_tls_only_bucket_policy_allows_object_access_over_https(running: Running) -> None:
    s3 = running.client("s3")
    _create_bucket(s3, "tls-only-state")
    s3.put_bucket_policy(Bucket="tls-only-state", Policy=_tls_only_policy("tls-only-state"))

    s3.put_object(Bucket="tls-only-state", Key="dev/net/terraform.tfstate", Body=b"{}")
    body = s3.get_object(Bucket="tls-only-state", Key="dev/net/terraform.tfstate")["Body"]
    assert body.read() == b"{}"
    s3.head_object(Bucket="tls-only-state", Key="dev/net/terraform.tfstate")
    deleted = s3.delete_objects(
        Bucket="tls-only-state", Delete={"Objects": [{"Key": "dev/net/terraform.tfstate"}]}
    )
    assert not deleted.get("Errors")


def test_unconditioned_deny_still_denies_over_https(running: Running) -> None:
    s3 = running.client("s3")
    _create_bucket(s3, "deny-reads")
    deny_reads = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::deny-reads/secret/*",
    }
    s3.put_bucket_policy(Bucket="deny-reads", Policy=_tls_only_policy("deny-reads", deny_reads))
    s3.put_object(Bucket="deny-reads", Key="secret/a", Body=b"x")
    s3.put_object(Bucket="deny-reads", Key="public/a", Body=b"y")

    assert s3.get_object(Bucket="deny-reads", Key="public/a")["Body"].read() == b"y"
    with pytest.raises(ClientError) as denied:
        s3.get_object(Bucket="deny-reads", Key="secret/a")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_describe_db_parameters_returns_user_set_parameters(running: Running) -> None:
    rds = running.client("rds")
    rds.create_db_parameter_group(
        DBParameterGroupName="fleet-pg16", DBParameterGroupFamily="postgres16", Description="t"
    )
    rds.modify_db_parameter_group(
        DBParameterGroupName="fleet-pg16",
        Parameters=[
            {
                "ParameterName": "rds.force_ssl",
                "ParameterValue": "1",
                "ApplyMethod": "pending-reboot",
            }
        ],
    )
    expected = {
        "ParameterName": "rds.force_ssl",
        "ParameterValue": "1",
        "ApplyMethod": "pending-reboot",
        "Source": "user",
    }
    described = rds.describe_db_parameters(DBParameterGroupName="fleet-pg16")["Parameters"]
    assert [{key: p.get(key) for key in expected} for p in described] == [expected]
    only_user = rds.describe_db_parameters(DBParameterGroupName="fleet-pg16", Source="user")
    assert [p["ParameterName"] for p in only_user["Parameters"]] == ["rds.force_ssl"]
    defaults = rds.describe_db_parameters(DBParameterGroupName="fleet-pg16", Source="system")
    assert defaults["Parameters"] == []

    rds.reset_db_parameter_group(
        DBParameterGroupName="fleet-pg16",
        Parameters=[{"ParameterName": "rds.force_ssl", "ApplyMethod": "pending-reboot"}],
    )
    assert rds.describe_db_parameters(DBParameterGroupName="fleet-pg16")["Parameters"] == []


def test_rules_referencing_a_group_keep_their_description(running: Running) -> None:
    """What ``aws_vpc_security_group_*_rule`` with ``referenced_security_group_id`` reads back."""
    ec2 = running.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    lambda_sg, db_sg = (
        ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc_id)["GroupId"]
        for name in ("rules-lambda", "rules-db")
    )

    def postgres(group_id: str, description: str) -> list[dict[str, Any]]:
        pair = {"GroupId": group_id, "Description": description}
        return [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [pair]}]

    ingress = ec2.authorize_security_group_ingress(
        GroupId=db_sg, IpPermissions=postgres(lambda_sg, "PostgreSQL from lambda")
    )["SecurityGroupRules"]
    egress = ec2.authorize_security_group_egress(
        GroupId=lambda_sg, IpPermissions=postgres(db_sg, "PostgreSQL to db")
    )["SecurityGroupRules"]
    https = {"CidrIp": "10.30.0.0/16", "Description": "HTTPS in the VPC"}
    ec2.authorize_security_group_egress(
        GroupId=lambda_sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [https]}],
    )
    assert [rule.get("Description") for rule in ingress + egress] == [
        "PostgreSQL from lambda",
        "PostgreSQL to db",
    ]

    def described() -> dict[tuple[str, bool, str | None], str | None]:
        rules = ec2.describe_security_group_rules(
            Filters=[{"Name": "group-id", "Values": [lambda_sg, db_sg]}]
        )["SecurityGroupRules"]
        return {
            (
                rule["GroupId"],
                rule["IsEgress"],
                rule.get("ReferencedGroupInfo", {}).get("GroupId") or rule.get("CidrIpv4"),
            ): rule.get("Description")
            for rule in rules
        }

    assert described() == {
        (db_sg, False, lambda_sg): "PostgreSQL from lambda",
        (lambda_sg, True, db_sg): "PostgreSQL to db",
        (lambda_sg, True, "10.30.0.0/16"): "HTTPS in the VPC",
        (lambda_sg, True, "0.0.0.0/0"): None,  # the default egress rule
        (db_sg, True, "0.0.0.0/0"): None,
    }

    # A description changed by ModifySecurityGroupRules (what the provider updates with) wins.
    ec2.modify_security_group_rules(
        GroupId=db_sg,
        SecurityGroupRules=[
            {
                "SecurityGroupRuleId": ingress[0]["SecurityGroupRuleId"],
                "SecurityGroupRule": {
                    "IpProtocol": "tcp",
                    "FromPort": 5432,
                    "ToPort": 5432,
                    "ReferencedGroupId": lambda_sg,
                    "Description": "changed",
                },
            }
        ],
    )
    assert described()[(db_sg, False, lambda_sg)] == "changed"


def test_assumed_role_works_in_the_role_account(running: Running) -> None:
    """What the per-environment accounts of the local target rely on."""
    credentials = running.client("sts").assume_role(
        RoleArn="arn:aws:iam::222233334444:role/deploy", RoleSessionName="test"
    )["Credentials"]
    assumed = {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }
    assert running.client("sts", **assumed).get_caller_identity()["Account"] == "222233334444"
    _create_bucket(running.client("s3", **assumed), "account-b-state")
    default_buckets = running.client("s3").list_buckets()["Buckets"]
    assert "account-b-state" not in {bucket["Name"] for bucket in default_buckets}


# --- lifecycle --------------------------------------------------------------------------------


def test_stop_stops_the_emulator(tmp_path: Path) -> None:
    port = _free_port()
    ensure_running(tmp_path, port=port)
    pid = running_pid(tmp_path)
    assert pid is not None

    assert stop(tmp_path) is True
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (tmp_path / "emulator.pid").exists()
    assert running_pid(tmp_path) is None
    assert status(tmp_path, port=port) == "not running"
    assert stop(tmp_path) is False


def test_emulator_that_dies_on_start_is_reported_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "_SERVER_MODULE", "stackrun.local.emulator.no_such_module")
    with pytest.raises(EmulatorError, match=r"exited with status \d+(.|\n)*no_such_module"):
        ensure_running(tmp_path, port=_free_port(), timeout=10)
    assert not (tmp_path / "emulator.pid").exists()


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "example.com"])
def test_non_loopback_host_is_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(EmulatorError, match="loopback"):
        ensure_running(tmp_path, host=host, port=_free_port())
    assert not (tmp_path / "emulator.pid").exists()


def test_port_used_by_another_program_is_reported(tmp_path: Path) -> None:
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen(1)
        port = foreign.getsockname()[1]
        with pytest.raises(EmulatorError, match=f"port {port} .*another program"):
            ensure_running(tmp_path, port=port, timeout=5)
        assert status(tmp_path, port=port).startswith("not running; port")
    assert not (tmp_path / "emulator.pid").exists()


# --- the bucket-policy patch in isolation -----------------------------------------------------


def _bucket(*statements: dict[str, Any]) -> SimpleNamespace:
    policy = {"Version": "2012-10-17", "Statement": list(statements)}
    return SimpleNamespace(policy=json.dumps(policy).encode())


DENY_INSECURE = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
OBJECT = "arn:aws:s3:::b/dev/terraform.tfstate"


@pytest.mark.parametrize(
    ("scheme", "expected"),
    [("http", PermissionResult.DENIED), ("https", PermissionResult.NEUTRAL)],
)
def test_secure_transport_condition_follows_request_scheme(
    scheme: str, expected: PermissionResult
) -> None:
    with request_scheme(scheme):
        assert bucket_get_permission(_bucket(DENY_INSECURE), "s3:PutObject", OBJECT) == expected


@pytest.mark.parametrize(
    "condition",
    [
        {"Bool": {"aws:SecureTransport": False}},
        {"Bool": {"AWS:SecureTransport": ["false"]}},
        {"BoolIfExists": {"aws:SecureTransport": "FALSE"}},
    ],
)
def test_secure_transport_condition_spellings(condition: dict[str, Any]) -> None:
    statement = {**DENY_INSECURE, "Condition": condition}
    with request_scheme("http"):
        assert bucket_get_permission(_bucket(statement), "s3:GetObject", OBJECT) == (
            PermissionResult.DENIED
        )
    with request_scheme("https"):
        assert bucket_get_permission(_bucket(statement), "s3:GetObject", OBJECT) == (
            PermissionResult.NEUTRAL
        )


def test_unconditioned_deny_denies_whatever_the_scheme() -> None:
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": OBJECT}
    for scheme in ("http", "https", None):
        with request_scheme(scheme):
            assert bucket_get_permission(_bucket(deny), "s3:GetObject", OBJECT) == (
                PermissionResult.DENIED
            )


def test_matching_secure_transport_allow_applies() -> None:
    allow_tls = {
        **DENY_INSECURE,
        "Effect": "Allow",
        "Condition": {"Bool": {"aws:SecureTransport": "true"}},
    }
    with request_scheme("https"):
        assert bucket_get_permission(_bucket(allow_tls), "s3:GetObject", OBJECT) == (
            PermissionResult.PERMITTED
        )
    with request_scheme("http"):
        assert bucket_get_permission(_bucket(allow_tls), "s3:GetObject", OBJECT) == (
            PermissionResult.NEUTRAL
        )


# --- certificates -----------------------------------------------------------------------------


def test_certificates_are_generated_once_and_keys_are_private(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path / "tls")
    contents = {path: path.read_bytes() for path in vars(first).values()}
    assert ensure_certificates(tmp_path / "tls") == first
    assert {path: path.read_bytes() for path in vars(first).values()} == contents
    assert first.server_key.stat().st_mode & 0o777 == 0o600
    assert first.ca_key.stat().st_mode & 0o777 == 0o600

    ca = x509.load_pem_x509_certificate(first.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(first.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} >= {"127.0.0.1", "::1"}
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 3650


def test_server_certificate_is_reissued_from_the_same_ca(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path)
    ca_before = first.ca_cert.read_bytes()
    first.server_cert.unlink()
    again = ensure_certificates(tmp_path, extra_hosts=["127.0.0.2"])
    assert again.ca_cert.read_bytes() == ca_before
    server = x509.load_pem_x509_certificate(again.server_cert.read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.2" in {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}


def test_rds_managed_secret_holds_the_master_username_and_a_generated_password(
    running: Running,
) -> None:
    rds = running.client("rds")
    secrets = running.client("secretsmanager")
    created = []
    for identifier in ("secret-one", "secret-two"):
        instance = rds.create_db_instance(
            DBInstanceIdentifier=identifier,
            DBInstanceClass="db.t4g.micro",
            Engine="postgres",
            MasterUsername="fleet_admin",
            ManageMasterUserPassword=True,
            AllocatedStorage=20,
        )["DBInstance"]
        value = secrets.get_secret_value(SecretId=instance["MasterUserSecret"]["SecretArn"])
        created.append(json.loads(value["SecretString"]))
    assert [c["username"] for c in created] == ["fleet_admin", "fleet_admin"]
    passwords = {c["password"] for c in created}
    assert len(passwords) == 2
    assert all(len(p) >= 20 and p != "P@55w0rd!" for p in passwords)


def test_a_new_rds_instance_gets_the_regions_default_ca_unless_it_names_one(
    running: Running,
) -> None:
    """What the AWS provider compares `ca_cert_identifier` with after CreateDBInstance (which it
    sends without the CA): the CA in the create's answer. moto's `rds-ca-default` made every
    pinned instance pay a ModifyDBInstance and a second wait."""
    rds = running.client("rds")
    common = {
        "DBInstanceClass": "db.t4g.micro",
        "Engine": "postgres",
        "MasterUsername": "fleet_admin",
        "MasterUserPassword": "not-used-here-1",
        "AllocatedStorage": 20,
    }
    created = rds.create_db_instance(DBInstanceIdentifier="ca-default", **common)["DBInstance"]
    assert created["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"
    named = rds.create_db_instance(
        DBInstanceIdentifier="ca-named", CACertificateIdentifier="rds-ca-ecc384-g1", **common
    )["DBInstance"]
    assert named["CACertificateIdentifier"] == "rds-ca-ecc384-g1"
    # each instance its own resource id (patch p; moto gives all one), which names the folder
    # of the PostgreSQL server behind it
    ids = {created["DbiResourceId"], named["DbiResourceId"]}
    assert len(ids) == 2 and all(re.fullmatch(r"db-[A-Z0-9]{26}", i) for i in ids), ids
    described = {
        db["DBInstanceIdentifier"]: db["CACertificateIdentifier"]
        for db in rds.describe_db_instances()["DBInstances"]
        if db["DBInstanceIdentifier"] in {"ca-default", "ca-named"}
    }
    assert described == {"ca-default": "rds-ca-rsa2048-g1", "ca-named": "rds-ca-ecc384-g1"}
    modified = rds.modify_db_instance(
        DBInstanceIdentifier="ca-default",
        CACertificateIdentifier="rds-ca-rsa4096-g1",
        ApplyImmediately=True,
    )["DBInstance"]
    assert modified["CACertificateIdentifier"] == "rds-ca-rsa4096-g1"


def test_a_retry_of_a_completed_request_gets_the_first_answer(running: Running) -> None:
    """An SDK retry (same invocation id, attempt 2) of a create that succeeded is not re-run."""
    import ssl
    import urllib.request

    body = (
        "Action=CreateRole&RoleName=retried-role&AssumeRolePolicyDocument=%7B%7D&Version=2010-05-08"
    )
    context = ssl.create_default_context(cafile=str(running.emulator.ca_bundle))

    def send(attempt: int, invocation: str) -> tuple[int, str]:
        request = urllib.request.Request(
            running.emulator.endpoint + "/",
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": (
                    "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, "
                    "SignedHeaders=host, Signature=x"
                ),
                "amz-sdk-invocation-id": invocation,
                "amz-sdk-request": f"attempt={attempt}; max=3",
            },
        )
        try:
            with urllib.request.urlopen(request, context=context) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    first = send(1, "11111111-aaaa-bbbb-cccc-000000000001")
    assert first[0] == 200, first
    retried = send(2, "11111111-aaaa-bbbb-cccc-000000000001")
    assert retried == first
    # a new operation (another invocation id) really runs, and meets the existing role
    again = send(1, "11111111-aaaa-bbbb-cccc-000000000002")
    assert again[0] == 409, again
    assert "EntityAlreadyExists" in again[1]
