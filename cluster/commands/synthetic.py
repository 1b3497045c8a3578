"""``twinloop synthetic``: rows with a table's marginals and rank correlations, plus edge cases."""

from __future__ import annotations

import argparse
from pathlib import Path

from twinloop.errors import InvalidInput
from twinloop.replication.synthetic.generate import (
    SyntheticResult,
    SyntheticSpec,
    parse_edge_case,
    synthesize,
    write_parquet,
)
from twinloop.replication.tables import read_table


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("synthetic", help="generate synthetic rows and edge cases from a table")
    p.add_argument(
        "--from",
        dest="source",
        type=Path,
        required=True,
        help="population or history: .parquet, .csv, .arrow or .json",
    )
    p.add_argument("--rows", type=int, required=True)
    p.add_argument(
        "--edge-case",
        action="append",
        default=[],
        metavar="NAME:MAGNITUDE[:COLUMN]",
        help="cold-start, surge, segment-shift, drift, missing, extreme (repeatable)",
    )
    p.add_argument("--out", type=Path, required=True, help="output Parquet file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--no-missing", action="store_true", help="do not reproduce the source's missing values"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.rows <= 50_000_000:
        raise InvalidInput("rows", f"{args.rows} must be between 1 and 50,000,000")
    if args.seed < 0:
        raise InvalidInput("seed", f"{args.seed} must be 0 or more")
    cases = tuple(parse_edge_case(text, f"edge_case[{i}]") for i, text in enumerate(args.edge_case))
    spec = SyntheticSpec(
        rows=args.rows, seed=args.seed, edge_cases=cases, keep_missing=not args.no_missing
    )
    table, result = synthesize(read_table(args.source, field="from"), spec)
    write_parquet(table, args.out, result)
    print(result.model_dump_json(indent=2) if args.json else render(result, args.out))
    return 0


def render(result: SyntheticResult, out: Path) -> str:
    lines = [
        f"wrote {result.rows} rows × {len(result.columns)} columns to {out} "
        f"(from {result.source_rows} source rows, seed {result.seed})"
    ]
    for r in result.edge_cases:
        lines.append(
            f"  {r.kind:<14} {','.join(r.columns):<24} requested {r.requested:<8.4g} "
            f"measured {r.measured:<8.4g} rows {r.rows_affected}  ({r.note})"
        )
    for f in result.findings:
        lines.append(f"  note [{f.code}] {f.field}: {f.message}")
    return "\n".join(lines)
