"""The HTTP side of a function: an ``APIGatewayHttpResolver`` app whose every error is a JSON
body of one shape, the Lambda entry point around it, request parsing and JSON responses.

Usage in a function's ``handler.py``::

    from fleet_common.api import build_app, json_response, make_handler, parse_json_body

    app = build_app()

    @app.post("/projects")
    def create_project():
        body = parse_json_body(app.current_event)
        ...
        return json_response(201, {"project": ...})

    handler = make_handler(app)

Errors (see :mod:`fleet_common.errors`): an :class:`~fleet_common.errors.ApiError` raised by a
route becomes its status and ``{"error": {"code", "message", "details"}}``; a route that does not
exist is a 404 ``not_found``; data the database refuses to store (SQLSTATE class 22, or a check
constraint) is a 422 ``unprocessable``; anything else is logged with its traceback and the
correlation id and answered with a generic 500 ``internal_error`` body, never a traceback.

Identity (see :mod:`fleet_common.identity`): an event without the JWT authorizer's verified
claims is answered 401 ``unauthorized`` by :func:`make_handler` before any route runs; routes
read the caller with :func:`fleet_common.identity.caller`. Nothing here logs the event, its
headers (``Authorization``) or the token: only the caller's ``sub`` and ``client_id``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from .errors import (
    ApiError,
    BadRequest,
    FieldError,
    PayloadTooLarge,
    Unauthorized,
    Unprocessable,
    ValidationFailed,
    error_body,
)
from .identity import identify
from .limits import MAX_BASE64_BODY_LENGTH, MAX_BODY_BYTES
from .observability import logger, metrics, tracer
from .validation import text_errors

__all__ = [
    "JSON_CONTENT_TYPE",
    "build_app",
    "error_response",
    "json_response",
    "make_handler",
    "parse_json_body",
    "path_param",
    "query_param",
    "timestamp",
]

JSON_CONTENT_TYPE = "application/json"
_INTERNAL_ERROR_MESSAGE = "internal server error"
_ROUTE_PARAM = re.compile(r"\{([^{}]+)\}")


def _dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def json_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> Response[str]:
    """A JSON response (``Content-Type: application/json``, ``Cache-Control: no-store``)."""
    all_headers = {"Cache-Control": "no-store", **(headers or {})}
    return Response(
        status_code=status,
        content_type=JSON_CONTENT_TYPE,
        body=_dumps(payload),
        headers=all_headers,
    )


def error_response(
    status: int, code: str, message: str, details: list[FieldError] | None = None
) -> Response[str]:
    return json_response(status, error_body(code, message, details))


def timestamp(value: datetime) -> str:
    """A ``timestamptz`` as an RFC 3339 UTC string: ``2025-01-02T03:04:05.123456Z``."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def device_body(row: Sequence[Any]) -> dict[str, Any]:
    """A device as the API returns it, from a row that starts with
    ``id, name, serial, attributes, created_by, created_at``."""
    device_id, name, serial, attributes, created_by, created_at = row[:6]
    return {
        "id": device_id,
        "name": name,
        "serial": serial,
        "attributes": attributes,
        "created_by": created_by,
        "created_at": timestamp(created_at),
    }


def _data_error(exc: BaseException) -> bool:
    from .db import sqlstate

    state = sqlstate(exc)
    # Class 22 (data exception: value too long, bad encoding, ...) and check_violation.
    return state is not None and (state.startswith("22") or state == "23514")


