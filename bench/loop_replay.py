"""The hidden-production benchmark: does a model the loop promotes truly win in production?

    nice -n 10 .venv/bin/python -m bench.loop_replay [--quick] [--nulls 60] [--no-calibrate]
        [--workers 2] [--json out.json]

For each seeded scenario (``bench/loop_scenarios.py``) the loop gets only what a user has: 90
days of production's KPI history, the A/B test's per-unit rows (champion against the model
before it) and a labelled sample of production decisions. It calibrates the twin's business
dynamics to the KPI history (``twinloop.replication.calibration``), analyses the A/B rows
(Failure Analyzer → localized segments → search space), fits the twin's decision layer from
one half of the sample (``twinloop.improve.intentfit``), runs the retraining search *in that
fitted twin* with candidates trained on the other half, and confirms the best recipe on fresh
seeds. Then an independent head-to-head replay in the hidden production (its own seeds) says
whether the chosen model truly beats the champion: a true win is P(better) >= 0.95 there.

Reported: promotions, true wins among them, false promotions in null scenarios, time from the
failure to a candidate, the same without the confirmation run (promote on the search's own
numbers: the winner's curse), and Simulation Accuracy — the fitted twin's predicted effect of
the chosen model against production's, over scenarios (correlation, interval coverage), next to
the preset twin's (decision layer not fitted) for contrast.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy.stats import binomtest

from bench.loop_scenarios import NULLS, Flaw, make_scenario, scenarios
from twinloop.analysis.analyzer import analyze_failure
from twinloop.improve.data import split
from twinloop.improve.intentfit import fit_intent
from twinloop.improve.reference import LOGISTIC
from twinloop.improve.search import (
    CONFIRM_STREAM,
    Paired,
    RetrainSpec,
    batch_seed,
    replicate_gains,
    run_search,
    train_recipe,
)
from twinloop.improve.space import localized_segments, space_from_segments
from twinloop.replication.calibration.calibrate import calibrate
from twinloop.replication.calibration.models import CalibrationSettings
from twinloop.replication.history import history_from_table
from twinloop.replication.replicates import history_table
from twinloop.sim.domains import environment
from twinloop.sim.lifecycle import simulate
from twinloop.sim.spec import SimulationSpec

REPLAY_STREAM = 23  # production replay seeds: never used by the search or the confirmation
HISTORY_STREAM = 29  # seeds of production's KPI history
HISTORY_DAYS = 90  # the KPI history production gives the loop when --calibrate is on


@dataclass(frozen=True)
class Budget:
    """How much simulation each scenario gets (``--quick`` shrinks it)."""

    samples: int = 6
    customers: int = 2_000
    days: float = 10.0
    batch_size: int = 4
    max_batches: int = 4
    confirm: int = 16
    replay: int = 24
    ab_customers: int = 30_000
    ab_days: float = 21.0
    calibrate: bool = True


QUICK = Budget(samples=4, customers=1_500, days=8.0, max_batches=2, confirm=12, replay=16)


def ab_units(scenario: Any, budget: Budget) -> Any:
    """The production A/B test (previous model = control, champion = treatment), per unit."""
    spec = SimulationSpec(
        environment=scenario.production.model_copy(
            update={"initial_customers": budget.ab_customers}
        ),
        models=[scenario.previous, scenario.champion],
        allocation=[0.5, 0.5],
        days=budget.ab_days,
        seed=scenario.seed,
        record_units=True,
    )
    return simulate(spec).units


def business_twin(scenario: Any, budget: Budget) -> tuple[Any, dict[str, Any]]:
    """The twin's business dynamics: the preset, or calibrated from production's KPI history.

    With ``calibrate`` the loop gets HISTORY_DAYS of production's daily KPIs under its champion
    (what a user's dashboard holds) and ``calibrate`` fits arrivals, interaction, conversion,
    order value and churn to them; the decision layer is fitted on top of that environment.
    """
    base = environment("sales")
    if not budget.calibrate:
        return base, {}
    run = simulate(
        SimulationSpec(
            environment=scenario.production,
            models=[scenario.champion],
            days=HISTORY_DAYS,
            seed=batch_seed(scenario.seed % 2**62, 0, HISTORY_STREAM),
        )
    )
    history = history_from_table(history_table(run))
    result = calibrate(history, CalibrationSettings(seed=scenario.seed % 2**62))
    fitted = {p.name: p.value for p in result.parameters}
    info = {
        "calibration_fit": result.fit_quality,
        "calibration_mean_mape": result.mean_mape,
        "base_conversion": [
            fitted.get("transaction.base_conversion"),
            scenario.production.transaction.base_conversion,
        ],
        "average_order_value": [
            fitted.get("transaction.average_order_value"),
            scenario.production.transaction.average_order_value,
        ],
    }
    return result.environment, info


def localize(scenario: Any, budget: Budget) -> list[str]:
    units = ab_units(scenario, budget)
    result = {
        "experimentId": f"scenario-{scenario.index}",
        "variants": [
            {"name": "previous", "control": True, "allocation": 0.5},
            {"name": "champion", "allocation": 0.5},
        ],
        "environment": "sales",
    }
    analysis = analyze_failure(result, raw_table=units)
    return localized_segments(analysis, environment("sales"))


def run_scenario(index: int, flaw: Flaw, seed: int, budget: Budget) -> dict[str, Any]:
    """One scenario end to end; returns its row of the report."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    scenario = make_scenario(index, flaw, seed)
    start, cpu = time.perf_counter(), time.process_time()
    segments = localize(scenario, budget)
    # Half the labelled rows fit the twin's decision layer, the other half train candidates:
    # a twin fitted on the training rows shares their noise and favours the candidates.
    fit_rows, train_rows = split(scenario.sample, 0.5, scenario.seed)
    business, calibration = business_twin(scenario, budget)
    fit = fit_intent(business, fit_rows, seed=scenario.seed)
    spec = RetrainSpec(
        environment=fit.environment,
        champion=scenario.champion,
        trainer=LOGISTIC,
        space=space_from_segments(segments, fit.environment, threshold=(0.3, 0.7)),
        samples=budget.samples,
        customers=budget.customers,
        days=budget.days,
        batch_size=budget.batch_size,
        max_batches=budget.max_batches,
        confirm_replicates=budget.confirm,
        seed=scenario.seed % 2**62,
    )
    result = run_search(spec, data=train_rows)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    row: dict[str, Any] = {
        "index": index,
        "flaw": flaw,
        "flawed_segment": scenario.flawed_segment,
        "champion_threshold": scenario.champion_threshold,
        "localized": segments,
        "fit_l2": fit.l2,
        **calibration,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "replicates_run": result.replicates_run,
        "replicates_full": result.replicates_full,
        "best": None,
    }
    best = result.best
    if best is None or best.score is None:
        return row
    model = train_recipe(spec, best.recipe, train_rows)
    confirm_seed = batch_seed(spec.seed, 0, CONFIRM_STREAM)
    twin = (
        result.confirmation.score
        if result.confirmation
        else Paired.of(replicate_gains(spec, model, confirm_seed, budget.confirm))
    )
    preset = Paired.of(
        replicate_gains(
            spec.model_copy(update={"environment": "sales"}), model, confirm_seed, budget.confirm
        )
    )
    production = spec.model_copy(update={"environment": scenario.production})
    replay = Paired.of(
        replicate_gains(production, model, batch_seed(spec.seed, 0, REPLAY_STREAM), budget.replay)
    )
    row.update(
        best=best.recipe.model_dump(),
        search=best.score.model_dump(),
        twin=twin.model_dump(),
        preset=preset.model_dump(),
        replay=replay.model_dump(),
        promoted=result.candidate is not None,
        promoted_without_confirmation=best.score.gain > 0
        and best.score.prob_better >= spec.confirm_probability,
        promoted_without_gate=best.score.gain > 0,
        true_win=replay.prob_better >= 0.95,
    )
    return row


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return float(np.mean([r[key] for r in rows])) if rows else float("nan")


def _rate(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.0f}%)" if n else "0/0 (–)"


