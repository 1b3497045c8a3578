"""Loss attribution: the key metric's change split over upstream causes, against an exact SCM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from twinloop.analysis.analyzer import analyze_failure
from twinloop.analysis.report_text import render
from twinloop.analysis.settings import AnalyzerSettings

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "analyzer"
# Per unit: S = 0.9 - 0.0005 L + 0.5 (A - 0.9) + e, P(convert) = 0.1 + 0.4 (S - 0.7),
# revenue = 100 · converted + e. The loser is 200 ms slower (S -0.1) and 0.1 less accurate
# (S -0.05): revenue falls by 100 · 0.4 · 0.15 = 6, of which latency 4 and accuracy 2, exactly.
EXACT = {"latency_ms": -4.0, "accuracy": -2.0}


def units(n: int = 40_000, seed: int = 0, direct: float = 0.0) -> pa.Table:
    """Both arms' rows; ``direct`` adds a loser effect on revenue that no chain carries."""
    rng = np.random.default_rng(seed)
    loser = np.repeat([False, True], n)
    latency = rng.normal(np.where(loser, 300.0, 100.0), 30.0)
    accuracy = rng.normal(np.where(loser, 0.8, 0.9), 0.05)
    satisfaction = 0.9 - 0.0005 * latency + 0.5 * (accuracy - 0.9) + rng.normal(0, 0.05, 2 * n)
    converted = rng.random(2 * n) < 0.1 + 0.4 * (satisfaction - 0.7)
    revenue = 100.0 * converted + direct * loser + rng.normal(0.0, 5.0, 2 * n)
    return pa.table(
        {
            "variant": np.where(loser, "model-b", "model-a"),
            "latency_ms": latency,
            "accuracy": accuracy,
            "satisfaction": satisfaction,
            "converted": converted,
            "revenue": revenue,
        }
    )


def analyse(table: pa.Table):
    result = {"experimentId": "scm", "primaryMetrics": ["revenue"], "winner": "model-a"}
    return analyze_failure(result, raw_table=table, settings=AnalyzerSettings())


def test_shapley_split_matches_the_exact_scm_split() -> None:
    """Latency's and accuracy's parts of the revenue loss are the SCM's 4 and 2 (of 6)."""
    analysis = analyse(units())
    attribution = analysis.attribution
    assert attribution is not None and attribution.key_metric == "revenue"
    parts = {c.cause: c for c in attribution.contributions}
    assert set(parts) == {"latency_ms", "accuracy", "unexplained"}
    for cause, exact in EXACT.items():
        part = parts[cause]
        assert part.interval is not None
        assert part.interval.lower <= exact <= part.interval.upper
        assert part.contribution == pytest.approx(exact, rel=0.1)
    total = sum(c.contribution for c in attribution.contributions)
    assert total == pytest.approx(attribution.total, abs=1e-9)
    assert sum(c.share for c in attribution.contributions) == pytest.approx(1.0, abs=1e-9)
    # The root causes carry these shares instead of 1/2 each.
    chains = {c.id: c for c in analysis.root_causes if c.kind == "metric_chain"}
    latency = chains["chain:latency>satisfaction>conversion>revenue"]
    accuracy = chains["chain:accuracy>satisfaction>conversion>revenue"]
    assert latency.share == pytest.approx(parts["latency_ms"].share)
    assert latency.share == pytest.approx(2.0 / 3.0, abs=0.07)
    assert accuracy.share == pytest.approx(1.0 / 3.0, abs=0.07)
    assert "Shapley" in render(analysis)


def test_a_direct_effect_is_left_unexplained_not_spread_over_the_causes() -> None:
    """A loser effect on revenue outside the chains shows as the unexplained term."""
    analysis = analyse(units(direct=-3.0))
    assert analysis.attribution is not None
    parts = {c.cause: c for c in analysis.attribution.contributions}
    assert parts["unexplained"].contribution == pytest.approx(-3.0, abs=0.6)
    assert parts["latency_ms"].contribution == pytest.approx(-4.0, rel=0.1)


def test_no_per_unit_rows_no_attribution() -> None:
    """Summary statistics cannot separate the causes: no attribution, the shares stay as before."""
    result = json.loads((EXAMPLES / "summary.json").read_text())
    analysis = analyze_failure(result, settings=AnalyzerSettings())
    assert analysis.attribution is None
    assert all(c.contribution is None for c in analysis.root_causes)
