"""The embedded store: one SQLite file in WAL mode that threads and processes share safely.

Why SQLite: it is in the standard library, needs no server, survives a restart, and its file
locking lets several Ray workers on one machine write the same file. Every write is one
``BEGIN IMMEDIATE`` transaction (the write lock is taken before reading the version, so a
compare-and-set cannot interleave with another writer), waiting up to ``busy_timeout_s`` for the
lock. Each thread gets its own connection (sqlite3 connections must not be shared mid-transaction)
and a forked child opens fresh ones. A store pickles as its path, so a Ray task re-opens it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from twinloop.errors import CorruptDocument, InvalidInput, StoreError, StoreUnavailable
from twinloop.store.codec import (
    DEFAULT_MAX_HISTORY,
    DEFAULT_RETRIES,
    KEEP_TTL,
    TTL,
    Order,
    check_id,
    check_kind,
    check_ttl,
    conflict,
    decode_doc,
    encode_doc,
)
from twinloop.store.interface import Store, StoredDocument

SCHEMA_VERSION: Final = 1
_PAGE: Final = 256  # rows per query page: bounded memory, no transaction held between pages
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS documents (
    kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, expires_at REAL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS documents_by_time ON documents (kind, updated_at, id);
CREATE INDEX IF NOT EXISTS documents_by_expiry ON documents (expires_at)
    WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS history (
    kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (kind, id, version)
) WITHOUT ROWID;
"""
_COLUMNS: Final = "version, doc, created_at, updated_at, expires_at"
Row = tuple[Any, ...]


