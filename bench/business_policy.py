"""The business agent against a constructed truth: revenue within an accuracy tolerance.

Run: ``nice -n 10 .venv/bin/python -m bench.business_policy [--customers 2000] [--days 14]
[--replicates 4]``. One segment whose intent is ``P = σ(2·x₁)``, a model whose scores *are* P
(calibrated, so 0.5 is its accuracy optimum), and decision values per confusion cell
(``Transaction.decision_effects``). For each set of values it prints the closed-form revenue
optimum θ* (unconstrained) and the one within the tolerance (by quadrature over the logit), the
agent's threshold, and the twin's paired head-to-head of the agent's policy against the current
one (common random numbers): relative revenue and accuracy, each with its 95% interval, next to
what the closed form predicts. The unit tests (tests/unit/test_business_values.py) use the same
environment and model.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from scipy import stats

from twinloop.agents.business import ACCURACY_TOLERANCE, BusinessAgent, policy_model
from twinloop.agents.protocol import AgentContext
from twinloop.sim.environment import (
    Acquisition,
    BusinessEnvironment,
    Churn,
    DecisionEffects,
    Segment,
    Transaction,
)
from twinloop.sim.models import PredictorModel
from twinloop.strategy.models import Action, Cost, Uplift

LOGIT_SD = 2.0  # intent logit = 2·x₁, x₁ ~ N(0, 1)
# Acting on an intending customer wins the sale (×1.8); acting on one without intent gives an
# offer away (×0.9); holding back from an intending customer misses it (×0.6).
VALUED = DecisionEffects(
    true_positive=1.8, false_positive=0.9, false_negative=0.6, true_negative=1.0
)
MILD = DecisionEffects(true_positive=1.4, false_positive=0.9, false_negative=0.8, true_negative=1.0)
SETTINGS: dict[str, DecisionEffects | None] = {"valued": VALUED, "mild": MILD, "symmetric": None}
# Scores equal P(intent): weights on [x₁, x₂, one-hot(segment)].
CALIBRATED = PredictorModel(
    name="calibrated",
    import_path="twinloop.sim.predictor:LogisticPredictor",
    params={"weights": [LOGIT_SD, 0.0, 0.0], "bias": 0.0, "n_base_features": 2},
)


def valued_environment(effects: DecisionEffects | None, **changes: object) -> BusinessEnvironment:
    """One segment, intent P = σ(2·x₁), a busy closed population; ``effects`` on conversion."""
    env = BusinessEnvironment(
        name="valued",
        initial_customers=2_000,
        segments=[Segment(name="all", share=1.0, feature_mean=[0.0, 0.0])],
        truth_weights=[LOGIT_SD, 0.0],
        acquisition=Acquisition(rate_per_day=0.0),
        interaction_probability_per_day=0.5,
        transaction=Transaction(
            base_conversion=0.2,
            decision_uplift=0.3,
            average_order_value=50.0,
            order_value_sigma=0.2,
            decision_effects=effects,
        ),
        churn=Churn(base_hazard_per_day=0.01),
    )
    return BusinessEnvironment.model_validate({**env.model_dump(), **changes})


def closed_form(
    effects: DecisionEffects | None, uplift: float = 0.3
) -> tuple[Callable[[float], float], Callable[[float], float]]:
    """(accuracy, revenue multiplier) of the calibrated model per threshold, by quadrature."""
    e = effects or DecisionEffects(
        true_positive=1.0 + uplift,
        false_positive=1.0 - uplift,
        false_negative=1.0 - uplift,
        true_negative=1.0 + uplift,
    )
    z = np.linspace(-12 * LOGIT_SD, 12 * LOGIT_SD, 400_001)
    w = stats.norm.pdf(z, scale=LOGIT_SD)
    w /= w.sum()
    p = 1.0 / (1.0 + np.exp(-z))
    act = p * e.true_positive + (1 - p) * e.false_positive
    hold = p * e.false_negative + (1 - p) * e.true_negative

    def accuracy(t: float) -> float:
        return float(np.sum(w * np.where(p >= t, p, 1.0 - p)))

    def revenue(t: float) -> float:
        return float(np.sum(w * np.where(p >= t, act, hold)))

    return accuracy, revenue


def constrained_optimum(
    effects: DecisionEffects | None, current: float = 0.5, tolerance: float = ACCURACY_TOLERANCE
) -> float:
    """The closed-form revenue-maximising threshold whose accuracy is within ``tolerance``."""
    accuracy, revenue = closed_form(effects)
    floor = accuracy(current) - tolerance
    fine = np.linspace(0.0, 1.0, 2_001)
    return float(max((t for t in fine if accuracy(t) >= floor), key=revenue))


def policy_action() -> Action:
    """A stand-alone business action (the agent reads only its id)."""
    free = dict.fromkeys(
        ("measured_cpu_seconds", "seconds_per_trial", "cpu_seconds", "compute_money",
         "data_money", "rollout_money", "total_money"), 0.0,
    )  # fmt: skip
    cost = Cost(**free, tune_trials=0, labelled_rows={}, guardrails_at_risk=(),
                rollout_risk="low", assumptions=())  # fmt: skip
    return Action(
        id="policy-threshold",
        rank=1,
        title="Tune the decision threshold for revenue",
        description="within the accuracy tolerance",
        failure=("revenue",),
        root_cause="policy:threshold",
        agent="business",
        uplift=Uplift(source="none", kpi="revenue", relative=None, money_per_month=None, note=""),
        cost=cost,
        roi=None,
    )


def context(
    env: BusinessEnvironment, customers: int = 2_000, days: float = 14.0, replicates: int = 4
) -> AgentContext:
    """The agent's context: the calibrated model in ``env`` at the given twin size."""
    return AgentContext(
        environment=env, model=CALIBRATED, customers=customers, days=days, replicates=replicates
    )


