"""The HTTP APIs of one locally deployed environment, served on loopback.

For each request: the API's routes, integrations and stage are read from the emulated API
Gateway; the selected route's integration names a function alias, which is resolved to the
version it points at now; that version's code (from the emulator) runs in its own runtime
process (see runtime.py) with the version's environment variables, timeout and memory size,
credentials of its execution role, the emulator as its AWS endpoint and, when it talks to the
environment's database, the local PostgreSQL behind the emulated RDS instance.

A route with a JWT authorizer is authorized first (authorizer.py), as API Gateway does: a
request without a valid token is answered 401 (403 without one of the route's scopes) and
nothing is invoked.

What is read from the emulator is cached until its configuration changes (config_cache.py);
concurrent requests to one function run in parallel execution environments, up to its
concurrency limit (environments.py); the server's threads are bounded (bounded_server.py).
"""

from __future__ import annotations

import functools
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from stackrun.local.api import authorizer, gateway
from stackrun.local.api.bounded_server import BoundedHTTPServer
from stackrun.local.api.config_cache import GenerationWatch, ReadThroughCache
from stackrun.local.api.environments import (
    DEFAULT_CONCURRENCY,
    EnvironmentPool,
    Limit,
    Throttled,
)
from stackrun.local.api.functions import (
    FunctionVersion,
    LocalApiError,
    host_architecture,
    resolve,
    runtime_python,
    split_function_arn,
    task_root,
)
from stackrun.local.api.logs import LogShipper, lambda_stream_name
from stackrun.local.api.metrics import InvocationRecord, MetricPublisher
from stackrun.local.api.routing import RandomSource
from stackrun.local.api.runtime import FunctionProcess, Outcome, ProcessSpec, clean_environment
from stackrun.paths import local_functions_dir

# API Gateway's integration timeout for HTTP APIs.
INTEGRATION_TIMEOUT_SECONDS = 30
# Answered by the server itself (never routed to a function): is this server up?
HEALTH_PATH = "/_stackrun/health"