class SqliteStore(Store):
    """The Store contract on one SQLite file; safe across threads and processes on one host."""

    def __init__(
        self,
        path: str | Path,
        busy_timeout_s: float = 10.0,
        max_history: int | None = DEFAULT_MAX_HISTORY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        if not isinstance(busy_timeout_s, int | float) or not 0 < busy_timeout_s <= 3600:
            raise InvalidInput("busy_timeout_s", f"{busy_timeout_s!r} must be in (0, 3600]")
        if max_history is not None and (not isinstance(max_history, int) or max_history < 0):
            raise InvalidInput("max_history", f"{max_history!r} must be an int >= 0 or None")
        self.path = Path(path)
        self.busy_timeout_s = float(busy_timeout_s)
        self.max_history = max_history
        self.description = f"SQLite store {self.path}"
        self._clock = clock
        self._closed = False
        self._reset_connections()
        self.ping()  # create the schema now: a bad path fails here, not at the first write

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.busy_timeout_s, self.max_history, self._clock))

    # connections -------------------------------------------------------------------------------

    def _reset_connections(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        # SQLite admits one writer at a time. Threads of this process queue here instead of in
        # SQLite's busy handler, whose growing sleeps (up to 100 ms each) turned 16 concurrent
        # writers into second-long tails; other processes still meet the busy timeout.
        self._writer = threading.RLock()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._schema_ready = False

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"{self.description} is closed")
        if self._pid != os.getpid():
            # A forked child must not touch the parent's connections (SQLite forbids it).
            self._reset_connections()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _connect(self) -> sqlite3.Connection:
        try:
            # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode: durable across a process crash; a power cut may lose the last
            # commits but never corrupts the file.
            conn.execute("PRAGMA synchronous = NORMAL")
            if not self._schema_ready:
                self._create_schema(conn)
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        return conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = conn.execute("PRAGMA user_version").fetchone()[0]
            if found > SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"{self.description} has schema {found}; this twinloop reads {SCHEMA_VERSION}"
                )
            # Statement by statement: executescript() would COMMIT our transaction early.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        self._schema_ready = True

    def _translate(self, exc: sqlite3.Error) -> StoreError:
        if isinstance(exc, sqlite3.IntegrityError):
            return StoreError(f"{self.description} rejected a write: {exc}")
        if "locked" in str(exc) or "busy" in str(exc):
            return StoreUnavailable(
                f"{self.description} stayed locked by another writer for more than "
                f"{self.busy_timeout_s:g} s: {exc}"
            )
        return StoreUnavailable(f"{self.description} cannot be used: {exc}")

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction; rolled back on any error, so nothing is ever half-written."""
        conn = self._conn()
        if write and not self._writer.acquire(timeout=self.busy_timeout_s):
            raise StoreUnavailable(
                f"{self.description} cannot be used: no write turn in {self.busy_timeout_s:g} s"
            )
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        finally:
            if write:
                self._writer.release()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pid != os.getpid():
            return  # the parent's connections are the parent's to close
        with self._lock:
            for conn in self._connections:
                with suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()

    def ping(self) -> None:
        with self._transaction(write=False) as conn:
            conn.execute("SELECT 1").fetchone()

    # primitives --------------------------------------------------------------------------------

    def _document(self, kind: str, ident: str, row: Row) -> StoredDocument:
        version, raw, created_at, updated_at, expires_at = row
        doc = decode_doc(raw, kind, ident, self.description)
        try:
            return StoredDocument(
                kind=kind,
                id=ident,
                version=version,
                doc=doc,
                created_at=created_at,
                updated_at=updated_at,
                expires_at=expires_at,
            )
        except ValidationError as exc:  # someone wrote text into a numeric column
            raise CorruptDocument(
                f"{kind} {ident!r} in {self.description} has a bad version or timestamp: {row[0]!r}"
            ) from exc

    def _current_row(self, conn: sqlite3.Connection, kind: str, ident: str) -> Row | None:
        row: Row | None = conn.execute(
            f"SELECT {_COLUMNS} FROM documents WHERE kind = ? AND id = ?"
            " AND (expires_at IS NULL OR expires_at > ?)",
            (kind, ident, self._clock()),
        ).fetchone()
        return row

    def _read(self, kind: str, ident: str) -> StoredDocument | None:
        with self._transaction(write=False) as conn:
            row = self._current_row(conn, kind, ident)
        return None if row is None else self._document(kind, ident, row)

    def _write(
        self, kind: str, ident: str, body: str, expected_version: int | None, ttl: TTL
    ) -> StoredDocument:
        with self._transaction(write=True) as conn:
            return self._write_in(conn, kind, ident, body, expected_version, ttl)

    def _write_in(
        self,
        conn: sqlite3.Connection,
        kind: str,
        ident: str,
        body: str,
        expected_version: int | None,
        ttl: TTL,
    ) -> StoredDocument:
        now = self._clock()
        key = (kind, ident)
        row: Row | None = conn.execute(
            f"SELECT {_COLUMNS} FROM documents WHERE kind = ? AND id = ?", key
        ).fetchone()
        if row is not None and row[4] is not None and row[4] <= now:
            # Expired: the id starts a new life, its history goes with the old one.
            conn.execute("DELETE FROM history WHERE kind = ? AND id = ?", key)
            conn.execute("DELETE FROM documents WHERE kind = ? AND id = ?", key)
            row = None
        current = 0 if row is None else int(row[0])
        if expected_version is not None and expected_version != current:
            raise conflict(kind, ident, expected_version, current)
        if ttl is KEEP_TTL:
            expires_at = None if row is None else row[4]
        else:
            expires_at = None if ttl is None else now + ttl
        version = current + 1
        if row is None:
            created_at = now
            conn.execute(
                "INSERT INTO documents (kind, id, version, doc, created_at, updated_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kind, ident, version, body, now, now, expires_at),
            )
        else:
            created_at = row[2]
            if self.max_history != 0:
                conn.execute(
                    "INSERT INTO history (kind, id, version, doc, updated_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (kind, ident, current, row[1], row[3]),
                )
            if self.max_history is not None:
                conn.execute(
                    "DELETE FROM history WHERE kind = ? AND id = ? AND version <= ?",
                    (kind, ident, current - self.max_history),
                )
            conn.execute(
                "UPDATE documents SET version = ?, doc = ?, updated_at = ?, expires_at = ?"
                " WHERE kind = ? AND id = ?",
                (version, body, now, expires_at, kind, ident),
            )
        return StoredDocument(
            kind=kind,
            id=ident,
            version=version,
            doc=decode_doc(body, kind, ident, self.description),
            created_at=created_at,
            updated_at=now,
            expires_at=expires_at,
        )

    def _delete(self, kind: str, ident: str, expected_version: int | None) -> bool:
        with self._transaction(write=True) as conn:
            row = self._current_row(conn, kind, ident)
            current = 0 if row is None else int(row[0])
            if expected_version is not None and expected_version != current:
                raise conflict(kind, ident, expected_version, current)
            conn.execute("DELETE FROM history WHERE kind = ? AND id = ?", (kind, ident))
            deleted = conn.execute(
                "DELETE FROM documents WHERE kind = ? AND id = ?", (kind, ident)
            ).rowcount
        return row is not None and deleted > 0

    def _scan(self, kind: str, order: Order) -> Iterator[StoredDocument]:
        # Keyset pages on (updated_at, id): no read transaction stays open while the caller
        # consumes the iterator, and a page never repeats or skips rows that did not change.
        direction, compare = ("DESC", "<") if order == "newest" else ("ASC", ">")
        after: tuple[float, str] | None = None
        while True:
            sql = (
                f"SELECT id, {_COLUMNS} FROM documents WHERE kind = ?"
                " AND (expires_at IS NULL OR expires_at > ?)"
            )
            params: list[Any] = [kind, self._clock()]
            if after is not None:
                sql += f" AND (updated_at, id) {compare} (?, ?)"
                params.extend(after)
            sql += f" ORDER BY updated_at {direction}, id {direction} LIMIT {_PAGE}"
            with self._transaction(write=False) as conn:
                rows = conn.execute(sql, params).fetchall()
            for row in rows:
                yield self._document(kind, row[0], row[1:])
            if len(rows) < _PAGE:
                return
            after = (rows[-1][4], rows[-1][0])

    def _history(self, kind: str, ident: str) -> list[StoredDocument] | None:
        with self._transaction(write=False) as conn:
            row = self._current_row(conn, kind, ident)
            if row is None:
                return None
            old = conn.execute(
                "SELECT version, doc, updated_at FROM history WHERE kind = ? AND id = ?"
                " ORDER BY version",
                (kind, ident),
            ).fetchall()
        created_at = row[2]
        versions = [self._document(kind, ident, (v, raw, created_at, u, None)) for v, raw, u in old]
        versions.append(self._document(kind, ident, row))
        return versions

    def purge_expired(self) -> int:
        with self._transaction(write=True) as conn:
            now = self._clock()
            conn.execute(
                "DELETE FROM history WHERE (kind, id) IN (SELECT kind, id FROM documents"
                " WHERE expires_at IS NOT NULL AND expires_at <= ?)",
                (now,),
            )
            removed: int = conn.execute(
                "DELETE FROM documents WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,)
            ).rowcount
        return removed

    def update(
        self,
        kind: str,
        id: str,
        fn: Callable[[dict[str, Any] | None], Mapping[str, Any]],
        *,
        retries: int = DEFAULT_RETRIES,
        ttl_seconds: TTL = KEEP_TTL,
    ) -> StoredDocument:
        """Read-modify-write inside one write transaction: no other writer can interleave.

        ``fn`` runs while the file's write lock is held, so it must be quick; ``retries`` is
        accepted for interface compatibility and never needed here.
        """
        kind, ident = check_kind(kind), check_id(id)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidInput("retries", f"{retries!r} must be an int >= 0")
        ttl = check_ttl(ttl_seconds)
        with self._transaction(write=True) as conn:
            row = self._current_row(conn, kind, ident)
            current = None if row is None else self._document(kind, ident, row)
            body = encode_doc(fn(None if current is None else current.doc))
            expected = 0 if current is None else current.version
            return self._write_in(conn, kind, ident, body, expected, ttl)
