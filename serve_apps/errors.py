"""Errors at the HTTP edge: the one mapping from exceptions to status codes and JSON bodies.

Two jobs live here and nowhere else:

* **Transport.** Our exceptions take several constructor arguments, so Python's exception pickling
  (``cls(*args)``) cannot rebuild them across a ``DeploymentHandle``. A capability deployment
  therefore *returns* a :class:`Failure` (plain data) instead of raising; the ingress turns it
  back into the original exception with :meth:`Failure.exception`.
* **Mapping.** :func:`http_error` is the single table from an exception to a status code and an
  :class:`ErrorBody` naming the field: ``InvalidInput`` → 422, ``LimitExceeded`` → 413,
  ``NotFound`` → 404, ``VersionConflict`` → 409, missing or wrong bearer token → 401, a request
  past its deadline → 504, Serve back-pressure or an unreachable store → 503, anything else → 500
  (a bug: logged with the request id, never the client's fault).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from twinloop.errors import (
    ConfigError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    StoreUnavailable,
    TwinloopError,
    VersionConflict,
)

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
P = ParamSpec("P")
R = TypeVar("R")


class Unauthorized(TwinloopError):
    """A mutating request without the configured bearer token (→ 401)."""


class DeadlineExceeded(TwinloopError):
    """The request ran past its deadline; the work was cancelled (→ 504)."""

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


@dataclass(frozen=True)
class Failure:
    """An expected error crossing a DeploymentHandle as data (see the module docstring)."""

    kind: Literal["invalid_input", "limit_exceeded", "not_found", "conflict", "unavailable"]
    message: str
    field: str | None = None
    value: float | None = None
    limit: float | None = None
    ident: str | None = None

    @classmethod
    def of(cls, exc: BaseException) -> Failure:
        """Describe an exception we expect from client input; anything else is re-raised."""
        if isinstance(exc, ValidationError):
            exc = from_validation(exc.errors(include_url=False))
        if isinstance(exc, LimitExceeded):
            return cls("limit_exceeded", exc.message, exc.field, exc.value, exc.limit)
        if isinstance(exc, InvalidInput):
            return cls("invalid_input", exc.message, exc.field)
        if isinstance(exc, NotFound):
            return cls("not_found", str(exc), field=exc.kind, ident=exc.ident)
        if isinstance(exc, VersionConflict):
            return cls("conflict", str(exc))
        if isinstance(exc, StoreUnavailable):
            return cls("unavailable", str(exc))
        raise exc

    def exception(self) -> TwinloopError:
        """Rebuild the exception the capability raised."""
        if self.kind == "limit_exceeded":
            return LimitExceeded(self.field or "body", self.value or 0.0, self.limit or 0.0)
        if self.kind == "invalid_input":
            return InvalidInput(self.field or "body", self.message)
        if self.kind == "not_found":
            return NotFound(self.field or "object", self.ident or "")
        if self.kind == "conflict":
            return VersionConflict(self.message)
        return StoreUnavailable(self.message)


def returns_failures(fn: Callable[P, R]) -> Callable[P, R | Failure]:
    """Decorate a capability method: expected errors come back as a Failure value."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Failure:
        try:
            return fn(*args, **kwargs)
        except (TwinloopError, ValidationError) as exc:
            return Failure.of(exc)

    return wrapper


def unwrap(result: R | Failure) -> R:
    """The value of a capability call, or raise the error it returned."""
    if isinstance(result, Failure):
        raise result.exception()
    return result


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


def _cause(exc: BaseException) -> BaseException:
    """A RayTaskError's user exception, else the exception itself."""
    cause = getattr(exc, "cause", None)
    return (
        cause
        if isinstance(cause, BaseException) and type(exc).__name__.startswith("RayTaskError")
        else exc
    )


def http_error(exc: BaseException, request_id: str | None = None) -> tuple[int, ErrorBody]:
    """The single mapping from an exception to (status, body)."""
    exc = _cause(exc)
    if isinstance(exc, ValidationError):
        exc = from_validation(exc.errors(include_url=False))
    if isinstance(exc, LimitExceeded):
        body = ErrorBody(
            code="limit_exceeded",
            field=exc.field,
            limit=exc.limit,
            value=exc.value,
            message=f"{exc.field}: {exc.message}",
        )
        return 413, body
    if isinstance(exc, InvalidInput):
        return 422, ErrorBody(code="invalid_input", field=exc.field, message=str(exc))
    if isinstance(exc, NotFound):
        return 404, ErrorBody(code="not_found", field=exc.kind, message=str(exc))
    if isinstance(exc, VersionConflict):
        return 409, ErrorBody(code="conflict", message=str(exc))
    if isinstance(exc, Unauthorized):
        return 401, ErrorBody(code="unauthorized", field="authorization", message=str(exc))
    if isinstance(exc, DeadlineExceeded):
        return 504, ErrorBody(code="deadline_exceeded", message=str(exc))
    if isinstance(exc, StoreUnavailable):
        return 503, ErrorBody(code="unavailable", message=f"state store unavailable: {exc}")
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
