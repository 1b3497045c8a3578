"""The hidden-production benchmark's scenario mix and its false-promotion interval."""

from __future__ import annotations

import pytest

from bench.loop_replay import Budget, business_twin, clopper_pearson
from bench.loop_scenarios import NULLS, make_scenario, mix, scenarios
from twinloop.sim.domains import environment


def test_more_nulls_extend_the_mix_without_moving_any_scenario() -> None:
    """Scenario i is the same world whatever --nulls is: 12 nulls is the old 30-scenario mix."""
    small, large = mix(12), mix(NULLS)
    assert large[: len(small)] == small
    assert small.count("null") == 12 and len(small) == 30
    assert large.count("null") == NULLS and len(large) == 18 + NULLS
    assert [f for _, f in scenarios(2026)] == large


def test_a_subset_keeps_every_kind_of_scenario() -> None:
    picked = scenarios(2026, 8)
    assert sorted(f for _, f in picked) == sorted(["segment", "threshold", "mixed", "null"] * 2)
    assert picked == scenarios(2026, 8)  # seeded


def test_negative_nulls_is_an_error_naming_the_field() -> None:
    with pytest.raises(ValueError, match="nulls"):
        mix(-1)


def test_clopper_pearson_matches_the_closed_form_for_zero_events() -> None:
    """0/n: the exact two-sided 95% upper bound is 1 - 0.025**(1/n) (0/12 → 26%)."""
    for n in (12, 60):
        low, high = clopper_pearson(0, n)
        assert low == 0.0
        assert high == pytest.approx(1 - 0.025 ** (1 / n), rel=1e-9)
    assert clopper_pearson(0, 12)[1] == pytest.approx(0.2646, abs=1e-4)
    assert clopper_pearson(0, 0) == [0.0, 1.0]


def test_the_calibrated_twin_recovers_the_hidden_production_business() -> None:
    """The truth is constructed: production's conversion and order value were moved off the
    preset; calibrating to its KPI history brings the twin closer to them than the preset."""
    scenario = make_scenario(0, "segment", 2026)
    truth = scenario.production.transaction
    preset, none = business_twin(scenario, Budget(calibrate=False))
    assert preset == environment("sales") and none == {}
    twin, info = business_twin(scenario, Budget())
    assert info["calibration_fit"] == "good"
    for field in ("base_conversion", "average_order_value"):
        fitted = getattr(twin.transaction, field)
        true = getattr(truth, field)
        assert abs(fitted / true - 1) < 0.05, field
        assert abs(fitted - true) < abs(getattr(preset.transaction, field) - true), field
