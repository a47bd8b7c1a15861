"""Errors that the API turns into JSON bodies of one shape:

    {"error": {"code": "validation_error", "message": "...", "details": [...]}}

``details`` lists ``{"path": "body.name", "problem": "must be at most 100 characters"}`` items
(``[]`` when there is nothing per field). Raise these from a route; the app of
:func:`fleet_common.api.build_app` renders them.

| class | status | code |
| --- | --- | --- |
| :class:`BadRequest` | 400 | ``bad_request`` (the body is not a JSON object) |
| :class:`ValidationFailed` | 400 | ``validation_error`` (field errors in body or query) |
| :class:`Unauthorized` | 401 | ``unauthorized`` (no verified caller identity) |
| :class:`NotFound` | 404 | ``not_found`` |
| :class:`Conflict` | 409 | ``conflict`` |
| :class:`PayloadTooLarge` | 413 | ``payload_too_large`` (request body over the limit) |
| :class:`Unprocessable` | 422 | ``unprocessable`` (valid request the database cannot store) |
| :class:`InternalError` | 500 | ``internal_error`` |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "FieldError",
    "InternalError",
    "NotFound",
    "PayloadTooLarge",
    "Unauthorized",
    "Unprocessable",
    "ValidationFailed",
    "error_body",
]


@dataclass(frozen=True)
class FieldError:
    """What is wrong with one field: ``path`` (``body.name``, ``query.limit``) and ``problem``."""

    path: str
    problem: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "problem": self.problem}


def error_body(code: str, message: str, details: list[FieldError] | None = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": [d.to_json() for d in details or ()],
        }
    }


class ApiError(Exception):
    """An error with an HTTP status, a machine-readable ``code`` and a human ``message``.

    A kind of error names its status and code in its class line:
    ``class NotFound(ApiError, status=404, code="not_found")``.
    """

    status: int = 500
    code: str = "internal_error"

    def __init_subclass__(cls, *, status: int, code: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.status, cls.code = status, code

    def __init__(self, message: str, details: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or ())

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


class BadRequest(ApiError, status=400, code="bad_request"):
    """The body is not a JSON object."""


class ValidationFailed(ApiError, status=400, code="validation_error"):
    """Field errors in the body or the query."""

    def __init__(self, details: list[FieldError], message: str | None = None) -> None:
        if message is None:
            fields = ", ".join(dict.fromkeys(d.path for d in details))
            message = f"invalid request: {fields}" if fields else "invalid request"
        super().__init__(message, details)


class Unauthorized(ApiError, status=401, code="unauthorized"):
    """The request reached the function without a usable verified identity (API
    Gateway's JWT authorizer puts the verified claims into every event it lets through)."""


class NotFound(ApiError, status=404, code="not_found"):
    """No such resource."""


class Conflict(ApiError, status=409, code="conflict"):
    """The request conflicts with what is stored (e.g. the resource exists already)."""


class PayloadTooLarge(ApiError, status=413, code="payload_too_large"):
    """The request body is over the limit."""


class Unprocessable(ApiError, status=422, code="unprocessable"):
    """A valid request the database cannot store."""


class InternalError(ApiError, status=500, code="internal_error"):
    """Anything unexpected."""
