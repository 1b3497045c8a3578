"""The sandbox's numbers a statistician would sign: coverage, CRN gain, A/A calibration, Thompson.

Each test runs many small replicates on the serial executor and checks a property against a
closed form or a textbook rate. Seeds are fixed, so each check is deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.sandbox import (
    AbTestSpec,
    HeadToHeadSpec,
    SandboxTestSpec,
    run_ab_test,
    run_head_to_head,
    run_test,
)
from twinloop.sim.domains import steady_environment
from twinloop.sim.environment import (
    Acquisition,
    BusinessEnvironment,
    Transaction,
)
from twinloop.sim.lifecycle import Simulation
from twinloop.sim.models import ModelProfile
from twinloop.sim.spec import SimulationSpec

pytestmark = pytest.mark.slow


def plain_env(**changes: object) -> BusinessEnvironment:
    """One segment, λ = 20/day, μ = 0.1/day, no model effect unless changed."""
    return steady_environment(20.0, 0.1, **changes)


def test_interval_covers_the_mm_infinity_mean_at_its_nominal_rate() -> None:
    """The 95% t-interval of mean active customers covers the exact M/M/∞ mean in 90–98% of runs.

    Arrivals are Poisson(λ) per day and each customer leaves with probability p per day, so
    E[N_t] = (E[N_{t-1}] + λ)(1 - p): stationary mean N* = λ(1-p)/p (the M/M/∞ mean in day
    steps), and from N_0 customers E[N_t] = N* + (N_0 - N*)(1-p)^{t+1} exactly.
    """
    lam, days = 20.0, 5
    # p as the engine uses it: the per-step churn probability, quantised to a uint32 threshold.
    one = Simulation(SimulationSpec(environment=plain_env(initial_customers=1), days=1))
    p_step = float(one.pop.churn_threshold[0]) / 2**32
    assert 0.09 < p_step < 0.1  # 1 - exp(-0.1), up to float32 rounding
    n_star = lam * (1 - p_step) / p_step
    n0 = round(n_star)
    truth = np.mean([n_star + (n0 - n_star) * (1 - p_step) ** (t + 1) for t in range(days)])
    env = plain_env(initial_customers=n0)
    covered = 0
    for repetition in range(200):
        spec = SandboxTestSpec(
            environment=env, days=days, replicates=4, seed=repetition, kpis=["active"]
        )
        active = next(k for k in run_test(spec).kpis if k.kpi == "active")
        covered += active.lower <= truth <= active.upper
    assert 0.90 <= covered / 200 <= 0.98


def test_common_random_numbers_narrow_the_interval_at_least_threefold() -> None:
    """Sales preset, accuracy 0.80 vs 0.85: the paired CRN interval is ≥ 3× narrower than with
    independent seeds on the population KPIs (active and churned customers)."""
    common = {
        "environment": "sales",
        "customers": 2000,
        "days": 20,
        "replicates": 12,
        "seed": 3,
        "baseline": ModelProfile(name="v1", accuracy=0.80),
        "challenger": ModelProfile(name="v2", accuracy=0.85),
    }
    crn = run_head_to_head(HeadToHeadSpec(**common))
    independent = run_head_to_head(HeadToHeadSpec(**common, common_random_numbers=False))
    width = {d.kpi: d.half_width for d in crn.differences}
    naive = {d.kpi: d.half_width for d in independent.differences}
    for kpi in ("active", "churned"):
        assert naive[kpi] >= 3 * width[kpi], (kpi, naive[kpi] / width[kpi])
    # Both designs estimate the same difference; the paired one also says how much it gained.
    active = next(d for d in crn.differences if d.kpi == "active")
    assert active.width_ratio is not None and active.width_ratio >= 3
    naive_active = next(d for d in independent.differences if d.kpi == "active")
    assert abs(active.difference - naive_active.difference) < naive["active"]


def test_common_random_numbers_narrow_revenue_threefold() -> None:
    """The same head-to-head on revenue: pairing narrows the interval at least 3×."""
    common = {
        "environment": "sales",
        "customers": 2000,
        "days": 20,
        "replicates": 12,
        "seed": 3,
        "baseline": ModelProfile(name="v1", accuracy=0.80),
        "challenger": ModelProfile(name="v2", accuracy=0.85),
    }
    crn = run_head_to_head(HeadToHeadSpec(**common, kpis=["revenue"]))
    independent = run_head_to_head(
        HeadToHeadSpec(**common, kpis=["revenue"], common_random_numbers=False)
    )
    width = next(d.half_width for d in crn.differences if d.kpi == "revenue")
    naive = next(d.half_width for d in independent.differences if d.kpi == "revenue")
    assert naive >= 3 * width


def aa_env(uplift: float = 0.2) -> BusinessEnvironment:
    """A busy little business: many interactions and conversions per replicate, no arrivals."""
    return plain_env(
        initial_customers=1500,
        acquisition=Acquisition(rate_per_day=0.0).model_dump(),
        interaction_probability_per_day=0.6,
        transaction=Transaction(
            base_conversion=0.2, decision_uplift=uplift, average_order_value=40.0
        ).model_dump(),
    )


def test_aa_test_in_the_twin_is_calibrated() -> None:
    """Two identical models: p-values are uniform (KS at 1%) and 5% ± 2 points reject."""
    spec = AbTestSpec(
        environment=aa_env(),
        days=2,
        replicates=800,
        seed=1,
        variants=[ModelProfile(name="a"), ModelProfile(name="a_again")],
        kpis=["converted", "conversion_rate", "revenue"],
    )
    result = run_ab_test(spec)
    assert [a.kpi for a in result.analyses] == ["converted", "conversion_rate", "revenue"]
    for analysis in result.analyses:
        assert analysis.truth == "none" and analysis.replicates == 800
        assert analysis.ks_uniform_p is not None and analysis.ks_uniform_p > 0.01, analysis.kpi
        assert analysis.false_positive_rate is not None
        assert abs(analysis.false_positive_rate - 0.05) <= 0.02, analysis.kpi
        assert analysis.p_right_winner == pytest.approx(1 - analysis.false_positive_rate)


def test_ab_test_finds_a_real_winner_with_high_power() -> None:
    """A much better treatment: truth 'treatment', power near 1, the right winner nearly always."""
    spec = AbTestSpec(
        environment=aa_env(uplift=0.5),
        days=3,
        replicates=20,
        seed=7,
        variants=[ModelProfile(name="old", accuracy=0.6), ModelProfile(name="new", accuracy=0.95)],
        kpis=["converted"],
    )
    (analysis,) = run_ab_test(spec).analyses
    assert analysis.truth == "treatment" and analysis.mean_effect > 0
    assert analysis.power is not None and analysis.power >= 0.9
    assert analysis.p_right_winner == analysis.power and analysis.p_wrong_winner == 0.0


def test_thompson_sampling_shifts_traffic_to_the_better_variant() -> None:
    """With Thompson allocation most new arrivals go to the variant that converts better."""
    common = {
        "environment": "sales",
        "customers": 500,
        "days": 14,
        "replicates": 3,
        "seed": 1,
        "variants": [
            ModelProfile(name="weak", accuracy=0.5),
            ModelProfile(name="strong", accuracy=0.95),
        ],
    }
    fixed = run_ab_test(AbTestSpec(**common)).allocation
    adaptive = run_ab_test(AbTestSpec(**common, allocation_policy="thompson")).allocation
    share = {a.variant: a.arrival_share for a in adaptive}
    assert share["strong"] > 0.7 > share["weak"]
    assert abs(next(a.arrival_share for a in fixed if a.variant == "strong") - 0.5) < 0.05
