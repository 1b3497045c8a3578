"""Choosing the store: Redis when a URL is configured, the embedded SQLite file otherwise."""

from __future__ import annotations

from pathlib import Path

from twinloop.errors import StoreUnavailable
from twinloop.store import SqliteStore, Store

SQLITE_FILE = "twinloop.sqlite3"


def open_store(
    redis_url: str | None,
    data_dir: Path,
    *,
    redis_prefix: str = "twinloop:",
    check: bool = True,
) -> Store:
    """Open the configured store; with ``check`` an unreachable backend fails here, at start.

    ``Settings.redis_url`` and ``Settings.data_dir`` are the usual arguments. The SQLite file is
    ``<data_dir>/twinloop.sqlite3``; the folder is created when missing.
    """
    if redis_url:
        # Imported here so SQLite-only callers never need the redis package loaded.
        from cluster.redis_store import RedisStore

        store: Store = RedisStore(redis_url, prefix=redis_prefix)
        if check:
            try:
                store.ping()
            except StoreUnavailable:
                store.close()
                raise
        return store
    data_dir = Path(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(f"cannot create the data directory {data_dir}: {exc}") from exc
    return SqliteStore(data_dir / SQLITE_FILE)
