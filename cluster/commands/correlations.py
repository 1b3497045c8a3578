"""``twinloop correlations``: lagged, de-trended, FDR-corrected correlations of a KPI history."""

from __future__ import annotations

import argparse
from pathlib import Path

from twinloop.errors import InvalidInput
from twinloop.replication.correlation import CorrelationResult, CorrelationSettings, correlate
from twinloop.replication.history import KpiHistory, read_history


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "correlations", help="find lagged relations between the metrics of a KPI history"
    )
    p.add_argument("history", type=Path, help="KPI history: .csv, .parquet, .arrow or .json")
    p.add_argument("--max-lag", type=int, default=10, help="largest lag in steps (default 10)")
    p.add_argument("--method", choices=["pearson", "spearman"], default="pearson")
    p.add_argument("--detrend", choices=["difference", "residual", "none"], default="difference")
    p.add_argument("--period", type=int, default=None, help="season length in steps (e.g. 7)")
    p.add_argument("--alpha", type=float, default=0.05, help="false discovery rate (default 0.05)")
    p.add_argument("--timestamp", default=None, help="timestamp column (default: detected)")
    p.add_argument(
        "--segment",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="keep one segment (repeatable)",
    )
    p.add_argument(
        "--collapse",
        choices=["sum", "mean"],
        default=None,
        help="aggregate over segments instead of selecting one",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def single_series(history: KpiHistory, segment: list[str], collapse: str | None) -> KpiHistory:
    """Reduce a segmented history to one series per metric as the command line asked."""
    chosen = {}
    for item in segment:
        column, sep, value = item.partition("=")
        if not sep:
            raise InvalidInput("segment", f"{item!r} is not COLUMN=VALUE")
        chosen[column.strip()] = value.strip()
    if chosen:
        history = history.select(**chosen)
    if collapse is not None:
        history = history.collapse("sum" if collapse == "sum" else "mean")
    return history


def run(args: argparse.Namespace) -> int:
    _check_numbers(args)
    settings = CorrelationSettings(
        max_lag=args.max_lag,
        method=args.method,
        detrend=args.detrend,
        period=args.period,
        alpha=args.alpha,
    )
    history = single_series(
        read_history(args.history, timestamp=args.timestamp), args.segment, args.collapse
    )
    result = correlate(history, settings)
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        print(render(result, history))
    return 0


def _check_numbers(args: argparse.Namespace) -> None:
    if args.max_lag < 0:
        raise InvalidInput("max_lag", f"{args.max_lag} must be 0 or more")
    if not 0 < args.alpha < 1:
        raise InvalidInput("alpha", f"{args.alpha} must be between 0 and 1")
    if args.period is not None and args.period < 2:
        raise InvalidInput("period", f"{args.period} must be 2 or more")


def render(result: CorrelationResult, history: KpiHistory) -> str:
    s = result.settings
    lines = [
        f"{history.n_rows} rows, {len(result.metrics)} metrics, {result.points} points after "
        f"de-trending ({s.detrend}{f', period {s.period}' if s.period else ''}); "
        f"{result.tests} tests (lags 0..{s.max_lag}), BH false discovery rate {s.alpha:g}",
    ]
    for f in [*history.findings, *result.findings]:
        lines.append(f"  note [{f.code}] {f.field}: {f.message}")
    if not result.pairs:
        lines.append("no significant relations")
        return "\n".join(lines)
    lines.append(
        f"{'leader':<18} {'follower':<18} {'lag':>4} {'pearson':>8} {'spearman':>8} {'q-value':>9}"
    )
    for p in result.pairs:
        # At lag 0 neither leads: the pair is printed in the history's column order.
        leader = p.leader or p.metric_a
        follower = p.follower or p.metric_b
        lines.append(
            f"{leader:<18} {follower:<18} {p.lag:>4} {p.pearson:>+8.3f} "
            f"{p.spearman:>+8.3f} {p.q_value:>9.2g}"
        )
    return "\n".join(lines)
