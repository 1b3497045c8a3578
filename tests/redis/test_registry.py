"""The model registry on both stores: families, immutable versions, aliases by compare-and-set."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression
from twinloop.store_sqlite import SqliteStore

from twinloop.errors import InvalidInput, LimitExceeded, NotFound, VersionConflict
from twinloop.registry.artifacts import ArtifactStore
from twinloop.registry.models import Evidence, Lineage, ModelFamily
from twinloop.registry.registry import VERSIONS, AliasConflict, Registry
from twinloop.sim.domains import environment
from twinloop.sim.groundtruth import sample_customers
from twinloop.sim.models import ModelProfile, OnnxModel, PredictorModel
from twinloop.sim.onnxmodel import sha256_hex
from twinloop.store import Store

REDIS_URL = os.environ.get("TWINLOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened: Store = SqliteStore(tmp_path / "twinloop.sqlite3")
    else:
        from cluster.redis_store import RedisStore

        opened = RedisStore(REDIS_URL, prefix=request.getfixturevalue("redis_prefix"))
    with opened:
        yield opened


@pytest.fixture
def registry(store: Store, tmp_path: Path) -> Registry:
    reg = Registry(store, ArtifactStore(store, tmp_path, max_bytes=1_000_000))
    reg.create_family(ModelFamily(name="lead-scoring", description="which leads to work first"))
    return reg


def onnx_bytes(n_columns: int = 7) -> bytes:
    env = environment("sales")
    x, y, _ = sample_customers(env, 500, np.random.default_rng(0))
    model = LogisticRegression().fit(x[:, :n_columns], y)
    options = {id(model): {"zipmap": False}}
    return to_onnx(model, x[:1, :n_columns].astype(np.float32), options=options).SerializeToString()


def test_versions_get_sequential_ids_and_are_named_by_them(registry: Registry) -> None:
    """v1, v2 …: the model's name becomes its version id; lineage is kept as given."""
    v1 = registry.register("lead-scoring", ModelProfile(name="mine", accuracy=0.7))
    v2 = registry.register(
        "lead-scoring", ModelProfile(accuracy=0.8), Lineage(parent="v1", recipe={"l2": 0.1})
    )
    assert (v1.id, v2.id, v2.model.name, v2.lineage.parent) == ("v1", "v2", "v2", "v1")
    assert [v.id for v in registry.versions("lead-scoring")] == ["v1", "v2"]
    assert registry.version("lead-scoring", "v2") == v2


def test_onnx_version_keeps_only_the_hash(registry: Registry) -> None:
    """An ONNX model registers with its bytes; the version holds the hash, runnable() the bytes."""
    content = onnx_bytes()
    sha = sha256_hex(content)
    version = registry.register("lead-scoring", OnnxModel(sha256=sha, content=content))
    stored = registry.store.get(VERSIONS, "lead-scoring.v1").doc
    assert stored["model"] == {**stored["model"], "type": "onnx", "sha256": sha}
    assert "content" not in stored["model"]
    runnable = registry.runnable(registry.version("lead-scoring", version.id))
    assert isinstance(runnable, OnnxModel) and runnable.content == content


def test_refused_registrations_write_nothing(registry: Registry) -> None:
    """Wrong input width, unknown artifact, bad predictor: InvalidInput and no version."""
    narrow = onnx_bytes(n_columns=3)
    with pytest.raises(InvalidInput, match="model: the ONNX model takes 3 features"):
        registry.register("lead-scoring", OnnxModel(sha256=sha256_hex(narrow), content=narrow))
    with pytest.raises(InvalidInput, match=r"model\.sha256: no artifact"):
        registry.register("lead-scoring", OnnxModel(sha256="a" * 64))
    with pytest.raises(InvalidInput, match=r"model\.import_path"):
        registry.register("lead-scoring", PredictorModel(import_path="no_such_module:X"))
    big = ArtifactStore(registry.store, registry.artifacts.data_dir, max_bytes=100)
    with pytest.raises(LimitExceeded):
        Registry(registry.store, big).register(
            "lead-scoring", OnnxModel(sha256=sha256_hex(onnx_bytes()), content=onnx_bytes())
        )
    assert registry.versions("lead-scoring") == []
    assert registry.store.query("artifact") == []


