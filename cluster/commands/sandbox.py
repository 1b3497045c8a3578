"""``twinloop sandbox test|compare|grid|ab-test``: run the model sandbox from a spec or flags.

A spec file (``--spec SPEC.json``, the same JSON the Ray job and the HTTP API take) and flags
combine: flags that are given override the file's top-level fields. Runs go to an actor pool on
Ray (a local Ray unless ``TWINLOOP_RAY_ADDRESS`` names a cluster) with Ray's progress bar, or
in-process with ``--serial``. ``--json`` prints the result model; ``--out DIR`` also writes
Parquet plus a JSON summary.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cluster.commands.simulate import load_model
from cluster.jobs.sandbox import load_spec_file, progress_bar, ray_executor, validate
from twinloop.config import load_settings
from twinloop.errors import InvalidInput
from twinloop.sandbox.executor import Executor, ProgressCallback, SerialExecutor
from twinloop.sandbox.results import (
    AbTestResult,
    GridResult,
    HeadToHeadResult,
    KpiSummary,
    SandboxResult,
    SandboxTestResult,
)
from twinloop.sandbox.runner import (
    planned_replicates,
    result_folder_name,
    run_sandbox,
    write_result,
)
from twinloop.sim.domains import DOMAINS

KINDS = {"test": "test", "compare": "compare", "grid": "grid", "ab-test": "ab_test"}
HELP = {
    "test": "test one model: Monte Carlo replicates, per-KPI means and 95%% intervals",
    "compare": "head-to-head: baseline vs challenger on common random numbers",
    "grid": "parallel universes: scenarios × models, one table and a ranking",
    "ab-test": "an A/B test inside the twin: p-values, power, right-winner rate",
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("sandbox", help="judge models in the twin before real traffic")
    kinds = parser.add_subparsers(dest="sandbox_kind", required=True, metavar="KIND")
    for name, kind in KINDS.items():
        # help strings are %-formatted by argparse, descriptions are not
        p = kinds.add_parser(name, help=HELP[name], description=HELP[name].replace("%%", "%"))
        _common(p)
        _specific(p, kind)
        p.set_defaults(handler=run, kind=kind)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", type=Path, default=None, help="sandbox spec JSON")
    p.add_argument("--domain", action="append", default=None, help=f"one of {', '.join(DOMAINS)}")
    p.add_argument("--customers", type=int, default=None, help="initial customers")
    p.add_argument("--days", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--replicates", type=int, default=None, help="default: MONTE_CARLO_RUNS")
    p.add_argument("--step", choices=["day", "hour"], default=None)
    p.add_argument("--confidence", type=float, default=None)
    p.add_argument("--model", type=Path, action="append", default=None, help="model JSON")
    p.add_argument("--kpi", action="append", default=None, help="primary KPI (repeatable)")
    p.add_argument("--serial", action="store_true", help="run in this process, without Ray")
    p.add_argument("--workers", type=int, default=None, help="actor pool size (default: CPUs)")
    p.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per worker actor")
    p.add_argument("--out", type=Path, default=None, help="write Parquet + summary.json here")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the result model as JSON")


def _specific(p: argparse.ArgumentParser, kind: str) -> None:
    if kind in ("test", "compare"):
        p.add_argument("--target-rhw", type=float, default=None, help="early stop: rel. half-width")
        p.add_argument("--max-replicates", type=int, default=None, help="early stop: cap")
        p.add_argument("--batch-size", type=int, default=None, help="early stop: batch")
    if kind == "test":
        p.add_argument("--bootstrap", action="store_true", help="bootstrap ratio KPIs")
    if kind == "compare":
        p.add_argument("--independent", action="store_true", help="no common random numbers")
    if kind == "grid":
        p.add_argument("--rank-by", default=None, help="KPI that ranks models (default profit)")
    if kind == "ab_test":
        p.add_argument("--allocation", type=float, nargs="+", default=None, help="e.g. 0.9 0.1")
        p.add_argument("--policy", choices=["fixed", "thompson"], default=None)
        p.add_argument("--control", default=None, help="control variant (default: first)")
        p.add_argument("--alpha", type=float, default=None)


def spec_data(args: argparse.Namespace) -> dict[str, Any]:
    """The spec as a dict: the file's fields, then every flag that was given."""
    kind: str = args.kind
    data: dict[str, Any] = {"kind": kind}
    if args.spec is not None:
        data = load_spec_file(args.spec, kind)
    for flag, key in (
        ("customers", "customers"), ("days", "days"), ("seed", "seed"),
        ("replicates", "replicates"), ("step", "step"), ("confidence", "confidence"),
        ("kpi", "kpis"), ("rank_by", "rank_by"), ("allocation", "allocation"),
        ("policy", "allocation_policy"), ("control", "control"), ("alpha", "alpha"),
    ):  # fmt: skip
        value = getattr(args, flag, None)
        if value is not None:
            data[key] = value
    if args.domain:
        if kind == "grid":
            data["scenarios"] = [{"name": d, "environment": d} for d in args.domain]
        elif len(args.domain) == 1:
            data["environment"] = args.domain[0]
        else:
            raise InvalidInput("domain", f"give one --domain for {kind}, got {args.domain}")
    if args.model:
        _models(data, kind, [load_model(path).model_dump() for path in args.model])
    if getattr(args, "bootstrap", False):
        data["ratio_interval"] = "bootstrap"
    if getattr(args, "independent", False):
        data["common_random_numbers"] = False
    if getattr(args, "target_rhw", None) is not None:
        data["early_stop"] = {
            "relative_half_width": args.target_rhw,
            "max_replicates": args.max_replicates or 10 * (args.replicates or 10),
            **({"batch_size": args.batch_size} if args.batch_size else {}),
        }
    return data


