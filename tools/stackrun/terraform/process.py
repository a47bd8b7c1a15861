"""Run terraform as a subprocess: live output, a log file per stack, errors extracted."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any

from stackrun.deploy import interrupts
from stackrun.errors import StackrunError
from stackrun.terraform import tfjson

# terraform commands that take the state lock (unless given -lock=false)
LOCKING_COMMANDS = frozenset(
    {"apply", "destroy", "import", "plan", "refresh", "state", "taint", "untaint"}
)
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_console_lock = threading.Lock()


def terraform_binary() -> str:
    path = shutil.which(os.environ.get("STACKRUN_TERRAFORM", "terraform"))
    if path is None:
        raise StackrunError(
            "terraform was not found on PATH (install terraform >= 1.10, or set "
            "STACKRUN_TERRAFORM to its path)"
        )
    return path


@cache
def terraform_version(binary: str) -> str:
    """terraform's version and platform (not `terraform_outdated`, which changes by itself)."""
    result = subprocess.run(
        [binary, "version", "-json"], capture_output=True, text=True, check=False
    )
    try:
        document = json.loads(result.stdout)
    except ValueError:
        return result.stdout.strip()
    return f"{document.get('terraform_version')} {document.get('platform')}"


@dataclass(frozen=True)
class Result:
    returncode: int
    output: str  # stdout + stderr as written to the log, without colour codes
    # with -json: terraform's JSON UI events (stackrun.terraform.tfjson); `output`: their messages
    events: tuple[dict[str, Any], ...] = ()

    @property
    def error_summary(self) -> str:
        found = tfjson.errors(self.events)
        if found:
            text = "\n\n".join(error.text() for error in found)
            return "\n".join("    " + line if line else "" for line in text.splitlines())
        return extract_errors(self.output)

    @property
    def changes(self) -> tfjson.Changes:
        """The resources this plan or apply changes (from its -json events)."""
        return tfjson.Changes.from_events(self.events)


def extract_errors(output: str, limit: int = 40) -> str:
    """What a user needs to see first: terraform's output from its first `Error:` on.

    Without an `Error:` line (a crash, a signal), the last lines of the output instead.
    """
    lines = [line.strip("│╷╵ ").rstrip() for line in output.splitlines()]
    starts = [index for index, line in enumerate(lines) if line.startswith("Error:")]
    picked = lines[starts[0] :] if starts else [line for line in lines if line][-15:]
    while picked and not picked[-1]:
        picked.pop()
    if len(picked) > limit:
        picked = [*picked[:limit], f"... ({len(picked) - limit} more lines in the log)"]
    return "\n".join("    " + line if line else "" for line in picked)


class Terraform:
    """terraform in one working directory, with one log file and a console prefix."""

    def __init__(
        self,
        workdir: Path,
        env: dict[str, str],
        log_file: Path,
        prefix: str = "",
        console: IO[str] | None = None,
        echo: bool = True,
        on_killed: Callable[[float], None] | None = None,
        on_command: Callable[[str], None] | None = None,
    ):
        self.workdir = workdir
        self.on_command = on_command  # told each command as it starts (the status block)
        # Called (with the time terraform was started) when stackrun had to kill this terraform
        # while it could hold its state lock (a third signal): releases that lock.
        self.on_killed = on_killed
        self.env = env
        self.log_file = log_file
        self.prefix = prefix
        self.console = console or sys.stdout
        self.echo = echo
        self.binary = terraform_binary()

    def run(
        self,
        *args: str,
        extra_env: dict[str, str] | None = None,
        capture_stdout: bool = False,
        echo: bool | None = None,
        inherit_stdout: bool = False,
    ) -> Result:
        """Run `terraform <args>`; stream merged output to console and log.

        With capture_stdout the command's stdout is returned apart from stderr and not echoed
        (for `output -json` and `show -json`, whose output is data, not progress). With `-json`
        among the args of another command (plan, apply), each line is an event of terraform's
        machine-readable UI: the events are kept in the result, and console and log get each
        event's human message (stackrun.terraform.tfjson.render), never the JSON. With
        inherit_stdout terraform writes its stdout straight to stackrun's (`stackrun tf`: what
        a user reads or pipes, such as `state pull`, never logged) and the result's output is
        its stderr, echoed and logged.
        """
        echo = self.echo if echo is None else echo
        if self.on_command:
            self.on_command(args[0])
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("a", encoding="utf-8") as log:
            log.write(f"\n$ terraform {' '.join(args)}\n")
            log.flush()
            started_at = time.time()
            process = self._start(args, extra_env, capture_stdout, inherit_stdout)
            try:
                result = self._collect(
                    process, log, capture_stdout, echo, "-json" in args, inherit_stdout
                )
            finally:
                interrupts.untrack(process)
        if (
            self.on_killed
            and process.returncode == -signal.SIGKILL
            and interrupts.killed()
            and args[0] in LOCKING_COMMANDS
            and "-lock=false" not in args
        ):
            self.on_killed(started_at)
        # A signal during this command: stop here, whatever terraform answered.
        interrupts.check(f"during `terraform {args[0]}`")
        return result

    def _start(
        self,
        args: tuple[str, ...],
        extra_env: dict[str, str] | None,
        capture_stdout: bool,
        inherit_stdout: bool,
    ) -> subprocess.Popen[str]:
        env = dict(self.env)
        env.update(extra_env or {})
        env["TF_IN_AUTOMATION"] = "1"
        env.setdefault("TF_INPUT", "0")
        return interrupts.start(
            lambda: subprocess.Popen(
                [self.binary, *args],
                cwd=self.workdir,
                env=env,
                stdout=None if inherit_stdout else subprocess.PIPE,
                stderr=subprocess.PIPE if capture_stdout or inherit_stdout else subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
                # Signals reach terraform once, through interrupts.py, not from the terminal.
                start_new_session=interrupts.new_session(),
            ),
            f"before `terraform {args[0]}`",
        )

    def _collect(
        self,
        process: subprocess.Popen[str],
        log: IO[str],
        capture_stdout: bool,
        echo: bool,
        json_ui: bool = False,
        inherit_stdout: bool = False,
    ) -> Result:
        if capture_stdout:
            stdout, stderr = process.communicate()
            log.write(ANSI_ESCAPE.sub("", stderr))
            if process.returncode != 0:
                self._show(stderr)
            return Result(process.returncode, stdout if process.returncode == 0 else stderr)
        collected: list[str] = []
        events: list[dict[str, Any]] = []
        lines = process.stderr if inherit_stdout else process.stdout
        assert lines is not None
        for line in lines:
            clean = ANSI_ESCAPE.sub("", line)
            event = tfjson.parse_line(clean) if json_ui else None
            if event is not None:
                events.append(event)
                clean = tfjson.render(event) + "\n"
            collected.append(clean)
            log.write(clean)
            if echo:
                self._show(clean)
        returncode = process.wait()
        log.write(f"[exit {returncode}]\n")
        return Result(returncode, "".join(collected), tuple(events))

    def _show(self, text: str) -> None:
        with _console_lock:
            for line in text.splitlines():
                self.console.write(f"{self.prefix}{line}\n" if self.prefix else f"{line}\n")
            self.console.flush()

    def version(self) -> str:
        result = subprocess.run(
            [self.binary, "version", "-json"],
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
        )
        try:
            version: str = json.loads(result.stdout)["terraform_version"]
            return version
        except (ValueError, KeyError):
            return "unknown"


def parse_json_document(text: str) -> object:
    """Parse the first JSON document in `text` (terraform may print warnings after it)."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object in terraform's output")
    value, _ = decoder.raw_decode(text[start:])
    return value
