"""``twinloop rootcause``: the dimension-value combinations that explain a KPI's deviation.

Three input shapes, all CSV(.gz) or Parquet:

* an additive leaf export: ``--dims a,b,c,d --actual real --expected predict``;
* a ratio KPI's leaf export: ``--numerator-actual``, ``--numerator-expected``,
  ``--denominator-actual``, ``--denominator-expected`` (four columns) instead;
* a RobustSpot minute file (``min``, attributes, ``value`` failures, ``cnt`` attempts):
  ``--rs-minute T`` localizes the success rate at minute ``T`` against the 4 minutes before.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import ValidationError

from twinloop.analysis.localizer.leaves import LeafTable
from twinloop.analysis.localizer.localize import localize
from twinloop.analysis.localizer.models import LocalizerSettings, RootCauseResult
from twinloop.analysis.localizer.sources import read_leaf_table, read_rs_case
from twinloop.contract import invalid_input
from twinloop.errors import InvalidInput

_DERIVED = ("numerator_actual", "numerator_expected", "denominator_actual", "denominator_expected")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "rootcause",
        help="find the dimension-value combinations that explain a KPI's deviation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("case", type=Path, help="leaf file: .csv, .csv.gz or .parquet")
    p.add_argument(
        "--dims", default=None, help="comma-separated dimension columns (not with --rs-minute)"
    )
    p.add_argument("--actual", default=None, help="actual value column (additive KPI)")
    p.add_argument("--expected", default=None, help="expected value column (additive KPI)")
    for name in _DERIVED:
        flag = "--" + name.replace("_", "-")
        p.add_argument(
            flag,
            dest=name,
            default=None,
            help=f"{name.replace('_', ' ')} column (ratio KPI: give all four)",
        )
    p.add_argument(
        "--rs-minute",
        type=float,
        default=None,
        metavar="T",
        help="RobustSpot minute file: localize minute T (unix seconds)",
    )
    defaults = LocalizerSettings()
    p.add_argument(
        "--max-elements",
        type=int,
        default=defaults.max_elements,
        help=f"most combinations reported (default {defaults.max_elements})",
    )
    p.add_argument(
        "--max-layer",
        type=int,
        default=None,
        help="most dimensions in one combination (default: all)",
    )
    p.add_argument(
        "--significance",
        type=float,
        default=defaults.significance,
        help=f"false-alarm rate per reported combination (default {defaults.significance:g})",
    )
    p.add_argument(
        "--direction",
        choices=["both", "down", "up"],
        default="both",
        help="look for drops, rises or both (default both)",
    )
    p.add_argument("--json", action="store_true", help="print the result model as JSON")
    p.set_defaults(handler=run)


def _leaves(args: argparse.Namespace) -> LeafTable:
    derived = {name: getattr(args, name) for name in _DERIVED}
    if args.rs_minute is not None:
        if args.dims or args.actual or args.expected or any(derived.values()):
            raise InvalidInput(
                "rs_minute",
                "--rs-minute reads the file's own columns; "
                "drop --dims/--actual/--expected/--numerator-*/--denominator-*",
            )
        return read_rs_case(args.case, args.rs_minute)
    if not args.dims:
        raise InvalidInput("dims", "give the dimension columns, e.g. --dims a,b,c,d")
    dims = [d.strip() for d in args.dims.split(",") if d.strip()]
    if any(derived.values()):
        if args.actual or args.expected:
            raise InvalidInput(
                "actual",
                "give --actual/--expected or the four "
                "--numerator-*/--denominator-* columns, not both",
            )
        return read_leaf_table(args.case, dims, **derived)
    return read_leaf_table(args.case, dims, actual=args.actual, expected=args.expected)


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"


def _print(result: RootCauseResult, source: Path) -> None:
    kpi = "ratio KPI" if result.kind == "derived" else "additive KPI"
    print(f"{source.name}: {kpi}, {result.n_leaves:,} leaves, dims {', '.join(result.dims)}")
    change = result.total_deviation
    print(
        f"total: actual {_fmt(result.total_actual)}, expected {_fmt(result.total_expected)}, "
        f"deviation {_fmt(change)}"
    )
    print(
        f"noise: {result.noise}, floor {result.noise_floor:.3g}, "
        f"dispersion {result.noise_dispersion:.3g}"
    )
    if not result.elements:
        print("no combination deviates beyond the noise")
        return
    header = (
        f"{'#':>2}  {'combination':<40} {'actual':>10} {'expected':>10} {'change':>8} "
        f"{'expl.':>6} {'conf.':>6}"
    )
    print(header)
    for rank, e in enumerate(result.elements, start=1):
        rel = "-" if e.relative_change is None else f"{e.relative_change:+.1%}"
        print(
            f"{rank:>2}  {e.label:<40} {_fmt(e.actual):>10} {_fmt(e.expected):>10} "
            f"{rel:>8} {e.explanatory_power:>6.2f} {e.confidence:>6.3f}"
        )
    print(
        f"explained share of the total deviation: {result.explained_share:.2f} "
        f"({result.runtime_s:.3f} s)"
    )


def run(args: argparse.Namespace) -> int:
    options = {
        "max_elements": args.max_elements,
        "max_layer": args.max_layer,
        "significance": args.significance,
        "direction": args.direction,
    }
    try:
        settings = LocalizerSettings.model_validate(options)
    except ValidationError as exc:
        raise invalid_input(exc, options) from exc
    result = localize(_leaves(args), settings)
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        _print(result, args.case)
    return 0
