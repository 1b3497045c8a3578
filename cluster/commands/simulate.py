"""``twinloop simulate``: run the twin for one domain and print a summary (or JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from twinloop.contract import invalid_input
from twinloop.errors import InvalidInput
from twinloop.sim.domains import DOMAINS, environment
from twinloop.sim.kpis import SimulationResult, StepKpis
from twinloop.sim.lifecycle import Simulation
from twinloop.sim.models import ModelProfile, PredictorModel
from twinloop.sim.pacing import Pacer
from twinloop.sim.spec import SimulationSpec


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("simulate", help="run the digital twin for one domain preset")
    p.add_argument("--domain", default="sales", help=f"one of {', '.join(DOMAINS)}")
    p.add_argument("--customers", type=int, default=None, help="initial customers")
    p.add_argument("--days", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", type=Path, default=None, help="model profile/predictor JSON")
    p.add_argument("--speed", type=float, default=0.0, help="pacing factor (0 = unpaced)")
    p.add_argument("--step", choices=["day", "hour"], default=None)
    p.add_argument("--out", type=Path, default=None, help="write KPIs as Parquet")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=run)


def load_model(path: Path) -> ModelProfile | PredictorModel:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            "model", f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})"
        ) from exc
    kind = data.get("type", "profile") if isinstance(data, dict) else None
    cls = PredictorModel if kind == "predictor" else ModelProfile
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc, data, field="model") from exc


def build_spec(args: argparse.Namespace) -> SimulationSpec:
    changes: dict[str, object] = {}
    if args.customers is not None:
        changes["initial_customers"] = args.customers
    if args.step is not None:
        changes["step"] = args.step
    try:
        env = environment(args.domain, **changes)
        models = [load_model(args.model)] if args.model else [ModelProfile()]
        return SimulationSpec(environment=env, models=models, days=args.days, seed=args.seed)
    except ValidationError as exc:
        raise invalid_input(exc) from exc


def _progress(total: int, enabled: bool):  # type: ignore[no-untyped-def]
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="step", desc="simulating", file=sys.stderr, mininterval=0.5)


def run(args: argparse.Namespace) -> int:
    if args.speed < 0:
        raise InvalidInput("speed", f"must be >= 0, got {args.speed}")
    if args.out is not None and not args.out.parent.exists():
        raise InvalidInput("out", f"folder {str(args.out.parent)!r} does not exist")
    spec = build_spec(args)
    sim = Simulation(spec)
    # A bar only when the run will visibly take time (≥ ~1 s): big populations or pacing.
    slow = args.speed > 0 or spec.environment.initial_customers * spec.n_steps > 20_000_000
    bar = _progress(spec.n_steps, slow and not args.json)

    def on_step(_: list[StepKpis]) -> None:
        if bar is not None:
            bar.update(1)

    result = sim.run(on_step=on_step, pacer=Pacer(args.speed) if args.speed > 0 else None)
    if bar is not None:
        bar.close()
    if args.out is not None:
        import pyarrow.parquet as pq

        pq.write_table(result.kpis, args.out)
    if args.json:
        print(result.summary.model_dump_json(indent=2))
    else:
        print(render_summary(result, args.out))
    return 0


def render_summary(result: SimulationResult, out: Path | None) -> str:
    s = result.summary
    lines = [
        f"twin {s.environment} ({s.domain}), {s.days:g} days, seed {s.seed}",
        f"  simulated {s.customer_days:,.0f} customer-days in {s.wall_seconds:.2f} s "
        f"({s.customer_days_per_second / 1e6:.1f} M customer-days/s, "
        f"{s.acceleration:,.0f}x real time)",
    ]
    for v in s.variants:
        lines += [
            f"  model {v.variant}: {v.customers:,} customers, "
            f"{v.final_active:,} active at the end, "
            f"{v.churned:,} churned",
            f"    conversions {v.conversions:,} of {v.interactions:,} interactions "
            f"({v.conversion_rate:.2%}), revenue {v.revenue:,.0f}, cost {v.cost:,.0f}, "
            f"profit {v.profit:,.0f}",
            f"    satisfaction {v.mean_satisfaction:.3f}, accuracy {v.model_accuracy:.3f}, "
            f"latency p50 {v.latency_p50_ms:.0f} ms / p95 {v.latency_p95_ms:.0f} ms",
        ]
    if out is not None:
        lines.append(f"  KPIs per step written to {out}")
    return "\n".join(lines)
