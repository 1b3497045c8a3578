"""The store's shared checks and the SQLite backend's own behaviour (no Redis server needed)."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import twinloop.store.codec as codec_module
import twinloop.store.sqlite as sqlite_module
from cluster.store_factory import open_store
from twinloop.errors import (
    CorruptDocument,
    InvalidInput,
    LimitExceeded,
    StoreError,
    StoreUnavailable,
)
from twinloop.store import (
    KEEP_TTL,
    SqliteStore,
    check_id,
    check_kind,
    check_ttl,
    check_where,
    decode_doc,
    encode_doc,
    matches,
)


class FakeClock:
    """A settable clock so TTL tests need no sleeping."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path, clock: FakeClock) -> SqliteStore:
    return SqliteStore(tmp_path / "store.sqlite3", clock=clock)


# --- shared checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["", "Analysis", "a:b", "a-b", "1abc", "x" * 65, 7])
def test_unsafe_kinds_are_rejected_naming_kind(kind: object) -> None:
    """Kinds outside [a-z][a-z0-9_]{0,63} raise InvalidInput on the field 'kind'."""
    with pytest.raises(InvalidInput, match=r"^kind: ") as caught:
        check_kind(kind)
    assert caught.value.field == "kind"


@pytest.mark.parametrize("ident", ["", "-x", "a b", "a/b", "a:b", "{a}", "é", "x" * 129, None])
def test_unsafe_ids_are_rejected_naming_id(ident: object) -> None:
    """Ids outside the safe charset or longer than 128 raise InvalidInput on 'id'."""
    with pytest.raises(InvalidInput, match=r"^id: "):
        check_id(ident)


def test_safe_names_pass_unchanged() -> None:
    """Typical kinds and ids (experiment ids, versions, uuids) are accepted as they are."""
    assert check_kind("failure_pattern") == "failure_pattern"
    assert check_id("exp-2024.11_a1") == "exp-2024.11_a1"
    assert check_id("x" * 128) == "x" * 128


def test_ttl_must_be_positive_and_finite() -> None:
    """0, negative, NaN, inf and non-numbers are rejected; None and KEEP_TTL pass through."""
    for bad in (0, -1.0, float("nan"), float("inf"), "10", True):
        with pytest.raises(InvalidInput, match=r"^ttl_seconds: "):
            check_ttl(bad)
    assert check_ttl(None) is None and check_ttl(KEEP_TTL) is KEEP_TTL and check_ttl(2) == 2.0


def test_where_fields_and_values_are_checked() -> None:
    """Filter fields are dotted identifiers; values JSON scalars, the field named in the error."""
    assert check_where({"a.b_c": 1, "x": None}) == {"a.b_c": 1, "x": None}
    with pytest.raises(InvalidInput, match=r"^where: field 'a\.\.b'"):
        check_where({"a..b": 1})
    with pytest.raises(InvalidInput, match=r"^where\.seg: \{'x': 1\} must be a JSON scalar"):
        check_where({"seg": {"x": 1}})


def test_matches_uses_json_equality_on_dotted_paths() -> None:
    """true is not 1, 1 equals 1.0, a missing field matches nothing (not even None)."""
    doc: dict[str, Any] = {"a": {"b": 1}, "flag": True, "none": None}
    assert matches(doc, {"a.b": 1.0, "flag": True, "none": None})
    assert not matches(doc, {"flag": 1})
    assert not matches(doc, {"a.b": True})
    assert not matches(doc, {"a.c": None})
    assert not matches(doc, {"flag.x": 1})
    assert matches(doc, {})


