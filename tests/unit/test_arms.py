"""Arms are prepared once: the analyzer converts each variant's data once and compares it twice."""

from __future__ import annotations

from typing import Any

import pytest

import twinloop.analysis.inputs as analysis_inputs
import twinloop.stats.arms as arms_module
from twinloop.analysis.analyzer import analyze_failure
from twinloop.stats.arms import prepare_arms
from twinloop.stats.compare import compare, compare_arms
from twinloop.stats.inputs import CompareSpec

VARIANTS = [{"name": "A", "control": True}, {"name": "B"}, {"name": "C"}]
# B and C are binomial, A continuous: all three compare as samples, B against C as proportions.
MIXED = {
    "name": "conversion",
    "variants": {
        "A": {"form": "continuous", "n": 1000, "mean": 0.10, "std": 0.3},
        "B": {"form": "binomial", "n": 1000, "successes": 130},
        "C": {"form": "binomial", "n": 1000, "successes": 90},
    },
}
LATENCY = {
    "name": "latency",
    "variants": {
        k: {"form": "continuous", "n": 1000, "mean": m, "std": 40.0}
        for k, m in (("A", 200.0), ("B", 210.0), ("C", 190.0))
    },
}


def _pair_spec(spec: CompareSpec, control: str, treatment: str) -> dict[str, Any]:
    data = spec.model_dump()
    data["variants"] = [
        {**v, "control": v["name"] == control}
        for name in (control, treatment)
        for v in data["variants"]
        if v["name"] == name
    ]
    for metric in data["metrics"]:
        metric["variants"] = {k: metric["variants"][k] for k in (control, treatment)}
    return data


def test_a_pair_of_prepared_arms_compares_as_the_pair_prepared_alone() -> None:
    """Picking two variants from prepared arms gives the same bytes as preparing the two alone."""
    spec = CompareSpec.model_validate({"variants": VARIANTS, "metrics": [MIXED, LATENCY]})
    prepared = prepare_arms(spec)
    assert compare_arms(prepared) == compare(spec)
    alone = compare(_pair_spec(spec, "B", "C"))
    picked = compare_arms(prepared.pair("B", "C"))
    assert picked.model_dump_json() == alone.model_dump_json()
    assert picked.get("conversion").method == alone.get("conversion").method == "two_proportion_z"


def test_the_analyzer_converts_each_variant_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overall and loser-vs-winner comparisons share one conversion per metric and variant."""
    calls: list[str] = []
    convert = arms_module.to_stats

    def counting(data: Any, metric_type: Any, path: str) -> Any:
        calls.append(path)
        return convert(data, metric_type, path)

    monkeypatch.setattr(arms_module, "to_stats", counting)
    monkeypatch.setattr(analysis_inputs, "to_stats", counting)  # where the checks used to convert
    result = {"experiment_id": "exp-arms", "variants": VARIANTS, "metrics": [MIXED, LATENCY]}
    result |= {"winner": "B", "loser": "C"}
    analysis = analyze_failure(result)
    assert analysis.decision.control == "A"  # so the loser-vs-winner comparison is a second one
    assert sorted(calls) == sorted(
        f"metrics.{m}.variants.{v}" for m in ("conversion", "latency") for v in "ABC"
    )
