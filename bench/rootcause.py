"""Benchmark of the root-cause localizer on ../shared/benchmarks/rootcause (Squeeze B0, RS).

Run: ``.venv/bin/python -m bench.rootcause`` (all 122 cases; ``--dataset B0|RS`` and ``--limit``
run a subset while iterating). Scores with the exact-match micro-F1 of the folder's README and
prints, per group, our F1 (precision/recall), the best published method's F1 on the same cases
and our mean/max seconds per case. Runtime is the localizer's own (``localize``), not file
reading or the RS history conversion, as in the reference table. ``--out`` writes the Markdown.

BLAS is pinned to one thread before numpy loads: the machine has 2 cores shared with others, and
OpenBLAS's spinning threads made millisecond calls stall for tens of milliseconds.
"""

from __future__ import annotations

import os

# ruff: noqa: E402 (the environment must be set before numpy is imported)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import csv
import datetime as dt
import time
from collections import defaultdict
from pathlib import Path

from bench.data import announce
from bench.rootcause_scoring import CaseScore, micro_f1, score_case
from twinloop.analysis.localizer.leaves import LeafTable
from twinloop.analysis.localizer.localize import localize
from twinloop.analysis.localizer.models import LocalizerSettings
from twinloop.analysis.localizer.sources import read_leaf_table, read_rs_case

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "rootcause"

#: Published methods on exactly these cases: the README of the folder (RiskLoc repo @08cd777,
#: default parameters). Columns: the 9 B0 settings, B0 all, B0 s/case, RS, RS s/case.
_README_TABLE = """
RiskLoc    1.00 1.00 1.00 1.00 1.00 0.97 0.91 0.91 0.94 0.971  0.8 0.034 2.9
Squeeze    1.00 1.00 1.00 1.00 1.00 0.97 1.00 1.00 0.85 0.972  6.4 0.055 1.0
AutoRoot   1.00 0.87 0.86 1.00 1.00 0.69 1.00 0.92 0.84 0.881  0.8 0.299 0.3
HotSpot    1.00 0.67 0.33 0.83 0.44 0.42 0.50 0.44 0.33 0.506  8.7 0.068 1.6
RobustSpot 0.36 0.56 0.57 0.00 0.00 0.00 0.00 0.00 0.00 0.188 23.4 0.385 0.5
Adtributor 0.71 0.50 0.47 0.00 0.00 0.00 0.00 0.00 0.00 0.155  0.1 0.254 0.1
"""
B0_GROUPS = tuple(f"L{layer}/E{n}" for layer in (1, 2, 3) for n in (1, 2, 3))
PUBLISHED: dict[str, dict[str, float]] = {}
PUBLISHED_SECONDS: dict[str, tuple[float, float]] = {}
for _line in _README_TABLE.strip().splitlines():
    _name, *_cells = _line.split()
    _v = [float(c) for c in _cells]
    PUBLISHED[_name] = {**dict(zip(B0_GROUPS, _v[:9], strict=True)), "B0 all": _v[9], "RS": _v[11]}
    PUBLISHED_SECONDS[_name] = (_v[10], _v[12])


def group_of(case: dict[str, str]) -> str:
    """``L2/E3`` for ``B_cuboid_layer_2_n_ele_3``; ``RS`` for RS cases."""
    if case["dataset"] == "RS":
        return "RS"
    parts = case["setting"].split("_")
    return f"L{parts[3]}/E{parts[6]}"


def load(case: dict[str, str], root: Path) -> LeafTable:
    """The case's leaf table (RS: success rate from the 4 minutes before, RiskLoc's way)."""
    path = root / case["files"]
    if case["dataset"] == "RS":
        return read_rs_case(path, float(case["timestamp"]))
    return read_leaf_table(path, case["attributes"].split(";"), actual="real", expected="predict")


def best_published(group: str) -> tuple[str, float]:
    name = max(PUBLISHED, key=lambda m: PUBLISHED[m][group])
    return name, PUBLISHED[name][group]


def run(root: Path, dataset: str | None, limit: int | None, verbose: bool) -> str:
    with (root / "cases.csv").open(encoding="utf-8") as fh:
        cases = [c for c in csv.DictReader(fh) if dataset in (None, c["dataset"])]
    if limit is not None:
        by_group: dict[str, list[dict[str, str]]] = defaultdict(list)
        for c in cases:
            by_group[group_of(c)].append(c)
        cases = [c for group in by_group.values() for c in group[:limit]]
    settings = LocalizerSettings()
    scores: dict[str, list[CaseScore]] = defaultdict(list)
    seconds: dict[str, list[float]] = defaultdict(list)
    leaves_seen: dict[str, int] = defaultdict(int)
    for case in cases:
        leaves = load(case, root)
        start = time.perf_counter()
        result = localize(leaves, settings)
        took = time.perf_counter() - start
        predicted = [e.label for e in result.elements]
        score = score_case(predicted, case["root_cause"])
        group = group_of(case)
        for key in (group, "B0 all" if case["dataset"] == "B0" else None):
            if key is not None:
                scores[key].append(score)
                seconds[key].append(took)
                leaves_seen[key] = max(leaves_seen[key], len(leaves))
        if verbose:
            mark = "ok " if score.fp == score.fn == 0 else "ERR"
            print(
                f"{mark} {group:6} {case['case_id'][:30]:30} truth={case['root_cause']} "
                f"predicted={';'.join(predicted)} ({took:.3f}s)"
            )
    order = [g for g in (*B0_GROUPS, "B0 all", "RS") if g in scores]
    lines = [
        "| group | cases | max leaves | our F1 (P / R) | best published F1 (method) "
        "| our s/case (mean / max) | published s/case |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in order:
        s = micro_f1(scores[g])
        name, f1 = best_published(g)
        pub_s = ""
        if g in ("B0 all", "RS"):
            pub_s = f"{PUBLISHED_SECONDS[name][0 if g == 'B0 all' else 1]:.1f} ({name})"
        mean_s = sum(seconds[g]) / len(seconds[g])
        lines.append(
            f"| {g} | {s.n_cases} | {leaves_seen[g]:,} | **{s.f1:.3f}** ({s.precision:.2f} / "
            f"{s.recall:.2f}) | {f1:.3f} ({name}) | {mean_s:.3f} / {max(seconds[g]):.3f} "
            f"| {pub_s} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the benchmark folder")
    parser.add_argument("--dataset", choices=["B0", "RS"], default=None)
    parser.add_argument("--limit", type=int, default=None, help="cases per group")
    parser.add_argument("--verbose", action="store_true", help="one line per case")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown report here")
    args = parser.parse_args()
    announce(args.root, "--root")
    table = run(args.root, args.dataset, args.limit, args.verbose)
    print(table)
    if args.out is not None:
        command = "OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.rootcause"
        if args.dataset:
            command += f" --dataset {args.dataset}"
        if args.limit:
            command += f" --limit {args.limit}"
        args.out.write_text(
            "# Benchmark: root-cause localization (Squeeze B0, RobustSpot RS)\n\n"
            f"Command: `{command}` · machine: 2 cores shared with other jobs · "
            f"date: {dt.date.today().isoformat()}\n\n"
            "Exact-match micro-F1 over the cases of each group (README of "
            "`../shared/benchmarks/rootcause`); RS expected values are the 4-minute means "
            "RiskLoc's code uses. Published figures: the same cases, RiskLoc repository "
            "@08cd777, default parameters.\n\n" + table + "\n",
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
