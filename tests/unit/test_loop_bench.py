"""The loop benchmark's summary: rates with exact intervals, effect accuracy, latency scenarios."""

from __future__ import annotations

from typing import Any

import pytest

from bench.loop import effect_accuracy, summarize, table
from bench.loop_scenarios import LATENCY_BASE, latency_scenarios, make_scenario


def row(flaw: str, decision: str, **extra: Any) -> dict[str, Any]:
    """A scenario's row as ``run_scenario`` writes it (only what the summary reads)."""
    base: dict[str, Any] = {
        "flaw": flaw,
        "decision": decision,
        "promoted": decision == "promoted",
        "chosen": "ml_pipeline",
        "canary": None,
        "predicted": [None, None, None],
        "measured": [None, None, None],
        "seconds": 10.0,
        "cpu_seconds": 5.0,
    }
    return {**base, **extra}


def test_rates_count_promotions_true_wins_and_null_false_promotions() -> None:
    """3 flawed (2 promoted, 1 of them a true win), 2 nulls (1 promoted): every rate is k/n."""
    rows = [
        row("segment", "promoted", true_win=True, seconds=30.0, cpu_seconds=12.0),
        row("latency", "promoted", true_win=False, chosen="performance", seconds=50.0),
        row("threshold", "abandoned"),
        row("null", "promoted", true_win=False, seconds=40.0),
        row("null", "rolled_back"),
    ]
    s = summarize(rows)
    assert (s["improvement_rate"]["k"], s["improvement_rate"]["n"]) == (2, 3)
    assert (s["fixed_rate"]["k"], s["fixed_rate"]["n"]) == (1, 3)
    assert (s["true_win_rate"]["k"], s["true_win_rate"]["n"]) == (1, 3)
    assert (s["false_promotions_null"]["k"], s["false_promotions_null"]["n"]) == (1, 2)
    low, high = s["false_promotions_null"]["ci95"]
    assert low < 0.5 < high
    assert s["time_to_improvement_seconds"]["median"] == 40.0
    assert s["by_flaw"]["latency"]["agents"] == {"performance": 1}
    assert s["by_flaw"]["null"]["decisions"] == {"promoted": 1, "rolled_back": 1}
    assert "1/2 (50%" in table(s)


def test_effect_accuracy_is_exact_on_literal_effects() -> None:
    """Measured = predicted + 0.01 everywhere: correlation 1, mean error +0.01; the interval
    covers the measured effect in 2 of 3."""
    rows = [
        row("segment", "promoted", canary="promote", predicted=[0.05, 0.0, 0.1],
            measured=[0.06, 0.0, 0.1]),
        row("segment", "promoted", canary="promote", predicted=[0.10, 0.05, 0.2],
            measured=[0.11, 0.0, 0.2]),
        row("latency", "rolled_back", canary="expire", predicted=[0.02, 0.01, 0.025],
            measured=[0.03, 0.0, 0.1]),
        row("null", "abandoned"),
    ]  # fmt: skip
    acc = effect_accuracy(rows)
    assert acc["n"] == 3
    assert acc["correlation"] == pytest.approx(1.0)
    assert acc["mean_error"] == pytest.approx(0.01)
    assert acc["coverage"] == pytest.approx(2 / 3)
    assert effect_accuracy([row("null", "abandoned")])["correlation"] is None


def test_latency_scenarios_are_slow_champions_after_every_other_index() -> None:
    """Latency scenarios alternate pure / with a segment flaw, at indices no other mix uses; the
    champion is slower than the model before it, as well trained as a null champion."""
    picked = latency_scenarios(3)
    assert picked == [
        (LATENCY_BASE, "latency"),
        (LATENCY_BASE + 1, "latency_mixed"),
        (LATENCY_BASE + 2, "latency"),
    ]
    slow = make_scenario(LATENCY_BASE, "latency", 2026)
    assert slow.flawed_segment is None and slow.champion_threshold == 0.5
    assert slow.champion.latency_p50_ms >= 3 * slow.previous.latency_p50_ms
    mixed = make_scenario(LATENCY_BASE + 1, "latency_mixed", 2026)
    assert mixed.flawed_segment in ("enterprise", "mid_market")
    with pytest.raises(ValueError, match="latency"):
        latency_scenarios(-1)
