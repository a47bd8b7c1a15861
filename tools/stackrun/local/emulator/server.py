"""The local AWS emulator: moto's server over HTTPS, with a few emulator gaps closed.

Run as::

    python -m stackrun.local.emulator.server --host 127.0.0.1 --port 4566 --cert C --key K

The app is built the way ``moto.server.main`` builds it (``DomainDispatcherApplication`` over
``create_backend_app``, moto's request handler, werkzeug's threaded server); the differences
are listed here. Each one closes a gap between moto (5.2.x) and AWS that would otherwise make
a module that is right for AWS fail, or never converge, against the emulator. None of them
changes what the modules do in real AWS.

HTTPS only
    The server speaks TLS with a certificate from the state directory's private CA
    (``ca.py``). This is what lets a TLS-only bucket policy (below) be evaluated honestly:
    every request the emulator sees really did arrive over TLS. The TLS handshake is deferred
    from ``accept()`` (werkzeug's accepting thread) to the request's own thread, so a client
    that connects and stalls cannot block every other client.

a. S3 bucket-policy conditions on ``aws:SecureTransport``
    moto enforces bucket-policy statements whose principal is ``"*"`` on object operations
    (``S3Response._key_response`` -> ``FakeBucket.get_permission``) but ignores their
    conditions: it has no condition values to compare, and a condition without values passes.
    The usual TLS-only statement (Deny, Principal ``*``, ``s3:*``, Condition
    ``Bool aws:SecureTransport = "false"``) therefore denies every object request, over HTTP
    and HTTPS alike, and locks Terraform out of its own state bucket. Here
    ``FakeBucket.get_permission`` evaluates ``Bool``/``BoolIfExists`` conditions on
    ``aws:SecureTransport`` against the scheme of the request being served (recorded by a
    WSGI middleware in a context variable): a statement whose condition does not match the
    request does not apply; one that matches applies like an unconditioned statement (any
    other conditions it has are left to moto). Statements without that key keep moto's
    handling, and so does everything when no request scheme is known (moto used in-process).

b. RDS ``DescribeDBParameters``
    moto stores what ``ModifyDBParameterGroup`` sets and returns it, but without ``Source``,
    and ignores the ``Source`` filter. The Terraform AWS provider's ``aws_db_parameter_group``
    skips returned parameters that have no ``Source`` when the configuration lists
    parameters, so a group that sets ``rds.force_ssl`` shows a diff on every plan. Here the
    user-set parameters are returned with ``Source: user`` (and ``ParameterName``,
    ``ParameterValue``, ``ApplyMethod`` as set), and the ``Source`` filter is honoured (moto
    keeps no engine defaults, so ``system``/``engine-default`` return none).

c. RDS ``ResetDBParameterGroup``
    Not implemented by moto; the provider calls it when a parameter is removed from the
    configuration. Here it forgets the named (or all) user-set parameters.

d. EC2 descriptions of security group rules that reference another group
    moto keeps a rule given in ``AuthorizeSecurityGroupIngress``/``Egress`` as a
    ``SecurityGroupRule`` with the CIDR range in ``ip_range`` and the ``UserIdGroupPair`` in
    ``source_group``, each with its own ``Description``; but ``SecurityGroupRule.description``,
    which ``DescribeSecurityGroupRules`` (and the rules returned by the authorize calls)
    serialise, reads only ``ip_range``. The description of a rule that references a group is
    therefore dropped there (``DescribeSecurityGroups`` still shows it in
    ``UserIdGroupPairs``), and an ``aws_vpc_security_group_ingress_rule``/``egress_rule`` with
    ``referenced_security_group_id`` and ``description`` shows an update on every plan until
    ``ModifySecurityGroupRules`` has stored the description in ``ip_range``. Here the property
    falls back to ``source_group``'s description when ``ip_range`` has none, so a description
    set by ``ModifySecurityGroupRules`` still wins.

e. The master user secret of RDS instances with ``manage_master_user_password``
    moto writes the same fixed credentials (``admin`` / a constant password) into every
    RDS-managed secret. In AWS the secret holds the instance's master username and a password
    generated for it. Here the secret holds the instance's ``MasterUsername`` and a random
    password, so what clients read from Secrets Manager matches what RDS reports (and a
    password leaking into a log can be searched for).

f. SDK retries of requests the emulator already carried out
    Under load, an SDK sometimes does not receive the answer to a request the emulator has
    completed and retries it; moto then runs it again (a create answers "already exists", a
    DynamoDB state lock finds itself). ``RetryReplayer`` answers a retry (same
    ``amz-sdk-invocation-id``, ``attempt`` > 1) of a state-changing request that succeeded
    with the stored first answer, as an idempotent AWS API would.

g. Where Lambda code can be downloaded
    ``GetFunction`` answers ``Code.Location`` with a presigned S3 URL in AWS; moto answers an
    ``awslambda-<region>-tasks`` address that does not exist. Here ``Code.Location`` points at
    the emulator itself, ``/_stackrun/lambda-code/<account>/<region>/<function>/<version>``,
    and ``LambdaCodeServer`` serves the bytes moto stored for that version, so a client
    downloads the code of a function (or of the version an alias points to) exactly as it
    would from AWS. The local API server (``stackrun.local.api``) runs functions from it.

h, i, j, k. Cognito user pools (``cognito.py``, documented there in full)
    h: moto signs every pool's tokens with one key shipped in moto (kid ``dummy``) and serves
    it as every pool's JWKS; here each pool has its own RSA keys (ID and access token), its
    tokens are signed with them and ``/<pool>/.well-known/jwks.json`` serves them. i: the
    OpenID discovery document answers like Cognito (issuer, ``jwks_uri``, the domain's
    endpoints; 404 for an unknown pool). j: ``CognitoEndpoints`` answers
    ``POST https://<domain>.auth.<region>.amazoncognito.com/oauth2/token`` (client credentials
    grant) by Host header, before moto's host dispatch, which would hand it to S3; and
    ``CreateUserPoolDomain`` refuses a domain another pool of the region holds. k:
    ``UpdateResourceServer`` and ``DeleteResourceServer``, which moto lacks (the destroy of a
    resource server never finished).

l. Lambda ``Invoke``
    moto runs a function in a Docker container, and these machines have no Docker daemon: an
    Invoke failed. Here ``LambdaFunction._invoke_lambda`` runs the invoked version in the local
    runtime (``invoke.py``; an alias resolves to its version by its routing weights, as in
    Lambda, where moto would take the alias's primary version, and would ignore the
    ``Qualifier`` query parameter altogether, running ``$LATEST``: the Invoke handler records
    the qualifier the client asked for), and publishes the invocation's metrics to
    CloudWatch as Lambda does (``api/metrics.py``): the
    deployed zip, the version's environment with the environment's local PostgreSQL behind the
    emulated RDS address, the execution role's credentials, the function's log group. Clients
    invoke exactly as in AWS (stackrun's deploy invokes the migrations function this way on
    both targets); where a local environment keeps its files the emulator reads from the
    registry stackrun writes beside the emulator's CA (``targets/<account>.json``).

m. CloudWatch metric statistics (``cloudwatch.py``, documented there)
    GetMetricStatistics matches the data by its exact dimension set, as CloudWatch does (moto
    counts every datum whose dimensions include the query's: Lambda's [FunctionName] would
    count each invocation three times), and GetMetricData's dimension matching no longer depends
    on the order the dimensions are listed in.

Readiness: moto's own ``GET /moto-api/config`` (small JSON, no backend data) serves as the
health probe; no extra route is added.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import contextvars
import copy
import json
import os
import secrets
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from . import cloudwatch, cognito
from .common import is_loopback

_SECURE_TRANSPORT_KEY = "aws:securetransport"
_BOOL_OPERATORS = {"bool", "boolifexists"}

_request_scheme: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "stackrun_emulator_request_scheme", default=None
)
_request_host: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "stackrun_emulator_request_host", default=None
)
LAMBDA_CODE_PATH = "/_stackrun/lambda-code/"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


# --- request scheme ---------------------------------------------------------------------------


@contextmanager
def request_scheme(scheme: str | None) -> Iterator[None]:
    """Evaluate policies within this block as if the request came in over ``scheme``."""
    token = _request_scheme.set(scheme.lower() if scheme else None)
    try:
        yield
    finally:
        _request_scheme.reset(token)


class SchemeRecorder:
    """WSGI middleware: make the scheme of the request being served known to the patches.

    werkzeug serves each request in its own thread and moto computes the whole response
    inside the application call, so a context variable set around that call is seen by every
    policy check of the request and by nothing else.
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        host_token = _request_host.set(environ.get("HTTP_HOST"))
        try:
            with request_scheme(environ.get("wsgi.url_scheme")):
                return self.app(environ, start_response)
        finally:
            _request_host.reset(host_token)


