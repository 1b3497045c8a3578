"""The store's codec: the argument checks and the JSON encoding every backend shares.

Kinds, ids, versions, TTLs and filters are checked here, and documents are encoded and decoded
here, once, so the SQLite and Redis backends accept, reject and word errors the same way.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any, Final, Literal, TypeAlias

from twinloop.contract import ID_PATTERN
from twinloop.errors import CorruptDocument, InvalidInput, LimitExceeded, VersionConflict

# Kinds become SQL values and Redis key segments: a small charset keeps both trivially safe
# (no ':', '{', '*' that would clash with key layout, hash tags or SCAN patterns).
KIND_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
FIELD_PATTERN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
MAX_DOC_BYTES: Final = 16 * 1024 * 1024  # one document; bigger payloads belong in Parquet files
DEFAULT_MAX_HISTORY: Final = 100  # superseded versions kept per id; bounds a hot counter's growth
DEFAULT_RETRIES: Final = 50  # update() attempts after the first before giving up

JSONScalar: TypeAlias = str | int | float | bool | None
Order: TypeAlias = Literal["newest", "oldest"]


class KeepTTL(Enum):
    """Sentinel type: a write that keeps the document's current expiry."""

    KEEP = "keep"


KEEP_TTL: Final = KeepTTL.KEEP
TTL: TypeAlias = float | Literal[KeepTTL.KEEP] | None


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


def conflict(kind: str, ident: str, expected: int, found: int) -> VersionConflict:
    """The VersionConflict every backend raises, with the same wording."""
    state = "does not exist" if found == 0 else f"is at version {found}"
    return VersionConflict(f"{kind} {ident!r}: expected version {expected}, but it {state}")
