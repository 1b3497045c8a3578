"""The state store: versioned JSON documents by kind and id, behind one interface.

``Store`` holds the contract every backend keeps (see docs/store.md): documents are JSON objects
addressed by ``(kind, id)``; every write bumps an integer ``version`` so writers can
compare-and-set (``put(..., expected_version=n)`` raises :class:`VersionConflict` when another
writer got there first, ``update`` retries a read-modify-write until it lands); a replaced
document keeps its earlier versions in an append-only history; a document may carry a TTL.
Backends implement a few private primitives; validation, filtering and the typed helpers live
here once, so both backends behave the same. :class:`SqliteStore` (``twinloop.store_sqlite``) is
the embedded default; ``cluster.redis_store.RedisStore`` is the shared one.
"""

from __future__ import annotations

import builtins
import json
import math
import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from enum import Enum
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, TypeVar

from pydantic import BaseModel, ValidationError

from twinloop.contract import ID_PATTERN, FrozenModel
from twinloop.errors import (
    CorruptDocument,
    InvalidInput,
    LimitExceeded,
    NotFound,
    VersionConflict,
)

if TYPE_CHECKING:
    from twinloop.store_sqlite import SqliteStore

__all__ = [
    "DEFAULT_MAX_HISTORY",
    "DEFAULT_RETRIES",
    "KEEP_TTL",
    "TTL",
    "JSONScalar",
    "KeepTTL",
    "Order",
    "SqliteStore",
    "Store",
    "StoredDocument",
]

# Kinds become SQL values and Redis key segments: a small charset keeps both trivially safe
# (no ':', '{', '*' that would clash with key layout, hash tags or SCAN patterns).
KIND_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
FIELD_PATTERN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
MAX_DOC_BYTES: Final = 16 * 1024 * 1024  # one document; bigger payloads belong in Parquet files
DEFAULT_MAX_HISTORY: Final = 100  # superseded versions kept per id; bounds a hot counter's growth
DEFAULT_RETRIES: Final = 50  # update() attempts after the first before giving up

JSONScalar: TypeAlias = str | int | float | bool | None
Order: TypeAlias = Literal["newest", "oldest"]
M = TypeVar("M", bound=BaseModel)


class KeepTTL(Enum):
    """Sentinel type: a write that keeps the document's current expiry."""

    KEEP = "keep"


KEEP_TTL: Final = KeepTTL.KEEP
TTL: TypeAlias = float | Literal[KeepTTL.KEEP] | None


class StoredDocument(FrozenModel):
    """One version of a document as the store holds it; ``doc`` is the caller's JSON object."""

    kind: str
    id: str
    version: int  # 1 for the first write, +1 per write; history entries keep theirs
    doc: dict[str, Any]
    created_at: float  # Unix seconds of version 1
    updated_at: float  # Unix seconds this version was written
    expires_at: float | None = None  # Unix seconds; None = never (always None in history)

    def to_model(self, model_type: type[M]) -> M:
        """Validate ``doc`` as ``model_type``; a mismatch is CorruptDocument naming kind and id."""
        try:
            return model_type.model_validate(self.doc)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "<root>"
            raise CorruptDocument(
                f"{self.kind} {self.id!r} (version {self.version}) is not a valid "
                f"{model_type.__name__}: {where}: {first['msg']}"
            ) from exc


# --- argument checks and the JSON codec shared by every backend ---------------------------------


def check_kind(kind: object) -> str:
    """Return ``kind`` if it is a safe kind name, else raise InvalidInput naming ``kind``."""
    if not isinstance(kind, str) or not KIND_PATTERN.fullmatch(kind):
        raise InvalidInput("kind", f"{kind!r} must match {KIND_PATTERN.pattern}")
    return kind


def check_id(ident: object) -> str:
    """Return ``ident`` if it is a safe document id, else raise InvalidInput naming ``id``."""
    if not isinstance(ident, str) or not ID_PATTERN.fullmatch(ident):
        raise InvalidInput("id", f"{ident!r} must match {ID_PATTERN.pattern}")
    return ident


