"""The terminal a run talks to: plain lines, or colour and a live status block.

Plain (CI set, NO_COLOR set, stdout not a terminal, TERM=dumb): the console gets the lines it
always got, terraform's own output included (prefixed `[stack] ` side by side). On a terminal
(rich's detection): stackrun's lines in colour and, while stacks run, a status block below them
with each running stack, its phase (terraform's command: init, plan, apply, ...) and how long
it has run; terraform's own lines only with -v. Every stack's log file gets them either way.
-q: neither terraform's lines nor the `==>` line that starts each stack.

One Terminal per process (`use` installs it for a command; `current` answers it); the default
is plain at normal verbosity, so library callers and tests see the plain lines.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import IntEnum
from typing import IO, cast

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text


class Verbosity(IntEnum):
    QUIET = 0  # -q
    NORMAL = 1
    VERBOSE = 2  # -v


@dataclass
class _Running:
    phase: str
    started: float


@dataclass
class StatusBoard:
    """The stacks running now, each with its phase and start time; rendered by rich."""

    clock: Callable[[], float] = time.monotonic
    running: dict[str, _Running] = field(default_factory=dict)

    def start(self, stack: str, phase: str) -> None:
        self.running[stack] = _Running(phase, self.clock())

    def phase(self, stack: str, phase: str) -> None:
        """A stack not on the board (its command shows no block) is left off."""
        if stack in self.running:
            self.running[stack].phase = phase

    def finish(self, stack: str) -> None:
        self.running.pop(stack, None)

    def __rich__(self) -> RenderableType:
        running = dict(self.running)  # other threads start and finish stacks meanwhile
        if not running:
            return Group()
        table = Table.grid(padding=(0, 2))
        now = self.clock()
        for stack, entry in running.items():
            table.add_row(
                Text("●", style="cyan"),
                Text(stack, style="bold"),
                Text(entry.phase, style="yellow"),
                Text(elapsed(now - entry.started), style="dim"),
            )
        title = Text(f"running {len(running)} stack{'s' if len(running) > 1 else ''}", "dim")
        return Group(title, table)


def elapsed(seconds: float) -> str:
    """`7s`, `1m05s`, `1h02m`."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def line_style(line: str) -> str:
    """The colour of one of stackrun's own lines on a terminal."""
    text = line.lstrip()
    if text.startswith("==>"):
        return "bold blue"
    if text.startswith("<=="):
        return "red" if " failed" in text or "interrupted" in text else "green"
    if text.startswith(("error", "warning")):
        return "yellow"
    return ""


class _LineWriter(io.TextIOBase):
    """A text stream whose complete lines are printed above the live block, in colour."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.partial = threading.local()  # print() writes the text and its newline apart

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        pending = getattr(self.partial, "text", "") + text
        *lines, self.partial.text = pending.split("\n")
        for line in lines:
            self.console.print(Text(line, style=line_style(line)), soft_wrap=True)
        return len(text)


def plain_requested(console: Console, environ: dict[str, str] | os._Environ[str]) -> bool:
    """Plain lines: CI, NO_COLOR, TERM=dumb, or not a terminal (rich's detection)."""
    return (
        bool(environ.get("CI"))
        or not console.is_terminal
        or console.is_dumb_terminal
        or console.no_color
    )


class Terminal:
    """What the console of this process shows, and how."""

    def __init__(self, verbosity: Verbosity = Verbosity.NORMAL, console: Console | None = None):
        self.verbosity = verbosity
        self.console = console  # None: plain lines
        self.board = StatusBoard()
        self.live: Live | None = None
        self.lock = threading.Lock()
        self.writer = _LineWriter(console) if console is not None else None

    @classmethod
    def detect(cls, verbosity: Verbosity = Verbosity.NORMAL) -> Terminal:
        console = Console()
        return cls(verbosity, None if plain_requested(console, os.environ) else console)

    @property
    def shows_terraform(self) -> bool:
        """terraform's own lines on the console (its log gets them always)."""
        if self.verbosity == Verbosity.QUIET:
            return False
        return self.writer is None or self.verbosity == Verbosity.VERBOSE

    @property
    def shows_starts(self) -> bool:
        return self.verbosity != Verbosity.QUIET

    def stream(self) -> IO[str]:
        """Where a command's lines go: stdout as it is now, or above the live block."""
        # a TextIOBase is a text stream at run time; typeshed types IO[str] apart from it
        return sys.stdout if self.writer is None else cast(IO[str], self.writer)

    @contextmanager
    def running(self, stack: str, phase: str) -> Iterator[None]:
        """The stack on the status block while the body runs: the block shows while a stack
        runs (none: it goes, so the lines between and the summary print as they are)."""
        with self.lock:
            self.board.start(stack, phase)
            self._show_block()
        try:
            yield
        finally:
            with self.lock:
                self.board.finish(stack)
                if not self.board.running:
                    self.close()

    def phase(self, stack: str, phase: str) -> None:
        with self.lock:
            self.board.phase(stack, phase)

    def _show_block(self) -> None:
        if self.console is None or self.verbosity == Verbosity.QUIET or self.live is not None:
            return
        self.live = Live(self.board, console=self.console, refresh_per_second=4, transient=True)
        self.live.start()

    def close(self) -> None:
        """The block removed (also before the command's last words and exit code)."""
        if self.live is not None:
            self.live.stop()
            self.live = None


_current = Terminal()


def current() -> Terminal:
    return _current


@contextmanager
def use(terminal: Terminal) -> Iterator[Terminal]:
    """`terminal` for the body (a command's run), closed and replaced by the one before after."""
    global _current
    before, _current = _current, terminal
    try:
        yield terminal
    finally:
        terminal.close()
        _current = before
