"""Championship: time to a decision for 8 candidates, and what common random numbers save.

    .venv/bin/python -m bench.championship [--quick]

1. Time to decision: a registry family with a champion and 8 candidates (two truly better, two
   worse, one better on average but worse on enterprise, three that tie the champion), round
   robin + confirmation, in-process and on a Ray actor pool of 2 workers (same fingerprint).
2. CRN savings: for every candidate against the champion, the paired half-width of the primary
   KPI against the half-width the same replicates give analysed as independent arms; replicates
   an independent-seed design needs for the CRN width = n · (unpaired / paired)². Checked once
   empirically: the best candidate re-run against the champion on independent seeds.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from actors.sandbox_pool import RayExecutor, ensure_ray
from twinloop.championship.gates import compare
from twinloop.championship.hold import hold_championship
from twinloop.championship.replicates import ScoredReplicate, round_robin_seed, run_scored
from twinloop.championship.spec import ChampionshipSpec
from twinloop.registry.artifacts import ArtifactStore
from twinloop.registry.models import ModelFamily
from twinloop.registry.registry import Registry
from twinloop.sandbox.executor import Executor, SerialExecutor
from twinloop.sandbox.plan import resolve_environment
from twinloop.sandbox.replicate import ReplicateTask
from twinloop.sandbox.seeding import INDEPENDENT_STREAM, replicate_seed
from twinloop.sim.models import ModelProfile, SegmentOverride
from twinloop.sim.spec import SimulationSpec
from twinloop.store import SqliteStore

CANDIDATES = [
    ("better +7 pts", ModelProfile(accuracy=0.85)),
    ("better +4 pts", ModelProfile(accuracy=0.82)),
    ("worse -3 pts", ModelProfile(accuracy=0.75)),
    ("worse -8 pts", ModelProfile(accuracy=0.70)),
    (
        "lopsided (enterprise 0.6)",
        ModelProfile(accuracy=0.9, segment_overrides={"enterprise": SegmentOverride(accuracy=0.6)}),
    ),
    ("tie, slower p95", ModelProfile(accuracy=0.78, latency_p95_ms=260.0)),
    ("tie, pricier", ModelProfile(accuracy=0.78, cost_per_call=0.02)),
    ("tie, exact copy", ModelProfile(accuracy=0.78)),
]


def family_registry(root: Path) -> Registry:
    store = SqliteStore(root / "twinloop.sqlite3")
    reg = Registry(store, ArtifactStore(store, root, max_bytes=1_000_000))
    reg.create_family(ModelFamily(name="bench", primary_kpi="revenue"))
    reg.register("bench", ModelProfile(accuracy=0.78))
    reg.move_alias("bench", "champion", "v1")
    for label, model in CANDIDATES:
        reg.register("bench", model, description=label)
    return reg


def timed(spec: ChampionshipSpec, executor: Executor, root: Path) -> tuple[float, Any]:
    reg = family_registry(root)
    start = time.perf_counter()
    decision = hold_championship(reg, spec, executor=executor)
    return time.perf_counter() - start, decision


def independent_width(spec: ChampionshipSpec, candidate: ModelProfile, n: int) -> float:
    """Half-width of champion − candidate when the candidate runs on independent seeds."""
    env = resolve_environment("sales", customers=spec.customers, step=None)
    sims = [
        SimulationSpec(
            environment=env, models=[m.model_copy(update={"name": m_name})], days=spec.days
        )
        for m_name, m in (("champion", ModelProfile(accuracy=0.78)), ("candidate", candidate))
    ]
    base = [
        run_scored(ReplicateTask(0, r, round_robin_seed(spec.seed, r), sims[0])) for r in range(n)
    ]
    chal = [
        run_scored(ReplicateTask(1, r, replicate_seed(spec.seed, r, INDEPENDENT_STREAM), sims[1]))
        for r in range(n)
    ]
    # compare() insists on paired seeds; relabel so it pairs by index (the pairing is meaningless
    # here, which is the point: its unpaired width is the honest one for independent arms).
    chal = [ScoredReplicate(c.cell, c.replicate, b.seed, c.values, c.segments, 0.0, 0.0)
            for b, c in zip(base, chal, strict=True)]  # fmt: skip
    return compare(base, chal, "revenue", confidence=spec.confidence).unpaired_half_width


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small environment, for a smoke run")
    parser.add_argument("--replicates", type=int, default=10)
    args = parser.parse_args()
    customers, days = (500, 10) if args.quick else (5000, 30)
    spec = ChampionshipSpec(
        family="bench",
        versions=[f"v{i}" for i in range(2, 2 + len(CANDIDATES))],
        replicates=args.replicates,
        customers=customers,
        days=days,
        seed=7,
        promote=False,
    )
    print(f"# Championship benchmark — {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}\n")
    print(f"sales preset, {customers} initial customers, {days} days, champion accuracy 0.78, "
          f"8 candidates, {spec.replicates} round-robin + {spec.confirmation_n} confirmation "
          "replicates\n")  # fmt: skip
    ensure_ray(num_cpus=2)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = []
        warm = spec.model_copy(update={"replicates": 2, "customers": 200, "days": 2})
        for name, make in (("serial (in-process)", SerialExecutor), ("ray pool, 2 workers", None)):
            folder = root / name.split()[0]
            folder.mkdir()
            executor = make() if make is not None else RayExecutor(2, label="bench-champ")
            try:
                (folder / "warm").mkdir()
                timed(warm, executor, folder / "warm")  # start actors, import the twin in them
                wall, decision = timed(spec, executor, folder)
            finally:
                getattr(executor, "shutdown", lambda: None)()
            rows.append((name, wall, decision))
    print("| executor | wall s to decision | replicates run | verdict | fingerprint |")
    print("|---|---:|---:|---|---|")
    for name, wall, d in rows:
        e = d.result.execution
        print(f"| {name} | {wall:.1f} | {e.replicates_run} | {d.verdict} {d.winner or ''} | "
              f"{d.fingerprint[:12]} |")  # fmt: skip
    decision = rows[-1][2]
    r = decision.result
    labels = dict(zip(spec.versions, [c[0] for c in CANDIDATES], strict=True))
    print("\n| rank | version | candidate | BT score [95% interval] | wins/games |")
    print("|---:|---|---|---|---:|")
    for g in sorted(r.ratings, key=lambda g: g.rank):
        label = labels.get(g.name, "champion")
        print(f"| {g.rank} | {g.name} | {label} | {g.score:+.2f} [{g.lower:+.2f}, {g.upper:+.2f}] "
              f"| {g.wins:g}/{g.games} |")  # fmt: skip
    print("\nconfirmation:", "; ".join(r.reasons))
    print("\n## CRN pairing vs independent seeds (revenue, candidate − champion)\n")
    print("| version | candidate | paired half-width | unpaired half-width | replicates saved ×|")
    print("|---|---|---:|---:|---:|")
    factors = []
    for c in r.round_robin:
        p = c.primary
        factor = (p.unpaired_half_width / p.half_width) ** 2 if p.half_width > 0 else float("inf")
        factors.append(factor)
        print(f"| {c.name} | {labels[c.name]} | {p.half_width:,.0f} | "
              f"{p.unpaired_half_width:,.0f} | {factor:,.1f} |")  # fmt: skip
    finite = sorted(f for f in factors if f != float("inf"))
    print(f"\nmedian factor {finite[len(finite) // 2]:.1f} (exact copies tie on every replicate: "
          "their paired width is 0)")  # fmt: skip
    best = CANDIDATES[0][1]
    n = spec.replicates
    indep = independent_width(spec, best, n)
    crn = next(c.primary.half_width for c in r.round_robin if c.name == "v2")
    print(f"\nempirical check, {CANDIDATES[0][0]} vs champion, {n} replicates: CRN half-width "
          f"{crn:,.0f}, independent-seed half-width {indep:,.0f} → an independent design needs "
          f"≈ {n * (indep / crn) ** 2:,.0f} replicates for the CRN width")  # fmt: skip
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