def build_app() -> APIGatewayHttpResolver:
    """An ``APIGatewayHttpResolver`` (HTTP API, payload format 2.0) with the JSON error
    handlers of this module registered. Add routes with ``@app.get(...)``/``@app.post(...)``;
    read path parameters with :func:`path_param` (decoded by API Gateway), not from the
    route function's arguments.

    ``debug=False`` whatever the environment says: powertools' debug mode
    (``POWERTOOLS_DEV``) would print every event, ``Authorization`` header included."""
    app = APIGatewayHttpResolver(debug=False)

    # The exception handlers are registered by a call, not as decorators: powertools'
    # exception_handler has no return type, and as a decorator it would untype them.
    def _api_error(exc: ApiError) -> Response[str]:
        log = logger.error if exc.status >= 500 else logger.info
        log(
            "request rejected",
            extra={
                "status": exc.status,
                "error_code": exc.code,
                "error_message": exc.message,
                "details": [d.to_json() for d in exc.details],
            },
        )
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return json_response(exc.status, exc.body(), headers)

    app.exception_handler(ApiError)(_api_error)

    def _unexpected(exc: Exception) -> Response[str]:
        if _data_error(exc):
            logger.warning("the database refused the data", exc_info=exc)
            err = Unprocessable("the request is valid but its data cannot be stored")
            return json_response(err.status, err.body())
        # Traceback and correlation id go to the log; the client gets a generic body.
        logger.exception("unhandled error while handling the request")
        return error_response(500, "internal_error", _INTERNAL_ERROR_MESSAGE)

    app.exception_handler(Exception)(_unexpected)

    @app.not_found
    def _not_found(exc: Exception) -> Response[str]:
        event = app.current_event
        return error_response(
            404, "not_found", f"no route for {event.http_method} {event.raw_path}"
        )

    return app


