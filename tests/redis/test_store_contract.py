"""The Store contract: one suite, run unchanged against SQLite and the real Redis."""

from __future__ import annotations

import os
import pickle
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from store_workers import increment_many, plus_one  # beside this file; spawned writers import it

from cluster.store_factory import open_store
from twinloop.errors import (
    CorruptDocument,
    InvalidInput,
    NotFound,
    StoreError,
    StoreUnavailable,
    VersionConflict,
)
from twinloop.store import SqliteStore, Store, StoredDocument

REDIS_URL = os.environ.get("TWINLOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
WRITERS, INCREMENTS = 8, 50


@dataclass
class Backend:
    """A store under test plus the backend-specific ways to reopen, corrupt and sabotage it."""

    name: str
    open: Callable[..., Store]  # another store on the same data (max_history=... allowed)
    corrupt: Callable[[str, str, bytes], None]  # overwrite a document's body with raw bytes
    sabotage: Callable[[str, str], Callable[[], None]]  # next write fails mid-way; returns undo
    unreachable: Callable[[], Store]  # a store whose backend is down
    location: str  # what an unreachable error must name


def _sqlite_backend(tmp_path: Path) -> Backend:
    path = tmp_path / "data" / "twinloop.sqlite3"
    path.parent.mkdir()

    def corrupt(kind: str, ident: str, raw: bytes) -> None:
        with sqlite3.connect(path) as conn:
            sql = "UPDATE documents SET doc = ? WHERE kind = ? AND id = ?"
            conn.execute(sql, (raw, kind, ident))

    def sabotage(kind: str, ident: str) -> Callable[[], None]:
        # The trigger aborts the UPDATE of the document, after the history row was inserted.
        with sqlite3.connect(path) as conn:
            conn.execute(
                "CREATE TRIGGER sabotage BEFORE UPDATE ON documents"
                f" WHEN NEW.kind = '{kind}' AND NEW.id = '{ident}'"
                " BEGIN SELECT RAISE(ABORT, 'sabotaged mid-transaction'); END"
            )

        def undo() -> None:
            with sqlite3.connect(path) as conn:
                conn.execute("DROP TRIGGER sabotage")

        return undo

    return Backend(
        name="sqlite",
        open=lambda **kw: open_store(None, path.parent) if not kw else SqliteStore(path, **kw),
        corrupt=corrupt,
        sabotage=sabotage,
        unreachable=lambda: SqliteStore(tmp_path / "no-such-dir" / "x.sqlite3"),
        location=str(tmp_path / "no-such-dir"),
    )


def _redis_backend(prefix: str) -> Backend:
    import redis

    from cluster.redis_store import RedisStore

    client = redis.Redis.from_url(REDIS_URL)

    def corrupt(kind: str, ident: str, raw: bytes) -> None:
        client.hset(f"{prefix}{{{kind}}}:doc:{ident}", "doc", raw)

    def sabotage(kind: str, ident: str) -> Callable[[], None]:
        # A wrong-typed index key: the script would fail at its last command (ZADD).
        index = f"{prefix}{{{kind}}}:index"
        client.rename(index, index + ":saved")
        client.set(index, b"not a sorted set")

        def undo() -> None:
            client.delete(index)
            client.rename(index + ":saved", index)

        return undo

    return Backend(
        name="redis",
        open=lambda **kw: RedisStore(REDIS_URL, prefix=prefix, **kw),
        corrupt=corrupt,
        sabotage=sabotage,
        unreachable=lambda: RedisStore("redis://127.0.0.1:1/0", prefix=prefix),
        location="127.0.0.1:1",
    )


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return _sqlite_backend(tmp_path)
    return _redis_backend(request.getfixturevalue("redis_prefix"))


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    with backend.open() as opened:
        yield opened


class Analysis(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    experiment: str
    lift: float
    segments: list[str]


def ids(hits: list[StoredDocument]) -> list[str]:
    return [hit.id for hit in hits]


# --- round trip, query --------------------------------------------------------------------------


def test_round_trip_keeps_the_document_and_starts_at_version_1(store: Store) -> None:
    """A put document comes back equal, at version 1, created when updated."""
    doc = {"experiment": "exp-1", "lift": -0.12, "nested": {"ok": True, "xs": [1, 2.5, None]}}
    written = store.put("analysis", "exp-1", doc)
    read = store.get("analysis", "exp-1")
    assert read.doc == doc and read.version == written.version == 1
    assert read.created_at == read.updated_at == written.updated_at


def test_a_missing_document_is_not_found_naming_kind_and_id(store: Store) -> None:
    """get raises NotFound with the kind and id; find returns None."""
    assert store.find("analysis", "nope") is None
    with pytest.raises(NotFound, match="analysis 'nope' not found"):
        store.get("analysis", "nope")


def test_typed_helpers_round_trip_a_pydantic_model(store: Store) -> None:
    """put_model / get_model / query_models keep the model intact."""
    model = Analysis(experiment="exp-7", lift=0.25, segments=["eu", "mobile"])
    store.put_model("analysis", "exp-7", model)
    assert store.get_model("analysis", "exp-7", Analysis) == model
    assert store.query_models("analysis", Analysis) == [model]
    assert store.find_model("analysis", "other", Analysis) is None


def test_query_filters_by_field_equality_and_orders_by_update_time(store: Store) -> None:
    """where matches dotted fields with JSON equality; order and limit follow updated_at."""
    store.put("run", "a", {"status": "done", "meta": {"domain": "sales"}, "flag": True})
    store.put("run", "b", {"status": "failed", "meta": {"domain": "sales"}, "flag": 1})
    store.put("run", "c", {"status": "done", "meta": {"domain": "marketing"}, "flag": True})
    store.put("other", "d", {"status": "done"})
    assert ids(store.query("run")) == ["c", "b", "a"]
    assert ids(store.query("run", order="oldest")) == ["a", "b", "c"]
    assert ids(store.query("run", where={"status": "done"})) == ["c", "a"]
    assert ids(store.query("run", where={"meta.domain": "sales"})) == ["b", "a"]
    assert ids(store.query("run", where={"flag": True})) == ["c", "a"]  # 1 is not true
    assert ids(store.query("run", where={"status": "done"}, limit=1)) == ["c"]
    assert store.query("run", where={"missing": None}) == []
    store.put("run", "a", {"status": "done", "meta": {"domain": "sales"}, "flag": True})
    assert ids(store.query("run", limit=2)) == ["a", "c"]


# --- compare-and-set, delete, history -----------------------------------------------------------


def test_a_stale_compare_and_set_raises_and_writes_nothing(store: Store) -> None:
    """Two writers read version 1; the second put with expected_version=1 loses cleanly."""
    store.put("loop", "m1", {"stage": "analyse"})
    store.put("loop", "m1", {"stage": "simulate"}, expected_version=1)
    with pytest.raises(VersionConflict, match=r"loop 'm1': expected version 1, .* version 2"):
        store.put("loop", "m1", {"stage": "deploy"}, expected_version=1)
    assert store.get("loop", "m1").doc == {"stage": "simulate"}
    assert [v.version for v in store.history("loop", "m1")] == [1, 2]


def test_expected_version_0_creates_only(store: Store) -> None:
    """expected_version=0 succeeds once; a second create is a conflict."""
    store.put("model", "champion", {"name": "v1"}, expected_version=0)
    with pytest.raises(VersionConflict, match="expected version 0"):
        store.put("model", "champion", {"name": "v2"}, expected_version=0)


def test_concurrent_compare_and_set_has_exactly_one_winner(store: Store) -> None:
    """Eight threads holding version 1 race to replace it: one wins, seven conflict."""
    store.put("loop", "race", {"winner": None})
    barrier = threading.Barrier(WRITERS)

    def contend(i: int) -> bool:
        barrier.wait()
        try:
            store.put("loop", "race", {"winner": i}, expected_version=1)
        except VersionConflict:
            return False
        return True

    with ThreadPoolExecutor(WRITERS) as pool:
        won = list(pool.map(contend, range(WRITERS)))
    final = store.get("loop", "race")
    assert sum(won) == 1 and final.version == 2 and won[final.doc["winner"]]


def test_delete_removes_document_history_and_listing(store: Store) -> None:
    """After delete the id is free again and starts over at version 1."""
    store.put("analysis", "x", {"n": 1})
    store.put("analysis", "x", {"n": 2})
    with pytest.raises(VersionConflict):
        store.delete("analysis", "x", expected_version=1)
    assert store.delete("analysis", "x", expected_version=2) is True
    assert store.delete("analysis", "x") is False
    assert store.query("analysis") == []
    with pytest.raises(NotFound):
        store.history("analysis", "x")
    assert store.put("analysis", "x", {"n": 3}).version == 1


def test_reanalysing_replaces_the_current_document_and_keeps_history(store: Store) -> None:
    """Three analyses of one experiment: get shows the last, history all three in order."""
    for lift in (-0.1, -0.2, -0.3):
        store.put("analysis", "exp-9", {"lift": lift})
    history = store.history("analysis", "exp-9")
    assert [(h.version, h.doc["lift"]) for h in history] == [(1, -0.1), (2, -0.2), (3, -0.3)]
    assert store.get("analysis", "exp-9").doc == {"lift": -0.3}
    assert len(store.query("analysis")) == 1
    assert history[0].updated_at <= history[1].updated_at <= history[2].updated_at


def test_history_is_bounded_by_max_history(backend: Backend) -> None:
    """With max_history=2 only the two latest superseded versions stay beside the current."""
    with backend.open(max_history=2) as store:
        for n in range(1, 6):
            store.put("counter", "c", {"n": n})
        assert [h.version for h in store.history("counter", "c")] == [3, 4, 5]


# --- update under concurrency -------------------------------------------------------------------


def test_update_retries_so_threads_lose_no_increment(store: Store) -> None:
    """8 threads × 50 increments through update() end at exactly 400, version 400."""
    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(lambda _: increment_many(store, INCREMENTS), range(WRITERS)))
    final = store.get("counter", "shared")
    assert final.doc == {"n": WRITERS * INCREMENTS} and final.version == WRITERS * INCREMENTS


@pytest.mark.slow
def test_update_lets_processes_share_the_store_without_lost_updates(store: Store) -> None:
    """8 processes × 50 increments, each re-opening the pickled store, end at exactly 400."""
    # forkserver: fresh processes that receive the store pickled, like Ray workers; the preload
    # pays the imports once instead of once per writer.
    context = get_context("forkserver")
    context.set_forkserver_preload(["store_workers", "cluster.redis_store"])
    with ProcessPoolExecutor(WRITERS, mp_context=context) as pool:
        for future in [pool.submit(increment_many, store, INCREMENTS) for _ in range(WRITERS)]:
            future.result()
    final = store.get("counter", "shared")
    assert final.doc == {"n": WRITERS * INCREMENTS} and final.version == WRITERS * INCREMENTS


def test_update_whose_function_fails_writes_nothing(store: Store) -> None:
    """An exception inside fn propagates and leaves the document as it was."""
    store.put("counter", "c", {"n": 1})

    def boom(doc: dict[str, Any] | None) -> dict[str, Any]:
        raise RuntimeError("fn failed")

    with pytest.raises(RuntimeError, match="fn failed"):
        store.update("counter", "c", boom)
    assert store.get("counter", "c").version == 1


def test_update_model_applies_a_typed_step(store: Store) -> None:
    """update_model hands fn the current model (None at first) and stores its result."""

    def grow(model: Analysis | None) -> Analysis:
        segs = [] if model is None else model.segments
        return Analysis(experiment="e", lift=0.0, segments=[*segs, f"s{len(segs)}"])

    store.update_model("analysis", "e", Analysis, grow)
    assert store.update_model("analysis", "e", Analysis, grow).segments == ["s0", "s1"]


# --- TTL ----------------------------------------------------------------------------------------


def test_a_document_with_ttl_expires_with_its_history(store: Store) -> None:
    """After its TTL a document is gone from get, query and history; the id starts over."""
    store.put("lease", "worker-1", {"holder": "a"}, ttl_seconds=0.3)
    leased = store.put("lease", "worker-1", {"holder": "b"}, ttl_seconds=0.3)
    assert leased.expires_at is not None and leased.expires_at > leased.updated_at
    store.put("lease", "forever", {"holder": "c"})
    time.sleep(0.8)
    assert store.find("lease", "worker-1") is None
    assert [h.id for h in store.query("lease")] == ["forever"]
    with pytest.raises(NotFound):
        store.history("lease", "worker-1")
    assert store.put("lease", "worker-1", {"holder": "d"}).version == 1
    store.purge_expired()
    assert {h.id for h in store.query("lease")} == {"forever", "worker-1"}


def test_update_keeps_the_expiry_and_put_without_ttl_clears_it(store: Store) -> None:
    """update() leaves expires_at alone by default; a plain put makes the document permanent."""
    first = store.put("lease", "l", {"n": 0}, ttl_seconds=60)
    updated = store.update("lease", "l", plus_one)
    assert updated.expires_at == pytest.approx(first.expires_at, abs=1e-3)
    assert store.put("lease", "l", {"n": 5}).expires_at is None
    assert store.get("lease", "l").expires_at is None


# --- failures: down backend, interrupted write, corruption, bad input ---------------------------


def test_an_unreachable_backend_raises_store_unavailable_naming_it(backend: Backend) -> None:
    """A store whose backend is down fails with StoreUnavailable naming where it looked."""
    with pytest.raises(StoreUnavailable, match=re.escape(backend.location)):
        backend.unreachable().put("analysis", "x", {"n": 1})


def test_an_unreachable_backend_leaves_nothing_written(backend: Backend, store: Store) -> None:
    """The failed write is not visible through the working store."""
    with pytest.raises(StoreUnavailable):
        backend.unreachable().put("analysis", "x", {"n": 1})
    assert store.query("analysis") == []


def test_a_write_interrupted_mid_way_leaves_nothing_half_written(
    backend: Backend, store: Store
) -> None:
    """A write failing after its first step leaves document, history and index as they were."""
    store.put("analysis", "exp-1", {"lift": -0.1})
    undo = backend.sabotage("analysis", "exp-1")
    with pytest.raises(StoreError):
        store.put("analysis", "exp-1", {"lift": -0.5})
    undo()
    assert store.get("analysis", "exp-1").doc == {"lift": -0.1}
    assert [h.version for h in store.history("analysis", "exp-1")] == [1]
    assert [h.doc for h in store.query("analysis")] == [{"lift": -0.1}]


@pytest.mark.parametrize("garbage", [b"\xff\xfe\x00garbage", b'{"cut": ', b"[1, 2]"])
def test_a_corrupt_document_raises_naming_kind_and_id(
    backend: Backend, store: Store, garbage: bytes
) -> None:
    """Garbage bytes in a stored body give CorruptDocument on get and query; put repairs it."""
    store.put("analysis", "exp-3", {"lift": 0.1})
    backend.corrupt("analysis", "exp-3", garbage)
    with pytest.raises(CorruptDocument, match="analysis 'exp-3'"):
        store.get("analysis", "exp-3")
    with pytest.raises(CorruptDocument, match="analysis 'exp-3'"):
        store.query("analysis")
    store.put("analysis", "exp-3", {"lift": 0.2})
    assert store.get("analysis", "exp-3").doc == {"lift": 0.2}


def test_a_document_of_the_wrong_shape_is_corrupt_for_its_model(store: Store) -> None:
    """Valid JSON that does not fit the model raises CorruptDocument naming kind, id and field."""
    store.put("analysis", "exp-4", {"experiment": "exp-4", "lift": "big"})
    with pytest.raises(CorruptDocument, match=r"analysis 'exp-4' .* Analysis: lift"):
        store.get_model("analysis", "exp-4", Analysis)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.put("Bad Kind", "x", {}), "kind"),
        (lambda s: s.put("analysis", "a/b", {}), "id"),
        (lambda s: s.put("analysis", "x" * 200, {}), "id"),
        (lambda s: s.put("analysis", "x", {"v": float("nan")}), "doc"),
        (lambda s: s.put("analysis", "x", {"v": object()}), "doc"),
        (lambda s: s.put("analysis", "x", [1, 2]), "doc"),
        (lambda s: s.put("analysis", "x", {}, ttl_seconds=0), "ttl_seconds"),
        (lambda s: s.put("analysis", "x", {}, expected_version=-1), "expected_version"),
        (lambda s: s.query("analysis", limit=0), "limit"),
        (lambda s: s.query("analysis", where={"a": [1]}), "where.a"),
    ],
)
def test_bad_arguments_name_the_field_and_store_nothing(
    store: Store, call: Callable[[Store], object], field: str
) -> None:
    """Invalid kind, id, document, TTL, version or filter: InvalidInput naming it, no write."""
    with pytest.raises(InvalidInput) as caught:
        call(store)
    assert caught.value.field == field
    assert store.query("analysis") == []


# --- restart and pickling -----------------------------------------------------------------------


def test_data_survives_closing_and_reopening_the_store(backend: Backend) -> None:
    """Close the store, open a new one on the same data (directly and by pickle): all there."""
    with backend.open() as first:
        first.put("analysis", "exp-1", {"lift": -0.1})
        first.put("analysis", "exp-1", {"lift": -0.2})
        revived = pickle.loads(pickle.dumps(first))
    with backend.open() as second, revived:
        for reopened in (second, revived):
            assert reopened.get("analysis", "exp-1").doc == {"lift": -0.2}
            assert len(reopened.history("analysis", "exp-1")) == 2
