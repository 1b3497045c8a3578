"""Segment root causes on raw A/B units: a flaw in a majority segment is found, unit ids are no
segments, and a loss spread evenly over every segment is still not a segment cause."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from twinloop.analysis.analyzer import FailureAnalysis, analyze_failure
from twinloop.analysis.segments import SegmentFinding
from twinloop.analysis.settings import AnalyzerSettings

SETTINGS = AnalyzerSettings()
RESULT = {"experimentId": "majority", "variants": [{"name": "A", "control": True}]}


def units(
    n: int, free_share: float, seed: int, *, drop_free: float, drop_paid: float = 0.0
) -> pa.Table:
    """Units with a plan, a country and a device; B's accuracy drops by the plan's amount."""
    rng = np.random.default_rng(seed)
    treated = rng.random(n) < 0.5
    free = rng.random(n) < free_share
    accuracy = 0.85 - treated * np.where(free, drop_free, drop_paid)
    return pa.table({
        "variant": np.where(treated, "B", "A"),
        "plan": np.where(free, "free", "paid"),
        "country": rng.choice(["DE", "FR", "US", "UK", "ES"], n),
        "device": rng.choice(["ios", "android", "web"], n),
        "accuracy": rng.random(n) < accuracy,
    })  # fmt: skip


def analyse(table: pa.Table, **raw: object) -> FailureAnalysis:
    result = {**RESULT, "raw": raw} if raw else RESULT
    return analyze_failure(result, raw_table=table, settings=SETTINGS)


def accuracy_findings(analysis: FailureAnalysis) -> dict[str, SegmentFinding]:
    return {f.label: f for s in analysis.segments if s.metric == "accuracy" for f in s.findings}


@pytest.mark.parametrize("share", [0.5, 0.6, 0.8])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_flaw_in_the_majority_segment_is_found(share: float, seed: int) -> None:
    """B loses 10 points of accuracy in plan=free only, which holds 50–80% of the units."""
    analysis = analyse(units(40_000, share, seed, drop_free=0.10))
    found = accuracy_findings(analysis)
    assert list(found) == ["plan=free"]
    finding = found["plan=free"]
    assert finding.relative_change == pytest.approx(-0.10 / 0.85, abs=0.03)
    assert finding.outside_relative_change is not None
    assert abs(finding.outside_relative_change) < 0.03
    # Most of the loss lies beyond the common effect (at 50% the median leaf may sit on either
    # side, so the common ratio may take a little of it).
    assert finding.excess_share > 0.5
    segment = next(c for c in analysis.root_causes if c.kind == "segment")
    assert segment.segment is not None and segment.segment.element == {"plan": "free"}


def test_the_majority_baseline_is_the_healthy_segment() -> None:
    """With 80% of units flawed, the common ratio comes from the healthy plan=paid units."""
    analysis = analyse(units(40_000, 0.8, 3, drop_free=0.10))
    accuracy = next(s for s in analysis.segments if s.metric == "accuracy")
    assert accuracy.baseline == "healthy_segments"
    assert accuracy.common_ratio == pytest.approx(1.0, abs=0.03)


def test_a_minority_flaw_keeps_the_median_baseline() -> None:
    """A flaw in 20% of units is found against the median leaf, as before."""
    analysis = analyse(units(40_000, 0.2, 4, drop_free=0.15))
    accuracy = next(s for s in analysis.segments if s.metric == "accuracy")
    assert accuracy.baseline == "median"
    assert list(accuracy_findings(analysis)) == ["plan=free"]


def test_an_even_loss_is_not_a_segment_cause() -> None:
    """B loses 8 points everywhere: no segment, majority or not, is reported."""
    analysis = analyse(units(40_000, 0.6, 5, drop_free=0.08, drop_paid=0.08))
    assert accuracy_findings(analysis) == {}
    assert not [c for c in analysis.root_causes if c.kind == "segment"]


def test_unit_ids_are_not_segment_dimensions() -> None:
    """user_id (named like an id) and session (unique per row) are left out, each with a note."""
    table = units(20_000, 0.6, 6, drop_free=0.10)
    n = table.num_rows
    table = table.append_column("user_id", pa.array([f"u{i:06d}" for i in range(n)]))
    table = table.append_column("session", pa.array([f"s{(7 * i) % n:06d}" for i in range(n)]))
    analysis = analyse(table)
    accuracy = next(s for s in analysis.segments if s.metric == "accuracy")
    assert accuracy.dims == ("plan", "country", "device")
    assert list(accuracy_findings(analysis)) == ["plan=free"]
    notes = {q.message.split("'")[1]: q for q in analysis.data_quality}
    assert {q.code for q in notes.values()} == {"dimension_excluded"}
    assert "named like an id" in notes["user_id"].message
    assert "20,000 distinct values in 20,000 rows" in notes["session"].message
    assert notes["session"].severity == "info"


def test_a_declared_id_dimension_is_searched() -> None:
    """Naming a column in raw.dimensions overrides the default exclusion (and adds no note)."""
    table = units(2_000, 0.6, 7, drop_free=0.10)
    table = table.append_column("store_id", pa.array([f"s{i % 4}" for i in range(2_000)]))
    analysis = analyse(table, dimensions=["plan", "store_id"])
    accuracy = next(s for s in analysis.segments if s.metric == "accuracy")
    assert accuracy.dims == ("plan", "store_id")
    assert not [q for q in analysis.data_quality if q.code == "dimension_excluded"]


@pytest.mark.parametrize("share", [0.5, 0.6, 0.8])
def test_a_lower_is_better_metric_flawed_in_the_majority(share: float) -> None:
    """B is 15% slower only in plan=free (50–80% of units): latency's segment is plan=free."""
    rng = np.random.default_rng(0)
    n = 40_000
    treated = rng.random(n) < 0.5
    free = rng.random(n) < share
    latency = rng.gamma(4.0, 25.0, n) * (1 + 0.15 * (treated & free))
    table = pa.table({
        "variant": np.where(treated, "B", "A"),
        "plan": np.where(free, "free", "paid"),
        "country": rng.choice(["DE", "FR", "US", "UK", "ES"], n),
        "latency_ms": latency,
    })  # fmt: skip
    analysis = analyse(table)
    latency_segments = next(s for s in analysis.segments if s.metric == "latency_ms")
    assert [f.label for f in latency_segments.findings] == ["plan=free"]
    (finding,) = latency_segments.findings
    assert finding.relative_change == pytest.approx(0.15, abs=0.03)
