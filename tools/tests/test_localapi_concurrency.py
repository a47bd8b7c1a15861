"""The local API under load: parallel execution environments, their limit, the config cache.

The environment tests run real runtime processes (awslambdaric in the local python3.12
runtime) through the EnvironmentPool; the others run the real HTTP server (serve_api) against
functions deployed to the session's emulator, in an account no other test uses.
"""

from __future__ import annotations

import json
import os
import textwrap
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from emulated_api import function_with_two_versions, http_api, local_context
from emulated_repo import emulated_session
from in_flight import InFlight
from stackrun.local.api.bounded_server import BoundedHTTPServer
from stackrun.local.api.environments import EnvironmentPool, Limit, Throttled
from stackrun.local.api.functions import runtime_python
from stackrun.local.api.http_server import LocalContext, serve_api
from stackrun.local.api.runtime import FunctionProcess, ProcessSpec, clean_environment

REGION = "eu-west-1"
ACCOUNT = "295000000001"  # an account of its own in the shared emulator

HANDLER = """
import os
import time

MARK = {mark!r}


def handler(event, context):
    time.sleep(float((event.get("queryStringParameters") or {{}}).get("sleep", "0")))
    version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
    return {{"mark": MARK, "version": version, "pid": os.getpid()}}
"""


def _handler_source(mark: str) -> str:
    return textwrap.dedent(HANDLER.format(mark=mark))


# ---- execution environments: parallel, warm, capped -----------------------------------------


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Path:
    directory = os.environ.get("STACKRUN_RUNTIME_DIR") or str(tmp_path_factory.mktemp("rt"))
    return runtime_python("python3.12", Path(directory))


@dataclass
class Pool:
    pool: EnvironmentPool
    runtime: Path
    task_root: Path
    lines: list[str]
    function: Any = field(
        default_factory=lambda: SimpleNamespace(name="fn", version="1", key=("fn", "1", "code"))
    )

    def create(self) -> FunctionProcess:
        spec = ProcessSpec(
            name="fn",
            version="1",
            function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn:live",
            python=self.runtime,
            task_root=self.task_root,
            handler="app.handler",
            timeout_seconds=10,
            memory_mb=128,
            environment=clean_environment(
                {"AWS_LAMBDA_FUNCTION_VERSION": "1", "PYTHONPATH": str(self.task_root)}
            ),
        )
        return FunctionProcess(spec, self.lines.append)

    def invoke(self, limit: Limit, sleep: float) -> dict[str, Any]:
        """The handler's answer, or {"throttled": message}."""
        event = json.dumps({"queryStringParameters": {"sleep": str(sleep)}}).encode()
        try:
            with self.pool.lease(self.function, limit, self.create) as process:
                outcome = process.invoke(event)
        except Throttled as error:
            return {"throttled": str(error)}
        assert not outcome.failed, outcome.error
        return json.loads(outcome.payload)

    def wave(self, count: int, limit: Limit, sleep: float) -> tuple[float, list[dict]]:
        """(seconds, answers) of `count` invocations at once."""
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=count) as callers:
            answers = list(callers.map(lambda _: self.invoke(limit, sleep), range(count)))
        return time.monotonic() - started, answers

    def cold_starts(self) -> int:
        return sum("Init Duration" in line for line in self.lines if line.startswith("REPORT"))


@pytest.fixture
def pool(runtime, tmp_path):
    (tmp_path / "app.py").write_text(_handler_source("pool"))
    environments = EnvironmentPool(wait_seconds=30)
    try:
        yield Pool(environments, runtime, tmp_path, [])
    finally:
        environments.close()


def test_concurrent_invocations_run_in_parallel_environments_then_warm(pool):
    limit = Limit(10, throttles=False)
    seconds, answers = pool.wave(4, limit, sleep=1.0)
    # one at a time would take 4 s of handler time alone
    assert seconds < 3.5, seconds
    first_pids = {answer["pid"] for answer in answers}
    assert len(first_pids) == 4
    assert pool.cold_starts() == 4  # one INIT per environment
    assert pool.pool.count("fn") == 4

    seconds, answers = pool.wave(4, limit, sleep=1.0)
    assert seconds < 3.5, seconds
    assert {answer["pid"] for answer in answers} == first_pids  # the same, warm
    assert pool.cold_starts() == 4  # no INIT in the second wave
    reports = [line for line in pool.lines if line.startswith("REPORT")]
    assert len(reports) == 8


def test_reserved_concurrency_throttles_beyond_it(pool):
    _, answers = pool.wave(3, Limit(1, throttles=True), sleep=1.0)
    served = [answer for answer in answers if "pid" in answer]
    throttled = [answer["throttled"] for answer in answers if "throttled" in answer]
    assert len(served) == 1 and len(throttled) == 2, answers
    assert "TooManyRequestsException" in throttled[0]
    assert "reserved concurrency of 1" in throttled[0]
    assert pool.pool.count("fn") == 1


def test_a_reserved_concurrency_of_zero_throttles_everything(pool):
    assert "throttled" in pool.invoke(Limit(0, throttles=True), sleep=0)
    assert pool.pool.count("fn") == 0


def test_the_local_limit_queues_instead_and_serialises(pool):
    seconds, answers = pool.wave(3, Limit(1, throttles=False), sleep=0.5)
    assert all("pid" in answer for answer in answers), answers
    assert len({answer["pid"] for answer in answers}) == 1  # one environment, in turn
    assert seconds >= 1.5
    assert pool.cold_starts() == 1


