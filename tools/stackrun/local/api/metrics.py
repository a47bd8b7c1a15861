"""Lambda's invocation metrics, published to the emulated CloudWatch as Lambda publishes them.

For each invocation, in namespace ``AWS/Lambda``: ``Invocations`` (Count, 1), ``Errors``
(Count, 1 when the function failed: it raised, returned an unhandled error, crashed or timed
out; else 0) and ``Duration`` (Milliseconds), timestamped when the invocation started. Each
is published under the dimension sets Lambda documents (monitoring-metrics, "Viewing
metrics"):

- ``FunctionName``: every invocation of the function;
- ``FunctionName`` + ``Resource`` (``<name>:<qualifier>``): invocations through one alias or
  one version (not for an unqualified invocation);
- ``FunctionName`` + ``Resource`` (``<name>:<alias>``) + ``ExecutedVersion``: invocations
  through an alias, by the version that ran (how the versions behind a weighted alias are
  compared; a canary reads its new version's Errors and Invocations this way).

Publishing never holds up an answer: `MetricPublisher` queues the data and a background thread
sends it with batched PutMetricData calls; `close` sends what is still queued.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

NAMESPACE = "AWS/Lambda"
# PutMetricData accepts up to 1000 metric data items per call.
BATCH_SIZE = 1000
# How long the first item of a batch waits for others before the batch is sent.
BATCH_SECONDS = 0.2

Dimensions = list[dict[str, str]]


@dataclass(frozen=True)
class InvocationRecord:
    """What Lambda measures of one invocation."""

    function_name: str
    qualifier: str | None  # what was invoked: an alias, a version, or None (unqualified)
    executed_version: str  # the version that ran
    started: datetime  # when the invocation started (UTC)
    duration_ms: float
    failed: bool


def dimension_sets(record: InvocationRecord) -> list[Dimensions]:
    """The dimension combinations Lambda publishes one invocation's metrics under."""
    name = [{"Name": "FunctionName", "Value": record.function_name}]
    sets = [name]
    qualifier = record.qualifier
    if qualifier is None:
        return sets
    resource = [*name, {"Name": "Resource", "Value": f"{record.function_name}:{qualifier}"}]
    sets.append(resource)
    if _is_alias(qualifier):
        sets.append([*resource, {"Name": "ExecutedVersion", "Value": record.executed_version}])
    return sets


def metric_data(record: InvocationRecord) -> list[dict[str, Any]]:
    """The PutMetricData items for one invocation (every metric under every dimension set)."""
    values = (
        ("Invocations", 1.0, "Count"),
        ("Errors", 1.0 if record.failed else 0.0, "Count"),
        ("Duration", round(record.duration_ms, 2), "Milliseconds"),
    )
    return [
        {
            "MetricName": metric,
            "Dimensions": dimensions,
            "Timestamp": record.started,
            "Value": value,
            "Unit": unit,
        }
        for dimensions in dimension_sets(record)
        for metric, value, unit in values
    ]


def _is_alias(qualifier: str) -> bool:
    return qualifier != "$LATEST" and not qualifier.isdigit()


class MetricPublisher:
    """Sends invocation metrics with PutMetricData from a background thread.

    The queue holds metric data items, and markers: an Event (set once everything queued
    before it has been sent) or None (the same, then the thread ends).
    """

    def __init__(self, cloudwatch_client: Any, console: Callable[[str], None]) -> None:
        self.cloudwatch = cloudwatch_client
        self.console = console
        self.pending: queue.Queue[dict[str, Any] | threading.Event | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="lambda-metrics", daemon=True)
        self.thread.start()

    def record(self, invocation: InvocationRecord) -> None:
        """Queue one invocation's metrics (returns at once)."""
        for item in metric_data(invocation):
            self.pending.put(item)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued before this call has been sent; False on timeout."""
        sent = threading.Event()
        self.pending.put(sent)
        return self.thread.is_alive() and sent.wait(timeout)

    def close(self) -> None:
        """Send everything queued before this call, then stop the thread."""
        self.pending.put(None)
        self.thread.join(timeout=30)

    def _run(self) -> None:
        batch: list[dict[str, Any]] = []
        send_by = 0.0  # monotonic time the batch's first item must be sent by
        while True:
            try:
                if batch:
                    item = self.pending.get(timeout=max(0.0, send_by - time.monotonic()))
                else:
                    item = self.pending.get()
            except queue.Empty:  # the batch's time is up: send what there is
                self._send(batch)
                batch = []
                continue
            if isinstance(item, dict):
                if not batch:
                    send_by = time.monotonic() + BATCH_SECONDS
                batch.append(item)
                if len(batch) >= BATCH_SIZE or time.monotonic() >= send_by:
                    self._send(batch)
                    batch = []
                continue
            self._send(batch)
            batch = []
            if item is None:
                return
            item.set()

    def _send(self, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        try:
            self.cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=items)
        except Exception as error:  # metrics that cannot be sent must not stop the server
            self.console(f"[metrics] could not publish {len(items)} data points: {error}")
