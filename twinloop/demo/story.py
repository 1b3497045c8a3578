"""The main job in four functions: A/B test in the twin, analysis, what-if, sandbox validation.

Each step takes the previous step's result and an injectable executor (``SerialExecutor`` in a
unit test, the Ray actor pool in ``twinloop demo``), so the whole story runs in-process or on a
cluster with the same numbers: every run is a pure function of its spec and seed. Results are the
pydantic models of ``results.py``; :func:`run_story` chains the steps and times them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twinloop.analysis.analyzer import FailureAnalysis, analyze_failure
from twinloop.analysis.hypotheses import Hypothesis
from twinloop.config import Settings
from twinloop.demo.results import (
    AbTestStep,
    CalibrationSummary,
    DemoResult,
    TrajectoryBand,
    Validation,
    WhatIfStep,
)
from twinloop.demo.scenario import (
    CHALLENGER,
    CHAMPION,
    DemoScenario,
    calibrated_twin,
    retrained_challenger_config,
    train_models,
)
from twinloop.improve.retrain import train_variant
from twinloop.replication.calibration.models import CalibrationResult
from twinloop.replication.replicates import executor_evaluate
from twinloop.replication.whatif.analytic import WhatIfSettings, what_if
from twinloop.replication.whatif.simulated import SimWhatIfSettings, what_if_sim
from twinloop.sandbox.executor import Executor, ProgressCallback, SerialExecutor
from twinloop.sandbox.headtohead import run_head_to_head
from twinloop.sandbox.seeding import replicate_seed
from twinloop.sandbox.specs import HeadToHeadSpec
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.kpis import SimulationResult
from twinloop.sim.models import ModelProfile, ModelSpec, PredictorModel
from twinloop.sim.spec import SimulationSpec

BAND_KPIS = ("revenue", "conversion_rate", "satisfaction", "latency_p50_ms", "model_accuracy")
BAND_QUANTILES = (0.05, 0.95)
EXPERIMENT_ID = "demo-sales-model-v2-vs-v3"


def ab_test(
    scenario: DemoScenario,
    env: BusinessEnvironment,
    models: tuple[ModelSpec, ModelSpec],
    executor: Executor,
) -> tuple[AbTestStep, pa.Table]:
    """Step 1: the A/B test of v2 vs v3 in the twin, replicated for Monte Carlo bands.

    Replicate 0 is "the" experiment whose per-customer rows go to the analyzer; the others only
    give the spread of the KPI trajectories a rerun of the same test would show.
    """
    specs = [
        SimulationSpec(
            environment=env,
            models=list(models),
            allocation=list(scenario.allocation),
            days=scenario.days,
            seed=replicate_seed(scenario.seed, i),
            record_units=i == 0,
        )
        for i in range(scenario.ab_replicates)
    ]
    done = executor_evaluate(executor)(specs)
    units = done[0].units
    assert units is not None  # replicate 0 records units
    names = [m.name for m in models]
    bands = [_band(done, kpi, name) for kpi in BAND_KPIS for name in names]
    segments = units.column("segment").to_pylist()
    step = AbTestStep(
        environment=env.name,
        seed=scenario.seed,
        days=scenario.days,
        replicates=len(done),
        allocation={n: float(w) for n, w in zip(names, scenario.allocation, strict=True)},
        units=int(units.num_rows),
        units_per_variant={n: _count(units, "variant", n) for n in names},
        units_per_segment={s: segments.count(s) for s in sorted(set(segments))},
        bands=bands,
    )
    return step, units


def _count(table: pa.Table, column: str, value: str) -> int:
    return int(pc.sum(pc.equal(table.column(column), value)).as_py() or 0)


def _band(results: list[SimulationResult], kpi: str, variant: str) -> TrajectoryBand:
    """Mean and 90% Monte Carlo band of one KPI per day over the replicates."""
    rows = []
    for r in results:
        mask = pc.equal(r.kpis.column("variant"), variant)
        rows.append(np.asarray(r.kpis.filter(mask).column(kpi).to_numpy(), dtype=float))
    matrix = np.vstack(rows)
    day = results[0].kpis.filter(pc.equal(results[0].kpis.column("variant"), variant))
    low, high = np.quantile(matrix, BAND_QUANTILES, axis=0)
    return TrajectoryBand(
        kpi=kpi,
        variant=variant,
        day=[float(d) for d in day.column("day").to_numpy()],
        mean=[float(v) for v in matrix.mean(axis=0)],
        low=[float(v) for v in low],
        high=[float(v) for v in high],
    )


def analyze(step: AbTestStep, units: pa.Table) -> FailureAnalysis:
    """Step 2: the Failure Analyzer on the raw per-customer table; nobody names the flaw."""
    result = {
        "experimentId": EXPERIMENT_ID,
        "variants": [
            {"name": CHAMPION, "control": True, "allocation": step.allocation[CHAMPION]},
            {"name": CHALLENGER, "allocation": step.allocation[CHALLENGER]},
        ],
        "environment": "sales",
    }
    return analyze_failure(result, raw_table=units)


def _mean(units: pa.Table, variant: str, column: str) -> float:
    rows = units.filter(pc.equal(units.column("variant"), variant))
    return float(pc.mean(rows.column(column).cast(pa.float64())).as_py() or 0.0)


def explore_what_if(
    scenario: DemoScenario, env: BusinessEnvironment, units: pa.Table, executor: Executor
) -> WhatIfStep:
    """Step 3: "if v3's latency matched v2's…" — through the metric graph and in the twin."""
    v2_latency = _mean(units, CHAMPION, "latency_ms")
    v3_latency = _mean(units, CHALLENGER, "latency_ms")
    change = v2_latency / v3_latency - 1.0
    base = {
        "latency": v3_latency,
        "accuracy": _mean(units, CHALLENGER, "accuracy"),
        "satisfaction": _mean(units, CHALLENGER, "satisfaction"),
        "conversion": _mean(units, CHALLENGER, "converted"),
        "revenue": _mean(units, CHALLENGER, "revenue"),
    }
    analytic = what_if(
        base, {"latency": change}, settings=WhatIfSettings(domain="sales", seed=scenario.seed)
    )
    v3_profile = ModelProfile(
        name=CHALLENGER,
        accuracy=min(max(base["accuracy"], 0.0), 1.0),
        latency_p50_ms=scenario.v3_latency_p50_ms,
        latency_p95_ms=scenario.v3_latency_p95_ms,
    )
    simulated = what_if_sim(
        env,
        {"latency": change},
        model=v3_profile,
        settings=SimWhatIfSettings(
            days=scenario.days, replicates=scenario.what_if_replicates, seed=scenario.seed
        ),
        evaluate=executor_evaluate(executor),
    )
    return WhatIfStep(
        question=f"What if {CHALLENGER}'s latency matched {CHAMPION}'s "
        f"({v3_latency:.0f} ms → {v2_latency:.0f} ms, {change:+.0%})?",
        changes={"latency": change},
        analytic=analytic,
        simulation=simulated,
    )


def validation_specs(
    scenario: DemoScenario,
    env: BusinessEnvironment,
    analysis: FailureAnalysis,
    models: tuple[PredictorModel, PredictorModel],
) -> list[tuple[str, Hypothesis | None, HeadToHeadSpec]]:
    """The top hypotheses' own sandbox plans, sized to the scenario, plus the retraining fix."""
    size = {
        "environment": env,
        "customers": scenario.validation_customers,
        "days": scenario.validation_days,
        "replicates": scenario.validation_replicates,
        "seed": scenario.seed,
    }
    out: list[tuple[str, Hypothesis | None, HeadToHeadSpec]] = []
    for h in analysis.hypotheses[: scenario.validate_top]:
        out.append((h.title, h, h.validation.spec.model_copy(update=size)))
    retrained = train_variant(env, retrained_challenger_config(scenario))
    fix = HeadToHeadSpec(baseline=models[1], challenger=retrained, kpis=["revenue"], **size)
    out.append((f"Retrain {CHALLENGER} with enterprise data (real predictor)", None, fix))
    return out