def test_a_changed_configuration_gets_a_new_environment(pool):
    limit = Limit(2, throttles=False)
    before = pool.invoke(limit, sleep=0)
    pool.function = SimpleNamespace(name="fn", version="1", key=("fn", "1", "new code"))
    after = pool.invoke(limit, sleep=0)
    assert before["pid"] != after["pid"]
    assert pool.pool.count("fn") == 1  # the old one was stopped, not kept beside it


# ---- the bounded HTTP server ----------------------------------------------------------------


def test_the_server_serves_more_clients_than_workers_with_that_many_threads():
    from http.server import BaseHTTPRequestHandler

    in_flight = InFlight()

    class Slow(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            with in_flight:
                time.sleep(0.2)
            self.send_response(200)
            self.send_header("content-length", "2")
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.write(b"ok")

    threads_before = threading.active_count()
    server = BoundedHTTPServer(("127.0.0.1", 0), Slow, workers=3)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with ThreadPoolExecutor(max_workers=12) as clients:
            answers = list(
                clients.map(lambda _: urllib.request.urlopen(url, timeout=30).read(), range(24))
            )
        assert answers == [b"ok"] * 24  # none lost
        assert in_flight.peak == 3  # never more at once than the workers
        assert threading.active_count() - threads_before <= 3 + 1  # workers and the acceptor
    finally:
        server.shutdown()
        server.server_close()


# ---- through the HTTP server: the configuration cache, reserved concurrency ------------------


@dataclass
class Served:
    url: str
    context: LocalContext
    lambda_: Any
    apigateway: Any
    api_id: str
    integration_id: str
    function: str
    lines: list[str]

    def call(self, path: str) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(self.url.rstrip("/") + path, timeout=30) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())


@pytest.fixture
def served(emulator, tmp_path):
    """`<function>:live` -> version 1 ("one"; version 2 is "two"), GET /where, served locally."""
    session, client_args, running = emulated_session(emulator, ACCOUNT, REGION, "lapi-conc")
    apigateway = session.client("apigatewayv2", **client_args)
    name = f"conc-{tmp_path.name[-20:]}".replace("_", "-")
    lambda_ = function_with_two_versions(session, client_args, name, _handler_source)
    alias = lambda_.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    api_id, integration_id = http_api(session, client_args, name, alias["AliasArn"], "GET /where")
    context, lines = local_context(
        running,
        session,
        client_args,
        ("concurrency", ACCOUNT, REGION),
        (tmp_path / "cache", Path(os.environ["STACKRUN_RUNTIME_DIR"])),
    )
    server = serve_api(context, api_id, name, 0)
    try:
        yield Served(server.url, context, lambda_, apigateway, api_id, integration_id, name, lines)
    finally:
        server.server.shutdown()
        server.server.server_close()
        context.close()
        apigateway.delete_api(ApiId=api_id)


def _emulator_calls(context: LocalContext) -> list[str]:
    """Count the emulator calls of the context's cached clients from now on."""
    calls: list[str] = []
    for cache in (context.apigateway, context.lambda_):
        cache.client.meta.events.register(
            "before-call.*.*", lambda model, **_: calls.append(model.name)
        )
    return calls


def test_a_warm_request_reads_nothing_from_the_emulator(served):
    assert served.call("/where")[0] == 200  # cold start, and the cache filled
    calls = _emulator_calls(served.context)
    status, body = served.call("/where")
    assert status == 200 and body["mark"] == "one"
    assert calls == []


def test_a_moved_alias_and_a_new_route_are_served_by_the_next_request(served):
    assert served.call("/where")[1]["version"] == "1"
    served.lambda_.update_alias(FunctionName=served.function, Name="live", FunctionVersion="2")
    status, body = served.call("/where")
    assert (status, body["version"], body["mark"]) == (200, "2", "two")
    assert served.call("/there")[0] == 404
    served.apigateway.create_route(
        ApiId=served.api_id, RouteKey="GET /there", Target=f"integrations/{served.integration_id}"
    )
    assert served.call("/there")[0] == 200
    served.lambda_.update_alias(FunctionName=served.function, Name="live", FunctionVersion="1")
    assert served.call("/where")[1]["version"] == "1"


def test_reserved_concurrency_is_honoured_and_throttled_requests_are_500(served):
    served.lambda_.put_function_concurrency(
        FunctionName=served.function, ReservedConcurrentExecutions=1
    )
    with ThreadPoolExecutor(max_workers=3) as callers:
        answers = list(callers.map(lambda _: served.call("/where?sleep=1.5"), range(3)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200, 500, 500], answers
    assert any("throttled: TooManyRequestsException" in line for line in served.lines)
    served.lambda_.delete_function_concurrency(FunctionName=served.function)
    with ThreadPoolExecutor(max_workers=3) as callers:
        answers = list(callers.map(lambda _: served.call("/where?sleep=0.5"), range(3)))
    assert [status for status, _ in answers] == [200, 200, 200]
    assert len({body["pid"] for _, body in answers}) > 1


def test_the_generation_moves_with_lambda_and_api_gateway_writes_only(served):
    watch = served.context.lambda_.watch
    start = watch.current()
    assert start is not None and watch.file is not None and watch.file.is_file()
    served.lambda_.get_alias(FunctionName=served.function, Name="live")
    served.apigateway.get_routes(ApiId=served.api_id)
    logs = served.context.client("logs")
    logs.create_log_group(logGroupName=f"/bench/{served.function}")
    assert watch.current() == start  # reads and other services' writes are not config writes
    served.lambda_.update_alias(FunctionName=served.function, Name="live", FunctionVersion="1")
    moved = watch.current()
    assert moved != start and moved.split(":")[0] == start.split(":")[0]
    served.apigateway.update_api(ApiId=served.api_id, Description="moved")
    assert watch.current() not in (start, moved)
