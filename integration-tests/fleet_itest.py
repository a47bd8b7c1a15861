"""Support code of the integration tests: the target document, AWS clients, CloudWatch Logs
reading and the HTTP client every test goes through.

Standard library and boto3 only: this suite tests a deployment from the outside and imports
nothing from the repository (no stackrun, no fleet_common).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

TARGET_FILE_VARIABLE = "FLEET_TARGET_FILE"
RUN_HINT = "run the suite with `nox -s integration -- <env> [--local]`"

#: Placeholder credentials of the local emulator (what stackrun uses for --local).
LOCAL_CREDENTIALS = "stackrun-local"
ROLE_SESSION_NAME = "fleet-integration"

#: Prefix of every project (and team) the suite creates: the API has no delete, so test data
#: stays in the environment, recognisable by this prefix.
NAME_PREFIX = "itest-"
#: The team of every project the suite creates (teams are created on first use).
TEAM = f"{NAME_PREFIX}integration"

#: How many log lines an assertion message about a 5xx shows.
LOG_TAIL_LINES = 20
HTTP_TIMEOUT_SECONDS = 35.0  # API Gateway's integration timeout is 30 s

#: How the suite gets access tokens: the project's token command (`stackrun token <env>`, the
#: OAuth2 client credentials grant of one app client of the identity stack), run as a program.
TOKEN_COMMAND_VARIABLE = "FLEET_TOKEN_COMMAND"
DEFAULT_TOKEN_COMMAND = "stackrun token"
TOKEN_TIMEOUT_SECONDS = 120.0


class TargetError(Exception):
    """The target document is missing or unusable (a message for humans, no traceback)."""


def unique_name(label: str) -> str:
    """A name no other run uses, marked as test data: ``itest-<label>-<12 hex>``."""
    return f"{NAME_PREFIX}{label}-{uuid.uuid4().hex[:12]}"


def segment(value: str) -> str:
    """``value`` percent-encoded as one path segment (``/`` included)."""
    return urllib.parse.quote(value, safe="")


# ---- the target document ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What ``stackrun output <env> [--local]`` says about one deployed environment."""

    path: Path
    document: Mapping[str, Any]
    environment: str
    account_id: str | None
    region: str
    deploy_role_arn: str | None
    aws_endpoint_url: str | None
    ca_bundle: str | None
    api_stack: str
    api_outputs: Mapping[str, Any]
    api_url: str | None
    identity: Mapping[str, Any] | None = None

    @property
    def local(self) -> bool:
        return self.aws_endpoint_url is not None

    @property
    def functions(self) -> Mapping[str, Mapping[str, Any]]:
        return self.api_outputs["functions"]

    @property
    def routes(self) -> Mapping[str, str]:
        """Route key (``"POST /projects"``) -> key of the function serving it."""
        return self.api_outputs.get("routes") or {}

    def missing_api_url_message(self) -> str:
        flag = " --local" if self.local else ""
        how = (
            f"Serve the API locally with `nox -s serve -- {self.environment}`, then rerun"
            if self.local
            else f"Deploy it (`nox -s deploy -- {self.environment}`) and rerun"
        )
        return (
            f"{self.path}: target.api_urls has no URL for the API stack {self.api_stack!r}, so "
            f"there is nothing to call. {how} (`nox -s integration -- {self.environment}{flag}`)."
        )


