"""Ray Tune searches retraining recipes with ASHA on replicates, survives its driver, confirms."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tuning.search import EXPERIMENT, restore_search, search_retraining
from twinloop.improve.data import twin_data
from twinloop.improve.recipe import Recipe
from twinloop.improve.reference import LOGISTIC
from twinloop.improve.search import RetrainResult, RetrainSpec, run_search
from twinloop.improve.space import space_from_segments
from twinloop.improve.trainer import train_model
from twinloop.sim.domains import environment

pytestmark = [pytest.mark.ray, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def _spec(workers: int) -> RetrainSpec:
    env = environment("sales")
    data = twin_data(env, 3_000, seed=0)
    champion = train_model(
        LOGISTIC, Recipe(name="champion", segment_weights={"enterprise": 0.0}), data, 0
    )
    space = space_from_segments(["enterprise"], env).model_copy(
        update={"params": {"explode": [False, False, True]}}
    )
    return RetrainSpec(
        champion=champion,
        trainer="tests.ray.trainers:explosive",
        space=space,
        samples=5,
        customers=1_000,
        days=7,
        batch_size=2,
        max_batches=2,
        confirm_replicates=12,
        seed=4,
        max_concurrent_trials=workers,
        data={"kind": "twin", "rows": 3_000, "seed": 0},
    )


@pytest.fixture(scope="module")
def one_worker(ray_session: Any) -> RetrainResult:
    return search_retraining(_spec(1))


def test_search_reports_failures_saves_replicates_and_beats_the_flawed_champion(
    one_worker: RetrainResult,
) -> None:
    """An exploding recipe is reported by name; ASHA saves replicates; the fix is confirmed."""
    result = one_worker
    failed = [t for t in result.trials if t.error is not None]
    assert failed and all(t.recipe.params.get("explode") for t in failed)
    assert all("exploded as asked" in (t.error or "") for t in failed)
    assert f"recipe {failed[0].recipe.name!r}" in (failed[0].error or "")
    assert result.replicates_saved > 0 and any(t.stopped_early for t in result.trials)
    assert result.best is not None and result.confirmation is not None
    assert result.confirmation.confirmed and result.candidate is not None
    assert result.confirmation.seed not in (result.confirmation.recipe.name, result.spec.seed)


def test_same_best_recipe_with_one_and_two_workers(
    ray_session: Any, one_worker: RetrainResult
) -> None:
    """Two concurrent trials pick the same recipe and confirm it with the same numbers."""
    two = search_retraining(_spec(2))
    assert two.best is not None and one_worker.best is not None
    assert two.best.recipe == one_worker.best.recipe
    assert two.confirmation == one_worker.confirmation


def test_restore_after_the_driver_is_killed_gives_the_same_best(
    ray_session: Any, one_worker: RetrainResult, tmp_path: Path
) -> None:
    """Kill the driver process once a trial has checkpointed; Tuner.restore finishes the search."""
    address = ray_session.get_runtime_context().gcs_address
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_AUTH_MODE": "disabled"}
    driver = subprocess.Popen(
        [sys.executable, str(REPO / "tests/ray/retrain_driver.py"), address, str(tmp_path),
         _spec(1).model_dump_json()],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    folder = tmp_path / EXPERIMENT
    deadline = time.monotonic() + 120
    while not list(folder.glob("*/checkpoint_*")) and time.monotonic() < deadline:
        assert driver.poll() is None, driver.stderr.read().decode()[-2000:] if driver.stderr else ""
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)
    assert driver.wait(timeout=30) == -signal.SIGKILL  # killed mid-search, not finished
    assert list(folder.glob("*/checkpoint_*")), "no trial checkpointed before the deadline"
    restored = restore_search(folder)
    assert restored.best is not None and one_worker.best is not None
    assert restored.best.recipe == one_worker.best.recipe
    assert restored.confirmation == one_worker.confirmation


def test_core_search_without_ray_agrees_on_the_fix() -> None:
    """The in-process successive halving confirms a recipe that restores enterprise rows."""
    result = run_search(_spec(1))
    assert result.confirmation is not None and result.confirmation.confirmed
    assert result.best is not None
    assert result.best.recipe.segment_weights.get("enterprise", 1.0) >= 1.0


def test_a_warm_start_is_tunes_first_trial(ray_session: Any, tmp_path: Path) -> None:
    """A past winner's recipe is Tune's first point to evaluate: trial 00000 runs it (as
    ``w000``), once, and the space's draws fill the other samples."""
    past = Recipe(name="r002", segment_weights={"enterprise": 4.2}, l2=0.7, threshold=0.47)
    spec = _spec(1).model_copy(
        update={
            "warm_start": [past],
            "samples": 3,
            "max_batches": 1,
            "confirm_replicates": 4,
            "trainer": LOGISTIC,
            "space": space_from_segments(["enterprise"], environment("sales")),
        }
    )
    result = search_retraining(spec, storage_path=tmp_path)
    trial_params = {
        folder.name: json.loads((folder / "params.json").read_text())
        for folder in (tmp_path / EXPERIMENT).iterdir()
        if (folder / "params.json").exists()
    }
    first = [params for name, params in trial_params.items() if "_00000_" in name]
    assert first == [{"recipe": "w000"}], trial_params
    assert sorted(p["recipe"] for p in trial_params.values()) == ["r000", "r001", "w000"]
    assert result.trials[0].recipe == past.model_copy(update={"name": "w000"})
    assert [t.recipe.name for t in result.trials] == ["w000", "r000", "r001"]