def validate(
    specs: list[tuple[str, Hypothesis | None, HeadToHeadSpec]],
    executor: Executor,
    *,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
) -> list[Validation]:
    """Step 4: run every plan head-to-head on common random numbers; report the verdicts."""
    total = sum(2 * (s.replicates or 0) for _, _, s in specs)
    offset = 0
    out = []
    for title, hypothesis, spec in specs:

        def advance(done: int, _planned: int, base: int = offset) -> None:
            if progress is not None:
                progress(base + done, total)

        result = run_head_to_head(spec, settings=settings, executor=executor, progress=advance)
        offset += 2 * result.replicates
        kpi = spec.kpis[0] if spec.kpis else "revenue"
        d = next(x for x in result.differences if x.kpi == kpi)
        better = d.lower > 0 if d.direction == "higher" else d.upper < 0
        out.append(
            Validation(
                title=title,
                hypothesis_rank=hypothesis.rank if hypothesis else None,
                root_cause=hypothesis.root_cause if hypothesis else None,
                confirm_if=hypothesis.validation.confirm_if
                if hypothesis
                else "the retrained model beats model-v3 on revenue",
                baseline=result.baseline,
                challenger=result.challenger,
                kpi=kpi,
                replicates=result.replicates,
                baseline_mean=d.baseline_mean,
                challenger_mean=d.challenger_mean,
                difference=d.difference,
                relative_difference=d.relative_difference,
                lower=d.lower,
                upper=d.upper,
                win_rate=d.win_rate,
                prob_better=d.prob_challenger_better,
                width_ratio=d.width_ratio,
                confirmed=bool(better),
            )
        )
    return out


