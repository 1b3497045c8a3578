"""Asymmetric decision values in the twin, and the business agent's threshold under an accuracy
tolerance, checked against closed forms computed from the ground truth.

Criterion declared up front for "accuracy unchanged": the twin's paired accuracy difference
(policy − current) has its estimate within ± the tolerance (0.5 pp) and its 95% interval covers 0.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.business_policy import (
    CALIBRATED,
    LOGIT_SD,
    VALUED,
    closed_form,
    constrained_optimum,
    context,
    policy_action,
)
from bench.business_policy import valued_environment as valued_env
from twinloop.agents.business import (
    ACCURACY_TOLERANCE,
    GRID,
    BusinessAgent,
    best_thresholds,
    policy_model,
)
from twinloop.agents.protocol import AgentContext
from twinloop.errors import InvalidInput
from twinloop.replication.calibration.fit import conversion_factor, segment_mix
from twinloop.replication.calibration.series import DailyKpis
from twinloop.sim.domains import steady_environment
from twinloop.sim.effects import decision_kinds, effect_table, scored_multiplier
from twinloop.sim.environment import BusinessEnvironment, DecisionEffects, parse_environment
from twinloop.sim.lifecycle import simulate
from twinloop.sim.models import ModelProfile
from twinloop.sim.spec import SimulationSpec


def _context(env: BusinessEnvironment, **params: object) -> AgentContext:
    return context(env).model_copy(update={"params": params})


@pytest.mark.parametrize("target", ["conversion", "retention"])
def test_symmetric_effects_spelled_out_reproduce_the_default_to_the_byte(target: str) -> None:
    """decision_effects = (1+u, 1−u, 1−u, 1+u) gives the very tables of decision_effects = None."""
    u = 0.3
    symmetric = DecisionEffects(
        true_positive=1.0 + u, false_positive=1.0 - u, false_negative=1.0 - u, true_negative=1.0 + u
    )
    outage = [{"kind": "outage", "start_day": 2.0, "end_day": 4.0, "magnitude": 0.3}]
    models = [CALIBRATED.model_copy(update={"threshold": 0.4}), ModelProfile(accuracy=0.7)]
    tables = []
    for effects in (None, symmetric):
        env = valued_env(effects, decision_target=target, shocks=outage, initial_customers=800)
        spec = SimulationSpec(environment=env, models=models, allocation=[0.5, 0.5], days=8, seed=5)
        tables.append(simulate(spec).kpis)
    assert tables[0].equals(tables[1])
    assert float(np.sum(tables[0]["conversions"].to_numpy())) > 0


def test_each_confusion_cell_multiplies_conversion_by_its_value() -> None:
    """Always act, never act, and a profile: conversion = c₀ × E[m] of each (closed form)."""
    env = steady_environment(
        initial_customers=4_000,
        truth_weights=[LOGIT_SD, 0.0],
        segments=[{"name": "all", "share": 1.0, "feature_mean": [0.0, 0.0]}],
        transaction={"base_conversion": 0.2, "satisfaction_elasticity": 0.0,
                     "average_order_value": 50.0, "decision_effects": VALUED.model_dump()},
    )  # fmt: skip
    always, never = (CALIBRATED.model_copy(update={"name": n, "threshold": t}) for n, t in
                     (("always", 0.0), ("never", 1.0)))  # fmt: skip
    profile = ModelProfile(name="profile", accuracy=0.8)
    spec = SimulationSpec(
        environment=env, models=[always, never, profile], allocation=[1 / 3] * 3, days=30, seed=9
    )
    kpis = simulate(spec).kpis
    e, c0 = VALUED, 0.2
    expected = {  # P(intent) averages 0.5 (the logit is symmetric about 0)
        "always": c0 * (0.5 * e.true_positive + 0.5 * e.false_positive),
        "never": c0 * (0.5 * e.false_negative + 0.5 * e.true_negative),
        "profile": c0 * (0.8 * (e.true_positive + e.true_negative) / 2
                         + 0.2 * (e.false_positive + e.false_negative) / 2),
    }  # fmt: skip
    variant = np.array(kpis["variant"].to_pylist())
    for name, rate in expected.items():
        mine = variant == name
        n = float(kpis["interactions"].to_numpy()[mine].sum())
        k = float(kpis["conversions"].to_numpy()[mine].sum())
        assert n > 5_000
        assert abs(k / n - rate) < 5.0 * np.sqrt(rate * (1 - rate) / n), name


def test_decision_kinds_and_the_canary_rule_agree_on_the_cells() -> None:
    """Acted = right about intent or wrong without it; a profile's right: the mean right cell."""
    tr = valued_env(VALUED).transaction
    correct = np.array([True, False, False, True, True, False])
    intent = np.array([True, False, True, False, False, False])
    scored = np.array([True, True, True, True, False, False])
    kind = decision_kinds(tr, correct, intent, scored)
    assert kind is not None
    assert effect_table(tr)[kind].tolist() == [1.8, 0.9, 0.6, 1.0, 1.4, 0.75]
    acted = correct == intent
    assert scored_multiplier(tr, acted[:4], intent[:4]).tolist() == [1.8, 0.9, 0.6, 1.0]
    assert decision_kinds(valued_env(None).transaction, correct, intent, scored) is None


