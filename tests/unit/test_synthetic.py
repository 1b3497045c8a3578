"""Synthetic data: copula keeps marginals and rank correlations; edge cases hit their magnitudes."""

from __future__ import annotations

import argparse

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from cluster.commands import synthetic as cli
from twinloop.errors import InvalidInput
from twinloop.replication.synthetic.edgecases import ConceptDrift, MissingValues, SegmentMixShift
from twinloop.replication.synthetic.generate import (
    SyntheticSpec,
    parse_edge_case,
    read_result,
    synthesize,
    write_parquet,
)

NUMBERS = ["sessions", "spend", "latency", "tenure"]


@pytest.fixture(scope="module")
def population() -> pa.Table:
    """3,000 customers: skewed, heavy-tailed, discrete and correlated columns plus a segment."""
    rng = np.random.default_rng(42)
    n = 3_000
    z = rng.multivariate_normal(
        np.zeros(4),
        [
            [1.0, 0.6, -0.3, 0.2],
            [0.6, 1.0, -0.2, 0.4],
            [-0.3, -0.2, 1.0, 0.0],
            [0.2, 0.4, 0.0, 1.0],
        ],
        n,
    )
    region = np.where(
        z[:, 1] + rng.normal(0, 1, n) > 0.8, "eu", np.where(rng.random(n) < 0.6, "us", "apac")
    )
    return pa.table(
        {
            "signup": pa.array(np.datetime64("2024-01-01") + np.arange(n)),
            "region": region,
            "sessions": rng.poisson(np.exp(1.5 + 0.5 * z[:, 0])),
            "spend": np.exp(3.0 + 0.8 * z[:, 1]),
            "latency": 120 + 15 * stats.t.ppf(stats.norm.cdf(z[:, 2]), df=3),
            "tenure": stats.gamma.ppf(stats.norm.cdf(z[:, 3]), a=2.0, scale=30.0),
        }
    )


def spearman(table: pa.Table) -> np.ndarray:
    return stats.spearmanr(np.column_stack([table[c].to_numpy() for c in NUMBERS])).statistic


def test_marginals_pass_ks_and_rank_correlations_match(population: pa.Table) -> None:
    """Two-sample KS does not reject at 1 % per column; Spearman matrix within 0.05."""
    synthetic, result = synthesize(population, SyntheticSpec(rows=3_000, seed=1))
    for column in NUMBERS:
        ks = stats.ks_2samp(population[column].to_numpy(), synthetic[column].to_numpy())
        assert ks.pvalue > 0.01, column
    big, _ = synthesize(population, SyntheticSpec(rows=30_000, seed=2))
    assert np.abs(spearman(big) - spearman(population)).max() < 0.05
    assert result.columns == population.column_names
    assert synthetic["sessions"].type == pa.int64()


def test_segment_shares_are_kept(population: pa.Table) -> None:
    """Chi-square of the synthetic region counts against the source shares does not reject."""
    synthetic, _ = synthesize(population, SyntheticSpec(rows=5_000, seed=3))
    labels, source_counts = np.unique(
        population["region"].to_numpy(zero_copy_only=False), return_counts=True
    )
    counts = [
        int(np.sum(synthetic["region"].to_numpy(zero_copy_only=False) == lab)) for lab in labels
    ]
    expected = source_counts / source_counts.sum() * 5_000
    assert stats.chisquare(counts, expected).pvalue > 0.01


def test_same_seed_same_bytes_other_seed_other_rows(population: pa.Table) -> None:
    """Generation is deterministic given the seed."""
    spec = SyntheticSpec(rows=500, seed=9, edge_cases=(parse_edge_case("drift:0.5"),))
    first, _ = synthesize(population, spec)
    again, _ = synthesize(population, spec)
    other, _ = synthesize(population, spec.model_copy(update={"seed": 10}))
    assert first.equals(again)
    assert not first.equals(other)


@pytest.mark.parametrize("profile", ["sudden", "gradual"])
def test_drift_measures_exactly_the_requested_amount(population: pa.Table, profile) -> None:
    """The target shifts by 0.3 source sd (OLS on the drift indicator); features stay put."""
    case = ConceptDrift(magnitude=0.3, column="spend", profile=profile)
    synthetic, result = synthesize(
        population, SyntheticSpec(rows=20_000, seed=4, edge_cases=(case,))
    )
    report = result.edge_cases[0]
    assert report.measured == pytest.approx(0.3, abs=1e-9)
    spend = synthetic["spend"].to_numpy()
    indicator = (np.arange(20_000) >= 10_000).astype(float)
    if profile == "sudden":
        shift = spend[indicator == 1].mean() - spend[indicator == 0].mean()
        assert shift / np.std(population["spend"].to_numpy()) == pytest.approx(0.3, abs=1e-9)
    latency = synthetic["latency"].to_numpy()
    assert stats.ks_2samp(latency[:10_000], latency[10_000:]).pvalue > 0.01


def test_segment_shift_moves_the_mix_by_the_stated_distance(population: pa.Table) -> None:
    """After the shift point the region mix is 0.2 (total variation) from the source mix."""
    spec = SyntheticSpec(rows=10_000, seed=5, edge_cases=(SegmentMixShift(magnitude=0.2),))
    synthetic, result = synthesize(population, spec)
    labels, counts = np.unique(
        population["region"].to_numpy(zero_copy_only=False), return_counts=True
    )
    after = synthetic["region"].to_numpy(zero_copy_only=False)[5_000:]
    shares = np.array([np.mean(after == lab) for lab in labels])
    assert 0.5 * np.abs(shares - counts / counts.sum()).sum() == pytest.approx(0.2, abs=2e-4)
    assert result.edge_cases[0].measured == pytest.approx(0.2, abs=2e-4)


