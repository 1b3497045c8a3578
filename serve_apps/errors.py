"""Errors at the HTTP edge: the one mapping from exceptions to status codes and JSON bodies.

Every twinloop exception carries its ``code`` and HTTP ``status`` on its class and pickles as
itself (``twinloop.errors``), so a capability deployment simply raises: the exception crosses the
``DeploymentHandle`` (Ray wraps it in a ``RayTaskError``, :func:`cause_of` unwraps it) and
:func:`http_error` turns it into a status and an :class:`ErrorBody` naming the field. The edge
adds its own two: a missing or wrong bearer token (401) and a request past its deadline (504).
Serve back-pressure is 503; anything else is 500 (a bug: logged with the request id, never the
client's fault).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from twinloop.errors import ConfigError, InvalidInput, TwinloopError

log = logging.getLogger("twinloop.serve")

ErrorCode = Literal[
    "invalid_input",
    "limit_exceeded",
    "not_found",
    "conflict",
    "unauthorized",
    "deadline_exceeded",
    "unavailable",
    "method_not_allowed",
    "internal_error",
]


class Unauthorized(TwinloopError):
    """A mutating request without the configured bearer token (→ 401)."""

    code = "unauthorized"
    status = 401
    field = "authorization"


class DeadlineExceeded(TwinloopError):
    """The request ran past its deadline; the work was cancelled (→ 504)."""

    code = "deadline_exceeded"
    status = 504

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(
            f"the request took longer than its {seconds:g} s deadline and was cancelled; "
            "send 'Prefer: respond-async' to run it in the background"
        )


class ErrorBody(BaseModel):
    """The JSON body of every 4xx/5xx answer; ``field`` is a dotted path into the request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: ErrorCode
    field: str | None = None
    message: str
    limit: float | None = None
    value: float | None = None
    request_id: str | None = None
    errors: list[dict[str, str]] | None = None


def from_validation(errors: Sequence[Any], drop: tuple[str, ...] = ()) -> InvalidInput:
    """pydantic/FastAPI errors → InvalidInput naming the first field (dotted path).

    ``drop`` lists leading location parts that are not fields (FastAPI's ``body``, ``query``).
    """
    if not errors:
        return InvalidInput("body", "invalid request")
    first = errors[0]
    parts = [str(p) for p in first.get("loc", ())]
    if parts and parts[0] in drop:
        parts = parts[1:]
    ours = first.get("ctx", {}).get("error")
    if isinstance(ours, InvalidInput):  # raised by a validator: its field is inside this one
        return InvalidInput(".".join([*parts, ours.field]), ours.message)
    field = ".".join(parts) or "body"
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "json_invalid":
        field = "body"
        message = f"not valid JSON: {first.get('ctx', {}).get('error', message)}"
    return InvalidInput(field, message)


def _serve_status(exc: BaseException) -> tuple[int, ErrorCode] | None:
    """Status for Ray Serve's own errors, if it is one (imported lazily: no Ray in unit tests)."""
    try:
        from ray.serve.exceptions import (
            BackPressureError,
            DeploymentUnavailableError,
            RequestCancelledError,
        )
    except ImportError:  # pragma: no cover - ray is a runtime dependency
        return None
    if isinstance(exc, BackPressureError | DeploymentUnavailableError | RequestCancelledError):
        return 503, "unavailable"
    return None


def cause_of(exc: BaseException) -> BaseException:
    """The exception a remote call raised: a RayTaskError's user exception, else ``exc``.

    Ray re-raises a replica's exception as a ``RayTaskError(<its class>)`` whose own attributes
    shadow the original's (``field`` is a class attribute); the cause is the exception itself.
    """
    cause = getattr(exc, "cause", None)
    return (
        cause
        if isinstance(cause, BaseException) and type(exc).__name__.startswith("RayTaskError")
        else exc
    )


def http_error(exc: BaseException, request_id: str | None = None) -> tuple[int, ErrorBody]:
    """The single mapping from an exception to (status, body): the status and code are the
    exception class's own (``twinloop.errors``); a 500 tells the client nothing but an id."""
    exc = cause_of(exc)
    if isinstance(exc, ValidationError):
        exc = from_validation(exc.errors(include_url=False))
    if isinstance(exc, TwinloopError) and exc.status != 500:
        body = ErrorBody(
            code=exc.code,  # ErrorBody validates it against ErrorCode
            field=exc.field,
            message=exc.public_message(),
            limit=getattr(exc, "limit", None),
            value=getattr(exc, "value", None),
        )
        return exc.status, body
    served = _serve_status(exc)
    if served is not None:
        return served[0], ErrorBody(code=served[1], message=f"busy, retry later: {exc}")
    if isinstance(exc, ConfigError):
        log.error("configuration error (request %s): %s", request_id, exc)
        return 500, ErrorBody(
            code="internal_error", message="server misconfigured", request_id=request_id
        )
    log.exception("internal error (request %s)", request_id, exc_info=exc)
    return 500, ErrorBody(
        code="internal_error",
        message="internal error; report the request id",
        request_id=request_id,
    )


def http_status_body(status: int, detail: str) -> ErrorBody:
    """Body for Starlette's own HTTP errors (unknown path, wrong method)."""
    code: ErrorCode = {404: "not_found", 405: "method_not_allowed", 413: "limit_exceeded"}.get(
        status, "invalid_input"
    )  # type: ignore[assignment]
    return ErrorBody(code=code, message=detail)
