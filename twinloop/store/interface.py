"""The state store: versioned JSON documents by kind and id, behind one interface.

``Store`` holds the contract every backend keeps (see docs/store.md): documents are JSON objects
addressed by ``(kind, id)``; every write bumps an integer ``version`` so writers can
compare-and-set (``put(..., expected_version=n)`` raises :class:`VersionConflict` when another
writer got there first, ``update`` retries a read-modify-write until it lands); a replaced
document keeps its earlier versions in an append-only history; a document may carry a TTL.
Backends implement a few private primitives; validation, filtering and the typed helpers live
here once, so both backends behave the same. ``SqliteStore`` (``twinloop.store.sqlite``) is the
embedded default; ``cluster.redis_store.RedisStore`` is the shared one.
"""

from __future__ import annotations

import builtins
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from twinloop.contract import FrozenModel
from twinloop.errors import CorruptDocument, InvalidInput, NotFound, VersionConflict
from twinloop.store.codec import (
    DEFAULT_RETRIES,
    KEEP_TTL,
    TTL,
    JSONScalar,
    Order,
    check_id,
    check_kind,
    check_ttl,
    check_version,
    check_where,
    encode_doc,
    matches,
)

M = TypeVar("M", bound=BaseModel)


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