@dataclass
class LocalContext:
    """What every request of one environment needs: clients, paths, running environments."""

    environment_name: str
    account_id: str
    region: str
    endpoint: str
    ca_bundle: Path
    session: Any  # boto3 session in the environment's account (its deploy role)
    client_args: dict[str, Any]
    cache_dir: Path  # .stackrun/local/<env>
    runtimes_dir: Path
    database: dict[str, Any] | None  # emulated address -> local server (database.json)
    console: Callable[[str], None]
    # The draw that picks a weighted alias's version per request (routing.py).
    random_source: RandomSource = random.random
    # issuer -> its JSON Web Key Set, for JWT authorizers. Default: the issuer's OpenID
    # configuration and jwks_uri, fetched through the emulator (authorizer.discover_jwks).
    jwks_fetcher: authorizer.JwksFetcher | None = None
    # Environments per function without reserved concurrency (environments.py).
    default_concurrency: int = DEFAULT_CONCURRENCY
    # False: read routes, aliases, ... from the emulator with every request (the benchmark's
    # baseline; nothing else turns it off).
    cache_configuration: bool = True

    def __post_init__(self) -> None:
        watch = GenerationWatch(self.endpoint, self.ca_bundle)
        enabled = self.cache_configuration
        self.apigateway = ReadThroughCache(self.client("apigatewayv2"), watch, enabled)
        self.lambda_ = ReadThroughCache(self.client("lambda"), watch, enabled)
        self.environments = EnvironmentPool(wait_seconds=INTEGRATION_TIMEOUT_SECONDS)
        self.shipper = LogShipper(self.client("logs"), self.console)
        self.metrics = MetricPublisher(self.client("cloudwatch"), self.console)
        self.warned_architecture: set[str] = set()
        fetcher = self.jwks_fetcher or functools.partial(
            authorizer.discover_jwks, endpoint=self.endpoint, ca_bundle=self.ca_bundle
        )
        self.jwt_keys = authorizer.KeyCache(fetcher)

    def client(self, service: str, session: Any = None) -> Any:
        return (session or self.session).client(service, **self.client_args)

    # -- execution environments ------------------------------------------------------------

    def _new_process(self, function: FunctionVersion) -> FunctionProcess:
        """A new execution environment of `function`, with a log stream of its own."""
        stream = lambda_stream_name(function.version)
        return FunctionProcess(
            self._process_spec(function, stream), self._function_log(function, stream)
        )

    def concurrency_limit(self, name: str) -> Limit:
        """The function's reserved concurrency (throttled beyond), else the local default."""
        reserved = self.lambda_.get_function_concurrency(FunctionName=name).get(
            "ReservedConcurrentExecutions"
        )
        if reserved is None:
            return Limit(self.default_concurrency, throttles=False)
        return Limit(int(reserved), throttles=True)

    def _process_spec(self, function: FunctionVersion, stream: str) -> ProcessSpec:
        if function.architecture != host_architecture() and function.name not in (
            self.warned_architecture
        ):
            self.warned_architecture.add(function.name)
            self.console(
                f"[{function.name}] note: built for {function.architecture}, running on "
                f"{host_architecture()}: native extensions in the zip cannot load here "
                "(pure-Python code and fallbacks run as in Lambda)"
            )
        root = task_root(function, local_functions_dir(self.cache_dir), self.ca_bundle)
        return ProcessSpec(
            name=function.name,
            version=function.version,
            function_arn=function.invoked_arn,
            python=runtime_python(function.runtime, self.runtimes_dir),
            task_root=root,
            handler=function.handler,
            timeout_seconds=function.timeout,
            memory_mb=function.memory_size,
            environment=self._environment(function, root, stream),
        )

    def _function_log(self, function: FunctionVersion, stream: str) -> Callable[[str], None]:
        return self.shipper.sink(
            function.log_group, stream, f"[{function.name}:{function.version}]"
        )

    def _environment(self, function: FunctionVersion, root: Path, stream: str) -> dict[str, str]:
        """What Lambda sets for a function, with the emulator and local database behind it."""
        sts = self.client("sts")
        credentials = sts.assume_role(RoleArn=function.role, RoleSessionName=function.name[:64])[
            "Credentials"
        ]
        variables = dict(function.environment)
        database = self.database or {}
        if database and variables.get("DB_HOST") == database.get("emulated_address"):
            # The emulated RDS instance is an API record; its clients reach the local server,
            # verify-full against the CA that issued its certificate (the emulator's, standing in
            # for the RDS CA bundle the function ships).
            variables.update(
                DB_HOST=str(database["host"]),
                DB_PORT=str(database["port"]),
                DB_SSLMODE="verify-full",
                # database.json of an older deploy has no ca_bundle: it is the emulator's CA
                DB_CA_BUNDLE=str(database.get("ca_bundle") or self.ca_bundle),
            )
        variables.update(
            _HANDLER=function.handler,
            LAMBDA_TASK_ROOT=str(root),
            LAMBDA_RUNTIME_DIR=str(root),
            AWS_EXECUTION_ENV=f"AWS_Lambda_{function.runtime}",
            AWS_LAMBDA_FUNCTION_NAME=function.name,
            AWS_LAMBDA_FUNCTION_VERSION=function.version,
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(function.memory_size),
            AWS_LAMBDA_LOG_GROUP_NAME=function.log_group,
            AWS_LAMBDA_LOG_STREAM_NAME=stream,
            AWS_LAMBDA_INITIALIZATION_TYPE="on-demand",
            AWS_REGION=self.region,
            AWS_DEFAULT_REGION=self.region,
            AWS_ACCESS_KEY_ID=credentials["AccessKeyId"],
            AWS_SECRET_ACCESS_KEY=credentials["SecretAccessKey"],
            AWS_SESSION_TOKEN=credentials["SessionToken"],
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_CA_BUNDLE=str(self.ca_bundle),
            AWS_EC2_METADATA_DISABLED="true",
            PYTHONPATH=str(root),
            PYTHONDONTWRITEBYTECODE="1",
        )
        variables.setdefault("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR")
        return clean_environment(variables)

    def invoke(self, function: FunctionVersion, event: dict[str, Any]) -> Outcome:
        """Run `event` in an environment of the version; its metrics go to CloudWatch.

        Throttled: the function runs its reserved concurrency (environments.py).
        """
        trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
        limit = self.concurrency_limit(function.name)
        create = functools.partial(self._new_process, function)
        with self.environments.lease(function, limit, create) as process:
            started = datetime.now(UTC)
            outcome = process.invoke(json.dumps(event).encode(), trace)
        self.metrics.record(
            InvocationRecord(
                function_name=function.name,
                qualifier=split_function_arn(function.invoked_arn)[1],
                executed_version=function.version,
                started=started,
                duration_ms=outcome.duration_ms,
                failed=outcome.failed,
            )
        )
        return outcome

    def close(self) -> None:
        self.environments.close()
        self.metrics.close()
        self.shipper.close()


