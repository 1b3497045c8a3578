"""Write docs/examples/analyzer/twin-ab.parquet: per-customer rows of an A/B test in the twin.

model-v3 is four times slower than model-v2 and blind on enterprise leads (accuracy 0.4 there,
0.85 elsewhere); 50/50 allocation, 30 days of the sales preset, seed 1. The rows carry variant,
segment, channel, arrival_day and the per-customer metrics (see docs/simulator.md).

Run: ``.venv/bin/python docs/examples/analyzer/make_units.py [OUT.parquet]``
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq

from twinloop.sim.domains import environment
from twinloop.sim.lifecycle import simulate
from twinloop.sim.models import ModelProfile
from twinloop.sim.spec import SimulationSpec


def main(out: Path) -> None:
    good = ModelProfile(name="model-v2", accuracy=0.85, latency_p50_ms=100, latency_p95_ms=200)
    bad = ModelProfile(
        name="model-v3",
        accuracy=0.85,
        latency_p50_ms=400,
        latency_p95_ms=900,
        segment_overrides={"enterprise": {"accuracy": 0.4}},
    )
    spec = SimulationSpec(
        environment=environment("sales"),
        models=[good, bad],
        allocation=[0.5, 0.5],
        days=30,
        seed=1,
        record_units=True,
    )
    units = simulate(spec).units
    assert units is not None
    pq.write_table(units, out)
    print(f"wrote {units.num_rows} customers to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("twin-ab.parquet"))