def summarize_calibration(result: CalibrationResult) -> CalibrationSummary:
    return CalibrationSummary(
        history="twinloop/data/sales_kpi_history.csv",
        fit_quality=result.fit_quality,
        mean_pearson_r=result.mean_pearson_r,
        mean_mape=result.mean_mape,
        train_days=result.train_days,
        holdout_days=result.holdout_days,
        simulations=result.simulations,
        accuracy={a.kpi: a.mape for a in result.accuracy},
    )


class World(NamedTuple):
    """What the story built that the loop continues with: the A/B's world and its models."""

    environment: BusinessEnvironment
    models: tuple[PredictorModel, PredictorModel]


def run_story(
    scenario: DemoScenario,
    executor: Executor | None = None,
    *,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    on_step: Callable[[str], None] | None = None,
) -> DemoResult:
    """Calibrate, train, then steps 1–4; ``on_step`` hears each step's name as it starts."""
    return run_story_world(
        scenario, executor, settings=settings, progress=progress, on_step=on_step
    )[0]


def run_story_world(
    scenario: DemoScenario,
    executor: Executor | None = None,
    *,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    on_step: Callable[[str], None] | None = None,
) -> tuple[DemoResult, World]:
    """:func:`run_story`, and the world (environment, models) it ran in."""
    run = executor or SerialExecutor()
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    def tell(text: str) -> None:
        if on_step is not None:
            on_step(text)

    tell("calibrating the sales twin to the shipped KPI history")
    env, calibration = calibrated_twin(scenario, executor_evaluate(run))
    lap("calibration")
    tell("training model-v2 and model-v3 on twin data")
    models = train_models(env, scenario)
    lap("training")
    tell("1/5 A/B test of model-v2 vs model-v3 in the twin")
    step, units = ab_test(scenario, env, models, run)
    lap("ab_test")
    tell("2/5 failure analysis")
    analysis = analyze(step, units)
    lap("analysis")
    tell("3/5 what-if")
    whatif = explore_what_if(scenario, env, units, run)
    lap("what_if")
    tell("4/5 validating the top hypotheses in the sandbox")
    specs = validation_specs(scenario, env, analysis, models)
    validations = validate(specs, run, settings=settings, progress=progress)
    lap("validation")
    result = DemoResult(
        seed=scenario.seed,
        scenario=scenario,
        calibration=summarize_calibration(calibration),
        ab_test=step,
        analysis=analysis,
        what_if=whatif,
        validations=validations,
        timings=timings,
    )
    return result, World(env, models)