# ---------------------------------------------------------------------------------------------


@dataclass
class ServedApi:
    api_id: str
    name: str
    server: BoundedHTTPServer

    @property
    def url(self) -> str:
        # bound to a host name or address string (socketserver also allows bytes)
        host, port = str(self.server.server_address[0]), self.server.server_address[1]
        return f"http://{host}:{port}/"


def serve_api(context: LocalContext, api_id: str, name: str, port: int) -> ServedApi:
    """Start serving one HTTP API on 127.0.0.1:`port` (0: any free port), in the background."""
    handler = _handler_class(context, api_id)
    try:
        server = BoundedHTTPServer(("127.0.0.1", port), handler)
    except OSError:
        server = BoundedHTTPServer(("127.0.0.1", 0), handler)  # the old port is taken
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return ServedApi(api_id, name, server)


def _handler_class(context: LocalContext, api_id: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "stackrun-local-api"
        # Headers and body go out in two writes: with Nagle's algorithm the body waits for
        # the client's delayed ACK of the headers (40 ms on Linux).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one access line per request is printed by handle_request

        def do_GET(self) -> None:
            self.handle_request()

        do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

        def handle_request(self) -> None:
            if self.path == HEALTH_PATH:
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            started = time.monotonic()
            request_id = uuid.uuid4().hex[:16] + "="
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            raw_path, _, raw_query = self.path.partition("?")
            request = gateway.HttpRequest(
                method=self.command,
                raw_path=raw_path,
                raw_query=raw_query,
                headers=list(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
            )
            status, headers, data, served_by, error = _answer(context, api_id, request, request_id)
            headers = {**headers, "apigw-requestid": request_id, "content-length": str(len(data))}
            if served_by:
                headers["x-stackrun-function"] = served_by
            # The access line is printed before the answer is sent, so a caller that has its
            # answer also finds the line (tests read the console right after a request).
            millis = (time.monotonic() - started) * 1000
            note = f" ({served_by})" if served_by else ""
            if error:
                note += f" {error}"
            context.console(
                f"[api {api_id}] {self.command} {self.path} -> {status} in {millis:.0f} ms{note}"
            )
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

    return Handler


def _answer(
    context: LocalContext, api_id: str, request: gateway.HttpRequest, request_id: str
) -> tuple[int, dict[str, str], bytes, str, str]:
    """(status, headers, body, function:version, error note) for one request."""
    try:
        routes, integrations, stage = _api_description(context, api_id)
    except Exception as error:  # the emulator went away or the API was destroyed
        message = json.dumps({"message": f"local API unavailable: {error}"}).encode()
        return 502, {"content-type": "application/json"}, message, "", str(error)
    path = request.raw_path
    if stage != "$default":
        prefix = f"/{stage}"
        if not (path == prefix or path.startswith(prefix + "/")):
            return (*gateway.NOT_FOUND, "", "")
        path = path[len(prefix) :] or "/"
    matched = gateway.match_route(routes, request.method, path)
    if matched is None:
        return (*gateway.NOT_FOUND, "", "")
    route, parameters = matched
    try:
        decision = _authorize(context, api_id, route, request)
    except Exception as error:  # the authorizer cannot be read or evaluated: never invoke
        context.console(f"[api {api_id}] {route.key}: authorizer: {error}")
        return (*gateway.INTERNAL_ERROR, "", f"authorizer: {error}"[:300])
    if decision is not None and not decision.allowed:
        return (*decision.response(), "", f"({decision.reason})")
    integration = integrations.get(route.integration_id, {})
    if integration.get("PayloadFormatVersion") != "2.0":
        note = f"integration of {route.key} is not payload format 2.0"
        return (*gateway.INTERNAL_ERROR, "", note)
    try:
        reference = gateway.function_of_integration(integration["IntegrationUri"])
        function = resolve(context.lambda_, reference, context.random_source)
        event = gateway.build_event(
            request,
            route,
            parameters,
            api_id=api_id,
            stage=stage,
            account_id=context.account_id,
            domain=f"{api_id}.execute-api.{context.region}.amazonaws.com",
            request_id=request_id,
            authorizer=decision.context if decision is not None else None,
        )
        outcome = context.invoke(function, event)
    except LocalApiError as error:  # API Gateway answers a throttled Lambda with a 500 too
        note = ("throttled: " if isinstance(error, Throttled) else "") + str(error)
        context.console(f"[api {api_id}] {route.key}: {note}")
        return (*gateway.INTERNAL_ERROR, "", note.splitlines()[0][:300])
    except Exception as error:  # an AWS call or the code fetch failed: answer, and say why
        context.console(f"[api {api_id}] {route.key}: {type(error).__name__}: {error}")
        return (*gateway.INTERNAL_ERROR, "", f"{type(error).__name__}: {error}"[:300])
    served_by = f"{function.name}:{function.version}"
    if outcome.error is not None:
        note = f"{outcome.error.get('errorType')}: {outcome.error.get('errorMessage')}"
        return (*gateway.INTERNAL_ERROR, served_by, note[:300])
    if outcome.duration_ms > INTEGRATION_TIMEOUT_SECONDS * 1000:
        return (*gateway.SERVICE_UNAVAILABLE, served_by, "integration timeout")
    status, headers, data = gateway.http_response(outcome.payload or b"")
    return status, headers, data, served_by, ""


def _authorize(
    context: LocalContext, api_id: str, route: gateway.Route, request: gateway.HttpRequest
) -> authorizer.Decision | None:
    """API Gateway's authorization of `request` on `route`; None: the route has none (NONE).

    The authorizer is read with GetAuthorizer (the emulator's apigatewayv2 has no
    GetAuthorizers; cached until the configuration changes); the issuer's keys come from
    `context.jwt_keys` (cached).
    """
    if route.authorization_type == "NONE":
        return None
    if route.authorization_type != "JWT":
        raise authorizer.AuthorizerConfigError(
            f"authorization type {route.authorization_type} is not served locally (only JWT)"
        )
    item = context.apigateway.get_authorizer(ApiId=api_id, AuthorizerId=route.authorizer_id)
    return authorizer.authorize(
        authorizer.JwtAuthorizer.from_api(item),
        route.authorization_scopes,
        request.headers,
        context.jwt_keys,
        raw_query=request.raw_query,
    )


def _api_description(
    context: LocalContext, api_id: str
) -> tuple[list[gateway.Route], dict[str, dict[str, Any]], str]:
    client = context.apigateway
    routes = [
        gateway.Route.from_api(item) for item in client.get_routes(ApiId=api_id).get("Items", [])
    ]
    integrations = {
        item["IntegrationId"]: item
        for item in client.get_integrations(ApiId=api_id).get("Items", [])
    }
    stages = [item["StageName"] for item in client.get_stages(ApiId=api_id).get("Items", [])]
    stage = "$default" if "$default" in stages or not stages else stages[0]
    return routes, integrations, stage


def routed_functions(context: LocalContext, api_id: str) -> list[str]:
    """The function references the integrations of an API point at."""
    _, integrations, _ = _api_description(context, api_id)
    return sorted(
        {
            gateway.function_of_integration(item["IntegrationUri"])
            for item in integrations.values()
            if re.search(r":function:", item.get("IntegrationUri", ""))
        }
    )
