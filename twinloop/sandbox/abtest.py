"""A/B tests inside the twin: one universe's customers split over variants, then tested.

Each replicate is one simulated experiment: customers are assigned to variants by the allocation
weights (fixed, or Thompson sampling that shifts new arrivals towards the variant converting
best), the run lasts ``days``, and the per-customer table is analysed with the same two-sample
tests as a real experiment (``abstats.py`` → ``twinloop.stats``). Across replicates this gives
what a real test cannot: the distribution of its p-values, its power, its false-positive rate
in an A/A, and the probability that it picks the right winner — before any real traffic.

The "truth" a test is scored against is ``none`` when the variants are the same model (an A/A),
otherwise the sign of the effect pooled over all replicates, when that pooled estimate is
decisive (its 99.9% interval excludes 0); otherwise ``unclear`` and no right-winner rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from twinloop.config import Settings
from twinloop.contract import field_path
from twinloop.sandbox.abstats import UnitTest
from twinloop.sandbox.arrow import rows_to_table
from twinloop.sandbox.collect import Collector, run_batches
from twinloop.sandbox.executor import Executor, ProgressCallback, SerialExecutor
from twinloop.sandbox.indicators import REPLICATE_KPIS, UNIT_KPIS, unit_direction
from twinloop.sandbox.intervals import t_quantile
from twinloop.sandbox.moments import Moments
from twinloop.sandbox.plan import (
    Budget,
    budget,
    check_models,
    resolve_environment,
    settings_or_default,
    settings_used,
    simulation_spec,
)
from twinloop.sandbox.replicate import ReplicateOutcome, ReplicateTask, UnitAnalysis
from twinloop.sandbox.results import AbKpiAnalysis, AbTestResult, Truth, VariantAllocation
from twinloop.sandbox.seeding import replicate_seed
from twinloop.sandbox.specs import AbTestSpec
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.spec import SimulationSpec

TRUTH_CONFIDENCE = 0.999
TABLE_COLUMNS = ("replicate", "seed", "variant", *REPLICATE_KPIS)
TEST_COLUMNS = (
    "replicate", "seed", "kpi", "treatment", "method", "control_n", "treatment_n",
    "control_mean", "treatment_mean", "effect", "std_error", "p_value", "significant", "favours",
)  # fmt: skip
QUANTILES = {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}


def prepare_ab(
    spec: AbTestSpec, settings: Settings
) -> tuple[Budget, BusinessEnvironment, SimulationSpec]:
    """Budget, environment and the split universe; raises InvalidInput before anything runs."""
    plan = budget(spec.replicates, None, settings)
    env = resolve_environment(spec.environment, customers=spec.customers, step=spec.step)
    check_models([(field_path("variants", i), v) for i, v in enumerate(spec.variants)])
    sim = simulation_spec(
        env,
        spec.variants,
        days=spec.days,
        allocation=spec.allocation,
        policy=spec.allocation_policy,
        record_units=True,
        field="variants",
    )
    return plan, env, sim


def run_ab_test(
    spec: AbTestSpec,
    *,
    settings: Settings | None = None,
    executor: Executor | None = None,
    progress: ProgressCallback | None = None,
) -> AbTestResult:
    """Replicate the A/B test in the twin; everything is checked before anything runs."""
    settings = settings_or_default(settings)
    plan, env, sim = prepare_ab(spec, settings)
    analysis = UnitAnalysis(spec.control_name, tuple(spec.kpis), spec.alpha)
    collector = Collector(executor or SerialExecutor(), progress)

    def tasks(lo: int, hi: int) -> list[ReplicateTask]:
        return [
            ReplicateTask(0, i, replicate_seed(spec.seed, i), sim, analysis) for i in range(lo, hi)
        ]

    n, _ = run_batches(plan, None, tasks, collector, lambda _: True)
    outcomes = collector.ordered()
    names = [v.name for v in spec.variants]
    rows = [
        {"replicate": o.replicate, "seed": o.seed, "variant": name, **o.values[name]}
        for o in outcomes
        for name in names
    ]
    test_rows = [
        {"replicate": o.replicate, "seed": o.seed, **_test_row(t)}
        for o in outcomes
        for t in o.tests
    ]
    return AbTestResult(
        seed=spec.seed,
        replicates=n,
        replicate_seeds=[o.seed for o in outcomes],
        settings=settings_used(settings),
        execution=collector.execution(),
        spec=spec,
        environment=env.name,
        control=spec.control_name,
        alpha=spec.alpha,
        allocation=_allocation(spec, sim.weights, outcomes),
        analyses=_analyses(spec, outcomes),
        notes=_notes(spec),
        table=rows_to_table(rows, TABLE_COLUMNS),
        tests=rows_to_table(test_rows, TEST_COLUMNS),
    )


def _notes(spec: AbTestSpec) -> list[str]:
    """Caveats of the design that a reader of the numbers must know."""
    totals = [k for k in spec.kpis if UNIT_KPIS[k][0] != "ratio"]
    if spec.allocation_policy == "thompson" and totals:
        return [
            "thompson allocation sends later arrivals mostly to the leading variant, and later "
            "arrivals have had less time to convert, spend or churn: per-customer totals "
            f"({', '.join(totals)}) are confounded with exposure time under adaptive allocation; "
            "judge variants on rate KPIs (conversion_rate) or with a fixed allocation"
        ]
    return []


def _test_row(test: UnitTest) -> dict[str, object]:
    return {name: getattr(test, name) for name in TEST_COLUMNS[2:]}


def _allocation(
    spec: AbTestSpec, planned: Sequence[float], outcomes: list[ReplicateOutcome]
) -> list[VariantAllocation]:
    """Mean share of customers and of arrivals per variant over replicates."""
    names = [v.name for v in spec.variants]
    customers = np.array([[o.values[m]["customers"] for m in names] for o in outcomes])
    arrivals = np.array([[o.values[m]["new"] for m in names] for o in outcomes])

    def shares(counts: NDArray[np.float64]) -> NDArray[np.float64]:
        totals = counts.sum(axis=1, keepdims=True)
        share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        mean: NDArray[np.float64] = share.mean(axis=0)
        return mean

    c_share, a_share = shares(customers), shares(arrivals)
    return [
        VariantAllocation(
            variant=m,
            planned_share=float(planned[i]),
            customer_share=float(c_share[i]),
            arrival_share=float(a_share[i]),
        )
        for i, m in enumerate(names)
    ]


def _identical(spec: AbTestSpec, treatment: str) -> bool:
    """Whether a treatment is the control model under another name (an A/A comparison)."""
    by_name = {v.name: v.model_dump(exclude={"name"}) for v in spec.variants}
    return by_name[treatment] == by_name[spec.control_name]


def _analyses(spec: AbTestSpec, outcomes: list[ReplicateOutcome]) -> list[AbKpiAnalysis]:
    grouped: dict[tuple[str, str], list[UnitTest]] = defaultdict(list)
    for o in outcomes:
        for t in o.tests:
            grouped[(t.kpi, t.treatment)].append(t)
    out = []
    for kpi in spec.kpis:
        for variant in spec.variants:
            if variant.name == spec.control_name:
                continue
            tests = [t for t in grouped[(kpi, variant.name)] if t.effect is not None]
            if len(tests) >= 2:
                out.append(_analyse(spec, kpi, variant.name, tests))
    return out


def _analyse(spec: AbTestSpec, kpi: str, treatment: str, tests: list[UnitTest]) -> AbKpiAnalysis:
    """One KPI × treatment across replicates: effect, truth, rejection and winner rates."""
    n = len(tests)
    observations = (
        Moments.of([t.control_mean or 0.0, t.treatment_mean or 0.0, t.effect or 0.0]) for t in tests
    )
    joint = Moments.merge_all(observations, 3)
    mean, cov = joint.mean(), joint.covariance()
    se = float(np.sqrt(cov[2, 2] / n))
    half = t_quantile(spec.confidence, n - 1) * se
    truth = _truth(spec, kpi, treatment, float(mean[2]), se, n)
    p = np.array([t.p_value if t.p_value is not None else 1.0 for t in tests])
    rejection = float(np.mean([t.significant for t in tests]))
    right, wrong = _winner_rates(truth, tests, rejection)
    return AbKpiAnalysis(
        kpi=kpi,
        control=spec.control_name,
        treatment=treatment,
        direction=unit_direction(kpi),
        method=tests[0].method,
        replicates=n,
        control_mean=float(mean[0]),
        treatment_mean=float(mean[1]),
        mean_effect=float(mean[2]),
        effect_lower=float(mean[2]) - half,
        effect_upper=float(mean[2]) + half,
        truth=truth,
        rejection_rate=rejection,
        power=rejection if truth in ("treatment", "control") else None,
        false_positive_rate=rejection if truth == "none" else None,
        p_right_winner=right,
        p_wrong_winner=wrong,
        p_value_quantiles={k: float(np.quantile(p, q)) for k, q in QUANTILES.items()},
        p_value_histogram=[int(c) for c in np.histogram(p, bins=10, range=(0.0, 1.0))[0]],
        ks_uniform_p=float(stats.kstest(p, "uniform").pvalue) if n >= 5 else None,
    )


def _truth(spec: AbTestSpec, kpi: str, treatment: str, effect: float, se: float, n: int) -> Truth:
    if _identical(spec, treatment):
        return "none"
    half = t_quantile(TRUTH_CONFIDENCE, n - 1) * se
    if abs(effect) <= half:
        return "unclear"
    better = effect > 0 if unit_direction(kpi) == "higher" else effect < 0
    return "treatment" if better else "control"


def _winner_rates(
    truth: Truth, tests: list[UnitTest], rejection: float
) -> tuple[float | None, float | None]:
    """P(right call), P(wrong call): the true winner, or no winner in an A/A."""
    if truth == "none":
        return 1.0 - rejection, rejection
    if truth == "unclear":
        return None, None
    other = "control" if truth == "treatment" else "treatment"
    right = float(np.mean([t.favours == truth for t in tests]))
    wrong = float(np.mean([t.favours == other for t in tests]))
    return right, wrong
