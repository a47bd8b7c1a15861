"""Exceptions shared by every part of stackrun.

Each error is meant to be printed to a user as-is: it names the file, the key and what was
expected, or the stack and the terraform step that failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class StackrunError(Exception):
    """Base class: an error with a message fit for the console (no traceback needed)."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in one configuration file."""

    file: Path
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}"
        if self.key:
            where += f": key '{self.key}'"
        return f"{where}: {self.message}"


class ConfigError(StackrunError):
    """Configuration is invalid. Raised before anything runs, listing every issue found."""

    def __init__(self, issues: list[ConfigIssue]):
        self.issues = list(issues)
        lines = [f"invalid configuration ({len(self.issues)} problem(s)):"]
        lines += [f"  - {issue}" for issue in self.issues]
        super().__init__("\n".join(lines))


class StackFailed(StackrunError):
    """A terraform step of one stack failed; later stacks were not touched."""

    def __init__(
        self, stack: str, step: str, detail: str, log_file: Path | None, terraform: bool = True
    ):
        self.stack = stack
        self.step = step
        self.detail = detail
        self.log_file = log_file
        message = f"stack {stack} failed at " + (f"`terraform {step}`" if terraform else step)
        if detail:
            message += f":\n{detail}"
        if log_file is not None:
            message += f"\nfull log: {log_file}"
        super().__init__(message)


class LockHeld(StackrunError):
    """Another run holds the environment guard or a state lock."""


class GuardLost(StackrunError):
    """The run's environment guard was taken over or released while the run went on."""
