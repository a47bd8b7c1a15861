"""Function log lines: to the console of `serve`, and to the function's CloudWatch log group.

Lines are buffered and sent in the background every half second, one PutLogEvents call per
log stream, so a request never waits for its log. The log streams are named the way Lambda
names them (``YYYY/MM/DD/[<version>]<id>``), one per execution environment.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

FLUSH_SECONDS = 0.5
MAX_BATCH = 5000


def lambda_stream_name(version: str) -> str:
    return time.strftime("%Y/%m/%d/", time.gmtime()) + f"[{version}]{uuid.uuid4().hex}"


class LogShipper:
    """Buffers (group, stream, line) and ships them with PutLogEvents in the background."""

    def __init__(self, logs_client: Any, console: Callable[[str], None]) -> None:
        self.logs = logs_client
        self.console = console
        self.buffer: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        self.created_streams: set[tuple[str, str]] = set()
        self.lock = threading.Lock()
        self.flushing = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def sink(self, group: str, stream: str, prefix: str) -> Callable[[str], None]:
        """A function that logs one line to `group`/`stream` (and to the console)."""

        def log(line: str) -> None:
            self.console(f"{prefix} {line}")
            with self.lock:
                self.buffer[(group, stream)].append(
                    {"timestamp": int(time.time() * 1000), "message": line}
                )

        return log

    def _run(self) -> None:
        while not self.stopped.wait(FLUSH_SECONDS):
            self.flush()

    def flush(self) -> None:
        with self.flushing:
            with self.lock:
                pending, self.buffer = self.buffer, defaultdict(list)
            for (group, stream), events in pending.items():
                for start in range(0, len(events), MAX_BATCH):
                    self._put(group, stream, events[start : start + MAX_BATCH])

    def _put(self, group: str, stream: str, events: list[dict[str, Any]]) -> None:
        try:
            if (group, stream) not in self.created_streams:
                self._create_stream(group, stream)
                self.created_streams.add((group, stream))
            self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        except Exception as error:  # a log that cannot be shipped must not stop the server
            self.console(f"[logs] could not write to {group} {stream}: {error}")

    def _create_stream(self, group: str, stream: str) -> None:
        errors = self.logs.exceptions
        try:
            self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        except errors.ResourceAlreadyExistsException:
            pass
        except errors.ResourceNotFoundException:
            # Lambda creates the group when the function's role may (the modules create it).
            self.logs.create_log_group(logGroupName=group)
            self.logs.create_log_stream(logGroupName=group, logStreamName=stream)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.flush()