def test_missing_extreme_surge_and_cold_start(population: pa.Table) -> None:
    """Each edge case reports a measurement consistent with what it was asked for."""
    cases = tuple(
        parse_edge_case(t)
        for t in (
            "missing:0.05:tenure",
            "extreme:0.01:latency",
            "surge:3:sessions",
            "cold-start:0.1:spend",
        )
    )
    synthetic, result = synthesize(
        population, SyntheticSpec(rows=10_000, seed=6, edge_cases=cases, keep_missing=False)
    )
    missing, extreme, surge, cold = result.edge_cases
    assert synthetic["tenure"].null_count == 500 and missing.measured == 0.05
    assert extreme.measured >= 0.01 and extreme.rows_affected == 100
    assert surge.measured == pytest.approx(3.0, rel=0.1)
    spend = synthetic["spend"].to_numpy()
    assert spend[0] == 0.0 and cold.rows_affected == 1_000
    assert spend[:500].mean() < spend[1_000:].mean() / 2


def test_timestamps_continue_on_the_source_grid(population: pa.Table) -> None:
    """A temporal column is regenerated on a regular grid from the source's start and step."""
    synthetic, _ = synthesize(population, SyntheticSpec(rows=3, seed=0))
    assert synthetic["signup"].to_pylist()[:2] == population["signup"].to_pylist()[:2]


def test_parquet_carries_the_result(population: pa.Table, tmp_path) -> None:
    """write_parquet stores seed, spec and measurements in the file's metadata."""
    synthetic, result = synthesize(population, SyntheticSpec(rows=100, seed=7))
    path = tmp_path / "out.parquet"
    write_parquet(synthetic, path, result)
    assert pq.read_table(path).num_rows == 100
    stored = read_result(path)
    assert stored is not None and stored.seed == 7 and stored == result


def test_bad_edge_cases_are_refused(population: pa.Table) -> None:
    """Unknown names, bad magnitudes and unknown columns are InvalidInput with the field."""
    with pytest.raises(InvalidInput, match=r"edge_case: 'wobble:1' is not NAME:MAGNITUDE"):
        parse_edge_case("wobble:1")
    with pytest.raises(InvalidInput, match=r"edge_case\.rate: 'missing:1.5'"):
        parse_edge_case("missing:1.5")
    with pytest.raises(InvalidInput, match=r"edge_cases\[0\]\.columns: unknown column 'nope'"):
        synthesize(
            population,
            SyntheticSpec(rows=10, edge_cases=(MissingValues(rate=0.1, columns=("nope",)),)),
        )
    with pytest.raises(InvalidInput, match=r"edge_cases\[0\]\.magnitude: 0.95 exceeds"):
        synthesize(
            population, SyntheticSpec(rows=10, edge_cases=(SegmentMixShift(magnitude=0.95),))
        )
    with pytest.raises(InvalidInput, match=r"edge_cases\[0\]\.columns: 'region' is not a number"):
        synthesize(
            population,
            SyntheticSpec(rows=10, edge_cases=(ConceptDrift(magnitude=1.0, column="region"),)),
        )
    with pytest.raises(InvalidInput, match="source: the table has no rows"):
        synthesize(population.slice(0, 0), SyntheticSpec(rows=10))


def test_cli_writes_parquet(population: pa.Table, tmp_path, capsys) -> None:
    """``twinloop synthetic --from P.parquet --rows N --edge-case drift:0.2 --out O.parquet``."""
    source, out = tmp_path / "pop.parquet", tmp_path / "out.parquet"
    pq.write_table(population, source)
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "synthetic",
            "--from",
            str(source),
            "--rows",
            "2000",
            "--edge-case",
            "drift:0.2",
            "--out",
            str(out),
        ]
    )
    assert args.handler(args) == 0
    assert "drift" in capsys.readouterr().out
    assert pq.read_table(out).num_rows == 2000
    stored = read_result(out)
    assert stored is not None and stored.edge_cases[0].columns == ["tenure"]


def test_ids_are_numbered_on_and_flags_are_not_drifted() -> None:
    """A unique customer_id continues after the source's largest; a 0/1 flag refuses drift."""
    source = pa.table(
        {"customer_id": [10, 11, 12, 13], "spend": [1.0, 2.0, 3.0, 4.0], "churned": [0, 1, 0, 0]}
    )
    synthetic, result = synthesize(source, SyntheticSpec(rows=3, seed=0))
    assert synthetic["customer_id"].to_pylist() == [14, 15, 16]
    assert [f.code for f in result.findings] == ["id_regenerated"]
    _, result = synthesize(source, SyntheticSpec(rows=10, edge_cases=(parse_edge_case("drift:1"),)))
    assert result.edge_cases[0].columns == ["spend"]
    with pytest.raises(InvalidInput, match=r"'churned' is a 0/1 flag"):
        synthesize(source, SyntheticSpec(rows=10, edge_cases=(parse_edge_case("drift:1:churned"),)))
