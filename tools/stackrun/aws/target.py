"""Where a run goes: real AWS, or the local emulator.

The same Environment deploys to either. The only differences are gathered here: endpoints and
the CA bundle for terraform's provider and backend, the credentials handed to subprocesses, and
the boto3 clients stackrun itself uses. In both cases stackrun and terraform assume the role
of the run (`Target.role`: the environment's deploy role, its plan role for `plan`, or none for
the account baseline, applied with the caller's administrator credentials), so each
environment lands in its own (real or emulated) account.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypedDict

import boto3
import botocore.session
from botocore.config import Config

from stackrun.config import Environment

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
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)

SESSION_NAME = "stackrun"
# The stand-in for an account administrator's own credentials in an emulated account.
LOCAL_ADMIN_ROLE = "stackrun-local-administrator"
# A cached role session is used while it has more than this left (seconds); then assumed again.
CREDENTIALS_MARGIN = 600


class RoleCredentials(TypedDict):
    """An assumed role's credentials, as boto3.Session takes them."""

    aws_access_key_id: str
    aws_secret_access_key: str
    aws_session_token: str


@dataclass
class _ClientCache:
    lock: threading.Lock = field(default_factory=threading.Lock)
    credentials: dict[tuple[Any, ...], tuple[RoleCredentials, float]] = field(default_factory=dict)
    clients: dict[tuple[Any, ...], tuple[Any, float]] = field(default_factory=dict)
    # One boto3 session per credentials: its clients share the loaded endpoint and service
    # data (a session per client cost about 60 ms more per client)
    sessions: dict[tuple[Any, ...], boto3.Session] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """Real AWS (endpoint None) or the local emulator at `endpoint` trusting `ca_bundle`."""

    endpoint: str | None = None
    ca_bundle: Path | None = None
    # Which of the environment's roles this run acts as: "deploy", "plan" or "admin" (no role
    # assumed; config.ROLES). The one place that choice is made for terraform and boto3 alike.
    role: str = "deploy"
    # Role credentials and clients of this target, shared by the whole run (one command).
    _cache: _ClientCache = field(default_factory=lambda: _ClientCache(), compare=False, repr=False)

    @property
    def local(self) -> bool:
        return self.endpoint is not None

    @property
    def name(self) -> str:
        return "local" if self.local else "aws"

    def role_arn(self, environment: Environment) -> str | None:
        """The role terraform and stackrun assume in this run (None: the caller's own)."""
        arn = environment.role_arn(self.role)
        if arn is None and self.local:
            # The emulator's base credentials act in moto's default account, not in the
            # environment's: an administrator of an emulated account is a session of a role
            # in that account (moto does not check that the role exists).
            return f"arn:aws:iam::{environment.account_id}:role/{LOCAL_ADMIN_ROLE}"
        return arn

    def as_role(self, role: str) -> Target:
        """The same target acting as another role (its own role sessions and clients)."""
        return replace(self, role=role, _cache=_ClientCache())

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
                # Every AWS API the provider calls goes to the emulator. An environment
                # variable, not the provider's `endpoints` block: validating that block costs
                # the provider about 2 s of CPU each time terraform validates its
                # configuration (several times per plan or apply); see docs/performance.md.
                AWS_ENDPOINT_URL=str(self.endpoint),
            )
            for name in [name for name in env if name.startswith("AWS_ENDPOINT_URL_")]:
                del env[name]  # a service-specific override would win over the emulator
        return env

    def provider_settings(self) -> dict[str, Any]:
        """Extra arguments of the aws provider block for this target."""
        if not self.local:
            return {}
        return {
            # endpoints: AWS_ENDPOINT_URL in subprocess_env
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

    def client(
        self, environment: Environment, service: str, assume_role: bool = True, **config: Any
    ) -> Any:
        """A boto3 client in the environment's account (through the run's role); `config`:
        botocore Config options over client_args' (a client of its own per set of options).

        Clients are shared by everything that uses this Target (one per command; boto3
        clients are thread-safe) while the role credentials behind them have more than
        CREDENTIALS_MARGIN left: a run assumes the deploy role once, not once per call site.
        """
        options = tuple(sorted((name, repr(value)) for name, value in config.items()))
        key = (self.role_arn(environment), environment.region, assume_role, service, options)
        credentials, expires = self._credentials(environment, assume_role)
        with self._cache.lock:  # boto3 sessions are not thread-safe: one client at a time
            cached = self._cache.clients.get(key)
            if cached is not None and cached[1] == expires:
                return cached[0]
            session = self._shared_session(credentials, environment.region)
            # boto3-stubs type a client per literal service name; `service` is a run-time name
            # (callers get Any, as from boto3 itself)
            args = self.client_args()
            if config:
                args["config"] = args["config"].merge(Config(**config))
            client = session.client(service, **args)  # type: ignore[call-overload]
            self._cache.clients[key] = (client, expires)
        return client

    def session(self, environment: Environment, assume_role: bool = True) -> boto3.Session:
        """A new session with the run role's (cached) credentials, for the caller alone."""
        credentials, _ = self._credentials(environment, assume_role)
        return self._session_from(credentials, environment.region)

    def _credentials(
        self, environment: Environment, assume_role: bool
    ) -> tuple[RoleCredentials | None, float]:
        """The run role's credentials (None: the base credentials) and their expiry."""
        role_arn = self.role_arn(environment)
        if not assume_role or role_arn is None:
            return None, float("inf")
        key = (role_arn, environment.region)
        with self._cache.lock:
            cached = self._cache.credentials.get(key)
            if cached is not None and cached[1] - time.time() > CREDENTIALS_MARGIN:
                return cached
        with self._cache.lock:
            session = self._shared_session(None, environment.region)
            sts = session.client("sts", **self.client_args())
        reply = sts.assume_role(RoleArn=role_arn, RoleSessionName=SESSION_NAME)
        entry: tuple[RoleCredentials, float] = (
            {
                "aws_access_key_id": reply["Credentials"]["AccessKeyId"],
                "aws_secret_access_key": reply["Credentials"]["SecretAccessKey"],
                "aws_session_token": reply["Credentials"]["SessionToken"],
            },
            reply["Credentials"]["Expiration"].timestamp(),
        )
        with self._cache.lock:
            self._cache.credentials[key] = entry
        return entry

    def _shared_session(self, credentials: RoleCredentials | None, region: str) -> boto3.Session:
        """The run's session for these credentials (call with the cache's lock held)."""
        key = (tuple(sorted(credentials.items())) if credentials else None, region)
        session = self._cache.sessions.get(key)
        if session is None:
            session = self._cache.sessions[key] = self._session_from(credentials, region)
        return session

    def _session_from(self, credentials: RoleCredentials | None, region: str) -> boto3.Session:
        if credentials is None:
            return self.base_session(region)
        return new_session(**credentials, region_name=region)

    def base_session(self, region: str) -> boto3.Session:
        if self.local:
            return new_session(
                aws_access_key_id=LOCAL_ACCESS_KEY,
                aws_secret_access_key=LOCAL_SECRET_KEY,
                region_name=region,
            )
        return new_session(region_name=region)

    def client_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"config": Config(retries={"max_attempts": 4, "mode": "standard"})}
        if self.local:
            args.update(endpoint_url=self.endpoint, verify=str(self.ca_bundle))
        return args


# ---- one data loader for every session ---------------------------------------------------------

_loader_lock = threading.Lock()
_loader: Any = None  # the process's botocore data loader, once the first session made it


def new_session(**arguments: Any) -> boto3.Session:
    """A boto3 session (arguments as boto3.Session takes them) whose botocore data loader is
    the process's one: the service models and endpoint rules are parsed once per process,
    not once per session (several sessions per run: one per role, and per credentials). It
    also spares the garbage collector: a dropped session's parsed models are about 100,000
    objects in reference cycles, which took a quarter of a second to collect at exit."""
    global _loader
    core = botocore.session.get_session()
    with _loader_lock:
        if _loader is None:
            _loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _loader)
        session = boto3.Session(botocore_session=core, **arguments)
        # boto3 adds its own data folder to the loader's search path, once per session
        paths = core.get_component("data_loader").search_paths
        paths[:] = list(dict.fromkeys(paths))
    return session
