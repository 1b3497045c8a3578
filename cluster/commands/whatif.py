"""``twinloop what-if``: propagate relative metric changes through the causal metric graph.

With ``--observed`` (one unit's metrics) and ``--set METRIC=VALUE`` it answers a counterfactual
for that unit instead (abduction through the graph fitted on ``--history``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cluster.commands.correlations import single_series
from twinloop.contract import invalid_input
from twinloop.errors import InvalidInput
from twinloop.replication.findings import Finding
from twinloop.replication.history import KpiHistory, read_history
from twinloop.replication.whatif.analytic import WhatIfResult, WhatIfSettings, parse_change, what_if
from twinloop.replication.whatif.counterfactual import CounterfactualResult, counterfactual
from twinloop.replication.whatif.graph import CausalGraph, graph_from_json
from twinloop.replication.whatif.strengths import VUONG_Z, EdgeStrength


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("what-if", help="predict metrics after relative changes (causal graph)")
    p.add_argument(
        "--base",
        type=Path,
        default=None,
        help='JSON: {metric: value}, or {"base_metrics": {...}, "changes": {...}}',
    )
    p.add_argument(
        "--observed",
        type=Path,
        default=None,
        help="counterfactual: JSON {metric: value} of one observed unit (a day, a customer)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="counterfactual: the value a metric would have had (repeatable)",
    )
    p.add_argument(
        "--change",
        action="append",
        default=[],
        metavar="METRIC=CHANGE",
        help="relative change, e.g. accuracy=0.1 or latency=-20%% (repeatable)",
    )
    p.add_argument("--history", type=Path, default=None, help="KPI history to fit strengths")
    p.add_argument(
        "--timestamp",
        default=None,
        help="with --history: the timestamp column (default: detected; none: rows are "
        "cross-sectional)",
    )
    p.add_argument(
        "--segment",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="with --history: keep one segment (repeatable)",
    )
    p.add_argument(
        "--collapse",
        choices=["sum", "mean"],
        default=None,
        help="with --history: aggregate over segments",
    )
    p.add_argument("--graph", type=Path, default=None, help='JSON: {"edges": ["a -> b", ...]}')
    p.add_argument(
        "--domain",
        default="generic",
        help="default graph: generic, marketing, sales, customer_success, analytics",
    )
    p.add_argument("--transform", choices=["auto", "log", "linear"], default="auto")
    p.add_argument("--fit-on", choices=["levels", "differences"], default="levels")
    p.add_argument("--draws", type=int, default=2000, help="Monte Carlo draws for the interval")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def _load_json(path: Path, field: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(field, f"file not found: {path}") from None
    except json.JSONDecodeError as exc:
        message = f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})"
        raise InvalidInput(field, message) from exc


def run(args: argparse.Namespace) -> int:
    if args.observed is not None:
        return run_counterfactual(args)
    if args.base is None:
        raise InvalidInput("base", "give --base (a what-if) or --observed (a counterfactual)")
    data = _load_json(args.base, "base")
    if not isinstance(data, dict):
        raise InvalidInput("base", f"{args.base} must hold a JSON object")
    base = data.get("base_metrics", data.get("baseMetrics", data))
    if not isinstance(base, dict):
        raise InvalidInput("base.base_metrics", "must be an object of metric: value")
    changes: dict[str, float | str] = dict(data.get("changes", {})) if base is not data else {}
    for text in args.change:
        name, value = parse_change(text, "change")
        changes[name] = value
    graph, history, settings = _common(args)
    result = what_if(base, changes, graph=graph, history=history, settings=settings)
    print(result.model_dump_json(indent=2) if args.json else render(result))
    return 0


def run_counterfactual(args: argparse.Namespace) -> int:
    """``--observed unit.json --set latency=200 --history h.csv``: the unit under the change."""
    if args.base is not None or args.change:
        raise InvalidInput(
            "observed", "--observed (a counterfactual) takes --set, not --base or --change"
        )
    targets: dict[str, float] = {}
    for text in args.set:
        name, sep, value = text.partition("=")
        try:
            number = float(value) if sep and name.strip() else None
        except ValueError:
            number = None
        if number is None:
            raise InvalidInput("set", f"{text!r} is not METRIC=VALUE (e.g. latency=200)")
        targets[name.strip()] = number
    observed = _load_json(args.observed, "observed")
    if not isinstance(observed, dict):
        raise InvalidInput("observed", f"{args.observed} must hold a JSON object of metric: value")
    graph, history, settings = _common(args)
    if history is None:
        raise InvalidInput("history", "a counterfactual needs --history to fit the graph from")
    result = counterfactual(observed, targets, history=history, graph=graph, settings=settings)
    print(result.model_dump_json(indent=2) if args.json else render_counterfactual(result))
    return 0


def _common(
    args: argparse.Namespace,
) -> tuple[CausalGraph | None, KpiHistory | None, WhatIfSettings]:
    """The graph, the history and the settings both modes read from the flags."""
    graph: CausalGraph | None = None
    if args.graph is not None:
        graph = graph_from_json(_load_json(args.graph, "graph"))
    history: KpiHistory | None = None
    if args.history is not None:
        table = read_history(args.history, timestamp=args.timestamp, cross_sectional=True)
        history = single_series(table, args.segment, args.collapse)
    options = {
        "domain": args.domain,
        "transform": args.transform,
        "fit_on": args.fit_on,
        "draws": args.draws,
        "seed": args.seed,
    }
    try:
        settings = WhatIfSettings.model_validate(options)
    except ValidationError as exc:
        raise invalid_input(exc, options) from None
    return graph, history, settings


def render(result: WhatIfResult) -> str:
    pct = f"{result.settings.level:.0%}"
    lines = [
        f"graph: {result.graph_source}"
        f"{f' ({result.settings.domain})' if result.graph_source == 'default' else ''}; "
        f"{pct} interval from {result.settings.draws} Monte Carlo draws, seed {result.seed}",
        f"{'metric':<18} {'role':<11} {'baseline':>12} {'predicted':>12} {'change':>8}  "
        f"{pct + ' interval':>20}",
    ]
    for m in result.metrics:
        lines.append(
            f"{m.metric:<18} {m.role:<11} {m.baseline:>12.6g} {m.predicted:>12.6g} "
            f"{m.relative_change:>+8.2%}  [{m.change_low:+.2%}, {m.change_high:+.2%}]"
        )
    return "\n".join(lines + _edges_and_notes(result.edges, result.findings))


def render_counterfactual(result: CounterfactualResult) -> str:
    pct = f"{result.settings.level:.0%}"
    sets = ", ".join(f"{k} = {v:g}" for k, v in result.set_values.items())
    lines = [
        f"counterfactual: had {sets} (graph: {result.graph_source}); noise abducted from the "
        f"observed unit; {pct} interval from {result.settings.draws} draws, seed {result.seed}",
        f"{'metric':<18} {'role':<11} {'observed':>12} {'would be':>12} {'difference':>12}  "
        f"{pct + ' interval':>24}  {'noise':>10}",
    ]
    for m in result.metrics:
        noise = "" if m.noise is None else f"{m.noise:+.4g}"
        lines.append(
            f"{m.metric:<18} {m.role:<11} {m.observed:>12.6g} {m.counterfactual:>12.6g} "
            f"{m.difference:>+12.5g}  [{m.counterfactual_low:.6g}, {m.counterfactual_high:.6g}]"
            f"  {noise:>10}".rstrip()
        )
    return "\n".join(lines + _edges_and_notes(result.edges, result.findings))


def _edges_and_notes(edges: list[EdgeStrength], findings: list[Finding]) -> list[str]:
    lines = ["edges used:"]
    for e in edges:
        rows = f", {e.rows} rows" if e.rows else ""
        lag = f" @ {e.lag}" if e.lag else ""
        form = ""
        if e.chosen_by == "likelihood" and e.form_z is not None:
            if abs(e.form_z) < VUONG_Z:
                form = f"; log kept, forms indistinguishable (Vuong z {e.form_z:+.1f})"
            else:
                chose = "log" if e.form_z > 0 else "linear"
                form = f"; {chose} by likelihood (Vuong z {e.form_z:+.1f})"
        lines.append(
            f"  {e.parent} -> {e.child}{lag}: {e.scale} {e.strength:+.4g} "
            f"± {e.stderr:.2g} ({e.source}{rows}{form})"
        )
    lines += [f"  note [{f.code}] {f.field}: {f.message}" for f in findings]
    return lines
