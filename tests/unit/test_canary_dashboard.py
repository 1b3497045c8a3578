"""The Grafana dashboard charts the metrics the canary deployments and the loop's KPIs export."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from serve_apps.canary_metrics import METRIC_NAMES
from serve_apps.telemetry import exported_name
from twinloop.loop.kpis import loop_kpis
from twinloop.store import SqliteStore

DASHBOARD = Path(__file__).resolve().parents[2] / "cluster" / "grafana" / "canary.json"
LOOP_METRIC = exported_name("loop_kpis")


def board() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return found


def test_every_panel_queries_an_exported_metric() -> None:
    """Each panel's PromQL names `ray_<metric>` (counters with `_total`) that the canary
    deployments or the loop export, and every canary metric has a panel."""
    canary = {
        "ray_" + name + ("" if key == "weight" else "_total") for key, name in METRIC_NAMES.items()
    }
    used = set()
    for panel in board()["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = set(re.findall(r"ray_twinloop_\w+", target["expr"]))
            assert names and names <= canary | {LOOP_METRIC}, (panel["title"], names)
            used |= names
    assert used == canary | {LOOP_METRIC}
    assert board()["uid"] and {v["name"] for v in board()["templating"]["list"]} >= {"datasource"}


def test_every_loop_kpi_the_gauge_exports_has_a_panel(tmp_path: Path) -> None:
    """The loop panels select the gauge by its `kpi` tag: each tag value is one the KPIs
    export (``LoopKpis.gauges``), and every exported KPI is charted."""
    exported = set(loop_kpis(SqliteStore(tmp_path / "kpis.sqlite3")).gauges())
    charted = set()
    for panel in board()["panels"]:
        for target in panel["targets"]:
            if LOOP_METRIC in target["expr"]:
                kpis = re.findall(r'kpi="(\w+)"', target["expr"])
                assert kpis, (panel["title"], target["expr"])
                charted |= set(kpis)
    assert charted <= exported, charted - exported
    assert charted == exported, exported - charted
    assert {"improvement_rate", "preflight_brier", "preflight_coverage"} <= charted
