"""Raw per-unit files: Parquet, CSV and Arrow load into validated columns and exact statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from twinloop.errors import InvalidInput
from twinloop.stats.compare import compare_metrics
from twinloop.stats.rawdata import from_arrow, load_raw
from twinloop.stats.sufficient import SampleStats


def _table(n: int = 2000, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    variant = rng.choice(["control", "treatment"], n)
    pre = rng.gamma(2.0, 10.0, n)
    revenue = 0.8 * pre + rng.normal(0, 5, n) + (variant == "treatment") * 1.0
    revenue[:10] = np.nan  # ten units without a value
    return pa.table(
        {
            "variant": variant,
            "country": rng.choice(["DE", "FR", "US"], n),
            "device": rng.choice(["ios", "web"], n),
            "revenue": revenue,
            "converted": (rng.random(n) < 0.1).astype(np.int64),
            "sessions": rng.poisson(3, n) + 1,
            "revenue_pre": pre,
        }
    )


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".csv.gz", ".arrow"])
def test_every_format_loads_to_the_same_statistics(tmp_path: Path, suffix: str) -> None:
    """Parquet, CSV, gzipped CSV and Arrow IPC give the statistics of the original columns."""
    table = _table()
    path = tmp_path / f"units{suffix}"
    if suffix == ".parquet":
        pq.write_table(table, path)
    elif suffix == ".arrow":
        feather.write_feather(table, path)
    else:
        with (
            pa.CompressedOutputStream(str(path), "gzip")
            if suffix.endswith("gz")
            else pa.OSFile(str(path), "wb") as sink
        ):
            pacsv.write_csv(table, sink)
    raw = load_raw(path, covariates={"revenue": "revenue_pre"})
    assert raw.variants == ("control", "treatment")
    assert set(raw.dimensions) == {"country", "device"}
    assert set(raw.metrics) == {"revenue", "converted", "sessions"}
    revenue = table.column("revenue").to_numpy()
    variant = table.column("variant").to_numpy(zero_copy_only=False)
    stats = raw.sample_stats("revenue")
    for name in raw.variants:
        values = revenue[(variant == name) & ~np.isnan(revenue)]
        expected = SampleStats.from_array(values)
        assert stats[name].n == expected.n
        assert stats[name].mean == pytest.approx(expected.mean, rel=1e-12)
        assert stats[name].variance == pytest.approx(expected.variance, rel=1e-10)


def test_missing_variant_column_names_it(tmp_path: Path) -> None:
    """A file without the variant column is refused, naming the column and what is there."""
    path = tmp_path / "units.parquet"
    pq.write_table(_table().drop_columns(["variant"]), path)
    with pytest.raises(InvalidInput, match="'variant' not found") as info:
        load_raw(path)
    assert info.value.field == "variant_column"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"metrics": ["country"]}, "metrics.country"),
        ({"metrics": ["nope"]}, "metrics.nope"),
        ({"covariates": {"revenue": "missing"}}, "covariates.revenue"),
        ({"dimensions": ["planet"]}, "dimensions.planet"),
    ],
)
def test_bad_column_choices_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    """A text column as a metric, unknown metrics, covariates or dimensions: clear errors."""
    with pytest.raises(InvalidInput) as info:
        from_arrow(_table(), **kwargs)
    assert info.value.field == field


def test_all_missing_metric_and_empty_file_are_refused(tmp_path: Path) -> None:
    """An all-NaN metric, an empty table, a missing file and an unknown suffix are errors."""
    table = pa.table({"variant": ["a", "b"], "m": pa.array([None, None], pa.float64())})
    with pytest.raises(InvalidInput, match="all missing"):
        from_arrow(table)
    with pytest.raises(InvalidInput, match="no rows"):
        from_arrow(table.slice(0, 0))
    with pytest.raises(InvalidInput) as info:
        load_raw(tmp_path / "absent.parquet")
    assert info.value.field == "path"
    (tmp_path / "units.xlsx").write_text("x")
    with pytest.raises(InvalidInput) as info:
        load_raw(tmp_path / "units.xlsx")
    assert info.value.field == "format"


def test_dimension_mask_selects_a_segment() -> None:
    """mask(country='DE') restricts the statistics to German units."""
    table = _table()
    raw = from_arrow(table)
    mask = raw.mask(country="DE")
    units = raw.units(mask)
    country = table.column("country").to_numpy(zero_copy_only=False)
    assert sum(units.values()) == int((country == "DE").sum())
    assert not raw.mask(country="XX").any()


def test_raw_file_feeds_the_comparison_with_cuped_ratio_and_conversion() -> None:
    """metric_spec() turns columns into CUPED, conversion and ratio comparisons in one call."""
    raw = from_arrow(_table(20000, seed=3), covariates={"revenue": "revenue_pre"})
    metrics = [
        raw.metric_spec("revenue"),
        raw.metric_spec("converted", metric_type="proportion"),
        raw.metric_spec(
            "revenue", metric_type="ratio", denominator="sessions", name="revenue_per_session"
        ),
    ]
    variants = [
        {"name": "control", "control": True, "units": raw.units()["control"]},
        {"name": "treatment", "units": raw.units()["treatment"]},
    ]
    result = compare_metrics(metrics, variants)
    assert [c.method for c in result.comparisons] == [
        "cuped_welch_t",
        "two_proportion_z",
        "ratio_delta_method_z",
    ]
    revenue = result.get("revenue")
    assert revenue.cuped is not None and revenue.cuped.variance_ratio < 0.5
    assert revenue.outcome == "better"
    assert result.srm is not None and not result.srm.flagged


def test_large_means_keep_their_variance_in_group_sums() -> None:
    """Latency in ns around 1e9 with a spread of 1: per-variant variances stay exact to 1e-9."""
    rng = np.random.default_rng(4)
    variant = rng.choice(["a", "b"], 50_000)
    values = 1e9 + rng.normal(0.0, 1.0, 50_000) + (variant == "b") * 0.5
    raw = from_arrow(pa.table({"variant": variant, "latency": values, "pre": values - 3.0}))
    stats = raw.sample_stats("latency")
    for name in ("a", "b"):
        subset = values[variant == name]
        assert stats[name].variance == pytest.approx(np.var(subset, ddof=1), rel=1e-9)
        assert stats[name].mean == pytest.approx(subset.mean(), rel=1e-15)