def load_target(path_text: str | None) -> Target:
    """Read and check the target document named by ``FLEET_TARGET_FILE``."""
    if not path_text:
        raise TargetError(
            f"{TARGET_FILE_VARIABLE} is not set: it must name the JSON written by "
            f"`stackrun output <env> [--local]`; {RUN_HINT}, which sets it."
        )
    path = Path(path_text)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TargetError(
            f"{TARGET_FILE_VARIABLE}={path_text}: no such file. It must hold the output of "
            f"`stackrun output <env> [--local]`; {RUN_HINT}."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"{TARGET_FILE_VARIABLE}={path_text}: cannot read it: {exc}") from None
    except json.JSONDecodeError as exc:
        raise TargetError(f"{path}: not JSON ({exc}); expected `stackrun output` JSON") from None
    if not isinstance(document, dict):
        raise TargetError(f"{path}: expected a JSON object of stack outputs")

    target = document.get("target")
    if not isinstance(target, dict):
        raise TargetError(
            f"{path}: no `target` object (environment, region, api_urls, ...); was it written "
            "by a `stackrun output` that knows about targets?"
        )
    region = target.get("region")
    if not isinstance(region, str) or not region:
        raise TargetError(f"{path}: target.region is missing")

    # The API stack is found by shape, not by name: the stack whose outputs have both
    # `functions` and an `api_endpoint` (a functions-only stack's is null).
    api_stacks = sorted(
        name
        for name, outputs in document.items()
        if name != "target"
        and isinstance(outputs, dict)
        and isinstance(outputs.get("functions"), dict)
        and outputs.get("api_endpoint")
    )
    if len(api_stacks) != 1:
        found = ", ".join(api_stacks) or "none"
        raise TargetError(
            f"{path}: expected exactly one stack with `functions` and `api_endpoint` outputs "
            f"(the API stack), found {found}; is the API stack deployed?"
        )
    api_stack = api_stacks[0]
    api_urls = target.get("api_urls") or {}
    api_url = api_urls.get(api_stack) if isinstance(api_urls, dict) else None

    return Target(
        path=path,
        document=document,
        environment=str(target.get("environment") or "<env>"),
        account_id=target.get("account_id"),
        region=region,
        deploy_role_arn=target.get("deploy_role_arn") or None,
        aws_endpoint_url=target.get("aws_endpoint_url") or None,
        ca_bundle=target.get("ca_bundle") or None,
        api_stack=api_stack,
        api_outputs=document[api_stack],
        api_url=api_url if isinstance(api_url, str) and api_url else None,
        identity=target.get("identity") if isinstance(target.get("identity"), dict) else None,
    )


# ---- AWS ----------------------------------------------------------------------------------------


class Aws:
    """boto3 clients in the environment's account: through the deploy role when the target
    names one, against the emulator (its endpoint and CA bundle) for a local target."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._config = Config(retries={"max_attempts": 4, "mode": "standard"})
        self._clients: dict[str, Any] = {}
        base = (
            boto3.Session(
                aws_access_key_id=LOCAL_CREDENTIALS,
                aws_secret_access_key=LOCAL_CREDENTIALS,
                region_name=target.region,
            )
            if target.local
            else boto3.Session(region_name=target.region)
        )
        self.session = base
        if target.deploy_role_arn:
            sts = base.client("sts", **self._client_args())
            credentials = sts.assume_role(
                RoleArn=target.deploy_role_arn, RoleSessionName=ROLE_SESSION_NAME
            )["Credentials"]
            self.session = boto3.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                region_name=target.region,
            )

    def _client_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"config": self._config}
        if self.target.aws_endpoint_url:
            args["endpoint_url"] = self.target.aws_endpoint_url
            if self.target.ca_bundle:
                args["verify"] = self.target.ca_bundle
        return args

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, **self._client_args())
        return self._clients[service]


# ---- CloudWatch Logs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LogEvent:
    timestamp: int
    stream: str
    message: str

    def line(self) -> str:
        when = time.strftime("%H:%M:%S", time.gmtime(self.timestamp / 1000))
        return f"{when}.{self.timestamp % 1000:03d}Z {self.message.rstrip()}"


class Logs:
    """Reads function log groups: recent events, the tail, and polling for a marker."""

    #: Events older than the request by this much are still searched: the clocks of this
    #: machine and of CloudWatch (or the emulator) may differ a little.
    CLOCK_SKEW_MS = 120_000
    MAX_PAGES = 50

    def __init__(self, client: Any) -> None:
        self.client = client

    def events_since(self, group: str, start_ms: int) -> list[LogEvent]:
        """Every event of ``group`` from ``start_ms`` on (bounded), oldest first."""
        events: list[LogEvent] = []
        args: dict[str, Any] = {"logGroupName": group, "startTime": max(0, start_ms)}
        for _ in range(self.MAX_PAGES):
            page = self.client.filter_log_events(**args)
            events.extend(
                LogEvent(e.get("timestamp", 0), e.get("logStreamName", ""), e.get("message", ""))
                for e in page.get("events", ())
            )
            token = page.get("nextToken")
            if not token or token == args.get("nextToken"):
                break
            args["nextToken"] = token
        events.sort(key=lambda e: e.timestamp)
        return events

    def _latest_streams_tail(self, group: str, lines: int) -> list[LogEvent]:
        streams = self.client.describe_log_streams(
            logGroupName=group, orderBy="LastEventTime", descending=True, limit=5
        ).get("logStreams", ())
        events: list[LogEvent] = []
        for stream in streams:
            name = stream["logStreamName"]
            page = self.client.get_log_events(
                logGroupName=group, logStreamName=name, startFromHead=False, limit=lines
            )
            events.extend(
                LogEvent(e.get("timestamp", 0), name, e.get("message", ""))
                for e in page.get("events", ())
            )
        events.sort(key=lambda e: e.timestamp)
        return events[-lines:]

    def tail(self, group: str, lines: int = LOG_TAIL_LINES, window_s: int = 900) -> list[LogEvent]:
        """The last ``lines`` events of ``group``: of the last ``window_s`` seconds, else of
        its most recently written streams (``lastEventTimestamp`` lags in AWS, hence the
        time-window search first)."""
        recent = self.events_since(group, int(time.time() * 1000) - window_s * 1000)
        return recent[-lines:] if recent else self._latest_streams_tail(group, lines)

    def tail_text(self, group: str, lines: int = LOG_TAIL_LINES) -> str:
        """:meth:`tail` as text for an assertion message; never raises."""
        try:
            events = self.tail(group, lines)
        except Exception as exc:  # a diagnostic must not hide the failure it explains
            return f"    (could not read {group}: {type(exc).__name__}: {exc})"
        if not events:
            return f"    ({group} has no log events)"
        return "\n".join("    " + e.line() for e in events)

    def wait_for(
        self, group: str, markers: Iterable[str], since_ms: int, timeout_s: float = 30.0
    ) -> LogEvent | None:
        """The first event of ``group`` (from ``since_ms`` on) containing one of ``markers``,
        polling up to ``timeout_s`` (log delivery is asynchronous); ``None`` if none shows."""
        wanted = [m for m in markers if m]
        deadline = time.monotonic() + timeout_s
        while True:
            for event in self.events_since(group, since_ms - self.CLOCK_SKEW_MS):
                if any(m in event.message for m in wanted):
                    return event
            if time.monotonic() >= deadline:
                return None
            time.sleep(1.0)

    def wait_for_new_events(self, group: str, since_ms: int, timeout_s: float) -> None:
        """Bounded wait until ``group`` has an invocation's last line (``REPORT RequestId``) at
        or after ``since_ms``, so the tail shown for a failed request includes all of that
        request's lines (an init error's included) when they arrive in time: the lines of one
        invocation reach the log group in more than one batch."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                events = self.events_since(group, since_ms)
            except Exception:
                return
            if any("REPORT RequestId" in event.message for event in events):
                return
            time.sleep(1.0)


