"""The championship on the Ray actor pool: ONNX bytes reach the actors; 1 or 2 workers agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from actors.sandbox_pool import RayExecutor
from twinloop.championship.hold import hold_championship
from twinloop.championship.spec import ChampionshipSpec
from twinloop.registry.artifacts import ArtifactStore
from twinloop.registry.models import ModelFamily
from twinloop.registry.registry import Registry
from twinloop.sim.domains import environment
from twinloop.sim.groundtruth import sample_customers
from twinloop.sim.models import ModelProfile, OnnxModel
from twinloop.sim.onnxmodel import sha256_hex
from twinloop.store import SqliteStore

pytestmark = pytest.mark.ray


def registry_with_onnx(root: Path) -> Registry:
    """A family whose champion is a profile and whose candidates include a scikit-learn export."""
    root.mkdir()
    store = SqliteStore(root / "twinloop.sqlite3")
    reg = Registry(store, ArtifactStore(store, root, max_bytes=1_000_000))
    reg.create_family(ModelFamily(name="lead-scoring"))
    reg.register("lead-scoring", ModelProfile(accuracy=0.7))
    reg.move_alias("lead-scoring", "champion", "v1")
    x, y, _ = sample_customers(environment("sales"), 3000, np.random.default_rng(1))
    fitted = LogisticRegression(max_iter=500).fit(x, y)
    options = {id(fitted): {"zipmap": False}}
    content = to_onnx(fitted, x[:1].astype(np.float32), options=options).SerializeToString()
    reg.register("lead-scoring", OnnxModel(sha256=sha256_hex(content), content=content))
    reg.register("lead-scoring", ModelProfile(accuracy=0.8))
    return reg


def test_same_seed_same_decision_with_one_or_two_workers(ray_session: Any, tmp_path: Path) -> None:
    """Serial, 1 Ray worker, 2 Ray workers (shuffled submission): one fingerprint, one verdict."""
    spec = ChampionshipSpec(
        family="lead-scoring", versions=["v2", "v3"], replicates=4, customers=300, days=5, seed=8
    )
    decisions = []
    for name, make in (
        ("serial", lambda: None),
        ("one", lambda: RayExecutor(1)),
        ("two", lambda: RayExecutor(2, submit_order_seed=3)),
    ):
        executor = make()
        try:
            reg = registry_with_onnx(tmp_path / name)
            decisions.append(hold_championship(reg, spec.model_copy(), executor=executor))
        finally:
            if executor is not None:
                executor.shutdown()
    serial, one, two = decisions
    assert one.result.execution is not None and one.result.execution.workers == 1
    assert two.result.execution is not None and two.result.execution.workers == 2
    assert serial.fingerprint == one.fingerprint == two.fingerprint
    assert serial.verdict == two.verdict and serial.winner == two.winner
    onnx = next(r for r in two.result.ratings if r.name == "v2")
    assert onnx.games == 2 * 4  # the ONNX entrant played every replicate on the actors
