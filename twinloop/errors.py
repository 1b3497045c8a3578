"""The project's exception hierarchy: one base class, so callers can catch everything of ours.

TwinloopError
├── InvalidInput            bad user input; ``field`` names the offending field (→ HTTP 422)
│   └── LimitExceeded       a request larger than a configured limit (→ HTTP 413)
├── NotFound                an unknown id or kind (→ HTTP 404)
├── ConfigError             invalid settings at start-up; names the variable
└── StoreError              the state store failed
    ├── StoreUnavailable    the backend (Redis, the SQLite file) cannot be reached
    ├── CorruptDocument     a stored document is not valid JSON / not the expected model
    └── VersionConflict     a compare-and-set lost the race
"""

from __future__ import annotations


class TwinloopError(Exception):
    """Base class of every error twinloop raises on purpose."""


class InvalidInput(TwinloopError, ValueError):
    """User input that cannot be used; ``field`` names where it is (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class LimitExceeded(InvalidInput):
    """A request beyond a configured size limit; ``limit`` is the bound that was crossed."""

    def __init__(self, field: str, value: float, limit: float) -> None:
        self.value = value
        self.limit = limit
        super().__init__(field, f"{value:g} exceeds the limit of {limit:g}")


class NotFound(TwinloopError, KeyError):
    """An id or name that does not exist."""

    def __init__(self, kind: str, ident: str) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(f"{kind} {ident!r} not found")

    def __str__(self) -> str:
        return f"{self.kind} {self.ident!r} not found"


class ConfigError(TwinloopError):
    """Invalid configuration; the message names the environment variable."""


class StoreError(TwinloopError):
    """The state store failed."""


class StoreUnavailable(StoreError):
    """The store's backend cannot be reached; nothing was written."""


class CorruptDocument(StoreError):
    """A stored document cannot be decoded."""


class VersionConflict(StoreError):
    """A compare-and-set found another version than expected."""
