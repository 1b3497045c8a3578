"""The loop's KPIs from the Store: rate, time to improvement, simulation accuracy, detection."""

from __future__ import annotations

from itertools import count
from pathlib import Path

import loop_stages
import numpy as np
import pytest

from twinloop.analysis.analyzer import analyze_failure
from twinloop.loop import ImprovementSpec, run_improvement, start_improvement
from twinloop.loop.kpis import loop_kpis, simulation_accuracy
from twinloop.store import SqliteStore


def test_simulation_accuracy_against_numpy() -> None:
    """Correlation as numpy's corrcoef; bias and absolute error by hand."""
    pairs = [(0.01, 0.012), (0.03, 0.025), (0.05, 0.06), (0.02, 0.01)]
    got = simulation_accuracy(pairs)
    predicted, measured = np.array(pairs).T
    assert got.correlation == pytest.approx(np.corrcoef(predicted, measured)[0, 1])
    assert got.mean_error == pytest.approx(np.mean(measured - predicted))
    assert got.mean_absolute_error == pytest.approx(np.mean(np.abs(measured - predicted)))
    assert simulation_accuracy(pairs[:2]).correlation is None  # too few pairs for a correlation
    assert simulation_accuracy([]).pairs == 0


def test_kpis_of_two_promotions_and_one_abandoned_run(tmp_path: Path) -> None:
    """2 of 3 decided promoted; time from start to promotion on a fake clock; 2 effect pairs."""
    ticks = count()
    clock = lambda: float(next(ticks))  # noqa: E731 — one second per Store step
    with SqliteStore(tmp_path / "kpis.sqlite3") as store:
        assert loop_kpis(store).improvement_rate is None  # nothing yet: no made-up zero
        for experiment, family in (("k1", "lead"), ("k2", "lead"), ("k3", "gates-fail")):
            accuracy = {"winner": 0.9, "loser": 0.7}
            seed = {"experimentId": experiment, "winner": "v2", "loser": "v3",
                    "metrics": {"accuracy": accuracy}}  # fmt: skip
            analyze_failure(seed, store=store)
            spec = ImprovementSpec(experiment_id=experiment, family=family)
            ident = start_improvement(store, spec, clock=clock)[0].id
            run_improvement(store, ident, loop_stages.STAGES, clock=clock)
        kpis = loop_kpis(store)
    assert (kpis.improvements, kpis.decided, kpis.promoted) == (3, 3, 2)
    assert kpis.improvement_rate == pytest.approx(2 / 3)
    assert kpis.by_stage == {"abandoned": 1, "promoted": 2}
    assert kpis.time_to_improvement_seconds is not None and kpis.time_to_improvement_seconds > 0
    twin = kpis.simulation_accuracy
    assert (twin.pairs, twin.correlation) == (2, None)
    assert twin.mean_error == pytest.approx(0.03 - 0.04)
    assert kpis.analyses == 3 and kpis.pattern_detection_rate is not None
