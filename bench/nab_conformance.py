"""The NAB scorer against NAB's own published numbers (``scorer_conformance`` in the NAB corpus).

Run: ``.venv/bin/python -m bench.nab_conformance [--data DIR]`` with ``DIR`` a NAB-layout folder
holding ``scorer_conformance/expected.json`` and its score files (default
``../shared/benchmarks/anomaly``). NAB is AGPL, so its files stay out of the repository: the
unit tests check the scorer against its written rules on generated series, and this check —
every published (detector, file, profile) raw score and row count reproduced — runs on the
corpus itself. Exit 0 when all cases match, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pyarrow.csv as pacsv

from bench.data import announce, default_dir
from bench.nab import PROFILES, score_file
from bench.nab_corpus import load_corpus


def mismatches(root: Path) -> tuple[int, list[str]]:
    """The number of published cases and a line for each one the scorer does not reproduce."""
    folder = root / "scorer_conformance"
    cases = json.loads((folder / "expected.json").read_text())["cases"]
    files = {f.key: f for f in load_corpus(root, sorted({c["data_file"] for c in cases}))}
    wrong = []
    for case in cases:
        scores = pacsv.read_csv(folder / case["scores_file"]).column("anomaly_score").to_numpy()
        got = score_file(
            scores, files[case["data_file"]].windows, case["threshold"], PROFILES[case["profile"]]
        )
        rows = case["expected_rows"]
        same_rows = (got.tp_rows, got.tn_rows, got.fp_rows, got.fn_rows) == (
            rows["TP"], rows["TN"], rows["FP"], rows["FN"],
        )  # fmt: skip
        if not (math.isclose(got.raw, case["expected_raw_score"], abs_tol=1e-9) and same_rows):
            wrong.append(f"{case['detector']} {case['data_file']} {case['profile']}: got {got}")
    return len(cases), wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.nab_conformance", description=__doc__)
    parser.add_argument("--data", type=Path, default=default_dir("anomaly"))
    args = parser.parse_args(argv)
    announce(args.data, "--data")
    n, wrong = mismatches(args.data)
    for line in wrong:
        print(line)
    print(f"NAB scorer conformance: {n - len(wrong)} of {n} published cases reproduced")
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
