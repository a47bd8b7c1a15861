"""WSGI middleware around moto's app: the request's scheme and host made known to the patches,
SDK retries of completed requests answered from memory (patch f), Lambda code downloads
(patch g) and the configuration generation the local API caches by (patch o). See
``server.py`` for the list of patches and why each exists."""

from __future__ import annotations

import collections
import contextvars
import json
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_request_scheme: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "stackrun_emulator_request_scheme", default=None
)
_request_host: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "stackrun_emulator_request_host", default=None
)
LAMBDA_CODE_PATH = "/_stackrun/lambda-code/"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def current_scheme() -> str | None:
    """The scheme of the request being served ("https"), None outside one (moto in-process)."""
    return _request_scheme.get()


def current_host() -> str | None:
    """The Host header of the request being served, None outside one."""
    return _request_host.get()


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
        self.answers: collections.OrderedDict[str, tuple[str, list[tuple[str, str]], bytes]] = (
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

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
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


CONFIG_GENERATION_PATH = "/_stackrun/config-generation"
# The signing names (SigV4 credential scope) of the services whose writes change what the
# local API serves: apigatewayv2 signs as "apigateway".
CONFIG_SERVICES = ("lambda", "apigateway")


class ConfigGeneration:
    """WSGI middleware: count the writes that change what a local API serves.

    Every state-changing request (not GET/HEAD/OPTIONS) to Lambda or API Gateway (an alias
    moved, a version published, a route created, a deploy or a rollback) bumps a counter once
    the emulator has carried it out and before the client has its answer. The value ("<boot
    id>:<count>"; the boot id tells a restarted emulator from the old one) is written to
    `generation_file`, which a local API server on the same machine reads with each request
    (a file read, where asking the emulator costs an HTTPS round trip), and answered on
    ``GET /_stackrun/config-generation`` with the file's path. Invocations are not writes.
    """

    def __init__(self, app: WSGIApp, generation_file: Path | None) -> None:
        self.app = app
        self.file = generation_file
        self.boot = uuid.uuid4().hex[:12]
        self.count = 0
        self.lock = threading.Lock()
        self._publish()

    @property
    def value(self) -> str:
        return f"{self.boot}:{self.count}"

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == CONFIG_GENERATION_PATH:
            document = {"generation": self.value, "file": str(self.file) if self.file else None}
            body = json.dumps(document).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if not _changes_config(environ):
            return self.app(environ, start_response)
        chunks = self.app(environ, start_response)  # moto has carried out the request
        with self.lock:
            self.count += 1
            self._publish()
        return chunks

    def _publish(self) -> None:
        if self.file is None:
            return
        partial = self.file.with_name(self.file.name + ".partial")
        partial.write_text(self.value)
        os.replace(partial, self.file)


def _changes_config(environ: dict[str, Any]) -> bool:
    if environ.get("REQUEST_METHOD") in ("GET", "HEAD", "OPTIONS"):
        return False
    if environ.get("PATH_INFO", "").endswith("/invocations"):
        return False
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    found = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", authorization)
    return found is not None and found.group(1) in CONFIG_SERVICES