def check_version(expected_version: object) -> int | None:
    """``None`` (write unconditionally), ``0`` (must not exist) or the version to replace."""
    if expected_version is None:
        return None
    if isinstance(expected_version, bool) or not isinstance(expected_version, int):
        raise InvalidInput("expected_version", f"{expected_version!r} must be an int or None")
    if expected_version < 0:
        raise InvalidInput("expected_version", f"{expected_version} must be >= 0")
    return expected_version


def check_ttl(ttl_seconds: object) -> TTL:
    """A positive, finite number of seconds, ``None`` (no expiry) or ``KEEP_TTL``."""
    if ttl_seconds is None or ttl_seconds is KEEP_TTL:
        return ttl_seconds
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int | float):
        raise InvalidInput("ttl_seconds", f"{ttl_seconds!r} must be a number of seconds or None")
    if not math.isfinite(ttl_seconds) or ttl_seconds <= 0:
        raise InvalidInput("ttl_seconds", f"{ttl_seconds} must be > 0 and finite")
    return float(ttl_seconds)


def encode_doc(doc: object) -> str:
    """Serialise a JSON object compactly; non-JSON values or oversize documents: InvalidInput."""
    if not isinstance(doc, Mapping):
        raise InvalidInput("doc", f"must be a JSON object (a dict), got {type(doc).__name__}")
    try:
        body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("doc", f"is not JSON-serialisable: {exc}") from exc
    size = len(body.encode("utf-8"))
    if size > MAX_DOC_BYTES:
        raise LimitExceeded("doc", size, MAX_DOC_BYTES)
    return body


