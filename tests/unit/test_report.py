"""The report renderer on fixed small inputs: each plot is a PNG data URI, the page stands alone."""

from __future__ import annotations

import base64
import re

import pytest

from twinloop.demo.results import TrajectoryBand
from twinloop.report import loop_plots, plots
from twinloop.report.html import Image, Section, render_html

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(uri: str) -> bytes:
    assert uri.startswith("data:image/png;base64,")
    return base64.b64decode(uri.split(",", 1)[1])


def _bands() -> list[TrajectoryBand]:
    return [
        TrajectoryBand(kpi=k, variant=v, day=[0.0, 1.0, 2.0], mean=[m, m + 1, m + 2],
                       low=[m - 1, m, m + 1], high=[m + 1, m + 2, m + 3])
        for k in ("revenue", "satisfaction")
        for v, m in (("model-v2", 10.0), ("model-v3", 8.0))
    ]  # fmt: skip


PLOTS = {
    "trajectories": lambda: plots.trajectories(_bands(), {"revenue": "revenue per day"}),
    "forest": lambda: plots.forest([
        plots.ForestRow("revenue", -0.18, -0.30, -0.06, True, True),
        plots.ForestRow("latency_ms", 1.5, 1.4, 1.6, True, True),
        plots.ForestRow("interactions", -0.01, -0.04, 0.02, False, True),
    ]),
    "segments": lambda: plots.segments([
        plots.SegmentBar("segment=enterprise", "accuracy", -0.53, 0.01, 1.1)
    ]),
    "chain": lambda: plots.chain([
        plots.ChainStep("latency_ms", 1.57, 1.0), plots.ChainStep("satisfaction", 0.04, 1.0),
        plots.ChainStep("conversions", None, 0.9),
    ], "latency → satisfaction → conversion"),
    "what_if": lambda: plots.what_if([
        plots.WhatIfBar("revenue", "metric graph", 0.12, -0.02, 0.37),
        plots.WhatIfBar("revenue", "twin re-run", 0.05, 0.02, 0.08),
        plots.WhatIfBar("satisfaction", "twin re-run", 0.02, 0.02, 0.03),
    ]),
    "validations": lambda: plots.validations([
        plots.ValidationBar("Cut latency", 0.92, 0.05, 0.03, 0.07, True),
        plots.ValidationBar("Do nothing", 0.5, 0.0, -0.02, 0.02, False),
    ]),
    "loop_timeline": lambda: loop_plots.timeline([
        loop_plots.StageBar("planned", 0.01, True), loop_plots.StageBar("candidates", 20.0, True),
        loop_plots.StageBar("canary", 45.0, True),
    ]),
    "canary_trace": lambda: loop_plots.canary_trace([
        loop_plots.CanaryPoint(100, 0.2, -0.6, 1.0), loop_plots.CanaryPoint(400, 0.14, 0.01, 0.3),
    ], "promote"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_each_plot_is_a_real_png_data_uri(name: str) -> None:
    """Every plot function returns a decodable PNG of a sensible size."""
    png = _png(PLOTS[name]())
    assert png.startswith(PNG_MAGIC)
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert 200 < width < 2000 and 100 < height < 2000


def _sections() -> list[Section]:
    uri = PLOTS["forest"]()
    return [
        Section("effects", "Effects", [Image(uri, "forest plot")], ["v3 <loses> & pays"],
                "95% intervals", table=[["metric", "effect"], ["revenue", "-18%"]]),
        Section("chain", "Chain", [Image(uri, "chain")], ["latency drives it"], "P(real) 0.99"),
    ]  # fmt: skip


def test_page_is_self_contained_and_escaped() -> None:
    """One page: inline CSS, data-URI images only, no script or external URL, text escaped."""
    page = render_html("Title", "sub", ["line 1", "line 2"], _sections(), "footer")
    assert page.startswith("<!DOCTYPE html>")
    assert len(re.findall(r"<img src='data:image/png;base64,", page)) == 2
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "<link" not in page
    assert "v3 &lt;loses&gt; &amp; pays" in page
    assert "@media print" in page
    assert "<section id='effects'>" in page and "<section id='chain'>" in page
    assert "<th>metric</th>" in page and "<td>-18%</td>" in page
    assert page.count("How sure:") == 2


def test_an_image_that_is_not_a_data_uri_is_refused() -> None:
    """A plot pointing at a file or URL would break the offline page: refused by name."""
    bad = [Section("x", "X", [Image("https://cdn.example/plot.png", "plot")], ["t"], "c")]
    with pytest.raises(ValueError, match="section 'x': image must be a data: URI"):
        render_html("T", "s", [], bad, "f")
