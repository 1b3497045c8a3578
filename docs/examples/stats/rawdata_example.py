"""docs/statistics.md example: per-unit rows in a Parquet file → CUPED, conversion, ratio, segment.

.venv/bin/python docs/examples/stats/rawdata_example.py
"""

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from twinloop.stats import compare_metrics, load_raw

# A seeded experiment: 40k users, revenue depends on last month's revenue (the covariate).
rng = np.random.default_rng(7)
n = 40_000
variant = rng.choice(["control", "treatment"], n)
treated = variant == "treatment"
country = rng.choice(["DE", "FR", "US"], n, p=[0.3, 0.2, 0.5])
pre = rng.gamma(2.0, 15.0, n)
revenue = 0.9 * pre + rng.normal(0.0, 10.0, n) + np.where(treated & (country == "US"), -1.5, 0.0)
sessions = rng.poisson(4, n) + 1
converted = (rng.random(n) < np.where(treated, 0.098, 0.100)).astype(np.int8)
table = pa.table(
    {
        "variant": variant,
        "country": country,
        "revenue": revenue,
        "revenue_pre": pre,
        "sessions": sessions,
        "converted": converted,
    }
)

with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "units.parquet"
    pq.write_table(table, path)
    raw = load_raw(path, covariates={"revenue": "revenue_pre"})

print(
    f"variants {raw.variants}, dimensions {sorted(raw.dimensions)}, metrics {sorted(raw.metrics)}"
)
units = raw.units()
variants = [
    {"name": "control", "control": True, "units": units["control"]},
    {"name": "treatment", "units": units["treatment"]},
]
us = raw.mask(country="US")
metrics = [
    raw.metric_spec("revenue"),
    raw.metric_spec("revenue", cuped=False, name="revenue_without_cuped"),
    raw.metric_spec("converted", metric_type="proportion"),
    raw.metric_spec(
        "revenue", metric_type="ratio", denominator="sessions", name="revenue_per_session"
    ),
    raw.metric_spec("revenue", mask=us, name="revenue_US"),
]
result = compare_metrics(metrics, variants, {"correction": "benjamini_hochberg"})
for c in result.comparisons:
    ci = c.absolute.interval
    extra = f"  CUPED variance ×{c.cuped.variance_ratio:.3f}" if c.cuped else ""
    print(
        f"{c.metric:<22} {c.method:<21} effect {c.absolute.estimate:+.3f} "
        f"[{ci.lower:+.3f}, {ci.upper:+.3f}]  p_bh {c.p_value_adjusted:.3g}  {c.outcome}{extra}"
    )