def test_unknown_family_and_version_are_not_found(registry: Registry) -> None:
    """NotFound names what is missing."""
    with pytest.raises(NotFound, match="model family 'nope'"):
        registry.register("nope", ModelProfile())
    with pytest.raises(NotFound, match="model version 'lead-scoring/v9'"):
        registry.version("lead-scoring", "v9")
    with pytest.raises(NotFound, match="model family 'Bad Name'"):
        registry.versions("Bad Name")
    with pytest.raises(VersionConflict, match="already exists"):
        registry.create_family(ModelFamily(name="lead-scoring"))


def test_alias_moves_with_history_and_rolls_back_in_one_call(registry: Registry) -> None:
    """champion: v1 then v2; history shows both moves; rollback puts v1 back."""
    for accuracy in (0.7, 0.8):
        registry.register("lead-scoring", ModelProfile(accuracy=accuracy))
    registry.move_alias("lead-scoring", "champion", "v1", expected=None, by="alice")
    registry.move_alias("lead-scoring", "champion", "v2", expected="v1", by="bob")
    back = registry.rollback_alias("lead-scoring", "champion", by="carol")
    assert (back.version, back.previous, back.revision) == ("v1", "v2", 3)
    history = registry.alias_history("lead-scoring", "champion")
    assert [(h.version, h.moved_by) for h in history] == [
        ("v1", "alice"),
        ("v2", "bob"),
        ("v1", "carol"),
    ]


def test_stale_expectation_is_a_conflict(registry: Registry) -> None:
    """Moving from a version the alias no longer points at is refused, naming where it is."""
    registry.register("lead-scoring", ModelProfile())
    registry.register("lead-scoring", ModelProfile())
    registry.move_alias("lead-scoring", "challenger", "v1")
    with pytest.raises(AliasConflict, match=r"points at v1 .* not v2 as expected"):
        registry.move_alias("lead-scoring", "challenger", "v2", expected="v2")
    assert registry.alias("lead-scoring", "challenger").version == "v1"


def test_two_concurrent_promotions_one_wins(registry: Registry) -> None:
    """Both read the same alias state; exactly one move lands, the other is a clear conflict."""
    for _ in range(3):
        registry.register("lead-scoring", ModelProfile())
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}
    original_alias = registry.alias

    def slow_alias(family: str, alias: str):  # type: ignore[no-untyped-def]
        state = original_alias(family, alias)
        barrier.wait(timeout=10)  # both have read before either writes
        return state

    registry.alias = slow_alias  # type: ignore[method-assign]

    def promote(version: str) -> None:
        try:
            outcomes[version] = registry.move_alias("lead-scoring", "challenger", version)
        except AliasConflict as exc:
            outcomes[version] = exc

    threads = [threading.Thread(target=promote, args=(v,)) for v in ("v2", "v3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    registry.alias = original_alias  # type: ignore[method-assign]
    errors = [o for o in outcomes.values() if isinstance(o, AliasConflict)]
    assert len(errors) == 1 and "was moved by someone else" in str(errors[0])
    winner = next(v for v, o in outcomes.items() if not isinstance(o, AliasConflict))
    assert registry.alias("lead-scoring", "challenger").version == winner
    assert len(registry.alias_history("lead-scoring", "challenger")) == 1


def test_evidence_is_appended_and_the_model_never_changes(registry: Registry) -> None:
    """add_evidence appends a link once; model and lineage stay as registered."""
    v1 = registry.register("lead-scoring", ModelProfile(accuracy=0.7))
    link = Evidence(kind="championship", id="champ-1", summary="kept champion")
    registry.add_evidence("lead-scoring", "v1", link)
    after = registry.add_evidence("lead-scoring", "v1", link)
    assert (
        after.evidence == [link] and after.model == v1.model and after.created_at == v1.created_at
    )


def test_unknown_alias_and_environment_are_refused(registry: Registry) -> None:
    """An alias outside champion/challenger/canary, or a family in an unknown environment."""
    with pytest.raises(InvalidInput, match="unknown alias 'prod'"):
        registry.alias("lead-scoring", "prod")
    with pytest.raises(NotFound, match="environment 'calibrated-x'"):
        registry.create_family(ModelFamily(name="other", environment="calibrated-x"))
