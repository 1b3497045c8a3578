"""The orchestrator on the shared Ray: a killed agent's action is retried, a hung one times out."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import ray

from actors.orchestrator import Orchestrator
from tests.agent_doubles import SlowAgent
from twinloop.agents.protocol import AgentContext
from twinloop.agents.results import ACTION_RESULTS, ActionResult
from twinloop.analysis.analyzer import analyze_failure
from twinloop.sim.models import ModelProfile
from twinloop.store import SqliteStore
from twinloop.strategy import Plan, build_plan

pytestmark = pytest.mark.ray
DOUBLES = {"slow": "tests.agent_doubles:SlowAgent", "quick": "tests.agent_doubles:QuickAgent"}


LOSER = ModelProfile(name="model-v3", accuracy=0.8, latency_p50_ms=131.0, latency_p95_ms=300.0)
SUMMARY = {  # a significant conversion loss in summary form: analysed in milliseconds
    "experimentId": "exp-orchestrated",
    "variants": [{"name": "model-v2", "control": True}, {"name": "model-v3"}],
    "businessParameters": {"trafficPerDay": 50000, "valuePerConversion": 40},
    "metrics": {
        "conversion": {"kind": "conversion", "role": "primary", "variants": {
            "model-v2": {"n": 10000, "successes": 1200},
            "model-v3": {"n": 10050, "successes": 1100}}},
        "latency_ms": {"variants": {
            "model-v2": {"n": 10000, "mean": 100.0, "std": 30.0},
            "model-v3": {"n": 10050, "mean": 131.0, "std": 35.0}}},
    },
}  # fmt: skip


def _plan(*agents: str) -> Plan:
    """A plan's first actions, re-assigned to the given agent kinds."""
    plan = build_plan(analyze_failure(SUMMARY))
    assert len(plan.actions) >= len(agents)
    pairs = zip(plan.actions, agents, strict=False)
    actions = tuple(a.model_copy(update={"agent": k}) for a, k in pairs)
    return plan.model_copy(update={"actions": actions})


def _wait_for(path: Path, lines: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= lines:
            return
        time.sleep(0.05)
    pytest.fail(f"{path} never got {lines} line(s): the agent did not start")


def test_killed_agent_action_completes_on_retry_with_the_same_result(
    ray_session: Any, tmp_path: Path
) -> None:
    """ray.kill of the agent actor mid-action → a fresh actor re-runs it; same candidates."""
    plan = _plan("slow")
    marker = tmp_path / "started"
    context = AgentContext(
        environment="sales", model=LOSER, params={"sleep": 2.0, "marker": str(marker)}
    )
    store = SqliteStore(tmp_path / "s.sqlite3")
    orchestrator = Orchestrator(store=store, agents=DOUBLES, timeout_s=60.0, num_cpus=0.5)
    out: list[ActionResult] = []
    runner = threading.Thread(target=lambda: out.extend(orchestrator.run(plan, context)))
    runner.start()
    try:
        _wait_for(marker, 1)
        ray.kill(orchestrator.actor("slow"), no_restart=True)
        runner.join(timeout=120)
    finally:
        orchestrator.shutdown()
    [result] = out
    assert result.status == "completed" and result.attempts == 2
    assert len(marker.read_text().splitlines()) == 2  # the action really ran twice
    expected = SlowAgent().propose(plan.actions[0], context.model_copy(update={"params": {}}))
    assert list(result.candidates) == expected
    assert store.get_model(ACTION_RESULTS, result.store_id, ActionResult) == result


def test_hung_agent_times_out_and_the_plan_goes_on(ray_session: Any, tmp_path: Path) -> None:
    """An agent sleeping past its deadline → timed_out; the next action still completes."""
    plan = _plan("slow", "quick")
    context = AgentContext(environment="sales", model=LOSER, params={"sleep": 600.0})
    orchestrator = Orchestrator(agents=DOUBLES, timeouts={"slow": 2.0}, num_cpus=0.5)
    try:
        first, second = orchestrator.run(plan, context)
    finally:
        orchestrator.shutdown()
    assert first.status == "timed_out" and "2 s" in (first.error or "")
    assert second.status == "completed" and len(second.candidates) == 1


def test_cancel_stops_the_running_action_and_the_rest(ray_session: Any, tmp_path: Path) -> None:
    """cancel() during an action → it and every later action end `cancelled`."""
    plan = _plan("slow", "quick")
    marker = tmp_path / "started"
    context = AgentContext(
        environment="sales", model=LOSER, params={"sleep": 600.0, "marker": str(marker)}
    )
    orchestrator = Orchestrator(agents=DOUBLES, num_cpus=0.5)
    out: list[ActionResult] = []
    runner = threading.Thread(target=lambda: out.extend(orchestrator.run(plan, context)))
    runner.start()
    try:
        _wait_for(marker, 1)
        orchestrator.cancel()
        runner.join(timeout=60)
    finally:
        orchestrator.shutdown()
    assert [r.status for r in out] == ["cancelled", "cancelled"]