def _models(data: dict[str, Any], kind: str, models: list[dict[str, Any]]) -> None:
    if kind == "test":
        if len(models) != 1:
            raise InvalidInput("model", f"test takes one --model, got {len(models)}")
        data["model"] = models[0]
    elif kind == "compare":
        if len(models) != 2:
            raise InvalidInput(
                "model",
                f"compare takes two --model files (baseline, challenger), got {len(models)}",
            )
        data["baseline"], data["challenger"] = models
    elif kind == "grid":
        data["models"] = models
    else:
        data["variants"] = models


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.workers is not None and args.workers < 1:
        raise InvalidInput("workers", f"must be >= 1, got {args.workers}")
    if args.num_cpus <= 0:
        raise InvalidInput("num_cpus", f"must be > 0, got {args.num_cpus}")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise InvalidInput("out", f"{str(args.out)!r} exists and is not a folder")
    spec = validate(spec_data(args), settings, args.kind)  # nothing has run yet
    executor: Executor = SerialExecutor()
    if not args.serial:
        executor = ray_executor(args.workers, args.num_cpus, settings.ray_address)
    update: ProgressCallback | None = None
    close: Callable[[], None] = _nothing
    if not args.no_progress:
        total = planned_replicates(spec, settings)
        update, close = progress_bar(total, f"sandbox {spec.kind}", on_ray=not args.serial)
    try:
        result = run_sandbox(spec, settings=settings, executor=executor, progress=update)
    finally:
        close()
        shutdown = getattr(executor, "shutdown", None)
        if shutdown is not None:
            shutdown()
    folder = None
    if args.out is not None:
        folder = args.out / result_folder_name(result)
        write_result(result, folder)
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        print(render(result))
        if folder is not None:
            print(f"  wrote {folder}/")
    return 0


def _nothing() -> None:
    return None


# ---------------------------------------------------------------------- rendering
def _num(x: float) -> str:
    return f"{x:,.4g}" if abs(x) < 1000 else f"{x:,.0f}"


def _kpi_lines(kpis: list[KpiSummary], only_primary: bool = False) -> list[str]:
    lines = [f"  {'KPI':<16} {'mean':>12}  {'95% interval':<27} {'±rel':>7}  method"]
    for k in kpis:
        if only_primary and not k.primary:
            continue
        rel = f"{k.relative_half_width:.2%}" if k.relative_half_width is not None else "-"
        star = "*" if k.primary else " "
        interval = f"[{_num(k.lower)}, {_num(k.upper)}]"
        lines.append(f"{star} {k.kpi:<16} {_num(k.mean):>12}  {interval:<27} {rel:>7}  {k.method}")
    return lines