def decode_doc(raw: object, kind: str, ident: str, source: str) -> dict[str, Any]:
    """Parse a stored body; anything but a UTF-8 JSON object is a CorruptDocument naming the id."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
        if not isinstance(text, str):
            raise TypeError(f"stored value is {type(raw).__name__}, not text")
        value = json.loads(text)
    except (UnicodeDecodeError, TypeError, ValueError) as exc:
        raise CorruptDocument(f"{kind} {ident!r} in {source} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise CorruptDocument(
            f"{kind} {ident!r} in {source} is JSON {type(value).__name__}, not an object"
        )
    return value


def check_where(where: Mapping[str, JSONScalar] | None) -> dict[str, JSONScalar]:
    """Field-equality filters: dotted field paths mapped to JSON scalars."""
    if where is None:
        return {}
    if not isinstance(where, Mapping):
        raise InvalidInput("where", f"must be a mapping of field to value, got {where!r}")
    for field, value in where.items():
        if not isinstance(field, str) or not FIELD_PATTERN.fullmatch(field):
            raise InvalidInput("where", f"field {field!r} must match {FIELD_PATTERN.pattern}")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidInput(f"where.{field}", f"{value!r} must be a JSON scalar")
    return dict(where)


_MISSING: Final = object()


def _field(doc: Mapping[str, Any], path: str) -> object:
    value: object = doc
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _same(a: object, b: object) -> bool:
    # JSON keeps true and 1 apart; Python's True == 1 would not.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def matches(doc: Mapping[str, Any], where: Mapping[str, JSONScalar]) -> bool:
    """True when every filtered field exists in ``doc`` and equals its value (JSON equality)."""
    return all(_same(_field(doc, path), value) for path, value in where.items())


# --- the interface ------------------------------------------------------------------------------


class Store(ABC):
    """Versioned JSON documents by kind and id; every backend passes the same contract tests.

    Invariants: a write is atomic (document, history and indexes change together or not at
    all); ``version`` rises by one per write of an id; a write with ``expected_version`` lands only
    if the current version equals it (0 = the id must not exist); an expired document is gone,
    history included; ``query`` never returns an expired or deleted document.
    """

    #: where the data lives, for error messages ("SQLite store /data/twinloop.sqlite3")
    description: str = "store"

    def __init__(self) -> None:
        # Jitter for update() retries only; no simulation randomness passes through here.
        self._jitter = random.Random()

    # backend primitives: arguments are already validated --------------------------------------

    @abstractmethod
    def _read(self, kind: str, ident: str) -> StoredDocument | None:
        """The current, unexpired document or None."""

    @abstractmethod
    def _write(
        self, kind: str, ident: str, body: str, expected_version: int | None, ttl: TTL
    ) -> StoredDocument:
        """Atomically check the version, push the old version to history and write ``body``."""

    @abstractmethod
    def _delete(self, kind: str, ident: str, expected_version: int | None) -> bool:
        """Atomically remove a document and its history; False when it did not exist."""

    @abstractmethod
    def _scan(self, kind: str, order: Order) -> Iterator[StoredDocument]:
        """Every unexpired document of ``kind`` by ``(updated_at, id)``, lazily."""

    @abstractmethod
    def _history(self, kind: str, ident: str) -> builtins.list[StoredDocument] | None:
        """Superseded versions then the current one, oldest first; None when absent."""

    @abstractmethod
    def purge_expired(self) -> int:
        """Remove expired documents' leftovers now; returns how many were removed."""

    @abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable unless the backend answers."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store cannot be used afterwards."""

    # public API ------------------------------------------------------------------------------

    def find(self, kind: str, id: str) -> StoredDocument | None:
        """The current document, or None when it does not exist (or has expired)."""
        return self._read(check_kind(kind), check_id(id))

    def get(self, kind: str, id: str) -> StoredDocument:
        """The current document; NotFound when it does not exist (or has expired)."""
        found = self.find(kind, id)
        if found is None:
            raise NotFound(kind, id)
        return found

    def put(
        self,
        kind: str,
        id: str,
        doc: Mapping[str, Any],
        *,
        expected_version: int | None = None,
        ttl_seconds: float | None = None,
    ) -> StoredDocument:
        """Write ``doc`` as the next version; with ``expected_version`` only if it still matches.

        ``expected_version=0`` creates only; ``n`` replaces version ``n`` only; a mismatch raises
        VersionConflict and writes nothing. Each put sets the expiry afresh (None = never).
        """
        kind, ident = check_kind(kind), check_id(id)
        expected, ttl = check_version(expected_version), check_ttl(ttl_seconds)
        return self._write(kind, ident, encode_doc(doc), expected, ttl)

    def delete(
        self,
        kind: str,
        id: str,
        *,
        expected_version: int | None = None,
    ) -> bool:
        """Remove a document and its history; False when there was nothing to remove."""
        kind, ident = check_kind(kind), check_id(id)
        return self._delete(kind, ident, check_version(expected_version))

    def query(
        self,
        kind: str,
        *,
        where: Mapping[str, JSONScalar] | None = None,
        limit: int | None = None,
        order: Order = "newest",
    ) -> builtins.list[StoredDocument]:
        """Documents of ``kind`` whose fields equal ``where`` (dotted paths), by update time."""
        kind = check_kind(kind)
        filters = check_where(where)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise InvalidInput("limit", f"{limit!r} must be an int or None")
        if limit is not None and limit < 1:
            raise InvalidInput("limit", f"{limit} must be >= 1")
        if order not in ("newest", "oldest"):
            raise InvalidInput("order", f"{order!r} must be 'newest' or 'oldest'")
        found: builtins.list[StoredDocument] = []
        for stored in self._scan(kind, order):
            if matches(stored.doc, filters):
                found.append(stored)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def history(self, kind: str, id: str) -> builtins.list[StoredDocument]:
        """Every kept version, oldest first, the current one last; NotFound when absent."""
        versions = self._history(check_kind(kind), check_id(id))
        if versions is None:
            raise NotFound(kind, id)
        return versions

    def update(
        self,
        kind: str,
        id: str,
        fn: Callable[[dict[str, Any] | None], Mapping[str, Any]],
        *,
        retries: int = DEFAULT_RETRIES,
        ttl_seconds: TTL = KEEP_TTL,
    ) -> StoredDocument:
        """Read, apply ``fn`` (None when absent) and compare-and-set, retrying on conflicts.

        ``fn`` may run more than once, so it must not have side effects. By default the
        document keeps its expiry. VersionConflict after ``retries`` lost races.
        """
        kind, ident = check_kind(kind), check_id(id)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidInput("retries", f"{retries!r} must be an int >= 0")
        ttl = check_ttl(ttl_seconds)
        for attempt in range(retries + 1):
            current = self._read(kind, ident)
            body = encode_doc(fn(None if current is None else current.doc))
            try:
                expected = 0 if current is None else current.version
                return self._write(kind, ident, body, expected, ttl)
            except VersionConflict:
                if attempt == retries:
                    raise
                # Full jitter: writers that collided spread out instead of colliding again.
                time.sleep(self._jitter.uniform(0.0, min(0.05, 0.001 * 2**attempt)))
        raise AssertionError("unreachable")  # pragma: no cover

    # typed helpers -------------------------------------------------------------------------------

    def put_model(
        self,
        kind: str,
        id: str,
        model: BaseModel,
        *,
        expected_version: int | None = None,
        ttl_seconds: float | None = None,
    ) -> StoredDocument:
        """``put`` a pydantic model as its JSON form."""
        return self.put(
            kind,
            id,
            model.model_dump(mode="json"),
            expected_version=expected_version,
            ttl_seconds=ttl_seconds,
        )

    def get_model(self, kind: str, id: str, model_type: type[M]) -> M:
        """``get`` and validate as ``model_type``; CorruptDocument when it does not fit."""
        return self.get(kind, id).to_model(model_type)

    def find_model(self, kind: str, id: str, model_type: type[M]) -> M | None:
        """``find`` and validate as ``model_type``; None when absent."""
        found = self.find(kind, id)
        return None if found is None else found.to_model(model_type)

    def query_models(
        self,
        kind: str,
        model_type: type[M],
        *,
        where: Mapping[str, JSONScalar] | None = None,
        limit: int | None = None,
        order: Order = "newest",
    ) -> builtins.list[M]:
        """``query`` and validate every hit as ``model_type``."""
        hits = self.query(kind, where=where, limit=limit, order=order)
        return [hit.to_model(model_type) for hit in hits]

    def update_model(
        self,
        kind: str,
        id: str,
        model_type: type[M],
        fn: Callable[[M | None], M],
        *,
        retries: int = DEFAULT_RETRIES,
        ttl_seconds: TTL = KEEP_TTL,
    ) -> M:
        """``update`` through ``model_type``: ``fn`` maps the current model (or None) to next."""

        def step(doc: dict[str, Any] | None) -> Mapping[str, Any]:
            current = None
            if doc is not None:
                current = StoredDocument(
                    kind=kind, id=id, version=0, doc=doc, created_at=0.0, updated_at=0.0
                ).to_model(model_type)
            return fn(current).model_dump(mode="json")

        stored = self.update(kind, id, step, retries=retries, ttl_seconds=ttl_seconds)
        return stored.to_model(model_type)

    # context manager ---------------------------------------------------------------------------

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"


def conflict(kind: str, ident: str, expected: int, found: int) -> VersionConflict:
    """The VersionConflict every backend raises, with the same wording."""
    state = "does not exist" if found == 0 else f"is at version {found}"
    return VersionConflict(f"{kind} {ident!r}: expected version {expected}, but it {state}")


def __getattr__(name: str) -> Any:
    # ``from twinloop.store import SqliteStore`` works although store_sqlite imports this module:
    # resolved on first use, when both modules are fully loaded.
    if name == "SqliteStore":
        from twinloop.store_sqlite import SqliteStore

        return SqliteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
