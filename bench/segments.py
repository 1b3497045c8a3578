"""Segment root causes against a planted truth: how often the analyzer names the flawed segment.

    nice -n 10 .venv/bin/python -m bench.segments [--seeds 20] [--units 40000]

Raw A/B units with ``plan`` (free/paid), ``country`` (5) and ``device`` (3); the loser's accuracy
drops by ``drop`` only in ``plan=free``, which holds a share of 20–80% of the units; plus a null
case where the loser is equally worse everywhere (no segment should be named) and a run with a
``user_id`` column (it must be left out and the analysis stay fast). Per case: the share of
seeds whose findings are exactly ``{plan=free}``, the baseline used, and the mean wall time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter

import numpy as np
import pyarrow as pa

from twinloop.analysis.analyzer import FailureAnalysis, analyze_failure
from twinloop.analysis.settings import AnalyzerSettings

RESULT = {"experimentId": "bench-segments", "variants": [{"name": "A", "control": True}]}
SHARES = (0.2, 0.5, 0.6, 0.7, 0.8)


def units(
    n: int, share: float, seed: int, drop_free: float, drop_paid: float, ids: bool
) -> pa.Table:
    rng = np.random.default_rng(np.random.SeedSequence([13, seed]))
    treated = rng.random(n) < 0.5
    free = rng.random(n) < share
    accuracy = 0.85 - treated * np.where(free, drop_free, drop_paid)
    columns = {
        "variant": np.where(treated, "B", "A"),
        "plan": np.where(free, "free", "paid"),
        "country": rng.choice(["DE", "FR", "US", "UK", "ES"], n),
        "device": rng.choice(["ios", "android", "web"], n),
        "accuracy": rng.random(n) < accuracy,
    }
    if ids:
        columns["user_id"] = np.char.add("u", np.arange(n).astype(str))
    return pa.table(columns)


def found(analysis: FailureAnalysis) -> tuple[frozenset[str], str]:
    accuracy = next((s for s in analysis.segments if s.metric == "accuracy"), None)
    if accuracy is None:
        return frozenset(), "-"
    return frozenset(f.label for f in accuracy.findings), accuracy.baseline


def run_case(n: int, seeds: int, share: float, drop: tuple[float, float], ids: bool) -> str:
    hits, baselines, times = 0, Counter[str](), []
    want = frozenset({"plan=free"}) if drop[0] != drop[1] else frozenset()
    for seed in range(seeds):
        table = units(n, share, seed, drop[0], drop[1], ids)
        start = time.perf_counter()
        analysis = analyze_failure(RESULT, raw_table=table, settings=AnalyzerSettings())
        times.append(time.perf_counter() - start)
        labels, baseline = found(analysis)
        hits += labels == want
        baselines[baseline] += 1
    truth = "{plan=free}" if want else "{} (even loss)"
    used = ", ".join(f"{k} {v}" for k, v in sorted(baselines.items()))
    extra = " + user_id column" if ids else ""
    return (
        f"| {share:.0%}{extra} | {drop[0]:.2f} / {drop[1]:.2f} | {truth} | {hits}/{seeds} | "
        f"{used} | {statistics.fmean(times):.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.segments", description=__doc__)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--units", type=int, default=40_000)
    args = parser.parse_args(argv)
    lines = [
        f"{args.units:,} units per seed, {args.seeds} seeds per case",
        "",
        "| plan=free share | drop free / paid | truth | exactly found | baseline used | s/run |",
        "|---|---|---|---|---|---|",
    ]
    for share in SHARES:
        lines.append(run_case(args.units, args.seeds, share, (0.10, 0.0), False))
    lines.append(run_case(args.units, args.seeds, 0.6, (0.08, 0.08), False))
    lines.append(run_case(100_000, max(args.seeds // 4, 1), 0.6, (0.10, 0.0), True))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