def clopper_pearson(k: int, n: int) -> list[float]:
    """Exact (Clopper–Pearson) 95% interval of a rate k/n: what n scenarios can show."""
    if n == 0:
        return [0.0, 1.0]
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return [float(ci.low), float(ci.high)]


def accuracy(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    """Correlation and 95%-interval coverage of a twin's predicted effect vs production's."""
    done = [r for r in rows if r.get("replay")]
    pred = np.array([r[key]["gain"] for r in done])
    real = np.array([r["replay"]["gain"] for r in done])
    covered = [r[key]["lower"] <= r["replay"]["gain"] <= r[key]["upper"] for r in done]
    corr = float(np.corrcoef(pred, real)[0, 1]) if len(done) > 2 else float("nan")
    return {"n": len(done), "correlation": corr, "coverage": float(np.mean(covered))}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, key in (
        ("with confirmation", "promoted"),
        ("without confirmation", "promoted_without_confirmation"),
        ("best trial, no gate", "promoted_without_gate"),
    ):
        promoted = [r for r in rows if r.get(key)]
        wins = [r for r in promoted if r["true_win"]]
        nulls = [r for r in rows if r["flaw"] == "null"]
        false_null = [r for r in nulls if r.get(key)]
        flawed = [r for r in rows if r["flaw"] != "null"]
        out[label] = {
            "promotions": len(promoted),
            "true_wins": _rate(len(wins), len(promoted)),
            "true_wins_ci95": clopper_pearson(len(wins), len(promoted)),
            "false_promotions_null": _rate(len(false_null), len(nulls)),
            "false_promotions_null_ci95": clopper_pearson(len(false_null), len(nulls)),
            "flawed_fixed": _rate(
                len([r for r in flawed if r.get(key) and r["true_win"]]), len(flawed)
            ),
            "mean_seconds_to_promoted": _mean(promoted, "seconds"),
            "mean_cpu_seconds_to_promoted": _mean(promoted, "cpu_seconds"),
        }
    run = sum(r["replicates_run"] for r in rows)
    full = sum(r["replicates_full"] for r in rows)
    out["replicates"] = {"run": run, "full": full, "saved": full - run}
    out["simulation_accuracy"] = {
        "fitted twin": accuracy(rows, "twin"),
        "preset twin": accuracy(rows, "preset"),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--quick", action="store_true", help="8 scenarios, smaller budget")
    parser.add_argument(
        "--scenarios", type=int, default=None, help="N of the mix, proportions kept"
    )
    parser.add_argument(
        "--nulls", type=int, default=NULLS, help=f"null scenarios after the 18 flawed ({NULLS})"
    )
    parser.add_argument("--workers", type=int, default=2, help="scenarios run in parallel")
    parser.add_argument(
        "--calibrate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"fit the twin's business dynamics to {HISTORY_DAYS} days of production KPIs "
        "(--no-calibrate: keep the preset's)",
    )
    parser.add_argument("--json", default=None, help="write every row and the summary here")
    args = parser.parse_args()
    budget = QUICK if args.quick else Budget()
    budget = replace(budget, calibrate=args.calibrate)
    todo = scenarios(args.seed, args.scenarios or (8 if args.quick else None), args.nulls)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(run_scenario, i, flaw, args.seed, budget) for i, flaw in todo]
        rows = [f.result() for f in futures]
    wall = time.perf_counter() - start
    for r in rows:
        rep = r.get("replay") or {}
        print(
            f"#{r['index']:2d} {r['flaw']:9s} seg={r['flawed_segment']} "
            f"thr={r['champion_threshold']} localized={r['localized']} "
            f"promoted={r.get('promoted')} "
            f"(no-confirm {r.get('promoted_without_confirmation')}) "
            f"twin={r.get('twin', {}).get('gain', float('nan')):.0f} "
            f"prod={rep.get('gain', float('nan')):.0f} true_win={r.get('true_win')} "
            f"{r['seconds']:.1f}s"
        )
    summary = summarize(rows)
    summary["wall_seconds"] = wall
    summary["budget"] = asdict(budget)
    summary["scenarios"] = {
        f: sum(1 for _, g in todo if g == f) for f in sorted({g for _, g in todo})
    }
    summary["machine"] = f"{platform.machine()}, {os.cpu_count()} cpus, {args.workers} workers"
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"rows": rows, "summary": summary}, f, indent=2)


if __name__ == "__main__":
    main()
