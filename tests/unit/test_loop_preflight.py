"""Pre-flight: a challenger predicted in the twin, the prediction kept, then scored."""

from __future__ import annotations

from pathlib import Path

import pytest
from statsmodels.stats.power import NormalIndPower

from twinloop.analysis.analyzer import analyze_failure
from twinloop.errors import InvalidInput
from twinloop.loop.kpis import loop_kpis
from twinloop.loop.preflight import PREFLIGHTS, PreflightSpec, run_preflight, score_preflight
from twinloop.sandbox.specs import HeadToHeadSpec
from twinloop.sim.models import ModelProfile
from twinloop.store import SqliteStore, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return SqliteStore(tmp_path / "preflight.sqlite3")


def spec(challenger_accuracy: float, **extra: object) -> PreflightSpec:
    h2h = HeadToHeadSpec(
        baseline=ModelProfile(name="champ", accuracy=0.8),
        challenger=ModelProfile(name="chal", accuracy=challenger_accuracy),
        customers=300, days=10, replicates=6, seed=3,
    )  # fmt: skip
    return PreflightSpec.model_validate(
        {"experiment_id": "exp-next", "head_to_head": h2h, "kpi": "revenue", **extra}
    )


def test_a_better_challenger_is_predicted_to_win_with_the_power_of_the_planned_test(
    store: Store,
) -> None:
    """Accuracy 0.86 vs 0.80: positive revenue effect, small P(lose), statsmodels' power."""
    prediction = run_preflight(store, spec(0.86, units_per_arm=2_000, unit_cv=2.0))
    assert prediction.lower <= prediction.predicted_effect <= prediction.upper
    assert prediction.predicted_effect > 0 and prediction.p_lose < 0.05
    expected = NormalIndPower().power(
        effect_size=prediction.predicted_effect / 2.0, nobs1=2_000, alpha=0.05, ratio=1.0
    )
    assert prediction.power == pytest.approx(expected, rel=1e-9)
    assert run_preflight(store, spec(0.5)) == prediction  # kept: a repeat does not re-run


def test_the_prediction_is_scored_when_the_real_test_arrives(store: Store) -> None:
    """The real test says the challenger lost by 5%: lost, Brier (p_lose − 1)², not covered."""
    prediction = run_preflight(store, spec(0.86))
    real = {"experimentId": "exp-next", "winner": "champ", "loser": "chal",
            "metrics": {"revenue": {"winner": 100.0, "loser": 95.0}}}  # fmt: skip
    analyze_failure(real, store=store)
    scored = score_preflight(store, analyze_failure(real))
    assert scored is not None and scored.score is not None
    assert scored.score.lost and scored.score.measured_effect == pytest.approx(-0.05)
    assert scored.score.brier == pytest.approx((prediction.p_lose - 1.0) ** 2)
    assert scored.score.covered is False
    kpis = loop_kpis(store).preflight
    assert (kpis.predictions, kpis.scored, kpis.coverage) == (1, 1, 0.0)
    assert kpis.brier == pytest.approx(scored.score.brier)


def test_an_unknown_kpi_names_the_field_and_keeps_nothing(store: Store) -> None:
    """kpi 'nope': InvalidInput naming ``kpi`` with the choices; nothing stored."""
    with pytest.raises(InvalidInput, match="kpi: 'nope' is not a KPI"):
        run_preflight(store, spec(0.86, kpi="nope"))
    assert store.query(PREFLIGHTS) == []
