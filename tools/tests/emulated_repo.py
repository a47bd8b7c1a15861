"""Helpers for tests that run the real stackrun + terraform against the local emulator.

Each test builds a throwaway repository (live/ + modules/) in tmp_path whose environments live
in their own emulated accounts, and runs `python -m stackrun ...` as a subprocess, exactly as a
user would. One emulator (on a free port, state in a temp folder) serves the whole test session.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackrun.aws.target import Target
from stackrun.config import load_environment
from stackrun.config.defaults import DEFAULTS_FOLDER
from stackrun.terraform import provider_lock

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_MODULES = Path(__file__).parent / "fixtures" / "modules"


# what would make stackrun's output plain, or change rich's idea of the terminal
PLAIN_SWITCHES = ("CI", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


class LocalRepo:
    """A throwaway repository whose environments deploy to the shared test emulator."""

    def __init__(self, root: Path, emulator_dir: Path, port: int):
        self.root = root
        self.emulator_dir = emulator_dir
        self.port = port
        (root / "modules").mkdir(parents=True)
        shutil.copy2(provider_lock(REPO_ROOT), provider_lock(root))
        for module in (REPO_ROOT / "modules").iterdir():
            if not module.is_dir():
                continue
            shutil.copytree(
                module,
                root / "modules" / module.name,
                ignore=shutil.ignore_patterns(".terraform*", "tests"),
            )
        for module in FIXTURE_MODULES.iterdir():
            shutil.copytree(module, root / "modules" / module.name)
        self.write(
            "live/project.toml",
            f"""
            [project]
            name = "tst"
            default_region = "eu-west-1"

            [backend]
            deletion_protection = false

            [terraform]
            lock_timeout = "2m"

            [local]
            port = {port}
            """,
        )

    def use_real_live(self, *environments: str) -> None:
        """Replace live/ with the repository's own environments (ports rewritten to ours)."""
        shutil.rmtree(self.root / "live")
        (self.root / "live").mkdir()
        project = (REPO_ROOT / "live" / "project.toml").read_text()
        project = project.replace("port = 4566", f"port = {self.port}")
        (self.root / "live" / "project.toml").write_text(project)
        for name in (*environments, DEFAULTS_FOLDER):
            shutil.copytree(REPO_ROOT / "live" / name, self.root / "live" / name)
        shutil.copytree(
            REPO_ROOT / "lambdas",
            self.root / "lambdas",
            ignore=shutil.ignore_patterns(
                "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache"
            ),
        )

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    def env(self, name: str, account: str, extra: str = "") -> None:
        self.write(
            f"live/{name}/env.toml",
            f'account_id = "{account}"\ndeploy_role = "deploy"\n{textwrap.dedent(extra)}',
        )

    def producer_consumer(self, env: str, value: str = "v1") -> None:
        """010_producer -> 020_consumer (a plain, a list and a sensitive dependency)."""
        self.write(
            f"live/{env}/010_producer/stack.toml",
            f"""
            module = "producer"
            [inputs]
            name = "{env}-producer"
            value = "{value}"
            """,
        )
        self.write(
            f"live/{env}/020_consumer/stack.toml",
            f"""
            module = "consumer"
            [inputs]
            name = "{env}-consumer"
            [dependencies]
            upstream_value = "010_producer.value"
            upstream_names = "010_producer.names"
            upstream_token = "010_producer.token"
            """,
        )

    # ---- running ------------------------------------------------------------------------

    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            STACKRUN_ROOT=str(self.root),
            STACKRUN_EMULATOR_DIR=str(self.emulator_dir),
            STACKRUN_LOCAL_PORT=str(self.port),
            PYTHONUNBUFFERED="1",
        )
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "stackrun", *args]

    def run(self, *args: str, timeout: float = 900) -> Run:
        result = subprocess.run(
            self.command(*args),
            cwd=self.root,
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Run(result.returncode, result.stdout, result.stderr)

    def run_on_terminal(
        self, *args: str, answer: str | None = None, timeout: float = 600
    ) -> tuple[int, str]:
        """`python -m stackrun <args>` with a pty (120 columns) as its stdout and stderr, and
        as its stdin when `answer` is given: typed (with Enter) at the first "Type its name"
        prompt. The exit code and everything the terminal showed."""
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {k: v for k, v in self.environ().items() if k not in PLAIN_SWITCHES}
        env["TERM"] = "xterm-256color"
        process = subprocess.Popen(
            self.command(*args),
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL if answer is None else follower,
            stdout=follower,
            stderr=follower,
        )
        os.close(follower)
        chunks: list[bytes] = []
        try:
            while select.select([leader], [], [], timeout)[0]:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
                if answer is not None and b"Type its name" in b"".join(chunks):
                    os.write(leader, answer.encode() + b"\r")
                    answer = None
            returncode = process.wait(timeout=60)
        finally:
            process.kill()
            os.close(leader)
        return returncode, b"".join(chunks).decode("utf-8", "replace")

    def run_reported(self, *args: str) -> tuple[Run, dict[str, Any]]:
        """Run stackrun with --report-file: the run and its JSON run report."""
        path = self.root / "run-report.json"
        path.unlink(missing_ok=True)
        run = self.run(*args, "--report-file", str(path))
        assert path.is_file(), run.text
        return run, json.loads(path.read_text())

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            cwd=self.root,
            env={**self.environ(), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def outputs(self, env: str) -> dict[str, Any]:
        result = self.run("output", env, "--local")
        assert result.returncode == 0, result.text
        return json.loads(result.stdout)

    # ---- looking into the emulated account ------------------------------------------------

    def target(self) -> Target:
        return Target(
            endpoint=f"https://127.0.0.1:{self.port}",
            ca_bundle=self.emulator_dir / "tls" / "ca.pem",
        )

    def client(self, env: str, service: str) -> Any:
        return self.target().client(load_environment(self.root, env), service)

    def account_client(self, account: str, service: str) -> Any:
        """A client in an emulated account, without reading live/ (which may be invalid)."""
        target = self.target()
        base = target.base_session("eu-west-1").client("sts", **target.client_args())
        credentials = base.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/deploy", RoleSessionName="test"
        )["Credentials"]
        import boto3

        session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name="eu-west-1",
        )
        return session.client(service, **target.client_args())

    def held_locks(self, env: str) -> list[dict[str, Any]]:
        """Locks held: items of the lock table with lock info (state locks, guards; not state
        digests), and terraform's `<key>.tflock` objects in the state bucket, as
        {"LockID": {"S": "<bucket>/<key>.tflock"}}."""
        backend = load_environment(self.root, env).backend
        items = self.client(env, "dynamodb").scan(TableName=backend.lock_table)["Items"]
        pages = self.client(env, "s3").get_paginator("list_objects_v2")
        lockfiles = [
            {"LockID": {"S": f"{backend.bucket}/{entry['Key']}"}}
            for page in pages.paginate(Bucket=backend.bucket)
            for entry in page.get("Contents", [])
            if entry["Key"].endswith(".tflock")
        ]
        return [item for item in items if "Info" in item] + lockfiles

    def cache(self, env: str) -> Path:
        return self.root / ".stackrun" / "local" / env


def emulated_session(emulator, account: str, region: str, session_name: str):
    """(session as the account's deploy role, client args, the running emulator) for tests that
    call the session's emulator directly."""
    from emulated_api import deploy_role_session
    from stackrun.local.emulator import ensure_running

    state_dir, port = emulator
    running = ensure_running(state_dir, port=port)  # the session's emulator, already up
    session, client_args = deploy_role_session(
        running.endpoint, str(running.ca_bundle), account, region, session_name
    )
    return session, client_args, running
