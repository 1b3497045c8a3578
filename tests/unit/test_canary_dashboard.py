"""The canary Grafana dashboard charts the metrics the canary deployments export."""

from __future__ import annotations

import json
import re
from pathlib import Path

from serve_apps.canary_metrics import METRIC_NAMES

DASHBOARD = Path(__file__).resolve().parents[2] / "cluster" / "grafana" / "canary.json"


def test_every_panel_queries_an_exported_canary_metric() -> None:
    """Each panel's PromQL names `ray_<metric>` (counters with `_total`), and every metric has
    a panel."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exported = {
        "ray_" + name + ("" if key == "weight" else "_total") for key, name in METRIC_NAMES.items()
    }
    used = set()
    for panel in board["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = set(re.findall(r"ray_twinloop_\w+", target["expr"]))
            assert names and names <= exported, (panel["title"], names)
            used |= names
    assert used == exported
    assert board["uid"] and {v["name"] for v in board["templating"]["list"]} >= {"datasource"}
