"""Local API benchmark: one function behind an HTTP API, under 1 and 8 concurrent clients.

    python benchmarks/localapi_bench.py [--requests 25] [--json PATH]
    (or nox -s bench -- --cases localapi; deploy_bench.py runs it as its `localapi` case)

An emulator is started for the run (its own state folder, a free port). In an account of its
own a `register-device` function is created with the Lambda API (a zip, two published
versions, a `live` alias), behind an HTTP API route POST /devices, and served in this process
by the local API server (serve_api), as `stackrun serve` serves it. The handler validates the
JSON device document and waits 20 ms, standing in for the database insert of the real
register function (which needs the environment's PostgreSQL; the figures here are about what
the local API adds, not about the database).

Two servers are measured against the same function, one after the other:

    baseline   one execution environment per function and no configuration cache
               (LocalContext(default_concurrency=1, cache_configuration=False)): each request
               reads routes, integrations, stage, alias and version from the emulator and
               waits for the one environment, which is how the local API worked before
    contender  the defaults: environments created on demand up to the local limit, what is
               read from the emulator cached by the emulator's configuration generation

Each is warmed up untimed (8 concurrent requests: every environment it will use is started),
then: one client sending --requests x 2 requests in turn (per request: wall time, and the
overhead = wall time minus the handler's Duration from its REPORT line), and 8 clients each
sending --requests requests in a loop (throughput, p50/p95 latency). Every answer must be a
201 carrying the device id sent: any other answer, or a connection error, counts as failed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# the local API's tests build their functions and APIs with the same calls
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools" / "tests"))
from emulated_api import (
    app_zip,
    create_function,
    deploy_role_session,
    http_api,
    local_context,
)

ACCOUNT = "901000000003"
REGION = "eu-west-1"
CLIENTS = 8
HANDLER = """
import json
import time


def handler(event, context):
    device = json.loads(event.get("body") or "{}")
    if not isinstance(device.get("id"), str) or not device.get("model"):
        return {"statusCode": 400, "body": json.dumps({"message": "id and model required"})}
    time.sleep(0.02)  # the database insert of the real function
    answer = {"id": device["id"], "request_id": context.aws_request_id}
    return {"statusCode": 201, "body": json.dumps(answer)}
"""
REPORT = re.compile(r"REPORT RequestId: (\S+)\tDuration: ([0-9.]+) ms")


def deploy_function(session: Any, client_args: dict[str, str]) -> str:
    """Create the function, its alias and the HTTP API; the API's id."""
    create_function(session, client_args, "register-device", app_zip(HANDLER))
    lambda_ = session.client("lambda", **client_args)
    version = lambda_.publish_version(FunctionName="register-device")["Version"]
    alias = lambda_.create_alias(
        FunctionName="register-device", Name="live", FunctionVersion=version
    )
    api_id, _ = http_api(session, client_args, "bench", alias["AliasArn"], "POST /devices")
    return api_id