class RetryReplayer:
    """WSGI middleware: answer an SDK retry of a completed request with the first answer.

    The AWS SDKs tag every attempt of one operation with the same ``amz-sdk-invocation-id``
    and count attempts in ``amz-sdk-request: attempt=N``. When an SDK retries a request whose
    first attempt the emulator did carry out (its answer got lost on the way back), running it
    again turns success into "already exists" or a lock that finds itself. Here a retry
    (attempt > 1) of a state-changing request that already succeeded gets the stored answer,
    the way an idempotent AWS API would respond.
    """

    MAX_ENTRIES = 2048
    MAX_BODY = 1 << 20

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.answers: collections.OrderedDict[str, tuple[str, list, bytes]] = (
            collections.OrderedDict()
        )
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        invocation = environ.get("HTTP_AMZ_SDK_INVOCATION_ID")
        if not invocation or environ.get("REQUEST_METHOD") in ("GET", "HEAD", "OPTIONS"):
            return self.app(environ, start_response)
        attempt = _attempt(environ.get("HTTP_AMZ_SDK_REQUEST", ""))
        if attempt > 1:
            with self.lock:
                answer = self.answers.get(invocation)
            if answer is not None:
                status, headers, body = answer
                start_response(status, headers)
                return [body]
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return start_response(status, headers, exc_info)

        chunks = self.app(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        status = captured.get("status", "")
        if status[:1] == "2" and len(body) <= self.MAX_BODY:
            with self.lock:
                self.answers[invocation] = (status, list(captured["headers"]), body)
                while len(self.answers) > self.MAX_ENTRIES:
                    self.answers.popitem(last=False)
        return [body]


def _attempt(header: str) -> int:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "attempt" and value.isdigit():
            return int(value)
    return 1


# --- patch a: S3 bucket policy conditions on aws:SecureTransport ------------------------------


def bucket_get_permission(bucket: Any, action: str, resource: str) -> Any:
    """Replacement for ``moto.s3.models.FakeBucket.get_permission`` (see module docstring)."""
    from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult

    if bucket.policy is None:
        return PermissionResult.NEUTRAL
    document = bucket.policy.decode() if isinstance(bucket.policy, bytes) else bucket.policy
    scheme = _request_scheme.get()
    if scheme is None:
        return IAMPolicy(document).is_action_permitted(action, resource)  # moto's own check

    policy = json.loads(document)
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    secure = scheme == "https"
    permitted = False
    for statement in statements:
        applicable = _apply_secure_transport(statement, secure)
        if applicable is None:
            continue
        result = IAMPolicyStatement(applicable).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return result
        if result == PermissionResult.PERMITTED:
            permitted = True
    return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL


def _apply_secure_transport(statement: dict[str, Any], secure: bool) -> dict[str, Any] | None:
    """Return the statement as it applies to this request, or None if it does not apply.

    Conditions on ``aws:SecureTransport`` are decided here and removed; the statement is
    returned unchanged when it has none.
    """
    conditions = statement.get("Condition")
    if not isinstance(conditions, dict):
        return statement
    remaining: dict[str, Any] = {}
    found = False
    for operator, block in conditions.items():
        if operator.lower() not in _BOOL_OPERATORS or not isinstance(block, dict):
            remaining[operator] = block
            continue
        rest = {}
        for key, expected in block.items():
            if key.lower() != _SECURE_TRANSPORT_KEY:
                rest[key] = expected
                continue
            found = True
            values = expected if isinstance(expected, list) else [expected]
            # Several values of one key match if any matches (IAM's OR within a key).
            if not any(_as_bool(value) == secure for value in values):
                return None
        if rest:
            remaining[operator] = rest
    if not found:
        return statement
    applicable = copy.deepcopy(statement)
    if remaining:
        applicable["Condition"] = remaining
    else:
        del applicable["Condition"]
    return applicable


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    return None


# --- patches b and c: RDS DB parameters -------------------------------------------------------

_PARAMETER_SOURCE_USER = "user"


def describe_db_parameters(self: Any) -> Any:
    """Replacement for ``RDSResponse.describe_db_parameters`` (see module docstring)."""
    from moto.core.responses import ActionResult

    group = _db_parameter_group(self, self.params.get("DBParameterGroupName"))
    source = (self.params.get("Source") or _PARAMETER_SOURCE_USER).lower()
    parameters = []
    if source == _PARAMETER_SOURCE_USER:
        parameters = [
            {**dict(parameter), "Source": _PARAMETER_SOURCE_USER}
            for parameter in group.parameters.values()
        ]
    return ActionResult({"Parameters": parameters})


def reset_db_parameter_group(self: Any) -> Any:
    """``ResetDBParameterGroup``, which moto lacks: forget user-set parameters."""
    from moto.core.responses import ActionResult

    group = _db_parameter_group(self, self.params.get("DBParameterGroupName"))
    if str(self.params.get("ResetAllParameters", "")).lower() == "true":
        group.parameters.clear()
    else:
        for parameter in self.params.get("Parameters") or []:
            group.parameters.pop(parameter["ParameterName"], None)
    return ActionResult({"DBParameterGroupName": group.name})


def _db_parameter_group(response: Any, name: str | None) -> Any:
    from moto.rds.exceptions import DBParameterGroupNotFoundError

    # moto stores group names lowercased, as AWS treats them case-insensitively.
    groups = response.backend.describe_db_parameter_groups(
        {"db_parameter_group_name": (name or "").lower()}
    )
    if not name or not groups:
        raise DBParameterGroupNotFoundError(name)
    return groups[0]


# --- patch d: EC2 descriptions of security group rules that reference another group ----------


def security_group_rule_description(rule: Any) -> str | None:
    """Replacement for the ``SecurityGroupRule.description`` property (see module docstring)."""
    if "Description" in rule.ip_range:  # a CIDR rule's, or set by ModifySecurityGroupRules
        return rule.ip_range["Description"]
    return rule.source_group.get("Description")


# --- installing the patches -------------------------------------------------------------------


def master_user_secret_string(self: Any) -> str:
    """Patch e: the instance's own master username and a freshly generated password."""
    username = getattr(self.resource, "master_username", None) or "admin"
    return json.dumps({"username": username, "password": secrets.token_urlsafe(24)})


# --- patch g: a Code.Location that can be downloaded --------------------------------------------


def lambda_code_url(function: Any) -> str | None:
    """Where this emulator serves the code of `function` (None outside a served request)."""
    scheme, host = _request_scheme.get(), _request_host.get()
    if not scheme or not host:
        return None
    return (
        f"{scheme}://{host}{LAMBDA_CODE_PATH}{function.account_id}/{function.region}/"
        f"{function.function_name}/{function.version}"
    )


def _patch_get_code(original: Callable[[Any], dict[str, Any]]) -> Callable[[Any], dict[str, Any]]:
    def get_code(self: Any) -> dict[str, Any]:
        response = original(self)
        url = lambda_code_url(self)
        if url and self.package_type == "Zip":
            response["Code"] = {"Location": url, "RepositoryType": "S3"}
        return response

    get_code.__stackrun_patched__ = True  # type: ignore[attr-defined]
    return get_code


class LambdaCodeServer:
    """WSGI middleware: GET /_stackrun/lambda-code/<account>/<region>/<function>/<version>."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(LAMBDA_CODE_PATH):
            return self.app(environ, start_response)
        parts = path[len(LAMBDA_CODE_PATH) :].split("/")
        code = _stored_code(*parts) if len(parts) == 4 else None
        if code is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no such function version\n"]
        start_response(
            "200 OK", [("Content-Type", "application/zip"), ("Content-Length", str(len(code)))]
        )
        return [code]


def _stored_code(account: str, region: str, name: str, version: str) -> bytes | None:
    from moto.awslambda.models import lambda_backends

    try:
        function = lambda_backends[account][region].get_function(name, version)
    except Exception:  # moto raises its own "not found" types
        return None
    return getattr(function, "code_bytes", None) or None


def install_patches() -> None:
    """Apply the patches to moto's classes; safe to call more than once."""
    from moto.ec2.models.security_groups import SecurityGroupRule
    from moto.rds.responses import RDSResponse
    from moto.s3.models import FakeBucket

    FakeBucket.get_permission = bucket_get_permission  # type: ignore[method-assign]
    RDSResponse.describe_db_parameters = describe_db_parameters  # type: ignore[method-assign]
    RDSResponse.reset_db_parameter_group = reset_db_parameter_group  # type: ignore[attr-defined]
    rule_description = property(security_group_rule_description)
    SecurityGroupRule.description = rule_description  # type: ignore[method-assign,assignment]
    from moto.rds.models import MasterUserSecret

    MasterUserSecret._generate_secret_string = master_user_secret_string  # type: ignore[method-assign]
    from moto.awslambda.models import LambdaFunction

    if not getattr(LambdaFunction.get_code, "__stackrun_patched__", False):
        LambdaFunction.get_code = _patch_get_code(LambdaFunction.get_code)  # type: ignore[method-assign]
    cognito.install_patches()
    cloudwatch.install_patches()


def install_invoke(tls_dir: Path, host: str, port: int) -> None:
    """Patch l: Lambda's Invoke runs the version in the local runtime (emulator/invoke.py)."""
    from moto.awslambda.models import LambdaFunction
    from moto.awslambda.responses import LambdaResponse

    from stackrun.local.emulator.ca import certificate_paths
    from stackrun.local.emulator.invoke import EmulatorEndpoint, LocalInvoker

    address = f"[{host}]" if ":" in host else host
    invoker = LocalInvoker(
        EmulatorEndpoint(
            tls_dir=tls_dir,
            endpoint=f"https://{address}:{port}",
            ca_bundle=certificate_paths(tls_dir).ca_cert,
        )
    )

    def invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        return invoker.invoke(self, event)

    LambdaFunction._invoke_lambda = invoke_lambda  # type: ignore[method-assign]
    if not getattr(LambdaResponse.invoke, "__stackrun_patched__", False):
        LambdaResponse.invoke = _record_invoked_qualifier(LambdaResponse.invoke)  # type: ignore[method-assign]
    atexit.register(invoker.close)


def _record_invoked_qualifier(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap moto's Invoke handler: the qualifier the client asked for (the `Qualifier` query
    parameter, else the one in the function name), for invoke.py. moto reads the parameter
    as `qualifier` and so runs $LATEST for `Qualifier=live`, and hands `_invoke_lambda` only the
    version it resolved."""
    from stackrun.local.api.functions import split_function_arn
    from stackrun.local.emulator.invoke import invoked_qualifier

    def invoke(self: Any) -> Any:
        function_name = unquote(self.path.rsplit("/", 2)[-2])
        asked = (self.querystring.get("Qualifier") or [None])[0]
        token = invoked_qualifier.set(asked or split_function_arn(function_name)[1])
        try:
            return original(self)
        finally:
            invoked_qualifier.reset(token)

    invoke.__stackrun_patched__ = True  # type: ignore[attr-defined]
    return invoke


# --- the server -------------------------------------------------------------------------------


class _DeferredHandshakeContext(ssl.SSLContext):
    """An SSL context whose sockets shake hands on first read, in the request's thread.

    werkzeug wraps the listening socket; with Python's default the handshake then runs inside
    ``accept()`` in the single accepting thread, where one stalled client blocks the server.
    """

    def wrap_socket(  # type: ignore[override]
        self, sock: socket.socket, *args: Any, **kwargs: Any
    ) -> ssl.SSLSocket:
        kwargs["do_handshake_on_connect"] = False
        return super().wrap_socket(sock, *args, **kwargs)


def make_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    context = _DeferredHandshakeContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def build_app() -> WSGIApp:
    """moto's server application (as ``moto.server.main`` builds it), patched and wrapped."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    install_patches()
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]  # as moto.server.main: errors in the log
    return RetryReplayer(SchemeRecorder(cognito.CognitoEndpoints(LambdaCodeServer(app))))


