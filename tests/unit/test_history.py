"""KPI history ingestion: formats, repairs reported as findings, unusable input refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from twinloop.errors import InvalidInput
from twinloop.replication.history import history_from_arrays, history_from_table, read_history


def codes(history) -> dict[str, int | None]:
    return {f.code: f.count for f in history.findings}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_unsorted_timestamps_are_sorted_and_reported(tmp_path: Path) -> None:
    """Rows out of order come back sorted by time, with a timestamps_unsorted finding."""
    path = write(tmp_path, "h.csv", "timestamp,revenue\n2024-01-03,3\n2024-01-01,1\n2024-01-02,2\n")
    history = read_history(path)
    assert history.values("revenue").tolist() == [1.0, 2.0, 3.0]
    assert codes(history)["timestamps_unsorted"] == 1
    assert history.step == 86400.0


def test_duplicates_keep_the_last_row_and_are_reported(tmp_path: Path) -> None:
    """A re-delivered day keeps the later row in file order."""
    path = write(tmp_path, "h.csv", "date,revenue\n2024-01-01,1\n2024-01-02,2\n2024-01-02,5\n")
    history = read_history(path)
    assert history.values("revenue").tolist() == [1.0, 5.0]
    assert codes(history)["duplicate_timestamps"] == 1


def test_gaps_are_counted_and_regular_grid_has_nan(tmp_path: Path) -> None:
    """Three missing days are one gap of three steps; regular() puts NaN there."""
    days = ["2024-01-01", "2024-01-02", "2024-01-06", "2024-01-07"]
    path = write(
        tmp_path, "h.csv", "timestamp,x\n" + "".join(f"{d},{i}\n" for i, d in enumerate(days))
    )
    history = read_history(path)
    assert codes(history)["gaps"] == 3
    grid = history.regular()
    assert grid.n_rows == 7
    assert np.isnan(grid.values("x")[2:5]).all()


def test_non_numeric_value_is_refused_with_the_column_named(tmp_path: Path) -> None:
    """A word in a metric column is InvalidInput naming the column, the value and the row."""
    path = write(tmp_path, "h.csv", "timestamp,region,revenue\n2024-01-01,eu,1\n2024-01-02,eu,x\n")
    with pytest.raises(InvalidInput, match=r"history\.revenue: not numeric: value 'x' at row 1"):
        read_history(path)


def test_word_after_the_inference_block_is_still_named(tmp_path: Path) -> None:
    """A bad value past pyarrow's type-inference block is reported the same way."""
    rows = "".join(f"{i},{i * 0.5}\n" for i in range(120_000))
    path = write(tmp_path, "h.csv", "timestamp,latency\n" + rows + "120000,oops\n")
    with pytest.raises(
        InvalidInput,
        match=r"history\.latency: not numeric: value 'oops' at row "
        r"120000",
    ):
        read_history(path)


def test_text_columns_without_numbers_become_segments(tmp_path: Path) -> None:
    """region is a segment; select() and collapse() give one series per metric."""
    text = (
        "timestamp,region,orders\n2024-01-01,eu,1\n2024-01-01,us,3\n"
        "2024-01-02,eu,2\n2024-01-02,us,\n"
    )
    history = read_history(write(tmp_path, "h.csv", text))
    assert list(history.segments) == ["region"]
    assert history.select(region="us").values("orders").tolist()[0] == 3.0
    assert history.collapse("sum").values("orders").tolist() == [4.0, 2.0]
    assert codes(history)["missing_values"] == 1
    with pytest.raises(InvalidInput, match=r"history\.segments"):
        history.require_single_series()


