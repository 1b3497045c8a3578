"""The loop benchmark: the whole improvement loop, judged in a hidden production.

    nice -n 10 .venv/bin/python -m bench.loop [--quick] [--nulls 60] [--latency 6]
        [--ab-customers 30000] [--workers 2] [--json out.json]
    .venv/bin/python -m bench.loop --summarize out.json.rows.jsonl   # a cut run's rows

For each seeded scenario (``bench/loop_scenarios.py``: a segment left out, a mis-set threshold,
both, a champion served slower than it needs to be, a slow *and* segment-blind one, and null
scenarios where nothing can truly beat the champion) the loop is given what a user has
(``bench/loop_world.py``: the A/B rows, production's KPI history, a labelled sample) and runs
every stage of ``twinloop.loop`` — analyzed → planned → candidates (retraining, or the
performance / business agent) → championship (twin, fresh seeds) → canary — with the canary's
outcomes drawn from the hidden production, not the twin. A promoted model is then replayed
head to head against the champion in the hidden production on seeds no stage used: a *true win*
is P(better) ≥ 0.95 there.

Reported: improvement rate (promoted / scenarios, per flaw), true win rate of promoted models
with its Clopper–Pearson interval, false promotions in null scenarios with theirs, time from the
failure to the decision (wall and CPU, per scenario on one worker), and simulation accuracy — the
championship's twin-predicted relative effect against the canary's production-measured one
(correlation, mean error, coverage of the measured effect by the predicted interval).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.loop_replay import QUICK, REPLAY_STREAM, Budget, clopper_pearson
from bench.loop_scenarios import NULLS, Flaw, latency_scenarios, make_scenario, scenarios
from bench.loop_world import build_world, production_traffic
from twinloop.improve.search import Paired, RetrainSpec, batch_seed
from twinloop.loop import STAGE_OUTPUTS, run_improvement
from twinloop.loop.canary_stage import canary
from twinloop.loop.stages import default_stages
from twinloop.sandbox.headtohead import run_head_to_head
from twinloop.sandbox.specs import HeadToHeadSpec

LATENCY = 6  # latency scenarios by default (3 latency, 3 latency + segment)
REPLAY_CUSTOMERS = 2_000
REPLAY_DAYS = 14.0


def _outcome(world: Any, stage: str) -> dict[str, Any]:
    found = world.store.find(STAGE_OUTPUTS, f"{world.improvement_id}.{stage}")
    return {} if found is None else dict(found.doc["outcome"])


def replay(scenario: Any, candidate: Any, replicates: int) -> tuple[Paired, float]:
    """The promoted model against the champion in the hidden production, on new seeds: the
    paired revenue gain and the champion's mean revenue (for a relative effect)."""
    spec = RetrainSpec(
        environment=scenario.production, champion=scenario.champion, kpi="revenue",
        customers=REPLAY_CUSTOMERS, days=REPLAY_DAYS, seed=scenario.seed % 2**62,
    )  # fmt: skip
    seed = batch_seed(spec.seed, 1, REPLAY_STREAM)  # batch 1: loop_replay's replay is batch 0
    h2h = HeadToHeadSpec(
        environment=spec.environment, customers=spec.customers, days=spec.days, seed=seed,
        replicates=replicates, baseline=spec.champion, challenger=candidate, kpis=["revenue"],
    )  # fmt: skip
    result = run_head_to_head(h2h)
    table = result.table.to_pydict()
    values = {
        (r, a): float(v)
        for r, a, v in zip(table["replicate"], table["arm"], table["revenue"], strict=True)
    }
    gains = [values[(i, "challenger")] - values[(i, "baseline")] for i in range(replicates)]
    base = next(k.mean for k in result.baseline_kpis if k.kpi == "revenue")
    return Paired.of(gains), float(base)