# ---- access tokens ------------------------------------------------------------------------------


class TokenError(Exception):
    """No token could be had: the message says why (never the token or a secret)."""


class Tokens:
    """Access tokens for the environment's API from the project's token command, one per set of
    requested scopes, fetched once per session (tokens live at least five minutes)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._cache: dict[tuple[str, ...], str] = {}

    def command(self, scopes: tuple[str, ...]) -> list[str]:
        words = shlex.split(os.environ.get(TOKEN_COMMAND_VARIABLE) or DEFAULT_TOKEN_COMMAND)
        words.append(self.target.environment)
        if self.target.local and self.target.aws_endpoint_url:
            port = urllib.parse.urlsplit(self.target.aws_endpoint_url).port
            words += ["--local", *(["--port", str(port)] if port else [])]
        for scope in scopes:
            words += ["--scope", scope]
        return words

    def allowed(self, *scopes: str) -> bool:
        """Whether one app client of the identity stack may request all of ``scopes``."""
        clients = (self.target.identity or {}).get("clients") or {}
        return any(set(scopes) <= set(client.get("scopes") or []) for client in clients.values())

    def get(self, *scopes: str) -> str:
        key = tuple(sorted(scopes))
        if key not in self._cache:
            command = self.command(key)
            try:
                done = subprocess.run(
                    command,
                    capture_output=True,
                    text=True,
                    timeout=TOKEN_TIMEOUT_SECONDS,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise TokenError(f"`{shlex.join(command)}` did not run: {exc}") from None
            lines = done.stdout.strip().splitlines()
            if done.returncode != 0 or not lines:
                raise TokenError(
                    f"`{shlex.join(command)}` failed (exit {done.returncode}): "
                    f"{done.stderr.strip()[-1500:]}"
                )
            self._cache[key] = lines[-1].strip()
        return self._cache[key]


def jwt_claims(token: str) -> dict[str, Any]:
    """The (unverified) claims of a JWT: what the suite compares answers with."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def client_credentials_token(
    target: Target, token_endpoint: str, client_id: str, client_secret: str, scope: str
) -> tuple[int, dict[str, Any]]:
    """(status, JSON answer) of the OAuth2 client credentials grant at ``token_endpoint``; for
    a local target sent to the emulator with the endpoint's host name in ``Host`` (as the SDKs
    reach it through AWS_ENDPOINT_URL)."""
    url, headers = token_endpoint, {}
    context = ssl.create_default_context()
    if target.local and target.aws_endpoint_url:
        parts, base = urllib.parse.urlsplit(url), urllib.parse.urlsplit(target.aws_endpoint_url)
        headers["Host"] = parts.netloc
        url = parts._replace(scheme=base.scheme, netloc=base.netloc).geturl()
        context = ssl.create_default_context(cafile=target.ca_bundle)
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    headers |= {
        "Authorization": f"Basic {basic}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    data = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope}).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as reply:
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}


