"""`stackrun serve <env>`: run an environment's HTTP APIs locally, in the foreground or detached.

The detached server (started by `deploy --local`, or `serve --background`) records itself in
.stackrun/local/<env>/serve.json::

    {"pid": 1234, "apis": {"<api id>": {"name": "fleet-dev", "url": "http://127.0.0.1:40123/"}}}

and writes its output to serve.log beside it. `emulator stop` stops it with the emulator.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from stackrun.errors import StackrunError
from stackrun.filelock import file_lock
from stackrun.local.api.functions import LocalApiError, resolve, runtime_python, task_root
from stackrun.local.api.http_server import HEALTH_PATH, LocalContext, routed_functions, serve_api
from stackrun.local.detached import (
    log_tail,
    package_pythonpath,
    runs_module,
    spawn_detached,
    terminate,
    wait_gone,
)
from stackrun.local.postgres.behind_rds import endpoint_file
from stackrun.paths import local_environments_dir, local_functions_dir, runtimes_dir
from stackrun.terraform.workspace import Workspace

STATE_FILE = "serve.json"
LOG_FILE = "serve.log"
LOCK_FILE = "serve.lock"
PROCESS_MARKER = "stackrun\0serve"
START_TIMEOUT_SECONDS = 180  # the first start creates the runtime environment (pip)


def state_file(workspace: Workspace) -> Path:
    return workspace.cache_dir / STATE_FILE


def make_context(workspace: Workspace, console: Any = None) -> LocalContext:
    target, environment = workspace.target, workspace.environment
    assert target.endpoint and target.ca_bundle
    out = console or workspace.console
    print_lock = threading.Lock()

    def say(line: str) -> None:
        with print_lock:
            print(line, file=out, flush=True)

    database_file = endpoint_file(workspace)
    return LocalContext(
        environment_name=environment.name,
        account_id=environment.account_id,
        region=environment.region,
        endpoint=target.endpoint,
        ca_bundle=target.ca_bundle,
        session=target.session(environment),
        client_args=target.client_args(),
        cache_dir=workspace.cache_dir,
        runtimes_dir=runtimes_dir(environment.project.root),
        database=json.loads(database_file.read_text()) if database_file.is_file() else None,
        console=say,
    )


def deployed_apis(context: LocalContext) -> dict[str, str]:
    """api id -> name of every HTTP API in the environment's account and region."""
    items = context.apigateway.get_apis().get("Items", [])
    return {item["ApiId"]: item.get("Name", "") for item in items}


def prepare(context: LocalContext, api_id: str) -> None:
    """Fetch every routed function's code and create its runtime before the first request."""
    for reference in routed_functions(context, api_id):
        function = resolve(context.lambda_, reference)
        if not (context.runtimes_dir / function.runtime / ".stackrun-runtime").is_file():
            context.console(
                f"[serve] creating the local {function.runtime} runtime (awslambdaric, boto3) "
                f"in {context.runtimes_dir / function.runtime} (first use only)"
            )
        runtime_python(function.runtime, context.runtimes_dir)
        task_root(function, local_functions_dir(context.cache_dir), context.ca_bundle)


def serve_foreground(workspace: Workspace, port: int | None = None) -> int:
    """Serve until SIGINT/SIGTERM. One port per API; `port` is the first API's."""
    previous = _read_state(workspace) or {}  # its ports are reused
    # One server per environment: this one takes over. (No serve.lock here: a detached start
    # holds it while it waits for this process to come up.)
    _stop_record(_running_record(workspace), state_file(workspace))
    context = make_context(workspace, console=sys.stdout)
    environment = workspace.environment
    apis = deployed_apis(context)
    if not apis:
        raise LocalApiError(
            f"no HTTP API is deployed in {environment.name} (account {environment.account_id}, "
            f"{environment.region}): deploy first with `nox -s deploy -- {environment.name} "
            "--local`"
        )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    served = []
    try:
        for index, (api_id, name) in enumerate(sorted(apis.items())):
            prepare(context, api_id)
            wanted = port if (port and index == 0) else _previous_port(previous, api_id)
            served.append(serve_api(context, api_id, name, wanted))
        record = {
            "pid": os.getpid(),
            "apis": {api.api_id: {"name": api.name, "url": api.url} for api in served},
        }
        _write_state(workspace, record)
        for api in served:
            context.console(f"serving {environment.name} API {api.name} ({api.api_id}): {api.url}")
        context.console("function logs follow; Ctrl-C stops")
        stop.wait()
    finally:
        for api in served:
            api.server.shutdown()
            api.server.server_close()
        context.close()
        current = _read_state(workspace)
        if current and current.get("pid") == os.getpid():
            state_file(workspace).unlink(missing_ok=True)
    return 0