class Client:
    """Registers devices; records (wall ms, Lambda request id) per answer, and failures."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") + "/devices"
        self.lock = threading.Lock()
        self.counter = 0
        self.failures: list[str] = []

    def register(self) -> tuple[float, str] | None:
        with self.lock:
            self.counter += 1
            device = f"dev-{self.counter:06d}"
        body = json.dumps({"id": device, "model": "bench"}).encode()
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"content-type": "application/json"}
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                status, answer = reply.status, reply.read()
        except urllib.error.HTTPError as error:
            status, answer = error.code, error.read()
        except OSError as error:
            status, answer = 0, str(error).encode()
        millis = (time.perf_counter() - started) * 1000
        document = json.loads(answer) if status == 201 else {}
        if status != 201 or document.get("id") != device:
            with self.lock:
                self.failures.append(f"{status} {answer[:200]!r}")
            return None
        return millis, document["request_id"]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def measure(context: Any, api_id: str, requests: int, lines: list[str]) -> dict[str, Any]:
    from stackrun.local.api.http_server import serve_api

    served = serve_api(context, api_id, "bench", 0)
    client = Client(served.url)
    try:
        with ThreadPoolExecutor(max_workers=CLIENTS) as callers:  # warm-up, untimed
            list(callers.map(lambda _: client.register(), range(CLIENTS)))
        sequential = [client.register() for _ in range(requests * 2)]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=CLIENTS) as callers:
            loops = [
                callers.submit(lambda: [client.register() for _ in range(requests)])
                for _ in range(CLIENTS)
            ]
            concurrent = [answer for loop in loops for answer in loop.result()]
        seconds = time.perf_counter() - started
    finally:
        served.server.shutdown()
        served.server.server_close()
    durations = {match[1]: float(match[2]) for match in map(REPORT.search, lines) if match}
    overheads = [
        millis - durations[request_id]
        for millis, request_id in filter(None, sequential)
        if request_id in durations
    ]
    walls = [answer[0] for answer in concurrent if answer]
    return {
        "one_client_p50_ms": statistics.median(a[0] for a in filter(None, sequential)),
        "one_client_overhead_p50_ms": statistics.median(overheads) if overheads else None,
        "clients": CLIENTS,
        "requests": len(concurrent),
        "seconds": seconds,
        "throughput_rps": len(walls) / seconds,
        "p50_ms": _percentile(walls, 0.5),
        "p95_ms": _percentile(walls, 0.95),
        "failed": len(client.failures),
        "failures": client.failures[:5],
        "environments": context.environments.count("register-device"),
    }


def _context(running: Any, session: Any, client_args: dict, work: Path, **settings: Any) -> Any:
    runtimes_dir = settings.pop("runtimes_dir")
    scope = ("bench", ACCOUNT, REGION)
    return local_context(
        running, session, client_args, scope, (work / "cache", runtimes_dir), **settings
    )


def run(requests: int, port: int = 0, runtimes_dir: Path | None = None) -> dict[str, Any]:
    """Both servers' figures: {"baseline": {...}, "contender": {...}}; `port`: the
    emulator's (0: a free one)."""
    from stackrun.local.api.functions import runtime_python
    from stackrun.local.emulator import ensure_running, stop

    work = Path(tempfile.mkdtemp(prefix="stackrun-localapi-bench-"))
    runtimes = runtimes_dir or work / "runtimes"
    runtime_python("python3.12", runtimes)  # machine setup, untimed
    state_dir = work / "emulator"
    running = ensure_running(state_dir, port=port or _free_port())
    results: dict[str, Any] = {}
    try:
        session, client_args = deploy_role_session(
            running.endpoint, str(running.ca_bundle), ACCOUNT, REGION, "localapi-bench"
        )
        api_id = deploy_function(session, client_args)
        settings = {
            "baseline": {"default_concurrency": 1, "cache_configuration": False},
            "contender": {},
        }
        for name, options in settings.items():
            context, lines = _context(
                running, session, client_args, work, runtimes_dir=runtimes, **options
            )
            try:
                results[name] = measure(context, api_id, requests, lines)
            finally:
                context.close()
            print(f"  {name}: {json.dumps(results[name])}", flush=True)
    finally:
        stop(state_dir)
        shutil.rmtree(work, ignore_errors=True)
    return results


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def print_table(results: dict[str, Any]) -> None:
    base, new = results["baseline"], results["contender"]
    print(
        f"\n| local API, {CLIENTS} clients | baseline (1 environment, no cache) | contender |\n"
        "|---|---|---|"
    )
    rows = [
        ("throughput (requests/s)", "throughput_rps", "{:.1f}"),
        ("p50 latency (ms)", "p50_ms", "{:.0f}"),
        ("p95 latency (ms)", "p95_ms", "{:.0f}"),
        ("1 client: p50 per request (ms)", "one_client_p50_ms", "{:.1f}"),
        ("1 client: p50 overhead (ms)", "one_client_overhead_p50_ms", "{:.1f}"),
        ("failed requests", "failed", "{}"),
        ("environments started", "environments", "{}"),
    ]
    for label, key, shape in rows:
        print(f"| {label} | {shape.format(base[key])} | {shape.format(new[key])} |")
    ratio = new["throughput_rps"] / base["throughput_rps"]
    print(f"\nthroughput ratio at {CLIENTS} clients: {ratio:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=25, help="per client (25)")
    parser.add_argument("--port", type=int, default=0, help="the emulator's port (a free one)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()
    results = run(args.requests, args.port)
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if any(item["failed"] for item in results.values()):
        sys.exit("some requests failed")


if __name__ == "__main__":
    main()