def test_unconstrained_the_agent_lands_on_the_closed_form_threshold() -> None:
    """θ* = (m_TN − m_FP)/((m_TP − m_FN) + (m_TN − m_FP)); with no accuracy constraint the agent's
    threshold on calibrated scores is within one grid step of it (0.5 when symmetric)."""
    sym = DecisionEffects(
        true_positive=1.3, false_positive=0.7, false_negative=0.7, true_negative=1.3
    )
    assert sym.optimal_threshold == pytest.approx(0.5)
    assert VALUED.optimal_threshold == pytest.approx(0.1 / 1.3)
    chosen = best_thresholds(valued_env(VALUED), CALIBRATED, seed=0, tolerance=1.0)["all"]
    assert abs(chosen - VALUED.optimal_threshold) <= 0.05 + 1e-9
    _, revenue = closed_form(VALUED)
    assert chosen == max(GRID, key=revenue)


def test_the_agent_raises_revenue_in_the_twin_with_accuracy_unchanged() -> None:
    """Asymmetric values: the agent's threshold is within one grid step of the closed-form revenue
    optimum under the 0.5 pp accuracy constraint; in the twin (CRN) revenue rises significantly, by
    what the closed form says, and accuracy is unchanged by the declared criterion."""
    accuracy, revenue = closed_form(VALUED)
    optimum = constrained_optimum(VALUED)
    assert 0.40 < optimum < 0.45  # the constraint binds: unconstrained θ* is 0.077
    [candidate] = BusinessAgent().propose(policy_action(), _context(valued_env(VALUED)))
    chosen = candidate.details["segment_thresholds"]["all"]
    assert abs(chosen - optimum) <= 0.05
    assert candidate.model.params == CALIBRATED.params  # type: ignore[union-attr]
    ev = candidate.evidence
    assert ev is not None and ev.kpi == "revenue" and ev.difference.lower > 0
    gain = revenue(chosen) / revenue(0.5) - 1.0  # first order: the multiplier's mean
    assert ev.difference.lower / ev.baseline_mean < gain < ev.difference.upper / ev.baseline_mean
    acc = candidate.details["accuracy_difference"]
    assert abs(acc["estimate"]) <= ACCURACY_TOLERANCE
    assert acc["lower"] <= 0.0 <= acc["upper"]
    assert acc["lower"] <= accuracy(chosen) - accuracy(0.5) <= acc["upper"]  # the closed form's


def test_symmetric_values_keep_an_accuracy_optimal_threshold() -> None:
    """No asymmetry: the calibrated model's 0.5 stays (no spurious move, no twin run), while a
    mis-set 0.3 is moved back to within a grid step of 0.5."""
    env = valued_env(None)
    for policy in ("segment", "global"):
        assert policy_model(env, CALIBRATED, 0, policy) is None
    assert BusinessAgent().propose(policy_action(), _context(env)) == []
    mis_set = CALIBRATED.model_copy(update={"threshold": 0.3})
    assert abs(best_thresholds(env, mis_set, seed=0)["all"] - 0.5) <= 0.05 + 1e-9


@pytest.mark.parametrize("tolerance", [-0.1, 2.0, "high", True])
def test_a_bad_accuracy_tolerance_is_rejected_naming_the_field(tolerance: object) -> None:
    """params.accuracy_tolerance must be a share in [0, 1]."""
    context = _context(valued_env(VALUED), accuracy_tolerance=tolerance)
    with pytest.raises(InvalidInput, match="accuracy_tolerance"):
        BusinessAgent().propose(policy_action(), context)


def test_a_decision_effect_outside_its_range_is_rejected_naming_the_field() -> None:
    """Each cell's multiplier lies in [0, 2] (retention multiplies the hazard by 2 − m)."""
    data = valued_env(VALUED).model_dump()
    data["transaction"]["decision_effects"]["false_positive"] = 2.5
    with pytest.raises(InvalidInput, match="decision_effects"):
        parse_environment(data)


def test_calibration_reads_a_profiles_mean_cells_when_values_are_asymmetric() -> None:
    """Calibration knows only accuracy: its conversion factor is wrong + (right − wrong)·accuracy
    with the profile's mean cells, and the symmetric cells spelled out change nothing."""
    ones = np.ones(3)
    kpis = DailyKpis(ones, ones, ones, ones, ones, ones, None, None, None, None, 0, "2026-01-05")
    u, accuracy = 0.3, 0.8

    def factor(effects: DecisionEffects | None) -> np.ndarray:  # type: ignore[type-arg]
        env = valued_env(effects)
        return conversion_factor(kpis, env, segment_mix(env), accuracy)

    symmetric = DecisionEffects(
        true_positive=1.0 + u, false_positive=1.0 - u, false_negative=1.0 - u, true_negative=1.0 + u
    )
    assert np.allclose(factor(symmetric), factor(None))
    right, wrong = (1.8 + 1.0) / 2, (0.9 + 0.6) / 2
    assert np.allclose(factor(VALUED), factor(None) / (1 + u * (2 * accuracy - 1))
                       * (wrong + (right - wrong) * accuracy))  # fmt: skip