def _report(name: str, effects: DecisionEffects | None, ctx: AgentContext) -> None:
    env = valued_environment(effects)
    accuracy, revenue = closed_form(effects)
    theta = 0.5 if effects is None else effects.optimal_threshold
    bound = constrained_optimum(effects)
    print(f"{name}: θ* = {theta:.3f}; within {ACCURACY_TOLERANCE * 100:.1f} pp: {bound:.3f}")
    start = time.perf_counter()
    policy = policy_model(env, CALIBRATED, ctx.seed, "segment")
    candidates = BusinessAgent().propose(
        policy_action(), ctx.model_copy(update={"environment": env})
    )
    wall = time.perf_counter() - start
    if policy is None:
        print(f"  agent keeps 0.5 (no threshold worth moving; {wall:.1f} s)")
        return
    chosen = policy.segment_thresholds["all"]
    gain = revenue(chosen) / revenue(0.5) - 1.0
    drop = accuracy(chosen) - accuracy(0.5)
    print(f"  agent: {chosen:.2f}; closed form: revenue {gain:+.2%}, accuracy {drop * 100:+.2f} pp")
    if not candidates:
        print(f"  twin does not confirm it: no proposal ({wall:.1f} s)")
        return
    ev, acc = candidates[0].evidence, candidates[0].details["accuracy_difference"]
    assert ev is not None
    rel = [x / ev.baseline_mean for x in (ev.difference.estimate, ev.difference.lower,
                                          ev.difference.upper)]  # fmt: skip
    print(
        f"  twin: revenue {rel[0]:+.2%} [{rel[1]:+.2%}, {rel[2]:+.2%}], accuracy "
        f"{acc['estimate'] * 100:+.2f} pp [{acc['lower'] * 100:+.2f}, {acc['upper'] * 100:+.2f}]"
        f" ({wall:.1f} s)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--days", type=float, default=14.0)
    parser.add_argument("--replicates", type=int, default=4)
    args = parser.parse_args(argv)
    ctx = context(valued_environment(None), args.customers, args.days, args.replicates)
    print(f"twin: {args.customers} customers, {args.days:g} days, {args.replicates} replicates")
    for name, effects in SETTINGS.items():
        _report(name, effects, ctx)


if __name__ == "__main__":
    main()
