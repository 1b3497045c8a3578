"""``twinloop calibrate``: fit the twin to a KPI history and print its Simulation Accuracy."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from twinloop.contract import invalid_input
from twinloop.errors import InvalidInput
from twinloop.replication.calibration.calibrate import calibrate, save_calibration
from twinloop.replication.calibration.models import CalibrationResult, CalibrationSettings
from twinloop.replication.history import read_history


def add_options(p: argparse.ArgumentParser) -> None:
    """Options shared by the command and the job entrypoint."""
    p.add_argument(
        "--domain",
        default="sales",
        help="preset to calibrate: sales, marketing, customer_success, analytics",
    )
    p.add_argument(
        "--holdout-days",
        type=int,
        default=14,
        help="last N days held back for Simulation Accuracy (default 14)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--grid",
        default=None,
        metavar="K,K,...",
        help="candidate satisfaction sensitivities (default 0,1,2,3,4,5,6,8)",
    )
    p.add_argument("--fit-replicates", type=int, default=None, help="runs per candidate (1)")
    p.add_argument("--eval-replicates", type=int, default=None, help="runs scored (4)")
    p.add_argument(
        "--fit-population",
        type=int,
        default=None,
        help="customers a fitting run simulates at least (60000)",
    )
    p.add_argument("--name", default=None, help="name and store id of the calibrated twin")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("calibrate", help="fit the twin to a KPI history (Simulation Accuracy)")
    p.add_argument("history", type=Path, help="daily KPI history: CSV, Parquet, Arrow or JSON")
    add_options(p)
    p.add_argument(
        "--save",
        action="store_true",
        help="store the twin (kind environments) and the result (kind calibrations)",
    )
    p.add_argument("--ray", action="store_true", help="run candidate twins on a Ray actor pool")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def settings_from(args: argparse.Namespace) -> CalibrationSettings:
    """CalibrationSettings from parsed options; a bad value is InvalidInput naming the option."""
    values: dict[str, Any] = {
        "domain": args.domain,
        "holdout_days": args.holdout_days,
        "seed": args.seed,
    }
    if args.grid is not None:
        try:
            values["sensitivity_grid"] = tuple(float(v) for v in args.grid.split(","))
        except ValueError:
            raise InvalidInput("grid", f"{args.grid!r} is not a list like 0,1,2,4,8") from None
    for option in ("fit_replicates", "eval_replicates", "fit_population", "name"):
        if getattr(args, option) is not None:
            values[option] = getattr(args, option)
    try:
        return CalibrationSettings.model_validate(values)
    except ValidationError as exc:
        raise invalid_input(exc, values) from exc


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    history = read_history(args.history)
    started = time.perf_counter()
    evaluator: Any = None
    if args.ray:
        from actors.calibration import RayEvaluator
        from actors.sandbox_pool import ensure_ray
        from twinloop.config import load_settings

        ensure_ray(load_settings().ray_address)
        evaluator = RayEvaluator()
    try:
        result = calibrate(history, settings, evaluate=evaluator)
    finally:
        if evaluator is not None:
            evaluator.shutdown()
    wall = time.perf_counter() - started
    saved = save(result) if args.save else None
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        print(render(result, args.history.name, wall, saved))
    return 0


def save(result: CalibrationResult) -> str:
    from cluster.store_factory import open_store
    from twinloop.config import load_settings

    config = load_settings()
    store = open_store(config.redis_url, config.data_dir)
    try:
        return save_calibration(store, result)
    finally:
        store.close()


def render(result: CalibrationResult, source: str, wall: float, saved: str | None) -> str:
    s = result.settings
    lines = [
        f"calibrated {result.environment.name} ({s.domain}) to {source}: from {result.start}, "
        f"{result.train_days} days fitted, last {result.holdout_days} held back; "
        f"{result.simulations} twin runs in {wall:.1f} s",
        f"fit quality: {result.fit_quality.upper()}",
        "",
        f"{'parameter':<34} {'value':>12} {'std err':>10}  method",
    ]
    for p in result.parameters:
        se = "" if p.stderr is None else f"{p.stderr:.3g}"
        lines.append(f"{p.name:<34} {p.value:>12.5g} {se:>10}  {p.method}")
    lines += [
        "",
        f"Simulation Accuracy on the last {result.holdout_days} days "
        f"(mean of {s.eval_replicates} seeded runs; 'twin' = a run scored against the others)",
        f"{'kpi':<16} {'r':>6} {'MAPE':>7} {'bias':>7} {'twin r':>7} {'twin MAPE':>10}  verdict",
    ]
    for a in result.accuracy:
        r = "  n/a" if a.pearson_r is None else f"{a.pearson_r:6.3f}"
        er = "  n/a" if a.expected_r is None else f"{a.expected_r:7.3f}"
        lines.append(
            f"{a.kpi:<16} {r:>6} {a.mape:>7.1%} {a.bias:>+7.1%} {er:>7} "
            f"{a.expected_mape:>10.1%}  {'ok' if a.passed else 'FAIL'}"
        )
    mean_r = "n/a" if result.mean_pearson_r is None else f"{result.mean_pearson_r:.3f}"
    lines.append(f"{'mean':<16} {mean_r:>6} {result.mean_mape:>7.1%}")
    if result.issues:
        lines.append("")
        for i in result.issues:
            lines.append(f"  {i.severity} [{i.code}] {i.field}: {i.message}")
    if saved is not None:
        lines.append(f"saved as environments/{saved} and calibrations/{saved}")
    return "\n".join(lines)
