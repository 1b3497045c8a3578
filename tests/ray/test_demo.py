"""The main job end to end on the shared Ray session, reduced size: right decision, right causes,
a complete report."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from cluster.cli import main
from twinloop.demo.results import DemoResult
from twinloop.report.build import SECTION_IDS
from twinloop.report.loop_sections import LOOP_SECTION_IDS

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoResult]:
    """`twinloop demo --small` in-process on the already-connected Ray (it must not restart it)."""
    out = tmp_path_factory.mktemp("demo") / "twinloop-demo"
    code = main(["demo", "--out", str(out), "--small", "--no-progress"])
    assert code == 0
    assert ray_session.is_initialized()  # the CLI borrowed the session, it did not stop it
    return out, DemoResult.model_validate_json((out / "report.json").read_text())


def test_decision_is_right(demo: tuple[Path, DemoResult]) -> None:
    """model-v2 wins, significantly, and the analyzer was not told who won."""
    decision = demo[1].analysis.decision
    assert (decision.winner, decision.loser) == ("model-v2", "model-v3")
    assert decision.status == "significant" and not decision.stated


def test_planted_segment_and_latency_chain_lead_the_root_causes(
    demo: tuple[Path, DemoResult],
) -> None:
    """The enterprise blind spot and latency → satisfaction → conversion are in the top three."""
    top = demo[1].analysis.root_causes[:3]
    segments = [c.segment.element for c in top if c.segment is not None]
    assert {"segment": "enterprise"} in segments
    chains = [c.chain.nodes for c in top if c.chain is not None]
    assert any(n[:3] == ("latency", "satisfaction", "conversion") for n in chains), chains


def test_fixes_are_validated_in_the_twin(demo: tuple[Path, DemoResult]) -> None:
    """Every validated plan reports a win-rate; the retraining fix beats v3 on revenue."""
    validations = demo[1].validations
    assert len(validations) == demo[1].scenario.validate_top + 1
    assert all(0.0 <= v.win_rate <= 1.0 and v.lower <= v.difference <= v.upper
               for v in validations)  # fmt: skip
    retrain = validations[-1]
    assert retrain.kpi == "revenue" and retrain.confirmed and retrain.win_rate > 0.5


def test_report_has_every_section_and_an_embedded_image_each(
    demo: tuple[Path, DemoResult],
) -> None:
    """report.html: six sections, each with a data: URI image; no network; report.json parses."""
    out, _ = demo
    page = (out / "report.html").read_text()
    for section in SECTION_IDS:
        body = page.split(f"<section id='{section}'>", 1)[1].split("</section>", 1)[0]
        assert re.search(r"<img src='data:image/png;base64,[A-Za-z0-9+/=]{100,}'", body), section
    assert "<script" not in page and "http" not in page
    data = json.loads((out / "report.json").read_text())
    assert data["scenario"]["small"] is True and data["seed"] == 1
    assert (out / "twinloop.sqlite3").is_file()  # the embedded store lives in the output folder


def test_the_loop_fixes_the_planted_flaw_through_a_served_canary(
    demo: tuple[Path, DemoResult],
) -> None:
    """plan → Tune retraining → championship → canary on Serve: the retrained model is promoted
    by the Canary deployment on production's outcomes, and the family's champion moved."""
    loop = demo[1].loop
    assert loop is not None
    assert [r.stage for r in loop.timeline] == [
        "analyzed", "planned", "candidates", "championship", "canary"
    ]  # fmt: skip
    assert (loop.stage, loop.status) == ("promoted", "done"), loop.reason
    assert any(p.chosen and p.agent == "ml_pipeline" for p in loop.plan)
    assert loop.candidates is not None and loop.candidates["registered"] == "v3"
    assert loop.championship is not None and loop.championship.winner == "v3"
    canary = loop.canary
    assert canary is not None and canary["served"] is True and canary["by"] == "monitor"
    assert canary["action"] == "promote" and canary["measured_effect"] > 0
    assert canary["trace"] and canary["trace"][-1]["lower"] > 0
    assert loop.champion == "v3"
    assert loop.kpis.promoted >= 1 and loop.kpis.simulation_accuracy.pairs >= 1


def test_report_has_the_loop_sections(demo: tuple[Path, DemoResult]) -> None:
    """Timeline (plot), plan, championship matrix, canary intervals (plot), KPIs; the JSON holds
    the timeline, plan, championship, canary trace and KPIs."""
    out, _ = demo
    page = (out / "report.html").read_text()
    for section in LOOP_SECTION_IDS:
        assert f"<section id='{section}'>" in page, section
    for section in ("loop-timeline", "loop-canary"):
        body = page.split(f"<section id='{section}'>", 1)[1].split("</section>", 1)[0]
        assert "<img src='data:image/png;base64," in body, section
    assert "P(row beats column)" in page
    loop = json.loads((out / "report.json").read_text())["loop"]
    assert {"timeline", "plan", "championship", "canary", "kpis"} <= set(loop)
    assert loop["championship"]["result"]["pairwise"] and loop["canary"]["trace"]
