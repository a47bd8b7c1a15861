"""Where a run goes: real AWS, or the local emulator.

The same Environment deploys to either. The only differences are gathered here: endpoints and
the CA bundle for terraform's provider and backend, the credentials handed to subprocesses, and
the boto3 clients stackrun itself uses. In both cases stackrun and terraform assume the
environment's deploy role, so each environment lands in its own (real or emulated) account.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from stackrun.config import Environment

# Services whose endpoints point at the emulator when running locally. Provider endpoint keys
# (hashicorp/aws 5.x names).
LOCAL_SERVICES = (
    "apigatewayv2",
    "cloudwatch",
    "dynamodb",
    "ec2",
    "iam",
    "kms",
    "lambda",
    "logs",
    "rds",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
    "sts",
    "xray",
)
BACKEND_SERVICES = ("s3", "dynamodb", "sts", "iam")

# Placeholder credentials for the emulator. They are not secrets; real credentials are removed
# from the environment of local runs so nothing real can reach the emulator or vice versa.
LOCAL_ACCESS_KEY = "stackrun-local"
LOCAL_SECRET_KEY = "stackrun-local"
AWS_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_ENDPOINT_URL",
)

SESSION_NAME = "stackrun"


@dataclass(frozen=True)
class Target:
    """Real AWS (endpoint None) or the local emulator at `endpoint` trusting `ca_bundle`."""

    endpoint: str | None = None
    ca_bundle: Path | None = None

    @property
    def local(self) -> bool:
        return self.endpoint is not None

    @property
    def name(self) -> str:
        return "local" if self.local else "aws"

    # ---- terraform --------------------------------------------------------------------------

    def subprocess_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment variables for terraform (and anything else stackrun starts)."""
        env = dict(os.environ if base is None else base)
        if self.local:
            for name in AWS_CREDENTIAL_VARIABLES:
                env.pop(name, None)
            env.update(
                AWS_ACCESS_KEY_ID=LOCAL_ACCESS_KEY,
                AWS_SECRET_ACCESS_KEY=LOCAL_SECRET_KEY,
                AWS_EC2_METADATA_DISABLED="true",
                AWS_CA_BUNDLE=str(self.ca_bundle),
            )
        return env

    def provider_settings(self) -> dict[str, Any]:
        """Extra arguments of the aws provider block for this target."""
        if not self.local:
            return {}
        return {
            "endpoints": [{service: self.endpoint for service in LOCAL_SERVICES}],
            "s3_use_path_style": True,
            "custom_ca_bundle": str(self.ca_bundle),
            "skip_metadata_api_check": True,
        }

    def backend_settings(self) -> dict[str, Any]:
        """Extra arguments of the s3 backend block for this target."""
        if not self.local:
            return {}
        return {
            "endpoints": {service: self.endpoint for service in BACKEND_SERVICES},
            "use_path_style": True,
            "custom_ca_bundle": str(self.ca_bundle),
            "skip_metadata_api_check": True,
        }

    # ---- boto3 ------------------------------------------------------------------------------

    def client(self, environment: Environment, service: str, assume_role: bool = True) -> Any:
        """A boto3 client in the environment's account (through its deploy role)."""
        return self.session(environment, assume_role).client(service, **self.client_args())

    def session(self, environment: Environment, assume_role: bool = True) -> boto3.Session:
        base = self.base_session(environment.region)
        if not assume_role:
            return base
        sts = base.client("sts", **self.client_args())
        credentials = sts.assume_role(
            RoleArn=environment.deploy_role_arn, RoleSessionName=SESSION_NAME
        )["Credentials"]
        return boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=environment.region,
        )

    def base_session(self, region: str) -> boto3.Session:
        if self.local:
            return boto3.Session(
                aws_access_key_id=LOCAL_ACCESS_KEY,
                aws_secret_access_key=LOCAL_SECRET_KEY,
                region_name=region,
            )
        return boto3.Session(region_name=region)

    def client_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"config": Config(retries={"max_attempts": 4, "mode": "standard"})}
        if self.local:
            args.update(endpoint_url=self.endpoint, verify=str(self.ca_bundle))
        return args
