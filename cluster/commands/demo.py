"""``twinloop demo``: the main job on embedded defaults (local Ray, no Redis).

For now: one run of the sales twin with its summary. The failure-to-fix story (A/B test,
analysis, what-if, sandbox validation, report) grows here as its parts land.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cluster.commands.simulate import render_summary
from twinloop.errors import InvalidInput
from twinloop.sim.domains import environment
from twinloop.sim.lifecycle import simulate
from twinloop.sim.models import ModelProfile
from twinloop.sim.spec import SimulationSpec


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run the main job on the embedded defaults")
    p.add_argument("--out", type=Path, default=Path("twinloop-demo"), help="output folder")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput("out", f"cannot create {str(out)!r}: {exc.strerror}") from exc
    env = environment("sales", initial_customers=100_000)
    models = [
        ModelProfile(name="model-v2", accuracy=0.85, latency_p50_ms=100, latency_p95_ms=220),
        ModelProfile(name="model-v3", accuracy=0.80, latency_p50_ms=250, latency_p95_ms=600),
    ]
    spec = SimulationSpec(environment=env, models=models, days=30, seed=args.seed)
    result = simulate(spec)
    kpis = out / "kpis.parquet"
    import pyarrow.parquet as pq

    pq.write_table(result.kpis, kpis)
    print(render_summary(result, kpis))
    return 0