def _footer(result: SandboxResult) -> str:
    e = result.execution
    where = f"{e.workers} worker(s) on {len(e.nodes)} node(s)" if e.executor == "ray" else "serial"
    retried = f", {e.retried} replicate(s) re-run" if e.retried else ""
    return (
        f"  {e.customer_days:,.0f} customer-days in {e.wall_seconds:.1f} s "
        f"({e.customer_days_per_second / 1e6:.2f} M/s), {where}{retried}; "
        f"fingerprint {result.fingerprint()[:12]}"
    )


def render(result: SandboxResult) -> str:
    """A human summary of any sandbox result."""
    if isinstance(result, SandboxTestResult):
        lines = [
            f"sandbox test: model {result.model!r} in {result.environment}, "
            f"{result.spec.days:g} days, {result.replicates} replicates (seed {result.seed}), "
            f"stop: {result.stop.reason}",
            *_kpi_lines(result.kpis),
        ]
    elif isinstance(result, HeadToHeadResult):
        lines = _render_compare(result)
    elif isinstance(result, GridResult):
        lines = _render_grid(result)
    else:
        lines = _render_ab(result)
    return "\n".join([*lines, _footer(result)])


def _render_compare(r: HeadToHeadResult) -> list[str]:
    pairing = "common random numbers" if r.common_random_numbers else "independent seeds"
    lines = [
        f"sandbox compare: {r.challenger!r} vs baseline {r.baseline!r} in {r.environment}, "
        f"{r.spec.days:g} days, {r.replicates} paired replicates ({pairing}), "
        f"stop: {r.stop.reason}",
        f"  {'KPI':<16} {'baseline':>11} {'challenger':>11} {'difference [95% CI]':<36}"
        f" {'P(better)':>9} {'wins':>5} {'narrower':>8}",
    ]
    for d in r.differences:
        ci = f"{_num(d.difference)} [{_num(d.lower)}, {_num(d.upper)}]"
        ratio = f"{d.width_ratio:.1f}x" if d.width_ratio is not None else "-"
        lines.append(
            f"{'*' if d.primary else ' '} {d.kpi:<16} {_num(d.baseline_mean):>11} "
            f"{_num(d.challenger_mean):>11} {ci:<36} {d.prob_challenger_better:>9.3f} "
            f"{d.win_rate:>5.0%} {ratio:>8}"
        )
    lines.append("  narrower = unpaired / paired interval width (the gain from pairing)")
    return lines


def _render_grid(r: GridResult) -> list[str]:
    lines = [
        f"sandbox grid: {len(r.spec.scenarios)} scenario(s) x {len(r.spec.models)} model(s), "
        f"{r.spec.days:g} days, {r.replicates} replicates each, ranked by {r.rank_by}",
        f"  {'scenario':<16} {'rank':>4}  {'model':<16} {r.rank_by:>14} {'P(best)':>8}",
    ]
    for g in [*r.ranking, *r.overall]:
        score = _num(g.score) if g.scenario != "overall" else f"mean rank {g.score:.2f}"
        lines.append(f"  {g.scenario:<16} {g.rank:>4}  {g.model:<16} {score:>14} {g.p_best:>8.0%}")
    return lines


def _render_ab(r: AbTestResult) -> list[str]:
    lines = [
        f"sandbox ab-test: {', '.join(v.name for v in r.spec.variants)} in {r.environment}, "
        f"{r.spec.allocation_policy} allocation, {r.spec.days:g} days, {r.replicates} replicates, "
        f"alpha {r.alpha:g}",
        "  allocation: "
        + ", ".join(
            f"{a.variant} planned {a.planned_share:.0%} got {a.arrival_share:.1%} of arrivals"
            for a in r.allocation
        ),
        f"  {'KPI':<16} {'treatment':<12} {'truth':<9} {'mean effect':>12} {'reject':>7}"
        f" {'right call':>10} {'median p':>9} {'KS p':>6}",
    ]
    for a in r.analyses:
        right = f"{a.p_right_winner:.0%}" if a.p_right_winner is not None else "-"
        ks = f"{a.ks_uniform_p:.2f}" if a.ks_uniform_p is not None else "-"
        lines.append(
            f"  {a.kpi:<16} {a.treatment:<12} {a.truth:<9} {_num(a.mean_effect):>12} "
            f"{a.rejection_rate:>7.1%} {right:>10} {a.p_value_quantiles['p50']:>9.3f} {ks:>6}"
        )
    lines.append("  reject = power (or false-positive rate when truth is none)")
    lines.extend(f"  note: {note}" for note in r.notes)
    return lines
