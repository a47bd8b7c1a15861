"""The real PostgreSQL server behind an environment's emulated RDS instance (the local target).

The server runs from the machine's PostgreSQL binaries (``initdb``, ``pg_ctl``, ``postgres``),
listens on a loopback address only, and keeps its data in a folder that outlives the command that
started it (later commands reuse the running server). A data folder holds::

    PG_VERSION, base/, ...   the cluster, as made by initdb
    stackrun.conf            port, listen address and socket folder; included from
                             postgresql.conf, rewritten at each start
    pg_hba.conf              the authentication rules below, rewritten at each start
    server.crt, server.key   with TLS: the certificate served and its key (copies, 0600)
    stackrun-server.json     {"host", "port", "socket_dir"} of the last start: the port is reused
    server.log               the server's log (pg_ctl -l)

and next to it ``.<folder name>.stackrun.lock``, which serialises start and stop between
concurrent commands.

Authentication: over TCP only password logins (SCRAM-SHA-256) of ordinary roles, as an
application meets on RDS; with ``tls`` (the server behind an emulated RDS instance) only over
TLS (``hostssl``, as RDS with ``rds.force_ssl``), serving the certificate given. The cluster
superuser cannot log in over TCP at all. The superuser connects through the unix socket only,
with ``trust``: the socket lives in a 0700 folder owned by the server's OS user (the data folder
itself, or a short folder when the socket path would be longer than the 107 bytes a unix socket
path may have) and is created with mode 0700, so only that OS user and root can reach it.

PostgreSQL refuses to run as root. When this code runs as root (sessions and CI do), initdb,
``pg_ctl start`` and so the server run as an unprivileged OS user: the owner of an existing data
folder, else ``postgres``, else ``nobody``. The data folder is given to that user, and every folder
above it must let that user pass while initdb and the start run: where one does not (pytest's
``/tmp/pytest-of-root`` is 0700, for one), that user is granted search-only access (``x``, no
listing) to that folder with a POSIX ACL, and a line on stderr says so; when the ACL cannot be
set, the error names the folder. Such a grant may be undone behind our back (each pytest session
start resets ``/tmp/pytest-of-root`` to 0700, which empties the ACL mask): so it is checked again
before each initdb and start, which are retried when a folder was closed mid-way, and the status
and stop of a server are done by the caller itself, not by pg_ctl as that user. A started server
does not need the way in any more: it works relative to its data folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from stackrun.local.emulator.common import is_loopback
from stackrun.local.postgres.common import (
    ADMIN_ROLE,
    ATTEMPTS,
    DEFAULT_HOST,
    LOG_FILE,
    RECHECK_SECONDS,
    RECORD_FILE,
    START_TIMEOUT_SECONDS,
    STOP_TIMEOUT_SECONDS,
    LocalDatabaseError,
    LocalServer,
    ServerTLS,
    command_output,
    log_tail,
    read_from,
)
from stackrun.local.postgres.connections import admin_connect
from stackrun.local.postgres.data_folder import (
    INCLUDE_LINE,
    install_tls,
    locked,
    normalise,
    prepare_socket_dir,
    read_record,
    socket_folder,
    write_file,
    write_record,
    write_server_config,
)
from stackrun.local.postgres.os_account import (
    Account,
    account_for,
    binary,
    empty_folder,
    ensure_reachable,
    prepare_data_folder,
    run_as,
)
from stackrun.local.postgres.postmaster import (
    Postmaster,
    free_port,
    is_postmaster_of,
    port_taken,
    remove_stale_socket,
    running_postmaster,
    serves_tls,
    wait_ready,
)


def ensure_server(
    data_dir: Path, port: int | None = None, host: str = DEFAULT_HOST, tls: ServerTLS | None = None
) -> LocalServer:
    """Return the server of ``data_dir``, creating the cluster and starting it as needed.

    ``port=None`` reuses the port of the last start (recorded in the data folder), or picks a
    free one for a new cluster. With ``tls``, TCP clients must use TLS and are served that
    certificate (a running server is reconfigured and reloaded when it served another one, or
    none). Fast when the server already runs as asked: no restart, no subprocess, no output.
    Raises LocalDatabaseError when the server runs on another address than asked, when a
    recorded or given port is taken by another program, or when it does not start.
    """
    _check_host(host)
    if port is not None:
        _check_port(port)
    data_dir = normalise(data_dir)

    with locked(data_dir):
        running = running_postmaster(data_dir) if (data_dir / "PG_VERSION").exists() else None
        if running is not None:
            server = _running_server(data_dir, running, host, port)
            account = account_for(data_dir)
            if tls is not None and (install_tls(data_dir, account, tls) or not serves_tls(server)):
                write_server_config(
                    data_dir, account, host, server.port, socket_folder(data_dir), tls
                )
                reload_tls(server)
            return server
        account = prepare_data_folder(data_dir)
        initialising = not (data_dir / "PG_VERSION").exists()
        if initialising:
            _initdb(data_dir, account)
        install_tls(data_dir, account, tls)
        port = _start(data_dir, account, host, port, initialising, tls)
        return LocalServer(data_dir, host, port)


def ensure_cluster(data_dir: Path) -> None:
    """Create the cluster of ``data_dir`` (initdb) unless it exists; do not start it."""
    data_dir = normalise(data_dir)
    with locked(data_dir):
        account = prepare_data_folder(data_dir)
        if not (data_dir / "PG_VERSION").exists():
            _initdb(data_dir, account)


def stop_server(data_dir: Path) -> bool:
    """Stop the server of ``data_dir`` with a fast shutdown. True if it was running.

    Does what ``pg_ctl stop -m fast`` does (SIGINT to the postmaster, then wait for it to remove
    postmaster.pid), but as the caller: pg_ctl would have to run as the server's user, who may
    by then have lost its way into the data folder (see ``running_postmaster``).
    """
    data_dir = normalise(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        return False
    with locked(data_dir):
        running = running_postmaster(data_dir)
        if running is None:
            return False
        try:
            os.kill(running.pid, signal.SIGINT)  # "fast" shutdown, what -m fast sends
        except ProcessLookupError:
            return True  # exited meanwhile
        except PermissionError as exc:
            raise LocalDatabaseError(
                f"cannot stop local PostgreSQL for {data_dir} (pid {running.pid}): it belongs "
                "to another user; stop it as that user (or as root)"
            ) from exc
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        # Gone means postmaster.pid removed and the process exited (a zombie counts as exited).
        while running_postmaster(data_dir) is not None or is_postmaster_of(running.pid, data_dir):
            if time.monotonic() > deadline:
                raise LocalDatabaseError(
                    f"local PostgreSQL for {data_dir} (pid {running.pid}) did not stop within "
                    f"{STOP_TIMEOUT_SECONDS} s of a fast shutdown request{log_tail(data_dir)}"
                )
            time.sleep(0.05)
        if running.port is not None:
            remove_stale_socket(data_dir, running.port)
        return True


def stop_all(root: Path) -> list[Path]:
    """Stop every server whose data folder lies under ``root``; return the folders stopped.

    A data folder is any folder holding PG_VERSION (not looked into further: each database
    folder inside a cluster has one too). Every server is tried even if one fails to stop.
    """
    root = Path(root).resolve()
    clusters: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        if "PG_VERSION" in filenames:
            clusters.append(Path(dirpath))
            dirnames.clear()
        else:
            dirnames.sort()

    stopped: list[Path] = []
    failures: list[str] = []
    for data_dir in clusters:
        try:
            if stop_server(data_dir):
                stopped.append(data_dir)
        except LocalDatabaseError as exc:
            failures.append(str(exc))
    if failures:
        raise LocalDatabaseError(
            f"could not stop {len(failures)} local PostgreSQL server(s) under {root}:\n"
            + "\n".join(failures)
        )
    return stopped


def server_status(data_dir: Path) -> str:
    """One line for people: "running on 127.0.0.1:NNNN (pid N)", "stopped (...)", ..."""
    data_dir = normalise(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        return f"not initialised (no cluster in {data_dir})"
    running = running_postmaster(data_dir)
    if running is not None:
        state = "running" if running.status in ("ready", "") else running.status
        return f"{state} on {running.host or '-'}:{running.port or '-'} (pid {running.pid})"
    record = read_record(data_dir)
    if record is not None and isinstance(record.get("port"), int):
        return f"stopped (last ran on {record.get('host', DEFAULT_HOST)}:{record['port']})"
    return "stopped"


def _check_host(host: str) -> None:
    if not is_loopback(host):
        raise LocalDatabaseError(
            f"local PostgreSQL listens on loopback addresses only (127.0.0.0/8, ::1, localhost), "
            f"not {host!r}"
        )


def _check_port(port: int) -> None:
    if not isinstance(port, int) or not 1024 <= port <= 65535:
        raise LocalDatabaseError(
            f"local PostgreSQL port {port!r} is not an unprivileged TCP port (1024-65535)"
        )


def reload_tls(server: LocalServer) -> None:
    """Make the running server read its configuration again and wait until it serves TLS.

    A reload that fails (a key that does not match its certificate, say) leaves the server
    running on its old TLS settings, or none: that is an error here, with the log's end.
    """
    conn = admin_connect(server)
    try:
        conn.run("SELECT pg_reload_conf()")
    finally:
        conn.close()
    deadline = time.monotonic() + RECHECK_SECONDS
    while not serves_tls(server):  # the postmaster reloads asynchronously after the signal
        if time.monotonic() > deadline:
            raise LocalDatabaseError(
                f"local PostgreSQL for {server.data_dir} did not turn TLS on after a reload of "
                f"its configuration{log_tail(server.data_dir)}"
            )
        time.sleep(0.1)


def _running_server(
    data_dir: Path, running: Postmaster, host: str, port: int | None
) -> LocalServer:
    """The already running server, if it is where it was asked to be."""
    if running.status != "ready" and not wait_ready(data_dir, START_TIMEOUT_SECONDS):
        raise LocalDatabaseError(
            f"local PostgreSQL for {data_dir} (pid {running.pid}) runs but is not ready "
            f"({running.status or 'unknown state'}){log_tail(data_dir)}"
        )
    if (
        running.port is None
        or (port is not None and port != running.port)
        or (running.host != host)
    ):
        raise LocalDatabaseError(
            f"local PostgreSQL for {data_dir} already runs on {running.host}:{running.port}, "
            f"not {host}:{port or running.port}; stop it first to move it"
        )
    record = read_record(data_dir)
    if record is None or record.get("port") != running.port:
        write_record(data_dir, account_for(data_dir), host, running.port)
    return LocalServer(data_dir, host, running.port)


def _initdb(data_dir: Path, account: Account) -> None:
    if any(data_dir.iterdir()):
        raise LocalDatabaseError(
            f"the PostgreSQL data folder {data_dir} is not empty but holds no cluster (no "
            "PG_VERSION); empty or remove it"
        )
    args = [
        binary("initdb"),
        "-D",
        str(data_dir),
        "-U",
        ADMIN_ROLE,
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",  # a local cluster: skip the final fsync of every file
    ]
    for attempt in range(ATTEMPTS):
        if account.switch:
            ensure_reachable(data_dir, account)
        result = run_as(account, args, timeout=300)
        if result.returncode == 0:
            break
        if account.switch and "Permission denied" in result.stderr and attempt < ATTEMPTS - 1:
            # A folder above was closed again mid-way (see running_postmaster): initdb could not
            # clean up behind itself. The folder was empty before: empty it again and retry.
            empty_folder(data_dir)
            continue
        raise LocalDatabaseError(
            f"initdb failed for the local PostgreSQL data folder {data_dir}:\n"
            f"{command_output(result)}"
        )
    conf = data_dir / "postgresql.conf"
    text = conf.read_text()
    if INCLUDE_LINE not in text:
        write_file(conf, account, text.rstrip("\n") + "\n\n" + INCLUDE_LINE + "\n")


def _start(
    data_dir: Path,
    account: Account,
    host: str,
    port: int | None,
    initialising: bool,
    tls: ServerTLS | None,
) -> int:
    """Start the stopped server with ``pg_ctl start``; return its port."""
    socket_dir = socket_folder(data_dir)
    if socket_dir != data_dir:
        prepare_socket_dir(socket_dir, account)
    wanted = _wanted_port(data_dir, port)
    log = data_dir / LOG_FILE
    announced: int | None = None

    for attempt in range(ATTEMPTS):
        chosen = wanted if wanted is not None else free_port(host)
        if wanted is not None and port_taken(host, chosen):
            origin = "given" if port is not None else f"recorded in {data_dir / RECORD_FILE}"
            raise LocalDatabaseError(
                f"cannot start local PostgreSQL for {data_dir}: port {chosen} ({origin}) on "
                f"{host} is in use by another program; free it or pass another port"
            )
        if account.switch:
            ensure_reachable(data_dir, account)
        write_server_config(data_dir, account, host, chosen, socket_dir, tls)
        remove_stale_socket(data_dir, chosen)
        if chosen != announced:
            action = "initialising, then starting" if initialising else "starting"
            print(f"local PostgreSQL for {data_dir}: {action} on {host}:{chosen}", file=sys.stderr)
            announced = chosen
        log_offset = log.stat().st_size if log.exists() else 0
        result = _pg_ctl_start(data_dir, account)
        # pg_ctl, as the server's user, may fail only to see the server it started (postmaster.pid
        # out of its reach): look as the caller before believing it.
        if result.returncode == 0 or wait_ready(data_dir, RECHECK_SECONDS):
            break
        new_log = read_from(log, log_offset)
        if attempt < ATTEMPTS - 1 and _worth_retrying(result, new_log, account, wanted is None):
            continue
        still = (
            " (it is still starting; wait, or stop it)"
            if running_postmaster(data_dir) is not None
            else ""
        )
        raise LocalDatabaseError(
            f"local PostgreSQL for {data_dir} did not start on {host}:{chosen}{still}: "
            f"{command_output(result)}{log_tail(data_dir)}"
        )

    write_record(data_dir, account, host, chosen)
    server = LocalServer(data_dir, host, chosen)
    try:  # ready; check the superuser's way in works too
        admin_connect(server).close()
    except LocalDatabaseError as exc:
        raise LocalDatabaseError(f"{exc}{log_tail(data_dir)}") from exc
    return chosen


def _wanted_port(data_dir: Path, port: int | None) -> int | None:
    """The port asked for, else the one of the last start, else None (pick a free one)."""
    if port is not None:
        return port
    record = read_record(data_dir)
    recorded = record.get("port") if record is not None else None
    return recorded if isinstance(recorded, int) else None


def _pg_ctl_start(data_dir: Path, account: Account) -> subprocess.CompletedProcess[str]:
    # A new session: the server must not die with the terminal's Ctrl-C or the command.
    return run_as(
        account,
        [
            binary("pg_ctl"),
            "start",
            "-D",
            str(data_dir),
            "-l",
            str(data_dir / LOG_FILE),
            "-w",
            "-t",
            str(START_TIMEOUT_SECONDS),
            "-s",
        ],
        timeout=START_TIMEOUT_SECONDS + 30,
        new_session=True,
    )


def _worth_retrying(
    result: subprocess.CompletedProcess[str], new_log: str, account: Account, port_picked: bool
) -> bool:
    if port_picked and "Address already in use" in new_log:
        return True  # lost a race for the free port picked: pick another
    # a folder above was closed again meanwhile: reopen it and retry
    return account.switch and "Permission denied" in result.stderr + new_log
