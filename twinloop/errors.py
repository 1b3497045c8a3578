"""The project's exception hierarchy: one base class, so callers can catch everything of ours.

TwinloopError                         code              HTTP
├── InvalidInput                      invalid_input     422  ``field`` names the offending field
│   └── LimitExceeded                 limit_exceeded    413  a request larger than a limit
├── NotFound                          not_found         404  an unknown id or kind
├── ConfigError                       internal_error    500  invalid settings; names the variable
└── StoreError                        internal_error    500  the state store failed
    ├── StoreUnavailable              unavailable       503  the backend cannot be reached
    ├── CorruptDocument               internal_error    500  a stored document cannot be decoded
    └── VersionConflict               conflict          409  a compare-and-set lost the race

Each class carries its stable ``code`` and HTTP ``status`` (a plain int: the core knows no web
framework), so an edge maps any of them with one lookup. Every instance survives pickling as
itself, attributes included: Ray ships an exception raised in one process (a Serve replica, an
actor) to the caller in another, and Python's default ``cls(*args)`` cannot rebuild an exception
whose constructor takes other arguments than its message.
"""

from __future__ import annotations

from typing import Any, ClassVar


def _rebuild(cls: type[TwinloopError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """Unpickle without calling ``__init__``: the message and the attributes, as they were."""
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class TwinloopError(Exception):
    """Base class of every error twinloop raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    field: str | None = None  # where in the input the error is, a dotted path

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))

    def public_message(self) -> str:
        """What a client is told (errors of status 500 are not told: they are ours)."""
        return str(self)


class InvalidInput(TwinloopError, ValueError):
    """User input that cannot be used; ``field`` names where it is (dotted path)."""

    code = "invalid_input"
    status = 422
    field: str

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class LimitExceeded(InvalidInput):
    """A request beyond a configured size limit; ``limit`` is the bound that was crossed."""

    code = "limit_exceeded"
    status = 413

    def __init__(self, field: str, value: float, limit: float) -> None:
        self.value = value
        self.limit = limit
        super().__init__(field, f"{value:g} exceeds the limit of {limit:g}")


class NotFound(TwinloopError, KeyError):
    """An id or name that does not exist; ``field`` is the kind of thing looked for."""

    code = "not_found"
    status = 404
    field: str

    def __init__(self, kind: str, ident: str) -> None:
        self.kind = kind
        self.ident = ident
        self.field = kind
        super().__init__(f"{kind} {ident!r} not found")

    def __str__(self) -> str:
        return f"{self.kind} {self.ident!r} not found"


class ConfigError(TwinloopError):
    """Invalid configuration; the message names the environment variable."""


class StoreError(TwinloopError):
    """The state store failed."""


class StoreUnavailable(StoreError):
    """The store's backend cannot be reached; nothing was written."""

    code = "unavailable"
    status = 503

    def public_message(self) -> str:
        return f"state store unavailable: {self}"


class CorruptDocument(StoreError):
    """A stored document cannot be decoded."""


class VersionConflict(StoreError):
    """A compare-and-set found another version than expected."""

    code = "conflict"
    status = 409