def test_parquet_arrow_json_and_ndjson_read_the_same(tmp_path: Path) -> None:
    """All supported formats give the same validated history."""
    table = pa.table(
        {
            "timestamp": pa.array(np.arange(5).astype("datetime64[D]")),
            "revenue": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    pq.write_table(table, tmp_path / "h.parquet")
    feather.write_feather(table, tmp_path / "h.arrow")
    records = [{"timestamp": f"2024-01-0{i + 1}", "revenue": i + 1.0} for i in range(5)]
    (tmp_path / "h.json").write_text(json.dumps(records))
    (tmp_path / "c.json").write_text(
        json.dumps(
            {
                "timestamp": [r["timestamp"] for r in records],
                "revenue": [r["revenue"] for r in records],
            }
        )
    )
    (tmp_path / "h.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    for name in ("h.parquet", "h.arrow", "h.json", "c.json", "h.jsonl"):
        history = read_history(tmp_path / name)
        assert history.values("revenue").tolist() == [1.0, 2.0, 3.0, 4.0, 5.0], name
        assert history.step == 86400.0, name


def test_json_column_mixing_numbers_and_words_is_named(tmp_path: Path) -> None:
    """Mixed JSON types are not a pyarrow traceback but a named column."""
    records = [{"ts": 1, "cost": 1.5}, {"ts": 2, "cost": "n.a."}]
    (tmp_path / "h.json").write_text(json.dumps(records))
    with pytest.raises(InvalidInput, match=r"history\.cost: not numeric: value 'n.a.'"):
        read_history(tmp_path / "h.json")


@pytest.mark.parametrize(
    ("metrics", "match"),
    [
        ({"x": [1.0, np.inf, 3.0]}, r"history\.x: value inf at row 1"),
        ({"x": [np.nan, np.nan, np.nan]}, r"history\.x: has no values"),
    ],
)
def test_infinite_or_empty_metrics_are_refused(metrics: dict, match: str) -> None:
    """inf and all-missing metrics are unusable and named."""
    with pytest.raises(InvalidInput, match=match):
        history_from_arrays(np.arange(3), metrics)


def test_empty_table_and_missing_timestamp_are_refused(tmp_path: Path) -> None:
    """No rows, a blank timestamp, an unparseable one, an unknown format: each named."""
    with pytest.raises(InvalidInput, match="history: the table has no rows"):
        history_from_table(pa.table({"timestamp": pa.array([], pa.int64()), "x": []}))
    path = write(tmp_path, "h.csv", "timestamp,x\n2024-01-01,1\n,2\n")
    with pytest.raises(InvalidInput, match=r"history\.timestamp: timestamp missing at row 1"):
        read_history(path)
    path = write(tmp_path, "b.csv", "timestamp,x\n2024-01-01,1\nlast tuesday,2\n")
    with pytest.raises(InvalidInput, match="'last tuesday' at row 1 is not an ISO-8601"):
        read_history(path)
    with pytest.raises(InvalidInput, match=r"unknown format '\.xlsx'"):
        read_history(write(tmp_path, "h.xlsx", ""))
    with pytest.raises(InvalidInput, match="no metric columns"):
        history_from_table(pa.table({"timestamp": [1, 2]}))


def test_constant_metric_and_missing_values_are_findings() -> None:
    """Usable but suspicious data is reported, not refused."""
    history = history_from_arrays(
        np.arange(4), {"flat": [2.0, 2.0, 2.0, 2.0], "x": [1.0, np.nan, 3.0, 4.0]}
    )
    assert "constant_metric" in codes(history)
    assert codes(history)["missing_values"] == 1
    assert history.time_kind == "numeric"


def test_utc_offsets_are_converted_to_utc() -> None:
    """Timestamps with offsets land on the same UTC instant."""
    history = history_from_arrays(
        np.array(["2024-01-01T02:00:00+02:00", "2024-01-01T01:00:00Z"]), {"x": [1.0, 2.0]}
    )
    assert history.time_labels() == ["2024-01-01T00:00:00", "2024-01-01T01:00:00"]


def test_arrays_are_read_only_and_summary_is_json() -> None:
    """A history is a value: its arrays cannot be changed behind its back."""
    history = history_from_arrays(np.arange(3).astype("datetime64[D]"), {"x": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="read-only"):
        history.values("x")[0] = 5.0
    summary = json.loads(history.summary().model_dump_json())
    assert summary["start"] == "1970-01-01T00:00:00" and summary["rows"] == 3
    assert history.to_table().column_names == ["timestamp", "x"]