def run_scenario(index: int, flaw: Flaw, seed: int, budget: Budget) -> dict[str, Any]:
    """One scenario through the whole loop; its row of the report."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    scenario = make_scenario(index, flaw, seed)
    with tempfile.TemporaryDirectory(prefix="twinloop-bench-") as tmp:
        world = build_world(scenario, budget, Path(tmp))
        stages = {
            **default_stages(),
            "canary": functools.partial(canary, traffic=production_traffic(scenario.production)),
        }
        start, cpu = time.perf_counter(), time.process_time()
        done = run_improvement(world.store, world.improvement_id, stages)
        loop = time.perf_counter() - start, time.process_time() - cpu
        before = [world.info["analysis_seconds"], world.info["twin_seconds"]]
        seconds = loop[0] + sum(b[0] for b in before)  # failure analysed → decision
        cpu_seconds = loop[1] + sum(b[1] for b in before)
        planned, cand = _outcome(world, "planned"), _outcome(world, "candidates")
        champ, can = _outcome(world, "championship"), _outcome(world, "canary")
        row: dict[str, Any] = {
            "index": index, "flaw": flaw, "flawed_segment": scenario.flawed_segment,
            "champion_threshold": scenario.champion_threshold,
            "champion_latency_p50_ms": scenario.champion.latency_p50_ms,
            **world.info, "decision": done.stage, "status": done.status, "reason": done.reason,
            "chosen": planned.get("chosen"), "registered": cand.get("registered"),
            "qa_failed": (cand.get("qa") or {}).get("failed_scenario"),
            "qa_vetoed_first": (cand.get("vetoed") or {}).get("registered"),
            "verdict": champ.get("verdict"),
            "predicted": [champ.get(k) for k in ("predicted_effect", "predicted_lower",
                                                 "predicted_upper")],
            "canary": can.get("action"),
            "measured": [can.get(k) for k in ("measured_effect", "measured_lower",
                                              "measured_upper")],
            "canary_batches": can.get("batches"),
            "stage_seconds": {r.stage: r.duration_seconds for r in done.records},
            "loop_seconds": list(loop), "seconds": seconds, "cpu_seconds": cpu_seconds,
            "promoted": done.stage == "promoted",
        }  # fmt: skip
        if row["promoted"]:
            model = world.registry.runnable(world.registry.version("bench", cand["registered"]))
            result, base = replay(scenario, model, budget.replay)
            row["replay"] = result.model_dump()
            row["replay_relative"] = result.gain / base if base else None
            row["true_win"] = result.prob_better >= 0.95
    return row


def rate(k: int, n: int) -> dict[str, Any]:
    """k/n with its exact 95% interval."""
    return {"k": k, "n": n, "rate": k / n if n else None, "ci95": clopper_pearson(k, n)}


def effect_accuracy(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Twin-predicted vs canary-measured relative effect over scenarios that reached the
    canary: Pearson correlation, mean error (measured − predicted), coverage of the measured
    effect by the championship's interval."""
    pairs = [
        (r["predicted"], r["measured"][0])
        for r in rows
        if r.get("canary") and r["predicted"][0] is not None and r["measured"][0] is not None
    ]
    if not pairs:
        return {"n": 0, "correlation": None, "mean_error": None, "coverage": None}
    pred = np.array([p[0] for p, _ in pairs])
    real = np.array([m for _, m in pairs])
    covered = [p[1] is not None and p[1] <= m <= p[2] for p, m in pairs]
    spread = len(pairs) > 2 and pred.std() > 0 and real.std() > 0
    return {
        "n": len(pairs),
        "correlation": float(np.corrcoef(pred, real)[0, 1]) if spread else None,
        "mean_error": float(np.mean(real - pred)),
        "mean_absolute_error": float(np.mean(np.abs(real - pred))),
        "coverage": float(np.mean(covered)),
    }