def _route_event(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event with ``rawPath`` rebuilt from ``routeKey`` and ``pathParameters``.

    HTTP APIs deliver ``rawPath`` and ``pathParameters`` URL-decoded, so a project named
    ``a/b`` arrives as ``/projects/a/b/devices``, which no powertools route pattern matches.
    API Gateway already chose the route: rebuilding the path from its route key with each
    parameter percent-encoded makes the resolver pick the same route for any name.
    """
    route_key = event.get("routeKey")
    params = event.get("pathParameters") or {}
    if not isinstance(route_key, str) or not isinstance(params, Mapping):
        return event
    _, sep, template = route_key.partition(" ")
    if not sep or not template.startswith("/") or "{" not in template:
        return event
    missing = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal missing
        name = match[1]
        greedy = name.endswith("+")
        value = params.get(name.rstrip("+"))
        if not isinstance(value, str):
            missing = True
            return match[0]
        # surrogatepass: a value that is not valid Unicode (a lone surrogate from a "\ud800"
        # escape) must still reach its route, where path_param() rejects it with a 400.
        return quote(value, safe="/" if greedy else "", errors="surrogatepass")

    path = _ROUTE_PARAM.sub(substitute, template)
    if missing:
        return event
    stage = (event.get("requestContext") or {}).get("stage")
    if isinstance(stage, str) and stage and stage != "$default":
        path = f"/{stage}{path}"
    return {**event, "rawPath": path}


def _fallback_500() -> dict[str, Any]:
    return {
        "statusCode": 500,
        "headers": {"Content-Type": JSON_CONTENT_TYPE, "Cache-Control": "no-store"},
        "body": _dumps(error_body("internal_error", _INTERNAL_ERROR_MESSAGE)),
        "isBase64Encoded": False,
    }


def _unauthorized(exc: Unauthorized) -> dict[str, Any]:
    """The 401 answer, as the API Gateway response dict (no route ran)."""
    logger.info(
        "request rejected",
        extra={"status": exc.status, "error_code": exc.code, "error_message": exc.message},
    )
    return {
        "statusCode": exc.status,
        "headers": {
            "Content-Type": JSON_CONTENT_TYPE,
            "Cache-Control": "no-store",
            "WWW-Authenticate": "Bearer",
        },
        "body": _dumps(exc.body()),
        "isBase64Encoded": False,
    }


def make_handler(app: APIGatewayHttpResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point for ``app``: logger context with the HTTP API request id as
    correlation id, X-Ray tracing, metrics (cold start, ``Responses2xx``/``4xx``/``5xx``), one
    ``request handled`` log line per request, and a last-resort JSON 500.

    The verified caller (:func:`fleet_common.identity.identify`) is looked up first: without
    one the answer is 401 ``unauthorized`` and no route runs (so no database work either).
    Its ``caller_sub`` and ``caller_client_id`` are logger keys for the whole invocation, so
    every line, ``request handled`` included, says who called. The event itself is never
    logged (``log_event=False`` whatever ``POWERTOOLS_LOGGER_LOG_EVENT`` says)."""

    @logger.inject_lambda_context(
        correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True, log_event=False
    )
    @tracer.capture_lambda_handler
    @metrics.log_metrics(capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            try:
                who = identify(event)
            except Unauthorized as exc:
                response = _unauthorized(exc)
            else:
                logger.append_keys(**who.log_keys())
                response = app.resolve(_route_event(event), context)
        except Exception:  # an error handler failed: still never a traceback to the client
            logger.exception("unhandled error outside the routes")
            response = _fallback_500()
        status = int(response.get("statusCode", 500))
        metrics.add_metric(name=f"Responses{status // 100}xx", unit=MetricUnit.Count, value=1)
        route = event.get("routeKey") if isinstance(event, dict) else None
        logger.info("request handled", extra={"route": route, "status": status})
        return response

    entry_point: Callable[[dict[str, Any], Any], dict[str, Any]] = handler  # the decorated
    return entry_point


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is larger than {MAX_BODY_BYTES} bytes",
        [FieldError("body", f"must be at most {MAX_BODY_BYTES} bytes")],
    )


def _not_text() -> BadRequest:
    return BadRequest(
        "the request body is not valid JSON", [FieldError("body", "is not UTF-8 text")]
    )


def parse_json_body(event: Any) -> dict[str, Any]:
    """The request body as a JSON object.

    413 ``payload_too_large`` for a body over :data:`~fleet_common.limits.MAX_BODY_BYTES`
    (its UTF-8 bytes; for a base64 body the decoded bytes, and a base64 text longer than
    :data:`~fleet_common.limits.MAX_BASE64_BODY_LENGTH` is too large undecoded), checked
    before anything is parsed; 400 ``bad_request`` for a missing/empty body, a body that is not
    valid JSON (``NaN``, ``Infinity`` and numbers beyond the float range included) or not an
    object; 400 ``validation_error`` for strings PostgreSQL cannot store (NUL, unpaired
    surrogates)."""
    raw = event.get("body")
    if raw is None or raw == "":
        raise BadRequest("a JSON request body is required", [FieldError("body", "is required")])
    if not isinstance(raw, str):
        raise BadRequest("the request body is not valid JSON", [FieldError("body", "is not JSON")])
    if event.get("isBase64Encoded"):
        if len(raw) > MAX_BASE64_BODY_LENGTH:
            raise _too_large()
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise _not_text() from None
        if len(data) > MAX_BODY_BYTES:
            raise _too_large()
        try:
            raw = data.decode("utf-8")
        except ValueError:
            raise _not_text() from None
    # A character is at least one byte: only a body short enough in characters is encoded.
    elif len(raw) > MAX_BODY_BYTES or len(raw.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise _too_large()
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            "the request body is not valid JSON",
            [
                FieldError(
                    "body", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
                )
            ],
        ) from None
    except RecursionError:
        raise BadRequest(
            "the request body is not valid JSON", [FieldError("body", "is nested too deeply")]
        ) from None
    except ValueError as exc:  # from the hooks above, or an integer with too many digits
        text = str(exc)
        problem = text if text.endswith("is not valid JSON") else "has a number out of range"
        raise BadRequest(
            "the request body is not valid JSON", [FieldError("body", problem)]
        ) from None
    if not isinstance(value, dict):
        raise BadRequest(
            "the request body must be a JSON object", [FieldError("body", "must be an object")]
        )
    errors = text_errors(value)
    if errors:
        raise ValidationFailed(errors)
    return value


def path_param(app: APIGatewayHttpResolver, name: str) -> str:
    """A path parameter as API Gateway decoded it (``pathParameters``), matched literally.

    400 ``validation_error`` on ``path.<name>`` when it holds text PostgreSQL cannot take (NUL,
    unpaired surrogates): no row can have such a name, and the query would fail."""
    value = (app.current_event.path_parameters or {}).get(name)
    if not isinstance(value, str):
        raise BadRequest(f"missing path parameter {name}")
    errors = text_errors(value, f"path.{name}")
    if errors:
        raise ValidationFailed(errors)
    return value


def query_param(app: APIGatewayHttpResolver, name: str) -> str | None:
    """A query string parameter (decoded; a repeated one arrives comma-joined)."""
    params = app.current_event.query_string_parameters or {}
    value = params.get(name)
    return value if isinstance(value, str) else None