def test_encode_doc_rejects_non_json_and_oversize(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only JSON objects within MAX_DOC_BYTES are encoded; the error names 'doc'."""
    assert encode_doc({"é": [1, None]}) == '{"é":[1,null]}'
    with pytest.raises(InvalidInput, match=r"^doc: is not JSON-serialisable"):
        encode_doc({"t": {1, 2}})
    monkeypatch.setattr(codec_module, "MAX_DOC_BYTES", 10)
    with pytest.raises(LimitExceeded, match=r"^doc: 18 exceeds the limit of 10"):
        encode_doc({"text": "abcdefg"})


def test_decode_doc_names_kind_and_id_of_garbage() -> None:
    """Invalid UTF-8, invalid JSON and non-objects are CorruptDocument naming kind and id."""
    for raw in (b"\xff", "{", "3", None):
        with pytest.raises(CorruptDocument, match="analysis 'e1' in here"):
            decode_doc(raw, "analysis", "e1", "here")


# --- SQLite specifics ---------------------------------------------------------------------------


def test_sqlite_is_reexported_from_the_store_package() -> None:
    """``from twinloop.store import SqliteStore`` is the same class as the backend module's."""
    assert sqlite_module.SqliteStore is SqliteStore


def test_sqlite_uses_wal_mode(db: SqliteStore) -> None:
    """The file is in WAL mode, so readers never block the writer."""
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_ttl_expiry_follows_the_clock(db: SqliteStore, clock: FakeClock) -> None:
    """A document is visible until expires_at and gone at it; purge removes its rows."""
    stored = db.put("lease", "l1", {"holder": "a"}, ttl_seconds=30)
    db.put("lease", "l1", {"holder": "b"}, ttl_seconds=30)
    assert stored.expires_at == clock.now + 30
    clock.now += 29.9
    assert db.get("lease", "l1").doc == {"holder": "b"}
    clock.now += 0.1
    assert db.find("lease", "l1") is None and db.query("lease") == []
    assert db.purge_expired() == 1
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("SELECT count(*) FROM history").fetchone()[0] == 0


def test_max_history_zero_keeps_no_history(tmp_path: Path) -> None:
    """max_history=0 replaces documents without keeping earlier versions."""
    with SqliteStore(tmp_path / "s.sqlite3", max_history=0) as db:
        for n in range(3):
            db.put("counter", "c", {"n": n})
        assert [h.version for h in db.history("counter", "c")] == [3]


def test_a_writer_holding_the_lock_too_long_gives_store_unavailable(tmp_path: Path) -> None:
    """While another connection holds the write lock past busy_timeout_s, a put fails cleanly."""
    db = SqliteStore(tmp_path / "s.sqlite3", busy_timeout_s=0.05)
    blocker = sqlite3.connect(db.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match="stayed locked by another writer"):
            db.put("analysis", "a", {"n": 1})
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert db.find("analysis", "a") is None
    assert db.put("analysis", "a", {"n": 1}).version == 1


def test_a_file_that_is_not_a_database_is_unavailable_naming_it(tmp_path: Path) -> None:
    """Opening a non-SQLite file raises StoreUnavailable with the path."""
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailable, match=r"notes\.txt cannot be used"):
        SqliteStore(path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A file written by a newer schema version is not silently misread."""
    path = tmp_path / "s.sqlite3"
    SqliteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreUnavailable, match="has schema 99"):
        SqliteStore(path)


def test_a_closed_store_refuses_work(db: SqliteStore) -> None:
    """After close() every call raises StoreError naming the store."""
    db.close()
    with pytest.raises(StoreError, match=r"store\.sqlite3 is closed"):
        db.get("analysis", "a")


def _child_put(store: SqliteStore) -> None:
    store.put("analysis", "from-child", {"pid": "child"})


def test_a_forked_child_opens_its_own_connection(db: SqliteStore) -> None:
    """A store used before fork still works in the child, which writes through a new connection."""
    db.put("analysis", "from-parent", {"pid": "parent"})
    child = multiprocessing.get_context("fork").Process(target=_child_put, args=(db,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert {d.id for d in db.query("analysis")} == {"from-parent", "from-child"}


def test_open_store_without_redis_creates_the_sqlite_file(tmp_path: Path) -> None:
    """No Redis URL: an SQLite file in the (created) data directory."""
    with open_store(None, tmp_path / "data" / "nested") as opened:
        assert isinstance(opened, SqliteStore)
        assert opened.path == tmp_path / "data" / "nested" / "twinloop.sqlite3"
        assert opened.path.is_file()


def test_open_store_with_a_down_redis_fails_at_start_naming_the_url(tmp_path: Path) -> None:
    """A configured but unreachable Redis fails in open_store, password redacted."""
    with pytest.raises(StoreUnavailable, match=r"redis://user:\*\*\*@127\.0\.0\.1:1/0"):
        open_store("redis://user:secret@127.0.0.1:1/0", tmp_path)
