"""Failure Analyzer input: the seed's camelCase form, inferred kinds and directions, and bad
input rejected with the field named and nothing stored."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from twinloop.analysis.analyzer import analyze_failure
from twinloop.analysis.inputs import infer_direction, infer_kind, parse_ab_result
from twinloop.analysis.settings import AnalyzerSettings
from twinloop.errors import InvalidInput
from twinloop.store import SqliteStore

SETTINGS = AnalyzerSettings()
GOOD: dict[str, Any] = {
    "experimentId": "exp-bad",
    "variants": [{"name": "A", "control": True}, {"name": "B"}],
    "metrics": {
        "conversion": {"variants": {"A": {"n": 1000, "successes": 100},
                                    "B": {"n": 1000, "successes": 80}}},
        "latency": {"variants": {"A": {"n": 1000, "mean": 100, "std": 20},
                                 "B": {"n": 1000, "mean": 120, "std": 20}}},
    },
}  # fmt: skip


def test_seed_camel_case_fields_are_accepted() -> None:
    """experimentId, percentChange, plannedAllocation, businessParameters all parse."""
    result = parse_ab_result({
        "experimentId": "exp-1",
        "variants": [{"name": "A", "plannedAllocation": 0.5, "control": True},
                     {"name": "B", "plannedAllocation": 0.5}],
        "businessParameters": {"trafficPerDay": 100, "valuePerConversion": 3, "costPerCall": 0.1},
        "metrics": {"ctr": {"variants": {"A": {"value": 0.1}, "B": {"value": 0.09,
                                                                     "percentChange": -10}}}},
    })  # fmt: skip
    assert result.experiment_id == "exp-1"
    assert result.business is not None and result.business.cost_per_call == 0.1
    assert result.variants[0].allocation == 0.5
    metric = result.metrics[0]
    assert (metric.kind, metric.direction, metric.role) == ("conversion", "higher", "primary")


@pytest.mark.parametrize(
    ("name", "kind", "direction"),
    [
        ("latency_p95_ms", "latency", "lower"),
        ("cost_per_conversion", "cost", "lower"),
        ("revenue_per_user", "revenue", "higher"),
        ("model_accuracy", "accuracy", "higher"),
        ("csat", "satisfaction", "higher"),
        ("churn_rate", "custom", "lower"),
        ("sessions", "custom", "higher"),
    ],
)
def test_kind_and_direction_are_inferred_from_the_name(
    name: str, kind: str, direction: str
) -> None:
    """Latency and cost are lower-is-better; churn too; a plain count is higher-is-better."""
    assert infer_kind(name) == kind
    assert infer_direction(name, kind) == direction


def test_a_given_direction_wins_over_the_inferred_one() -> None:
    """A metric may say its own direction."""
    data = copy.deepcopy(GOOD)
    data["metrics"]["latency"]["direction"] = "higher"
    assert parse_ab_result(data).metric("latency").direction == "higher"  # type: ignore[union-attr]


def _bad(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


BAD_JSON = [
    pytest.param(
        _bad(["metrics", "latency", "variants"], {"A": {"n": 10, "mean": 1, "std": 1},
                                                  "C": {"n": 10, "mean": 1, "std": 1}}),
        r"metrics\.latency\.variants: has variants \['A', 'C'\]", id="variants-differ",
    ),
    pytest.param(_bad(["metrics", "conversion", "variants", "B", "n"], -5),
                 r"metrics\.conversion\.variants\.B\.n: must be >= 0, got -5", id="negative-n"),
    pytest.param(_bad(["metrics", "conversion", "variants", "B", "successes"], 1001),
                 r"metrics\.conversion\.variants\.B\.successes: 1001 exceeds n = 1000",
                 id="successes-above-n"),
    pytest.param(_bad(["metrics", "latency", "variants", "B", "std"], -1.0),
                 r"metrics\.latency\.variants\.B\.std: must be >= 0", id="negative-std"),
    pytest.param(_bad(["metrics", "latency", "variants", "B"],
                      {"n": 10, "sum": 100.0, "sum_sq": 10.0}),
                 r"metrics\.latency\.variants\.B\.sum_sq: implies a variance below zero",
                 id="negative-variance"),
    pytest.param(_bad(["metrics", "latency", "variants", "B"], {"values": []}),
                 r"metrics\.latency\.variants\.B\.values: is empty", id="empty-values"),
    pytest.param(_bad(["metrics", "latency", "variants", "B"], {"values": [math.nan, math.nan]}),
                 r"metrics\.latency\.variants\.B\.values: contains NaN", id="all-nan-values"),
    pytest.param(_bad(["metrics", "latency", "kind"], "speed"),
                 r"metrics\.latency\.kind: .*'speed'", id="unknown-kind"),
    pytest.param(_bad(["metrics", "latency", "variants", "B"], {"n": 10, "median": 3}),
                 r"metrics\.latency\.variants\.B: cannot tell the data form", id="unknown-form"),
    pytest.param(_bad(["experimentId"], "exp 1/2"), r"experimentId: .*must match",
                 id="unsafe-id"),
    pytest.param(_bad(["winner"], "Z"), r"winner: 'Z' is not a variant", id="unknown-winner"),
    pytest.param({"experimentId": "x", "winner": "a", "metrics": {"acc": {"winner": 1,
                                                                          "loser": 2}}},
                 r"metrics\.acc: winner/loser values need", id="seed-form-without-loser"),
    pytest.param({"experimentId": "x", "metrics": {}}, r"metrics: no metrics and no raw data",
                 id="no-metrics"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), BAD_JSON)
def test_bad_json_input_names_the_field_and_stores_nothing(
    data: dict[str, Any], message: str, tmp_path: Path
) -> None:
    """Each bad input raises InvalidInput naming its field; the store stays empty."""
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        with pytest.raises(InvalidInput, match=message):
            analyze_failure(data, store=store, settings=SETTINGS)
        assert store.query("analyses") == [] and store.query("signatures") == []


def _units(**columns: Any) -> pa.Table:
    base = {"variant": ["A", "B"] * 50, "country": ["DE", "FR"] * 50,
            "converted": [True, False] * 50}  # fmt: skip
    base.update(columns)
    return pa.table({k: v for k, v in base.items() if v is not None})


@pytest.mark.parametrize(
    ("table", "message"),
    [
        pytest.param(_units(variant=None), r"raw\.variant_column: column 'variant' not found",
                     id="no-variant-column"),
        pytest.param(_units().slice(0, 0), r"raw: the table has no rows", id="empty-table"),
        pytest.param(_units(spend=pa.array([None] * 100, pa.float64())),
                     r"metrics\.spend: column 'spend' has no values", id="all-nan-column"),
        pytest.param(_units(variant=["A"] * 100), r"raw\.variant_column: needs at least two",
                     id="one-variant"),
    ],
)  # fmt: skip
def test_bad_raw_tables_name_the_field(table: pa.Table, message: str, tmp_path: Path) -> None:
    """Raw tables missing the variant column, empty or all-missing are refused, nothing kept."""
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        with pytest.raises(InvalidInput, match=message):
            analyze_failure({"experimentId": "raw-bad"}, store=store, raw_table=table,
                            settings=SETTINGS)  # fmt: skip
        assert store.query("analyses") == []


def test_a_raw_file_without_the_variant_column_is_refused(tmp_path: Path) -> None:
    """A Parquet file named in the JSON is read; its missing variant column is named."""
    pq.write_table(_units(variant=None, arm=["A", "B"] * 50), tmp_path / "units.parquet")
    data = {"experimentId": "file", "raw": {"path": "units.parquet"}}
    with pytest.raises(InvalidInput, match=r"raw\.variant_column: column 'variant' not found"):
        analyze_failure(data, base_dir=tmp_path, settings=SETTINGS)
    data["raw"]["variantColumn"] = "arm"  # type: ignore[index]
    analysis = analyze_failure(data, base_dir=tmp_path, settings=SETTINGS)
    assert analysis.decision.control == "A" and analysis.input_form == "raw"


def test_missing_raw_file_is_named(tmp_path: Path) -> None:
    """A raw path that does not exist is InvalidInput on raw.path."""
    with pytest.raises(InvalidInput, match=r"raw\.path: no such file"):
        analyze_failure({"experimentId": "f", "raw": {"path": "nope.parquet"}},
                        base_dir=tmp_path, settings=SETTINGS)  # fmt: skip


def test_raw_variants_must_exist_in_the_data() -> None:
    """A control named in the input but absent from the rows is refused by name."""
    table = _units(spend=np.arange(100, dtype=float))
    with pytest.raises(InvalidInput, match=r"variants\[0\]\.name: 'Z' is not in the raw data"):
        analyze_failure({"experimentId": "r", "variants": [{"name": "Z", "control": True}]},
                        raw_table=table, settings=SETTINGS)  # fmt: skip


def test_unknown_primary_metric_and_environment_are_named() -> None:
    """primaryMetrics and environment are checked against what exists."""
    with pytest.raises(InvalidInput, match=r"primary_metrics\[0\]: unknown metric 'gmv'"):
        analyze_failure({**GOOD, "primaryMetrics": ["gmv"]}, settings=SETTINGS)
    with pytest.raises(InvalidInput, match=r"environment: unknown sandbox preset 'mars'"):
        analyze_failure({**GOOD, "environment": "mars"}, settings=SETTINGS)