# ---- the HTTP API -------------------------------------------------------------------------------


def _route_matches(route_key: str, method: str, path: str) -> bool:
    """Whether API Gateway would pick ``route_key`` ("POST /projects/{project}/devices") for
    ``method`` and the percent-encoded ``path`` (``{x}``: one segment, ``{x+}``: the rest)."""
    route_method, _, template = route_key.partition(" ")
    if route_method not in ("ANY", method):
        return False
    want = template.strip("/").split("/")
    have = path.split("?", 1)[0].strip("/").split("/")
    for i, part in enumerate(want):
        if part.startswith("{") and part.endswith("+}"):
            return len(have) > i
        if i >= len(have):
            return False
        if not (part.startswith("{") and part.endswith("}")) and part != have[i]:
            return False
    return len(have) == len(want)


@dataclass
class ApiResponse:
    """One API call. Unpacks as ``status, headers, body`` (``body``: the parsed JSON, or
    ``None`` when the body is not JSON; ``text`` has it as received)."""

    method: str
    url: str
    status: int
    headers: dict[str, str]
    body: Any
    text: str
    request_body: str | None = None
    served_by: str | None = None  # the function key of the matched route
    server_logs: str | None = None  # filled for 5xx answers

    def __iter__(self) -> Iterator[Any]:
        return iter((self.status, self.headers, self.body))

    @property
    def request_id(self) -> str | None:
        """API Gateway's request id (``apigw-requestid``), which the functions log as
        ``correlation_id``; ``None`` when the server does not send it."""
        return self.headers.get("apigw-requestid")

    def describe(self, problem: str = "") -> str:
        """An assertion message: what was asked, what came back, and for a 5xx the last log
        lines of the function serving the route."""
        text = self.text if len(self.text) <= 2000 else self.text[:2000] + "...(truncated)"
        lines = [f"{problem}" if problem else "unexpected response"]
        lines.append(f"  request:  {self.method} {self.url}")
        if self.request_body is not None:
            sent = self.request_body
            lines.append(f"  sent:     {sent if len(sent) <= 500 else sent[:500] + '...'}")
        lines.append(f"  status:   {self.status}")
        lines.append(f"  body:     {text}")
        if self.request_id:
            lines.append(f"  apigw-requestid: {self.request_id}")
        if self.server_logs is not None:
            lines.append(self.server_logs)
        return "\n".join(lines)

    def expect(self, *statuses: int) -> ApiResponse:
        """Assert the status is one of ``statuses``; returns ``self`` for chaining."""
        __tracebackhide__ = True  # failures point at the test's line, not at this helper
        assert self.status in statuses, self.describe(
            f"expected HTTP {' or '.join(map(str, statuses))}, got {self.status}"
        )
        return self

    def json_object(self) -> dict[str, Any]:
        __tracebackhide__ = True
        assert isinstance(self.body, dict), self.describe("expected a JSON object body")
        return self.body


