"""Patch m: CloudWatch metric statistics read back by their exact dimensions.

CloudWatch identifies a metric by namespace, name and its complete set of dimensions:
GetMetricStatistics and GetMetricData with [FunctionName] return only the data published with
exactly [FunctionName], never the data published with [FunctionName, Resource] as well. moto
5.2 differs in two ways that miscount what Lambda publishes (api/metrics.py publishes
every invocation under three dimension sets):

- GetMetricStatistics matches the query's dimensions as a subset of the datum's: asking for
  [FunctionName] also counts the [FunctionName, Resource] and [..., ExecutedVersion] data, so
  one invocation counts three times. Here the data is matched on the exact dimension set.
- GetMetricData compares ``sorted()`` dimension lists, but moto's ``Dimension.__lt__`` is not an
  order (it compares a value with a name), so whether a query matches depends on the order its
  dimensions are listed in. Here dimensions sort by (name, value).

Left as moto has it: GetMetricData with dimensions does not check the namespace (a metric of
the same name and dimensions in another namespace is counted too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _dimension_set(dimensions: Any) -> frozenset[tuple[str, str]]:
    """A datum's (moto Dimension objects) or a query's (dicts) dimensions, comparable."""
    pairs = set()
    for dimension in dimensions or []:
        if isinstance(dimension, dict):
            pairs.add((str(dimension.get("Name")), str(dimension.get("Value"))))
        else:
            pairs.add((str(dimension.name), str(dimension.value)))
    return frozenset(pairs)


class _ExactlyMatching:
    """What moto's get_metric_statistics reads from its backend (`get_all_metrics`),
    narrowed to the data whose dimension set is exactly the query's."""

    def __init__(self, backend: Any, dimensions: list[dict[str, str]]) -> None:
        self.backend = backend
        self.wanted = _dimension_set(dimensions)

    def get_all_metrics(self) -> list[Any]:
        return [
            datum
            for datum in self.backend.get_all_metrics()
            if _dimension_set(datum.dimensions) == self.wanted
        ]


def _exact_statistics(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_metric_statistics(
        self: Any,
        namespace: str,
        metric_name: str,
        start_time: Any,
        end_time: Any,
        period: int,
        stats: list[str],
        dimensions: list[dict[str, str]],
        unit: str | None = None,
    ) -> Any:
        narrowed = _ExactlyMatching(self, dimensions)
        return original(
            narrowed, namespace, metric_name, start_time, end_time, period, stats, dimensions, unit
        )

    get_metric_statistics.__stackrun_patched__ = True  # type: ignore[attr-defined]
    return get_metric_statistics


def _dimension_less_than(self: Any, other: Any) -> bool:
    return (str(self.name), str(self.value)) < (str(other.name), str(other.value))


def install_patches() -> None:
    """Apply patch m to moto's CloudWatch; safe to call more than once."""
    from moto.cloudwatch.models import CloudWatchBackend, Dimension

    statistics = CloudWatchBackend.get_metric_statistics
    if not getattr(statistics, "__stackrun_patched__", False):
        CloudWatchBackend.get_metric_statistics = _exact_statistics(statistics)  # type: ignore[method-assign]
    Dimension.__lt__ = _dimension_less_than  # type: ignore[method-assign]
