"""One function's execution environment: a runtime process and the Runtime API it polls.

The process is the real Lambda runtime interface client (``python -m awslambdaric <handler>``)
from the function's task root, the folder its zip was extracted to. It talks to a Runtime API
served here on loopback, as it talks to the Lambda service in AWS::

    GET  /2018-06-01/runtime/invocation/next            the next event (blocks until one)
    POST /2018-06-01/runtime/invocation/<id>/response   the handler's result
    POST /2018-06-01/runtime/invocation/<id>/error      the handler raised
    POST /2018-06-01/runtime/init/error                 the handler could not be loaded

What Lambda guarantees and this honours: one invocation at a time per environment, the
function's timeout (the process is killed and the next invocation starts a fresh one),
its memory size (as the process's data-segment limit, and reported as "Max Memory Used"),
a deadline and request id in the context, and START/END/REPORT lines around each invocation
in the function's log.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import resource
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

API_PREFIX = "/2018-06-01/runtime"
INIT_TIMEOUT_SECONDS = 10.0  # Lambda's limit for the init phase of on-demand functions
LogSink = Callable[[str], None]


@dataclass
class Invocation:
    """One event on its way through the runtime, and what came back."""

    event: bytes
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    trace_id: str = ""
    handed_out: float | None = None  # monotonic time the runtime received it
    deadline_ms: int = 0
    result: bytes | None = None
    error: dict[str, Any] | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def finish(self, result: bytes | None = None, error: dict[str, Any] | None = None) -> None:
        if not self.done.is_set():
            self.result, self.error = result, error
            self.done.set()


@dataclass(frozen=True)
class Outcome:
    """The answer of one invocation, as the Lambda Invoke API would report it."""

    request_id: str
    payload: bytes | None  # the handler's result (JSON), when it succeeded
    error: dict[str, Any] | None  # errorType / errorMessage / stackTrace, when it failed
    duration_ms: float
    init_ms: float | None  # set on a cold start

    @property
    def failed(self) -> bool:
        return self.error is not None


class RuntimeApi:
    """The Runtime API of one execution environment, on an ephemeral loopback port."""

    def __init__(self, timeout_seconds: float, function_arn: str) -> None:
        self.timeout_seconds = timeout_seconds
        self.function_arn = function_arn
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.current: Invocation | None = None
        self.init_error: dict[str, Any] | None = None
        self.closed = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        # bound to a host name or address string (socketserver also allows bytes)
        host, port = str(self.server.server_address[0]), self.server.server_address[1]
        return f"{host}:{port}"

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()

    # -- the runtime's side ---------------------------------------------------------------

    def next_invocation(self) -> Invocation | None:
        while not self.closed.is_set():
            try:
                invocation = self.pending.get(timeout=0.2)
            except queue.Empty:
                continue
            invocation.handed_out = time.monotonic()
            invocation.deadline_ms = int((time.time() + self.timeout_seconds) * 1000)
            self.current = invocation
            return invocation
        return None

    def finish(self, request_id: str, result: bytes | None, error: dict[str, Any] | None) -> bool:
        invocation = self.current
        if invocation is None or invocation.request_id != request_id:
            return False
        invocation.finish(result, error)
        return True

    def fail_init(self, error: dict[str, Any]) -> None:
        self.init_error = error
        for invocation in self._drain():
            invocation.finish(error=error)

    def _drain(self) -> list[Invocation]:
        drained = [self.current] if self.current else []
        while True:
            try:
                drained.append(self.pending.get_nowait())
            except queue.Empty:
                return drained

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each event waits 40 ms for a delayed ACK

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the runtime's requests are not the function's log

            def do_GET(self) -> None:
                if self.path != f"{API_PREFIX}/invocation/next":
                    return self._reply(HTTPStatus.NOT_FOUND, {"errorMessage": "unknown path"})
                invocation = api.next_invocation()
                if invocation is None:  # shutting down
                    return self._reply(HTTPStatus.GONE, {"errorMessage": "shutting down"})
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(invocation.event)))
                self.send_header("Lambda-Runtime-Aws-Request-Id", invocation.request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", api.function_arn)
                if invocation.trace_id:
                    self.send_header("Lambda-Runtime-Trace-Id", invocation.trace_id)
                self.end_headers()
                self.wfile.write(invocation.event)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = self.path[len(API_PREFIX) :].strip("/").split("/")
                if parts == ["init", "error"]:
                    api.fail_init(_error_document(body, self.headers))
                    return self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})
                if len(parts) == 3 and parts[0] == "invocation":
                    request_id, kind = parts[1], parts[2]
                    if kind == "response":
                        known = api.finish(request_id, body, None)
                    elif kind == "error":
                        known = api.finish(request_id, None, _error_document(body, self.headers))
                    else:
                        known = False
                    if known:
                        return self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})
                    return self._reply(
                        HTTPStatus.BAD_REQUEST, {"errorMessage": f"unknown request {request_id}"}
                    )
                return self._reply(HTTPStatus.NOT_FOUND, {"errorMessage": "unknown path"})

            def _reply(self, status: HTTPStatus, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # a runtime gone (at shutdown) gets none
                    self.wfile.write(body)

        return Handler


def _error_document(body: bytes, headers: Any) -> dict[str, Any]:
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        document = {"errorMessage": body.decode("utf-8", "replace")}
    if not isinstance(document, dict):
        document = {"errorMessage": str(document)}
    document.setdefault(
        "errorType", headers.get("Lambda-Runtime-Function-Error-Type") or "Runtime.Unknown"
    )
    document.setdefault("errorMessage", "")
    return document


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessSpec:
    """How to start the runtime process of one function version."""

    name: str  # function name, for messages
    version: str
    function_arn: str  # qualified ARN of what was invoked (the alias)
    python: Path  # interpreter of the runtime environment (with awslambdaric)
    task_root: Path  # the extracted zip
    handler: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]  # everything except the Runtime API address


class FunctionProcess:
    """An execution environment of one function version: started on demand, reused warm."""

    def __init__(self, spec: ProcessSpec, log: LogSink) -> None:
        self.spec = spec
        self.log = log
        self.lock = threading.Lock()
        self.api: RuntimeApi | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.reader: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def _start(self) -> None:
        self.api = RuntimeApi(self.spec.timeout_seconds, self.spec.function_arn)
        env = dict(self.spec.environment)
        env["AWS_LAMBDA_RUNTIME_API"] = self.api.address
        memory_bytes = self.spec.memory_mb * 1024 * 1024

        def limit_memory() -> None:
            # The data segment (heap and private writable mappings) is what a function's
            # memory setting bounds in practice; address space would count reserved arenas.
            resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))

        self.process = subprocess.Popen(
            [str(self.spec.python), "-m", "awslambdaric", self.spec.handler],
            cwd=self.spec.task_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=limit_memory,
        )
        self.reader = threading.Thread(target=self._read_output, args=(self.process,), daemon=True)
        self.reader.start()

    def _read_output(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            self.log(raw.decode("utf-8", "replace").rstrip("\n"))

    def stop(self) -> None:
        with self.lock:
            self._stop()

    def _stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            if self.reader is not None:
                self.reader.join(timeout=2)
        if self.api is not None:
            self.api.close()
        self.process = self.api = self.reader = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- invoking -------------------------------------------------------------------------

    def invoke(self, event: bytes, trace_id: str = "") -> Outcome:
        """Run one event through the function; one at a time, as in one Lambda environment."""
        with self.lock:
            started = time.monotonic()
            cold = not self.alive
            if cold:
                self._stop()
                self._start()
            assert self.api is not None and self.process is not None
            invocation = Invocation(event=event, trace_id=trace_id)
            self.log(f"START RequestId: {invocation.request_id} Version: {self.spec.version}")
            self.api.pending.put(invocation)
            error = self._wait(invocation, started)
            if error is not None:
                invocation.finish(error=error)
            finished = time.monotonic()
            handed_out = invocation.handed_out or finished
            duration_ms = (finished - handed_out) * 1000
            init_ms = (handed_out - started) * 1000 if cold else None
            self._report(invocation.request_id, duration_ms, init_ms)
            if invocation.error is not None and not self.alive:
                self._stop()  # the next invocation starts a fresh environment
            return Outcome(
                invocation.request_id, invocation.result, invocation.error, duration_ms, init_ms
            )

    def _wait(self, invocation: Invocation, started: float) -> dict[str, Any] | None:
        """Wait for the outcome; an error document when the environment failed instead."""
        assert self.process is not None and self.api is not None
        while not invocation.done.wait(0.05):
            now = time.monotonic()
            if invocation.handed_out is not None:
                if now - invocation.handed_out > self.spec.timeout_seconds:
                    self._kill()
                    message = f"Task timed out after {self.spec.timeout_seconds:.2f} seconds"
                    self.log(f"{_timestamp()} {invocation.request_id} {message}")
                    return {"errorType": "Sandbox.Timedout", "errorMessage": message}
            elif now - started > INIT_TIMEOUT_SECONDS + self.spec.timeout_seconds:
                self._kill()
                return {
                    "errorType": "Runtime.InitTimeout",
                    "errorMessage": f"the runtime did not ask for the event within "
                    f"{INIT_TIMEOUT_SECONDS + self.spec.timeout_seconds:.0f} s",
                }
            code = self.process.poll()
            if code is not None and not invocation.done.is_set():
                # Give a POST that raced the exit (init error, then exit 1) a moment to land.
                if invocation.done.wait(0.2):
                    break
                return self.api.init_error or {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {invocation.request_id} Error: Runtime exited "
                    f"with error: exit status {code}",
                }
        return None

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _report(self, request_id: str, duration_ms: float, init_ms: float | None) -> None:
        self.log(f"END RequestId: {request_id}")
        line = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, round(duration_ms))} ms\t"
            f"Memory Size: {self.spec.memory_mb} MB\tMax Memory Used: {self._max_rss_mb()} MB"
        )
        if init_ms is not None:
            line += f"\tInit Duration: {init_ms:.2f} ms"
        self.log(line)

    def _max_rss_mb(self) -> int:
        """Peak resident memory of the runtime process so far (VmHWM), in MB."""
        if self.process is None:
            return 0
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
        return 0


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"


def clean_environment(extra: dict[str, str]) -> dict[str, str]:
    """A process environment holding only what Lambda sets, plus `extra` (nothing inherited)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONUNBUFFERED": "1",
    }
    if os.environ.get("PATH"):
        env["PATH"] = os.environ["PATH"]
    env.update(extra)
    return env