@dataclass
class Api:
    """The HTTP client of the suite. Every call goes through :meth:`request`; a 5xx answer
    carries the tail of the serving function's log in its :meth:`ApiResponse.describe`."""

    base_url: str
    routes: Mapping[str, str]
    functions: Mapping[str, Mapping[str, Any]]
    logs: Logs
    ssl_context: ssl.SSLContext | None = None
    #: Sent as ``authorization: Bearer <token>`` unless a request says otherwise.
    token: str | None = None
    _opener: urllib.request.OpenerDirector = field(init=False, repr=False)

    def __post_init__(self) -> None:
        handlers: list[urllib.request.BaseHandler] = [
            urllib.request.HTTPSHandler(context=self.ssl_context or ssl.create_default_context())
        ]
        host = urllib.parse.urlsplit(self.base_url).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1"):
            handlers.append(urllib.request.ProxyHandler({}))  # never via an HTTP(S)_PROXY
        self._opener = urllib.request.build_opener(*handlers)

    def url(self, path: str, query: Mapping[str, str] | None = None) -> str:
        url = self.base_url.rstrip("/") + "/" + path.lstrip("/")
        return url + ("?" + urllib.parse.urlencode(query) if query else "")

    def route_for(self, method: str, path: str) -> str | None:
        """The route key API Gateway would match (static segments win over parameters)."""
        matches = [key for key in self.routes if _route_matches(key, method.upper(), path)]
        matches.sort(key=lambda key: key.count("{"))
        return matches[0] if matches else None

    def log_group(self, function_key: str) -> str:
        return str(self.functions[function_key]["log_group_name"])

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        raw_body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        token: Any = ...,
    ) -> ApiResponse:
        """Call the API. ``path`` is sent as given (encode segments with :func:`segment`);
        ``json`` is serialised (``None``: no JSON body), ``raw_body`` is sent as it is.
        ``token``: the bearer token to send (``None``: no Authorization header; default: the
        suite's token)."""
        method = method.upper()
        url = self.url(path, query)
        data: bytes | None = None
        all_headers = {"Accept": "application/json", "User-Agent": "fleet-integration-tests"}
        bearer = self.token if token is ... else token
        if bearer:
            all_headers["Authorization"] = f"Bearer {bearer}"
        if json is not None:
            data = _json_dumps(json).encode("utf-8")
        elif raw_body is not None:
            data = raw_body.encode("utf-8") if isinstance(raw_body, str) else raw_body
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        request = urllib.request.Request(url, data=data, headers=all_headers, method=method)
        started_ms = int(time.time() * 1000)
        try:
            with self._opener.open(request, timeout=HTTP_TIMEOUT_SECONDS) as reply:
                status, reply_headers, payload = reply.status, reply.headers, reply.read()
        except urllib.error.HTTPError as exc:  # 4xx/5xx: still an answer
            status, reply_headers, payload = exc.code, exc.headers, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            pytest.fail(
                f"{method} {url}: no answer from the API ({reason}). Is it served/deployed? "
                "For a local target: `nox -s serve -- <env>`.",
                pytrace=False,
            )
        text = payload.decode("utf-8", errors="replace")
        try:
            body: Any = _json_loads(text) if text else None
        except ValueError:
            body = None
        route = self.route_for(method, path)
        response = ApiResponse(
            method=method,
            url=url,
            status=status,
            headers={k.lower(): v for k, v in reply_headers.items()},
            body=body,
            text=text,
            request_body=data.decode("utf-8", errors="replace") if data is not None else None,
            served_by=self.routes.get(route) if route else None,
        )
        if status >= 500:
            response.server_logs = self._server_logs(response, started_ms)
        return response

    def _server_logs(self, response: ApiResponse, started_ms: int) -> str:
        key = response.served_by
        if key is None or key not in self.functions:
            return "  (no route of the API stack matches this request: no function log to show)"
        group = self.log_group(key)
        # The failing invocation's lines reach the log group asynchronously: wait (bounded)
        # for a line at least as new as the request before taking the tail.
        self.logs.wait_for_new_events(group, started_ms - 1000, timeout_s=15.0)
        return (
            f"  last {LOG_TAIL_LINES} log lines of function {key!r} ({group}):\n"
            + self.logs.tail_text(group)
        )


def _json_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _json_loads(text: str) -> Any:
    return json.loads(text)


# ---- assertions on the documented contract ------------------------------------------------------

TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def assert_error(
    response: ApiResponse,
    status: int,
    code: str,
    details: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Assert the documented error answer: ``status``, a JSON content type and exactly
    ``{"error": {"code", "message", "details": [{"path", "problem"}, ...]}}``. With
    ``details``, the ``path -> problem`` pairs must be exactly those."""
    __tracebackhide__ = True
    response.expect(status)
    describe = response.describe
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith("application/json"), describe(
        f"expected a JSON content type, got {content_type!r}"
    )
    body = response.json_object()
    assert set(body) == {"error"}, describe('expected exactly {"error": {...}}')
    error = body["error"]
    assert isinstance(error, dict), describe("`error` must be an object")
    assert set(error) == {"code", "message", "details"}, describe(
        "`error` must have exactly code, message and details"
    )
    assert error["code"] == code, describe(f"expected error code {code!r}")
    assert isinstance(error["message"], str) and error["message"], describe(
        "`error.message` must be a non-empty string"
    )
    assert isinstance(error["details"], list), describe("`error.details` must be a list")
    for item in error["details"]:
        assert isinstance(item, dict) and set(item) == {"path", "problem"}, describe(
            "each detail must be exactly {path, problem}"
        )
        assert isinstance(item["path"], str) and isinstance(item["problem"], str), describe(
            "detail path and problem must be strings"
        )
    if details is not None:
        got = {item["path"]: item["problem"] for item in error["details"]}
        assert got == dict(details), describe(f"expected details {dict(details)}, got {got}")
    return error
