"""The improvement job on the cluster's stages: the chosen agent runs on its actor.

``python -m cluster.jobs.improve`` loads ``cluster.loop_stages`` unless told ``--in-process``:
the ``candidates`` stage retrains on Ray Tune and asks agents through the orchestrator. Here a
latency failure plans the performance agent, which runs on a named agent actor of the test
session's Ray; its serving configuration is registered and judged to a decision. The retraining
seam on Ray Tune is exercised end to end by ``tests/ray/test_demo.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import ray

from actors.orchestrator import Orchestrator
from cluster.jobs.improve import drive, load_stages, where
from cluster.loop_stages import cluster_stages
from tests.unit.test_loop_agent_candidates import FAMILY, lost_test, outcome, trained
from twinloop.agents.results import ACTION_RESULTS, ActionResult
from twinloop.loop import ImprovementSpec


def test_the_job_asks_the_performance_agent_on_its_actor(
    ray_session: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TWINLOOP_REDIS_URL", raising=False)
    monkeypatch.delenv("TWINLOOP_CONFIG", raising=False)
    assert where(load_stages(None)) == "retraining: Ray Tune; agents: agent actors"
    assert where(load_stages(None, in_process=True)) == "retraining: in-process; agents: in-process"
    model = trained()
    slow = model.model_copy(update={"latency_p50_ms": 600.0, "latency_p95_ms": 1_500.0})
    store, registry, ident = lost_test(tmp_path, slow, model, "slow-champion")
    orchestrator = Orchestrator(store=None, timeout_s=300.0)
    try:
        spec = ImprovementSpec(experiment_id="slow-champion", family=FAMILY, seed=3)
        done = drive(spec, cluster_stages(orchestrator))
        assert done.id == ident and done.terminal, done
        cand = outcome(store, ident, "candidates")
        assert cand["agent"] == "performance" and cand["registered"] == "v2", cand
        result = store.get_model(ACTION_RESULTS, str(cand["result_id"]), ActionResult)
        assert result.status == "completed" and result.attempts == 1 and result.candidates
        actor = ray.get_actor(f"twinloop-agent-{orchestrator.label}-performance")
        assert actor is not None
        assert registry.version(FAMILY, "v2").model.latency_p95_ms < slow.latency_p95_ms
    finally:
        orchestrator.shutdown()