def _terminate(signum: int, frame: Any) -> None:
    sys.exit(0)


LINGER_SECONDS = 2.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--cert", required=True, help="server certificate (PEM)")
    parser.add_argument("--key", required=True, help="server private key (PEM)")
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        # It accepts any credentials: never reachable from the network.
        parser.error(
            f"--host must be a loopback address (127.0.0.0/8, ::1, localhost): {args.host}"
        )

    # moto builds some URLs (SQS queue URLs, Lambda callbacks, ...) from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(args.port)
    # the CA beside the server certificate, and the registry of local environments beside it
    install_invoke(Path(args.cert).resolve().parent, args.host, args.port)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)

    import werkzeug.serving
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    # The output goes to a log file, not a terminal: no ANSI colours in the request lines.
    werkzeug.serving._log_add_style = False  # type: ignore[attr-defined]

    class LingeringRequestHandler(MotoRequestHandler):
        """Close each connection gracefully: stop sending, drain what the client still sends.

        werkzeug answers every request with `Connection: close`. Closing a TCP socket that
        still has unread input makes the kernel send a reset, which can reach the client before
        it has read the response; the AWS SDKs then retry a request the emulator has already
        carried out (a create answered "already exists", a lock put that finds its own lock).
        Half-closing first and reading until the client closes avoids that reset.
        """

        def finish(self) -> None:
            super().finish()
            connection = self.connection
            try:
                connection.shutdown(socket.SHUT_WR)
                connection.settimeout(LINGER_SECONDS)
                while connection.recv(65536):
                    pass
            except (OSError, ValueError):
                pass

    werkzeug.serving.run_simple(
        args.host,
        args.port,
        build_app(),
        threaded=True,
        ssl_context=make_ssl_context(args.cert, args.key),
        request_handler=LingeringRequestHandler,
    )


if __name__ == "__main__":
    main()
