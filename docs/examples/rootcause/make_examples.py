"""Write the root-cause examples of docs/rootcause.md (seed 0): an A/B test's per-leaf ratio KPI.

A checkout experiment: 600,000 visits split 50/50, dimensions device × country × browser.
Treatment converts like control everywhere except on mobile Safari, where it loses 25% of its
conversions. The per-unit rows are turned into leaves with ``ab_leaf_table`` (expected = control's
per-visit rate in the leaf × treatment visits) and written as ``checkout_leaves.csv``.

Run: ``.venv/bin/python docs/examples/rootcause/make_examples.py``
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from twinloop.analysis.localizer.sources import ab_leaf_table

HERE = Path(__file__).resolve().parent


def main() -> None:
    rng = np.random.default_rng(0)
    n = 600_000
    device = rng.choice(["desktop", "mobile", "tablet"], n, p=[0.45, 0.45, 0.10])
    country = rng.choice(["DE", "FR", "UK", "US"], n)
    browser = rng.choice(["chrome", "firefox", "safari"], n, p=[0.6, 0.1, 0.3])
    arm = rng.choice(["control", "treatment"], n)
    rate = np.where(device == "mobile", 0.05, 0.08)
    loses = (arm == "treatment") & (device == "mobile") & (browser == "safari")
    converted = (rng.random(n) < np.where(loses, rate * 0.75, rate)).astype(float)
    units = pa.table(
        {
            "arm": arm,
            "device": device,
            "country": country,
            "browser": browser,
            "converted": converted,
            "visits": np.ones(n),
        }
    )
    leaves = ab_leaf_table(
        units,
        variant="arm",
        dims=["device", "country", "browser"],
        metric="converted",
        denominator="visits",
        control="control",
        treatment="treatment",
    )
    columns = {
        d: [leaves.labels[j][c] for c in leaves.codes[:, j]] for j, d in enumerate(leaves.dims)
    }
    table = pa.table(
        {
            **columns,
            "conversions": leaves.value("numerator_actual"),
            "conversions_expected": np.round(leaves.value("numerator_expected"), 3),
            "visits": leaves.value("denominator_actual"),
            "visits_expected": np.round(leaves.value("denominator_expected"), 3),
        }
    )
    pacsv.write_csv(table, HERE / "checkout_leaves.csv")
    print(f"wrote {HERE / 'checkout_leaves.csv'}: {table.num_rows} leaves")


if __name__ == "__main__":
    main()