def _seconds(rows: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    values = [r[key] for r in rows]
    if not values:
        return {"mean": None, "median": None, "max": None}
    return {"mean": float(np.mean(values)), "median": float(np.median(values)),
            "max": float(np.max(values))}  # fmt: skip


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The headline figures of a run's rows."""
    flawed = [r for r in rows if r["flaw"] != "null"]
    nulls = [r for r in rows if r["flaw"] == "null"]
    promoted = [r for r in rows if r["promoted"]]
    tried = [r for r in nulls if r.get("registered")]
    wins = [r for r in promoted if r.get("true_win")]
    by_flaw: dict[str, Any] = {}
    for flaw in sorted({r["flaw"] for r in rows}):
        mine = [r for r in rows if r["flaw"] == flaw]
        by_flaw[flaw] = {
            "scenarios": len(mine),
            "promoted": sum(r["promoted"] for r in mine),
            "true_wins": sum(bool(r.get("true_win")) for r in mine),
            "decisions": {d: sum(r["decision"] == d for r in mine)
                          for d in sorted({r["decision"] for r in mine})},
            "agents": {a: sum(str(r["chosen"]) == a for r in mine)
                       for a in sorted({str(r["chosen"]) for r in mine})},
        }  # fmt: skip
    return {
        "improvement_rate": rate(sum(r["promoted"] for r in flawed), len(flawed)),
        "fixed_rate": rate(sum(bool(r.get("true_win")) for r in flawed), len(flawed)),
        "true_win_rate": rate(len(wins), len(promoted)),
        "false_promotions_null": rate(sum(r["promoted"] for r in nulls), len(nulls)),
        "false_promotions_null_with_candidate": rate(sum(r["promoted"] for r in tried), len(tried)),
        "null_significant_losses": sum(r.get("analysis_status") == "significant" for r in nulls),
        "qa_vetoes_repaired": rate(
            sum(bool(r.get("qa_vetoed_first")) and not r.get("qa_failed") for r in rows),
            sum(bool(r.get("qa_vetoed_first")) for r in rows),
        ),
        "qa_vetoed_in_the_end": sum(bool(r.get("qa_failed")) for r in rows),
        "by_flaw": by_flaw,
        "time_to_improvement_seconds": _seconds(promoted, "seconds"),
        "time_to_improvement_cpu_seconds": _seconds(promoted, "cpu_seconds"),
        "time_to_decision_seconds": _seconds(rows, "seconds"),
        "simulation_accuracy": effect_accuracy(rows),
    }


def table(summary: dict[str, Any]) -> str:
    """The headline table (markdown)."""

    def show(r: dict[str, Any]) -> str:
        if not r["n"]:
            return "0/0"
        lo, hi = r["ci95"]
        return f"{r['k']}/{r['n']} ({100 * r['rate']:.0f}%; 95% CI {100 * lo:.0f}–{100 * hi:.0f}%)"

    t, c = summary["time_to_improvement_seconds"], summary["time_to_improvement_cpu_seconds"]
    acc = summary["simulation_accuracy"]

    def num(x: float | None, fmt: str = ".2f") -> str:
        return "n/a" if x is None else format(x, fmt)

    lines = [
        "| figure | value |",
        "|---|---|",
        f"| improvement rate (flawed scenarios promoted) | {show(summary['improvement_rate'])} |",
        f"| flawed scenarios truly fixed | {show(summary['fixed_rate'])} |",
        f"| true win rate of promoted models (goal ≥ 90%) | {show(summary['true_win_rate'])} |",
        f"| false promotions, null (goal ≤ 5%) | {show(summary['false_promotions_null'])} |",
        "| false promotions, nulls that got a candidate registered | "
        f"{show(summary['false_promotions_null_with_candidate'])} |",
        f"| time to improvement, wall: median / mean / max (s) | {num(t['median'], '.0f')} / "
        f"{num(t['mean'], '.0f')} / {num(t['max'], '.0f')} |",
        f"| time to improvement, CPU: median / mean (s) | {num(c['median'], '.0f')} / "
        f"{num(c['mean'], '.0f')} |",
        "| qa vetoes repaired by the cold-start round / vetoed in the end | "
        f"{show(summary['qa_vetoes_repaired'])} / {summary['qa_vetoed_in_the_end']} |",
        f"| simulation accuracy (n = {acc['n']}): correlation / mean error / coverage | "
        f"{num(acc['correlation'])} / {num(acc['mean_error'], '+.3f')} / "
        f"{num(acc['coverage'])} |",
    ]
    for flaw, f in summary["by_flaw"].items():
        lines.append(
            f"| {flaw}: promoted / true wins / scenarios | {f['promoted']} / {f['true_wins']} / "
            f"{f['scenarios']} — agents {f['agents']}, ends {f['decisions']} |"
        )
    return "\n".join(lines)


def run_all(
    todo: list[tuple[int, Flaw]], seed: int, budget: Budget, workers: int, out: str | None
) -> list[dict[str, Any]]:
    """Every scenario on ``workers`` processes; with ``out``, each row is also appended to
    ``<out>.rows.jsonl`` as it lands, so a run cut short still leaves its finished rows."""
    with (
        ProcessPoolExecutor(max_workers=workers) as pool,
        open(f"{out}.rows.jsonl" if out else os.devnull, "w", encoding="utf-8") as partial,
    ):
        futures = [pool.submit(run_scenario, i, flaw, seed, budget) for i, flaw in todo]
        for done in as_completed(futures):
            partial.write(json.dumps(done.result()) + "\n")
            partial.flush()
        return [f.result() for f in futures]  # in scenario order, whatever finished first


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--quick", action="store_true", help="8 + 2 latency scenarios, smaller")
    parser.add_argument("--scenarios", type=int, default=None, help="N of the mix, kept mixed")
    parser.add_argument("--nulls", type=int, default=NULLS, help=f"null scenarios ({NULLS})")
    parser.add_argument("--latency", type=int, default=None, help=f"latency ones ({LATENCY})")
    parser.add_argument(
        "--ab-customers", type=int, default=None, help="customers of the production A/B test"
    )
    parser.add_argument("--workers", type=int, default=2, help="scenarios run in parallel")
    parser.add_argument("--json", default=None, help="write every row and the summary here")
    parser.add_argument(
        "--summarize", default=None, help="only summarise the rows of a (cut) run's .rows.jsonl"
    )
    args = parser.parse_args()
    if args.summarize:
        with open(args.summarize, encoding="utf-8") as f:
            kept = sorted((json.loads(line) for line in f), key=lambda r: r["index"])
        print(table(summarize(kept)))
        print(json.dumps(summarize(kept), indent=2))
        return
    budget = replace(QUICK if args.quick else Budget(), calibrate=True)
    if args.ab_customers:
        budget = replace(budget, ab_customers=args.ab_customers)
    todo = scenarios(args.seed, args.scenarios or (8 if args.quick else None), args.nulls)
    todo += latency_scenarios(args.latency if args.latency is not None else
                              (2 if args.quick else LATENCY))  # fmt: skip
    start = time.perf_counter()
    rows = run_all(todo, args.seed, budget, args.workers, args.json)
    wall = time.perf_counter() - start
    for r in rows:
        print(
            f"#{r['index']:4d} {r['flaw']:13s} {r['status']:8s} {r['decision']:11s} "
            f"agent={r['chosen']} v={r['registered']} champ={r['verdict']} "
            f"canary={r['canary']} pred={r['predicted'][0]} meas={r['measured'][0]} "
            f"true_win={r.get('true_win')} {r['seconds']:.0f}s"
        )
    summary = summarize(rows)
    summary.update(
        wall_seconds=wall, budget=asdict(budget),
        scenarios={f: sum(1 for _, g in todo if g == f) for f in sorted({g for _, g in todo})},
        machine=f"{platform.machine()}, {os.cpu_count()} cpus, {args.workers} workers",
    )  # fmt: skip
    print(table(summary))
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"rows": rows, "summary": summary}, f, indent=2)


if __name__ == "__main__":
    main()
