"""``twinloop anomalies`` and the CSV reader behind it: text, JSON, bad files, a learned pattern."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_anomaly_detector import ONSET, seasonal_series

from cluster.cli import main
from cluster.commands.anomalies import AnomaliesReport
from twinloop.errors import InvalidInput
from twinloop.replication.anomaly.models import SINGLE_THRESHOLD
from twinloop.replication.anomaly.series import read_series_csv


def _write_csv(path: Path, kind: str, seed: int = 1) -> Path:
    timestamps, values = seasonal_series(kind, seed)
    stamps = np.datetime_as_string(timestamps, unit="s")
    rows = [f"{str(t).replace('T', ' ')},{v:.6f}" for t, v in zip(stamps, values, strict=True)]
    path.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    return path


def test_text_output_lists_the_planted_spike(tmp_path: Path, capsys) -> None:
    """The table shows the spike's row, type and the built-in pattern it matches."""
    csv = _write_csv(tmp_path / "kpi.csv", "spike")
    assert main(["anomalies", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "3456 points of 'value'" in out
    line = next(x for x in out.splitlines() if f" {ONSET} " in x)
    assert "spike" in line and "isolated spike" in line


def test_json_output_is_the_report_model(tmp_path: Path, capsys) -> None:
    """--json prints an AnomaliesReport with the settings that produced it."""
    csv = _write_csv(tmp_path / "kpi.csv", "level_shift")
    assert main(["anomalies", str(csv), "--json", "--threshold", "0.5"]) == 0
    report = AnomaliesReport.model_validate_json(capsys.readouterr().out)
    assert report.settings.threshold == 0.5
    assert any(a.index == ONSET and a.kind == "level_shift" for a in report.anomalies)


def test_bad_files_fail_with_one_line(tmp_path: Path, capsys) -> None:
    """A text value column, a constant series and a missing file each exit 2 with the field."""
    text = tmp_path / "text.csv"
    text.write_text("timestamp,value\n2024-01-01 00:00:00,a\n2024-01-01 00:05:00,b\n")
    assert main(["anomalies", str(text)]) == 2
    assert "value: not numeric" in capsys.readouterr().err
    flat = tmp_path / "flat.csv"
    flat.write_text("timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,1\n")
    assert main(["anomalies", str(flat)]) == 2
    assert "values: the series is constant" in capsys.readouterr().err
    assert main(["anomalies", str(tmp_path / "missing.csv")]) == 2
    assert "is not a file" in capsys.readouterr().err


def test_reader_takes_nab_files_as_they_are(bench_data: Path) -> None:
    """NAB's timestamp,value files read with their row count, and a wrong column is named."""
    path = bench_data / "anomaly/data/realTraffic/speed_irregular.csv"
    series = read_series_csv(path)
    assert len(series) == 600 and series.value_column == "value"
    assert series.timestamps[0] == np.datetime64("2015-09-08T11:39:00")
    with pytest.raises(InvalidInput, match="value_column"):
        read_series_csv(path, value_column="speed")


def test_learned_pattern_goes_to_the_store_and_is_matched(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--learn saves the strongest anomaly as a pattern; the next --store run matches it."""
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TWINLOOP_REDIS_URL", raising=False)
    monkeypatch.delenv("TWINLOOP_CONFIG", raising=False)
    first = _write_csv(tmp_path / "first.csv", "dip", seed=1)
    assert main(["anomalies", str(first), "--store", "--learn", "payment drop"]) == 0
    assert "learned pattern 'payment drop'" in capsys.readouterr().out
    again = _write_csv(tmp_path / "again.csv", "dip", seed=2)
    assert main(["anomalies", str(again), "--store", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    matched = {a["pattern"]["name"] for a in report["anomalies"] if a["pattern"]}
    assert "payment drop" in matched
    assert main(["anomalies", str(again), "--learn", "x"]) == 2
    assert "add --store" in capsys.readouterr().err


def test_single_scores_with_the_default_setting_alone(tmp_path: Path, capsys) -> None:
    """--single switches the ensemble off and takes that setting's own threshold; the planted
    level shift is still found at onset."""
    csv = _write_csv(tmp_path / "kpi.csv", "level_shift")
    assert main(["anomalies", str(csv), "--json", "--single"]) == 0
    report = AnomaliesReport.model_validate_json(capsys.readouterr().out)
    assert report.settings.ensemble is False
    assert report.settings.threshold == SINGLE_THRESHOLD
    assert any(a.index == ONSET and a.kind == "level_shift" for a in report.anomalies)
