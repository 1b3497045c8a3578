"""The simulator against closed forms, its contract, and its bad input."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from scipy import stats

from twinloop.errors import InvalidInput
from twinloop.sim.check import check_environment
from twinloop.sim.domains import DOMAINS, environment, preset, steady_environment
from twinloop.sim.environment import (
    Acquisition,
    BusinessEnvironment,
    Churn,
    SatisfactionDynamics,
    Segment,
    Transaction,
    parse_environment,
)
from twinloop.sim.lifecycle import Simulation, simulate
from twinloop.sim.models import ModelProfile, PredictorModel, load_predictor
from twinloop.sim.pacing import Pacer
from twinloop.sim.spec import SimulationSpec, parse_spec


def plain_env(**changes: object) -> BusinessEnvironment:
    """One segment, λ = 200/day, μ = 0.05/day, no model effect unless changed."""
    return steady_environment(**changes)


def test_active_population_reaches_mm_infinity_steady_state() -> None:
    """Constant λ and μ: mean active → λ·e^{-μ}/(1−e^{-μ}) per day step, ≈ λ/μ (M/M/∞)."""
    lam, mu = 200.0, 0.05
    result = simulate(SimulationSpec(environment=plain_env(), days=400, seed=3))
    active = result.kpis["active"].to_numpy()[150:]  # after ~7.5 mean lifetimes of burn-in
    exact = lam * math.exp(-mu) / (1.0 - math.exp(-mu))  # arrivals may churn on their first day
    assert abs(active.mean() - exact) / exact < 0.02
    assert abs(active.mean() - lam / mu) / (lam / mu) < 0.05  # the continuous-time limit
    # Poisson stationary law: variance equals the mean (autocorrelated samples, loose bound)
    assert 0.5 < active.var() / active.mean() < 2.0


def test_hourly_steps_approach_the_continuous_steady_state() -> None:
    """With hour steps the discretisation error shrinks: mean active within 2% of λ/μ."""
    env = plain_env(step="hour", initial_customers=4000)
    result = simulate(SimulationSpec(environment=env, days=80, seed=4))
    active = result.kpis["active"].to_numpy()[24 * 20 :]
    assert abs(active.mean() - 4000.0) / 4000.0 < 0.02


def test_conversions_given_interactions_are_binomial() -> None:
    """Conversions | interactions ~ Binomial(n, p): mean and variance match."""
    result = simulate(
        SimulationSpec(environment=plain_env(initial_customers=5000), days=200, seed=5)
    )
    n = result.kpis["interactions"].to_numpy().astype(float)
    k = result.kpis["conversions"].to_numpy().astype(float)
    p = 0.1
    assert abs(k.sum() / n.sum() - p) < 4 * math.sqrt(p * (1 - p) / n.sum())
    z = (k - n * p) / np.sqrt(n * p * (1 - p))
    assert abs(z.mean()) < 4 / math.sqrt(z.size)
    # variance of standardised counts is 1 (chi-square bounds for 200 steps)
    lo, hi = stats.chi2.ppf([0.001, 0.999], z.size - 1) / (z.size - 1)
    assert lo < z.var(ddof=1) < hi


def test_weekly_seasonality_shape_is_reproduced_in_arrivals() -> None:
    """Arrivals per weekday follow the weekly multipliers."""
    weekly = [1.6, 1.2, 1.0, 1.0, 0.8, 0.7, 0.7]
    env = plain_env(acquisition=Acquisition(rate_per_day=2000.0, weekly=weekly))
    new = simulate(SimulationSpec(environment=env, days=7 * 20, seed=6)).kpis["new"].to_numpy()
    by_day = new.reshape(-1, 7).mean(axis=0)
    expected = np.array(weekly) / np.mean(weekly) * 2000.0
    assert np.allclose(by_day, expected, rtol=0.02)


@pytest.mark.parametrize(
    "field,values",
    [("accuracy", [0.95, 0.8, 0.6, 0.4]), ("latency_p50_ms", [50.0, 200.0, 800.0, 2000.0])],
)
def test_worse_model_lowers_satisfaction_and_raises_churn(field: str, values: list[float]) -> None:
    """Worse accuracy or higher latency: satisfaction falls and churn rises, monotonically."""
    env = plain_env(
        initial_customers=20_000,
        churn=Churn(base_hazard_per_day=0.02, satisfaction_sensitivity=4.0),
        interaction_probability_per_day=0.5,
    )
    sats, churns = [], []
    for value in values:
        kw = {field: value}
        if field == "latency_p50_ms":
            kw["latency_p95_ms"] = value * 2
        spec = SimulationSpec(environment=env, models=[ModelProfile(**kw)], days=30, seed=8)
        v = simulate(spec).summary.variants[0]
        sats.append(v.mean_satisfaction)
        churns.append(v.churned)
    assert sats == sorted(sats, reverse=True)
    assert churns == sorted(churns)


def test_same_seed_gives_byte_identical_tables_and_other_seed_differs() -> None:
    """Determinism: same seed → identical Arrow bytes; another seed → another run."""
    env = environment("marketing", initial_customers=5000)
    a = simulate(SimulationSpec(environment=env, days=10, seed=11, record_units=True))
    b = simulate(SimulationSpec(environment=env, days=10, seed=11, record_units=True))
    c = simulate(SimulationSpec(environment=env, days=10, seed=12))
    assert a.kpis.equals(b.kpis) and a.units is not None and a.units.equals(b.units)
    assert not a.kpis.equals(c.kpis)


def test_environment_and_result_survive_pickle() -> None:
    """The spec, a live Simulation and a result round-trip through pickle."""
    spec = SimulationSpec(environment=environment("sales", initial_customers=2000), days=5, seed=2)
    result = simulate(spec)
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert pickle.loads(pickle.dumps(result)).kpis.equals(result.kpis)


def test_common_random_numbers_share_customers_across_models() -> None:
    """Two models with one seed see the same arrivals, segments and interaction candidates."""
    env = environment("sales", initial_customers=5000)
    runs = [
        simulate(
            SimulationSpec(
                environment=env,
                models=[ModelProfile(accuracy=a)],
                days=10,
                seed=21,
                record_units=True,
            )
        )
        for a in (0.9, 0.6)
    ]
    assert runs[0].kpis["new"].equals(runs[1].kpis["new"])
    ua, ub = runs[0].units, runs[1].units
    assert ua is not None and ub is not None
    assert ua["segment"].equals(ub["segment"]) and ua["arrival_day"].equals(ub["arrival_day"])
    assert runs[0].summary.variants[0].conversions > runs[1].summary.variants[0].conversions


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_domain_preset_passes_the_conformance_check(domain: str) -> None:
    """check_environment holds for each preset, which names its decision and KPIs."""
    check_environment(preset(domain).environment)
    assert preset(domain).decision and preset(domain).primary_kpis


def test_stream_yields_each_step_while_running() -> None:
    """The iterator yields one KPI list per step, in order."""
    sim = Simulation(SimulationSpec(environment=plain_env(initial_customers=100), days=5, seed=1))
    steps = [k[0].step for k in sim.stream()]
    assert steps == [0, 1, 2, 3, 4]


def test_paced_mode_waits_for_the_wall_clock() -> None:
    """At 86400× a day step is due one wall second after the previous one."""
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(86_400.0, clock=lambda: now[0], sleep=sleep)
    sim = Simulation(SimulationSpec(environment=plain_env(initial_customers=10), days=3, seed=1))
    list(sim.stream(pacer))
    assert slept == pytest.approx([1.0, 1.0])


def test_shocks_move_the_kpis_they_target() -> None:
    """A surge raises arrivals, an outage lowers accuracy, a price rise lowers conversion."""

    def run(shocks: list[dict[str, object]]) -> dict[str, float]:
        env = plain_env(
            initial_customers=5000,
            shocks=shocks,
            transaction=Transaction(base_conversion=0.1, average_order_value=50.0),
        )
        k = simulate(SimulationSpec(environment=env, days=20, seed=9)).kpis
        window = slice(10, 15)
        return {
            c: float(k[c].to_numpy()[window].mean())
            for c in ("new", "model_accuracy", "conversion_rate")
        }

    base = run([])
    surge = run([{"kind": "surge", "start_day": 10, "end_day": 15, "magnitude": 3.0}])
    outage = run([{"kind": "outage", "start_day": 10, "end_day": 15, "magnitude": 0.5}])
    price = run([{"kind": "price_change", "start_day": 10, "end_day": 15, "magnitude": 0.3}])
    assert surge["new"] > 2.5 * base["new"]
    assert outage["model_accuracy"] < 0.6 * base["model_accuracy"]
    assert price["conversion_rate"] < base["conversion_rate"] / 1.2


def test_segment_mix_shift_moves_arrivals_to_the_segment() -> None:
    """A 0.8 mix shift to 'b' makes most arrivals 'b'."""
    env = plain_env(
        segments=[Segment(name="a", share=0.7), Segment(name="b", share=0.3)],
        shocks=[
            {
                "kind": "segment_mix_shift",
                "start_day": 0,
                "end_day": 10,
                "magnitude": 0.8,
                "segment": "b",
            }
        ],
    )
    units = simulate(SimulationSpec(environment=env, days=10, seed=1, record_units=True)).units
    assert units is not None
    share_b = np.mean(np.array(units["segment"].to_pylist()) == "b")
    assert abs(share_b - (0.2 * 0.3 + 0.8)) < 0.03


@pytest.mark.parametrize(
    "patch,field",
    [
        ({"acquisition": {"rate_per_day": -1}}, "environment.acquisition.rate_per_day"),
        ({"segments": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.4}]}, "environment"),
        ({"churn": {"base_hazard_per_day": -0.1}}, "environment.churn.base_hazard_per_day"),
    ],
)
def test_bad_environment_is_rejected_naming_the_field(patch: dict[str, object], field: str) -> None:
    """Negative rates and shares that do not sum to 1 raise InvalidInput with the field."""
    data = {**environment("sales").model_dump(), **patch}
    with pytest.raises(InvalidInput) as info:
        parse_environment(data)
    assert info.value.field == field
    if "segments" in patch:
        assert "shares must sum to 1" in str(info.value)


def test_unknown_domain_is_rejected() -> None:
    """An unknown domain names the field and lists the known ones."""
    with pytest.raises(InvalidInput, match="domain: unknown domain 'retail'"):
        preset("retail")


@pytest.mark.parametrize(
    "path,message",
    [
        ("no_such_module_xyz:Model", "cannot import module"),
        ("os:no_such_attr", "has no attribute"),
        ("os:path", "has no predict"),
    ],
)
def test_bad_predictor_import_path_is_rejected(path: str, message: str) -> None:
    """A predictor that does not import or has no predict() names model.import_path."""
    with pytest.raises(InvalidInput, match=message) as info:
        load_predictor(PredictorModel(import_path=path))
    assert info.value.field == "model.import_path"


def test_allocation_must_sum_to_one_and_match_models() -> None:
    """Allocation weights are validated against the models."""
    env = environment("sales").model_dump()
    with pytest.raises(InvalidInput, match="allocation"):
        parse_spec(
            {"environment": env, "models": [{"name": "a"}, {"name": "b"}], "allocation": [0.5, 0.6]}
        )


def test_satisfaction_dynamics_bounds_are_validated() -> None:
    """Satisfaction reference must be in (0, 1]."""
    with pytest.raises(ValueError, match="reference"):
        SatisfactionDynamics(reference=0.0)


def test_customers_alive_in_both_runs_get_the_same_draws_whatever_the_model() -> None:
    """CRN survives diverging churn: survivors interact equally often with equal latencies."""
    env = environment("sales", initial_customers=5000)
    units = [
        simulate(
            SimulationSpec(
                environment=env,
                models=[ModelProfile(accuracy=a)],
                days=20,
                seed=3,
                record_units=True,
            )
        ).units
        for a in (0.9, 0.5)
    ]
    a, b = units
    assert a is not None and b is not None
    churned = np.array(a["churned"]) | np.array(b["churned"])
    assert churned.sum() > 100  # the two worlds did diverge
    both = ~churned
    assert np.array_equal(np.array(a["interactions"])[both], np.array(b["interactions"])[both])
    la = np.array(a["latency_ms"].fill_null(0.0))[both]
    lb = np.array(b["latency_ms"].fill_null(0.0))[both]
    assert np.array_equal(la, lb)