def _previous_port(previous: dict[str, Any], api_id: str) -> int:
    url = previous.get("apis", {}).get(api_id, {}).get("url", "")
    try:
        return int(url.rstrip("/").rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 0


# ---- the detached server ---------------------------------------------------------------------


def ensure_background(workspace: Workspace) -> dict[str, str]:
    """api id -> URL of the environment's detached server, started (or restarted) if needed."""
    environment = workspace.environment
    with file_lock(workspace.cache_dir / LOCK_FILE):
        context_apis = _current_api_ids(workspace)
        record = _running_record(workspace)
        if record and set(record["apis"]) == context_apis and _answers(record):
            return {api_id: item["url"] for api_id, item in record["apis"].items()}
        _stop_record(record)
        if not context_apis:
            return {}
        env = workspace.target.subprocess_env()
        env["PYTHONPATH"] = package_pythonpath(env)
        # The same emulator as this command's (which may run on a port given with --port).
        env["STACKRUN_LOCAL_PORT"] = str(workspace.target.endpoint).rsplit(":", 1)[1]
        env["STACKRUN_ROOT"] = str(environment.project.root)
        env["PYTHONUNBUFFERED"] = "1"
        workspace.cache_dir.mkdir(parents=True, exist_ok=True)
        log_file = workspace.cache_dir / LOG_FILE
        process = spawn_detached(
            [sys.executable, "-m", "stackrun", "serve", environment.name],
            environment.project.root,
            env,
            log_file,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            record = _read_state(workspace)
            if record and record.get("pid") == process.pid:
                return {api_id: item["url"] for api_id, item in record["apis"].items()}
            if process.poll() is not None:
                break
            time.sleep(0.2)
        if process.poll() is None:
            terminate(process.pid, 5, "the local API server")
        raise LocalApiError(
            f"the local API server of {environment.name} did not start; {log_file} ends with:\n"
            + log_tail(log_file)
        )


def _current_api_ids(workspace: Workspace) -> set[str]:
    client = workspace.target.client(workspace.environment, "apigatewayv2")
    return {item["ApiId"] for item in client.get_apis().get("Items", [])}


def running_urls(workspace: Workspace) -> dict[str, str]:
    """api id -> URL of the detached server, if it runs (nothing is started)."""
    record = _running_record(workspace)
    return {api_id: item["url"] for api_id, item in record["apis"].items()} if record else {}


def stop_background(workspace: Workspace) -> bool:
    with file_lock(workspace.cache_dir / LOCK_FILE):
        return _stop_record(_running_record(workspace), state_file(workspace))


def stop_all(root: Path) -> list[str]:
    """Stop the local API servers of every environment (with the emulator)."""
    stopped = []
    for path in sorted(local_environments_dir(root).glob(f"*/{STATE_FILE}")):
        record = _load(path)
        if record and runs_module(record["pid"], PROCESS_MARKER):
            _stop_record(record, path)
            stopped.append(path.parent.name)
        path.unlink(missing_ok=True)
    return stopped


def _stop_record(record: dict[str, Any] | None, path: Path | None = None) -> bool:
    if path is not None:
        path.unlink(missing_ok=True)
    if not record:
        return False
    terminate(record["pid"], 10, "the local API server")
    wait_gone(record["pid"], 5)
    return True


def _running_record(workspace: Workspace) -> dict[str, Any] | None:
    record = _read_state(workspace)
    if record and runs_module(record["pid"], PROCESS_MARKER):
        return record
    return None


def _answers(record: dict[str, Any]) -> bool:
    for item in record["apis"].values():
        try:
            urllib.request.urlopen(item["url"] + HEALTH_PATH.lstrip("/"), timeout=2).read()
        except urllib.error.HTTPError:
            continue  # any HTTP answer (a 404 from API routing) means it serves
        except OSError:
            return False
    return True


def _read_state(workspace: Workspace) -> dict[str, Any] | None:
    return _load(state_file(workspace))


def _load(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(record, dict) and isinstance(record.get("pid"), int):
        record.setdefault("apis", {})
        return record
    return None


def _write_state(workspace: Workspace, record: dict[str, Any]) -> None:
    path = state_file(workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)


# ---- the smoke call at the end of a local deploy ----------------------------------------------


def smoke(workspace: Workspace, urls: dict[str, str]) -> None:
    """Call every parameter-free-able GET route of each served API; a 5xx fails the deploy.

    A route behind a JWT authorizer is called with a token for its scopes from the
    environment's identity stack (the client credentials grant, as `stackrun token` gets one);
    without a pool to get one from (an external issuer) it is called without, and answers 401.
    """
    client = workspace.target.client(workspace.environment, "apigatewayv2")
    tokens = _SmokeTokens(workspace)
    for api_id, url in sorted(urls.items()):
        routes = client.get_routes(ApiId=api_id).get("Items", [])
        gets = sorted(
            (item for item in routes if item["RouteKey"].startswith("GET ")),
            key=lambda item: item["RouteKey"],
        )
        gets = [item for item in gets if "+}" not in item["RouteKey"]]
        if not gets:
            print(f"    smoke {url}: no GET route to call", file=workspace.console, flush=True)
            continue
        for item in gets:
            key = item["RouteKey"]
            path = "/".join(
                "smoke-test" if part.startswith("{") else part
                for part in key.split(" ", 1)[1].split("/")
            )
            token = None
            if item.get("AuthorizationType") == "JWT":
                token = tokens.get((item.get("AuthorizationScopes") or [None])[0])
            _smoke_call(workspace, url.rstrip("/") + path, key, token)


class _SmokeTokens:
    """Tokens for the smoke calls, one per scope, fetched on first use (None: none to be had)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.tokens: dict[str | None, str | None] = {}

    def get(self, scope: str | None) -> str | None:
        if scope not in self.tokens:
            from stackrun.aws.identity import TokenError, fetch_token
            from stackrun.deploy.runner import collect_outputs

            try:
                outputs = collect_outputs(self.workspace, announce=False)
                _, token = fetch_token(self.workspace, outputs, scopes=[scope] if scope else [])
            except TokenError as error:
                print(
                    f"    smoke: calling without a token ({error})",
                    file=self.workspace.console,
                    flush=True,
                )
                token = None
            self.tokens[scope] = token
        return self.tokens[scope]


def _smoke_call(workspace: Workspace, url: str, route: str, token: str | None = None) -> None:
    started = time.monotonic()
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=60) as reply:
            status, served_by = reply.status, reply.headers.get("x-stackrun-function", "")
            body = reply.read()
    except urllib.error.HTTPError as error:
        status, served_by = error.code, error.headers.get("x-stackrun-function", "")
        body = error.read()
    except OSError as error:
        raise StackrunError(f"smoke call GET {url} failed: {error}") from error
    millis = (time.monotonic() - started) * 1000
    auth = "with a token" if token else "without a token"
    line = f"    smoke GET {url} ({route}, {auth}) -> {status} in {millis:.0f} ms, " + (
        f"served by {served_by}" if served_by else "no function invoked"
    )
    print(line, file=workspace.console, flush=True)
    if status >= 500:
        raise StackrunError(
            f"the deployed API answers {status} to GET {url}: {body[:300]!r}; the function's "
            f"output is in {workspace.cache_dir / LOG_FILE} and in its CloudWatch log group"
        )
