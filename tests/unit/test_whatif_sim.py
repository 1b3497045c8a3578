"""Simulation what-if: changed twins against closed forms, common random numbers, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.errors import InvalidInput
from twinloop.replication.replicates import executor_evaluate, replicate_seeds, serial_evaluate
from twinloop.replication.whatif.simulated import (
    SimWhatIfResult,
    SimWhatIfSettings,
    SimWhatIfSpec,
    apply_changes,
    run_kpis,
    run_what_if_sim,
    what_if_sim,
)
from twinloop.sandbox.executor import SerialExecutor
from twinloop.sim.domains import environment
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.models import ModelProfile
from twinloop.sim.spec import SimulationSpec

SMALL = SimWhatIfSettings(days=20, replicates=8, seed=4)


def small_env() -> BusinessEnvironment:
    env = environment("sales", initial_customers=2000)
    return env.model_copy(
        update={"acquisition": env.acquisition.model_copy(update={"rate_per_day": 40.0})}
    )


@pytest.fixture(scope="module")
def conversion_up() -> SimWhatIfResult:
    return what_if_sim(small_env(), {"conversion": "+20%"}, settings=SMALL)


def test_conversion_plus_20_percent_moves_conversions_by_20_percent(
    conversion_up: SimWhatIfResult,
) -> None:
    """Base conversion feeds nothing back, so conversions rise by exactly 20 % in expectation."""
    effect = conversion_up.kpi("conversions")
    assert effect.relative_change == pytest.approx(0.20, abs=0.02)
    assert effect.relative_low <= 0.20 <= effect.relative_high
    assert effect.p_value < 0.001
    assert conversion_up.applied[0].parameter == "transaction.base_conversion"
    assert conversion_up.applied[0].after == pytest.approx(0.06 * 1.2)


def test_common_random_numbers_leave_untouched_kpis_identical(
    conversion_up: SimWhatIfResult,
) -> None:
    """Same seeds: arrivals, interactions and satisfaction do not move at all (zero interval)."""
    for kpi in ("new", "interactions", "satisfaction", "active"):
        effect = conversion_up.kpi(kpi)
        assert effect.difference == 0.0
        assert effect.difference_low == effect.difference_high == 0.0


def test_paired_interval_is_much_narrower_than_independent_runs() -> None:
    """The paired difference's spread is under half that of baseline vs independent seeds."""
    env = small_env()
    changed, model, _ = apply_changes(env, ModelProfile(), {"conversion": 0.2}, SMALL.days)
    seeds = replicate_seeds(SMALL.seed, SMALL.replicates)
    other = replicate_seeds(SMALL.seed + 1, SMALL.replicates)

    def conversions(e: BusinessEnvironment, s: list[int]) -> np.ndarray:
        specs = [SimulationSpec(environment=e, models=[model], days=SMALL.days, seed=x) for x in s]
        return run_kpis(serial_evaluate(specs))["conversions"]

    base = conversions(env, seeds)
    paired = conversions(changed, seeds) - base
    independent = conversions(changed, other) - base
    assert paired.std(ddof=1) < 0.5 * independent.std(ddof=1)


def test_price_rise_trades_conversions_for_order_value() -> None:
    """Price +10 % with elasticity 1: conversions × 1/1.1, revenue per conversion × 1.1."""
    result = what_if_sim(small_env(), {"price": 0.1}, settings=SMALL)
    conversions = result.kpi("conversions")
    assert conversions.relative_change == pytest.approx(1 / 1.1 - 1, abs=0.02)
    revenue = result.kpi("revenue")
    assert revenue.relative_low <= 0.0 <= revenue.relative_high


def test_better_faster_model_lifts_satisfaction_and_conversion_and_cuts_churn() -> None:
    """The seed's {"accuracy": 0.1, "latency": -0.2}: effects flow through satisfaction."""
    result = what_if_sim(small_env(), {"accuracy": 0.1, "latency": -0.2}, settings=SMALL)
    assert result.kpi("model_accuracy").relative_change == pytest.approx(0.1, abs=0.01)
    assert result.kpi("latency_p50_ms").relative_change == pytest.approx(-0.2, abs=0.01)
    assert result.kpi("satisfaction").difference_low > 0
    assert result.kpi("conversions").difference_low > 0
    assert result.kpi("churned").difference_high < 0


def test_spec_aliases_and_fractions_match_the_analytic_api(
    conversion_up: SimWhatIfResult,
) -> None:
    """`conversion_rate: 0.2` in a spec is the same request as `conversion: "+20%"`."""
    spec = SimWhatIfSpec(environment=small_env(), changes={"conversion_rate": 0.2}, settings=SMALL)
    via_alias = run_what_if_sim(spec)
    assert via_alias.changes == {"conversion": pytest.approx(0.2)}
    assert via_alias.kpis == conversion_up.kpis


def test_result_does_not_depend_on_the_order_runs_finish() -> None:
    """A shuffled executor gives the same numbers as the serial evaluator (seeded runs)."""
    shuffled = executor_evaluate(SerialExecutor(order_seed=5))
    a = what_if_sim(small_env(), {"churn": -0.3}, settings=SMALL)
    b = what_if_sim(small_env(), {"churn": -0.3}, settings=SMALL, evaluate=shuffled)
    assert a == b
    assert a.kpi("churned").relative_change < -0.1


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"happiness": 0.1}, "changes.happiness", "unknown change 'happiness'; known: accuracy"),
        ({"price": -1.0}, "changes.price", "-100%"),
        ({"conversion": "-150%"}, "changes.conversion", "zero or below"),
        ({"accuracy": 0.3}, "changes.accuracy", "above 1"),
        ({"interaction": 20.0}, "changes.interaction", "sane range"),
        ({"latency": "fast"}, "changes.latency", "not a relative change"),
        ({"conversion": 0.1, "conversion_rate": 0.2}, "changes.conversion_rate", "repeats"),
        ({}, "changes", "no changes"),
    ],
)
def test_bad_changes_are_refused_naming_the_field(changes, field: str, message: str) -> None:
    """Unknown names, −100 % or below, out-of-range results, junk values, duplicates, nothing."""
    with pytest.raises(InvalidInput, match=message) as err:
        what_if_sim(small_env(), changes, settings=SMALL)
    assert err.value.field == field
