"""Lifecycle of the local AWS emulator process.

One emulator per state directory. It is started on demand, detached from the command that
started it (later commands reuse it: its state lives only in its memory), and stopped
explicitly. The state directory holds::

    tls/            the private CA and the server certificate (ca.py)
    rds/            the PostgreSQL servers behind the RDS instances (postgres/behind_rds.py);
                    stopped and deleted with the emulator, whose memory held the instances
    lambda/         the code the emulator's Invoke runs, extracted per version (invoke.py); a
                    cache keyed by the code's hash, so it is kept across the emulator's runs
    emulator.pid    {"pid": ..., "host": ..., "port": ...} of the running emulator
    emulator.log    the emulator's output of its current run
    emulator.lock   serialises start/stop between concurrent commands

Nothing in it names a path of this machine, so it may be moved or deleted freely (deleting
it while the emulator runs orphans the process; stop first).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from stackrun.errors import StackrunError
from stackrun.filelock import file_lock
from stackrun.local.detached import (
    is_alive,
    log_tail,
    package_pythonpath,
    runs_module,
    spawn_detached,
    terminate,
)
from stackrun.paths import emulated_rds_dir, emulator_tls_dir

from .ca import certificate_paths, ensure_certificates
from .common import HEALTH_PATH, is_loopback

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566
STOP_GRACE_SECONDS = 10.0

_SERVER_MODULE = "stackrun.local.emulator.server"
_PID_FILE = "emulator.pid"
_LOG_FILE = "emulator.log"
_LOCK_FILE = "emulator.lock"


class PidRecord(TypedDict):
    """The pid file of a state directory's emulator: its process and where it listens."""

    pid: int
    host: str
    port: int


class EmulatorError(StackrunError):
    """The emulator cannot be started, reached or stopped as asked."""


@dataclass(frozen=True)
class Emulator:
    """A running emulator: where to send AWS API calls, and the CA bundle to trust for it."""

    endpoint: str
    ca_bundle: Path


def ensure_running(
    state_dir: Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    timeout: float = 30,
) -> Emulator:
    """Return the emulator of ``state_dir`` on ``host:port``, starting it if it is not running.

    Raises EmulatorError if the host is not a loopback address, if another program listens on
    the port, if this state directory's emulator already runs on another address, or if a
    started emulator exits or does not become ready within ``timeout`` seconds.
    """
    _check_loopback(host)
    _check_port(port)
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    endpoint = _endpoint(host, port)

    with file_lock(state_dir / _LOCK_FILE):
        record = _read_pid_file(state_dir)
        if record is not None and _is_our_process(record["pid"]):
            return _running_emulator(state_dir, record, host, port, timeout)
        _remove_pid_file(state_dir)

        if _is_listening(host, port):
            raise EmulatorError(
                f"port {port} on {host} is already in use by another program (not the "
                f"emulator of this state directory): stop that program or choose another "
                f"emulator port"
            )

        _forget_rds_instances(state_dir)  # of an emulator that ended without `stop`
        certificates = ensure_certificates(emulator_tls_dir(state_dir), extra_hosts=[host])
        print(f"starting local AWS emulator on {endpoint} ...", file=sys.stderr, flush=True)
        process = _spawn(state_dir, host, port, certificates.server_cert, certificates.server_key)
        _write_pid_file(state_dir, {"pid": process.pid, "host": host, "port": port})
        if not _wait_ready(host, port, certificates.ca_cert, timeout, pid=process.pid):
            returncode = process.poll()
            if returncode is None:
                _terminate(process.pid)
                reason = f"did not become ready within {timeout:g}s"
            else:
                reason = f"exited with status {returncode}"
            _remove_pid_file(state_dir)
            raise EmulatorError(
                f"the local AWS emulator on {endpoint} {reason}; its log "
                f"({state_dir.name}/{_LOG_FILE}) ends with:\n{log_tail(state_dir / _LOG_FILE)}"
            )
        return Emulator(endpoint=endpoint, ca_bundle=certificates.ca_cert)


def _running_emulator(
    state_dir: Path, record: PidRecord, host: str, port: int, timeout: float
) -> Emulator:
    """The emulator this state directory's pid file names, if it runs where asked and answers."""
    endpoint = _endpoint(host, port)
    if (record["host"], record["port"]) != (host, port):
        running = _endpoint(record["host"], record["port"])
        raise EmulatorError(
            f"the emulator of {state_dir.name!r} already runs on {running} "
            f"(pid {record['pid']}); use that address or stop it first"
        )
    ca_bundle = certificate_paths(emulator_tls_dir(state_dir)).ca_cert
    if _wait_ready(host, port, ca_bundle, timeout, pid=record["pid"]):
        return Emulator(endpoint=endpoint, ca_bundle=ca_bundle)
    raise EmulatorError(
        f"the emulator on {endpoint} (pid {record['pid']}) runs but does not answer "
        f"over HTTPS with this state directory's CA; stop it and start again\n"
        f"{log_tail(state_dir / _LOG_FILE)}"
    )


