"""What every part of the local PostgreSQL package shares: the server's address and TLS, the
error raised, the file names of a data folder and the messages' log tails."""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stackrun.errors import StackrunError
from stackrun.local.detached import last_lines

DEFAULT_HOST = "127.0.0.1"
ADMIN_ROLE = "stackrun_superuser"
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 60
CONF_FILE = "stackrun.conf"
TLS_CERT = "server.crt"
TLS_KEY = "server.key"
RECORD_FILE = "stackrun-server.json"
LOG_FILE = "server.log"
ATTEMPTS = 3
RECHECK_SECONDS = 5


class LocalDatabaseError(StackrunError):
    """The local PostgreSQL server cannot be set up, started, stopped or reached as asked."""


@dataclass(frozen=True)
class ServerTLS:
    """The certificate (PEM, chain) and private key a server serves TLS with."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class LocalServer:
    """A running local PostgreSQL server: where ordinary clients connect over TCP."""

    data_dir: Path
    host: str
    port: int


def describe(exc: Exception) -> str:
    """pg8000 errors carry the server's fields as a dict: keep message and SQLSTATE."""
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.strerror or exc.reason or exc}"
    detail = exc.args[0] if exc.args else exc
    if isinstance(detail, dict):
        message = detail.get("M", "unknown error")
        code = detail.get("C")
        return f"{message} (SQLSTATE {code})" if code else str(message)
    return str(detail)


def command_output(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stdout + result.stderr).strip()
    return text or f"exit status {result.returncode}"


def read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def log_tail(data_dir: Path) -> str:
    log = data_dir / LOG_FILE
    lines = last_lines(log)
    if not lines:
        return ""
    return f"\n--- last lines of {log} ---\n" + "\n".join(lines)
