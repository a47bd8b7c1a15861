"""The powertools logger, tracer and metrics shared by every fleet-registry function.

- ``logger``: JSON logs; the service name comes from ``POWERTOOLS_SERVICE_NAME`` (default
  ``fleet-registry``). :func:`fleet_common.api.make_handler` injects the Lambda context and the
  correlation id (``requestContext.requestId`` of the HTTP API event) into every line.
- ``metrics``: CloudWatch embedded metrics in the namespace ``FleetRegistry``.
- ``tracer``: X-Ray through powertools' ``Tracer``, created on the first invocation instead of
  at import: importing the X-Ray SDK takes ~200 ms, which would otherwise be paid by every
  import of a handler module (cold start, tests, tooling). Outside Lambda the powertools
  tracer disables itself; without ``aws_xray_sdk``, or when it fails to load (no botocore),
  it is a no-op and requests are served untraced.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics

__all__ = ["METRICS_NAMESPACE", "SERVICE_NAME", "LazyTracer", "logger", "metrics", "tracer"]

F = TypeVar("F", bound=Callable[..., Any])

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME") or "fleet-registry"
METRICS_NAMESPACE = "FleetRegistry"

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


class LazyTracer:
    """A stand-in for ``aws_lambda_powertools.Tracer`` that builds the real one on first use.

    Supports what the functions use: :meth:`capture_lambda_handler`, :meth:`capture_method`
    (synchronous functions), :meth:`put_annotation` and :meth:`put_metadata`. Only botocore is
    patched (Secrets Manager calls show up as subsegments).
    """

    def __init__(self, service: str, patch_modules: tuple[str, ...] = ("botocore",)) -> None:
        self._service = service
        self._patch_modules = patch_modules
        self._tracer: Any = None
        self._resolved = False

    @property
    def real(self) -> Any:
        """The powertools ``Tracer``, or ``None`` when the X-Ray SDK is not installed."""
        if not self._resolved:
            self._resolved = True
            if importlib.util.find_spec("aws_xray_sdk") is None:
                logger.debug("aws_xray_sdk is not installed; tracing is off")
                return None
            try:
                from aws_lambda_powertools import Tracer

                self._tracer = Tracer(service=self._service, patch_modules=self._patch_modules)
            except Exception as exc:  # e.g. botocore missing: serve requests untraced
                logger.warning(
                    "X-Ray tracer unavailable; tracing is off",
                    extra={"error": f"{type(exc).__name__}: {exc}"},
                )
        return self._tracer

    def capture_lambda_handler(
        self, lambda_handler: F | None = None, *, capture_response: bool = False
    ) -> Any:
        """Like ``Tracer.capture_lambda_handler``; responses are not captured by default (they
        hold whole device pages, too big and too chatty for trace metadata)."""
        if lambda_handler is None:
            return functools.partial(self.capture_lambda_handler, capture_response=capture_response)
        return self._wrap_on_first_call(
            lambda_handler,
            lambda real, fn: real.capture_lambda_handler(fn, capture_response=capture_response),
        )

    def capture_method(self, method: F | None = None, *, capture_response: bool = False) -> Any:
        """Like ``Tracer.capture_method`` for synchronous functions."""
        if method is None:
            return functools.partial(self.capture_method, capture_response=capture_response)
        return self._wrap_on_first_call(
            method, lambda real, fn: real.capture_method(fn, capture_response=capture_response)
        )

    def _wrap_on_first_call(
        self, fn: F, capture: Callable[[Any, F], Callable[..., Any]]
    ) -> Callable[..., Any]:
        """`fn`, wrapped at its first call by `capture(real tracer, fn)`; as it is when there is
        no real tracer. Deciding at the first call keeps the X-Ray SDK out of the import."""
        wrapped: Callable[..., Any] | None = None

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            nonlocal wrapped
            if wrapped is None:
                real = self.real
                wrapped = fn if real is None else capture(real, fn)
            return wrapped(*args, **kwargs)

        return wrapper

    def put_annotation(self, key: str, value: Any) -> None:
        real = self.real
        if real is not None:
            real.put_annotation(key=key, value=value)

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        real = self.real
        if real is not None:
            real.put_metadata(key=key, value=value, namespace=namespace)


tracer = LazyTracer(service=SERVICE_NAME)
