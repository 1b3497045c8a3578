"""The state store: versioned JSON documents by kind and id, one contract and its backends.

``interface`` holds the contract (:class:`Store`, :class:`StoredDocument`), ``codec`` the
argument checks and JSON encoding every backend shares (the Redis store in
``cluster.redis_store`` uses it too), ``sqlite`` the embedded backend. Callers import from here:
``from twinloop.store import Store, SqliteStore``.
"""

from __future__ import annotations

from twinloop.contract import ID_PATTERN
from twinloop.store.codec import (
    DEFAULT_MAX_HISTORY,
    DEFAULT_RETRIES,
    FIELD_PATTERN,
    KEEP_TTL,
    KIND_PATTERN,
    MAX_DOC_BYTES,
    TTL,
    JSONScalar,
    KeepTTL,
    Order,
    check_id,
    check_kind,
    check_ttl,
    check_version,
    check_where,
    conflict,
    decode_doc,
    encode_doc,
    matches,
)
from twinloop.store.interface import Store, StoredDocument
from twinloop.store.sqlite import SqliteStore

__all__ = [
    "DEFAULT_MAX_HISTORY",
    "DEFAULT_RETRIES",
    "FIELD_PATTERN",
    "ID_PATTERN",
    "KEEP_TTL",
    "KIND_PATTERN",
    "MAX_DOC_BYTES",
    "TTL",
    "JSONScalar",
    "KeepTTL",
    "Order",
    "SqliteStore",
    "Store",
    "StoredDocument",
    "check_id",
    "check_kind",
    "check_ttl",
    "check_version",
    "check_where",
    "conflict",
    "decode_doc",
    "encode_doc",
    "matches",
]