def stop(state_dir: Path) -> bool:
    """Stop the emulator of ``state_dir``; True if one was running and has been stopped."""
    state_dir = Path(state_dir).resolve()
    if not state_dir.is_dir():
        return False
    with file_lock(state_dir / _LOCK_FILE):
        record = _read_pid_file(state_dir)
        stopped = False
        if record is not None and _is_our_process(record["pid"]):
            _terminate(record["pid"])
            stopped = True
        _remove_pid_file(state_dir)
        _forget_rds_instances(state_dir)
        return stopped


def _forget_rds_instances(state_dir: Path) -> None:
    """Stop the PostgreSQL servers behind the emulator's RDS instances and delete their data:
    the instances lived in the emulator's memory, and a new emulator starts without them."""
    from stackrun.local.postgres import stop_all

    instances = emulated_rds_dir(state_dir)
    if instances.is_dir():
        stop_all(instances)
        shutil.rmtree(instances)


def status(state_dir: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """One line for humans: is this state directory's emulator running, and where."""
    state_dir = Path(state_dir).resolve()
    record = _read_pid_file(state_dir) if state_dir.is_dir() else None
    if record is not None and _is_our_process(record["pid"]):
        running = _endpoint(record["host"], record["port"])
        ca_bundle = certificate_paths(emulator_tls_dir(state_dir)).ca_cert
        if _probe(record["host"], record["port"], ca_bundle):
            return f"running on {running} (pid {record['pid']})"
        return f"started on {running} (pid {record['pid']}) but not answering"
    if _is_listening(host, port):
        return f"not running; port {port} on {host} is used by another program"
    return "not running"


def running_pid(state_dir: Path) -> int | None:
    """The process id of this state directory's emulator, if it is running."""
    state_dir = Path(state_dir).resolve()
    record = _read_pid_file(state_dir) if state_dir.is_dir() else None
    if record is not None and _is_our_process(record["pid"]):
        return record["pid"]
    return None


# --- process handling -------------------------------------------------------------------------


def _spawn(state_dir: Path, host: str, port: int, cert: Path, key: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    # The server imports this very package, also when the tools run from a source tree.
    env["PYTHONPATH"] = package_pythonpath(env)
    env["PYTHONUNBUFFERED"] = "1"
    # AWS-managed IAM policies (e.g. AmazonRDSEnhancedMonitoringRole) exist in every real
    # account; moto only creates them in its accounts when asked to.
    env.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    command = [
        sys.executable,
        "-m",
        _SERVER_MODULE,
        "--host",
        host,
        "--port",
        str(port),
        "--cert",
        str(cert),
        "--key",
        str(key),
    ]
    return spawn_detached(command, state_dir, env, state_dir / _LOG_FILE)


def _terminate(pid: int) -> None:
    terminate(pid, STOP_GRACE_SECONDS, "the local AWS emulator")


def _is_our_process(pid: int) -> bool:
    """Alive, and (where /proc tells) still the emulator rather than a reused pid."""
    return runs_module(pid, _SERVER_MODULE)


# --- readiness --------------------------------------------------------------------------------


def _wait_ready(host: str, port: int, ca_bundle: Path, timeout: float, pid: int) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if _probe(host, port, ca_bundle):
            return True
        if not is_alive(pid) or time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def _probe(host: str, port: int, ca_bundle: Path) -> bool:
    """GET moto's config route over HTTPS, trusting only this state directory's CA."""
    try:
        context = ssl.create_default_context(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError):
        return False
    connection = http.client.HTTPSConnection(host, port, context=context, timeout=2)
    try:
        connection.request("GET", HEALTH_PATH)
        response = connection.getresponse()
        response.read()
        return 200 <= response.status < 300
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _is_listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# --- validation and files ---------------------------------------------------------------------


def _check_loopback(host: str) -> None:
    """The emulator accepts any credentials: it must never be reachable from the network."""
    if is_loopback(host):
        return
    raise EmulatorError(
        f"the local AWS emulator binds loopback addresses only (127.0.0.0/8, ::1, localhost), "
        f"not {host!r}"
    )


def _check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise EmulatorError(f"emulator port {port} is not a TCP port (1-65535)")


def _endpoint(host: str, port: int) -> str:
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def _read_pid_file(state_dir: Path) -> PidRecord | None:
    try:
        record = json.loads((state_dir / _PID_FILE).read_text())
        if isinstance(record["pid"], int) and isinstance(record["port"], int):
            return {"pid": record["pid"], "host": str(record["host"]), "port": record["port"]}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _write_pid_file(state_dir: Path, record: PidRecord) -> None:
    tmp = state_dir / f".{_PID_FILE}.tmp"
    tmp.write_text(json.dumps(record) + "\n")
    os.replace(tmp, state_dir / _PID_FILE)


def _remove_pid_file(state_dir: Path) -> None:
    (state_dir / _PID_FILE).unlink(missing_ok=True)
