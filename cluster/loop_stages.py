"""The loop's stages on a Ray cluster: retraining on Ray Tune, agents on their actors.

``twinloop.loop.stages.default_stages`` is pure: the retraining search runs in-process (its
replicates on the context's executor) and the performance and business agents are imported and
called in the driver. This adapter binds the two Ray-backed seams of the ``candidates`` stage:
``search`` is ``tuning.search.search_retraining`` (ASHA over replicate batches, the warm start
as ``points_to_evaluate``), and ``ask`` is the orchestrator's ``run_action`` (the agent's actor,
``SPREAD`` over the cluster, with a deadline, a fresh actor after a crash, cancel). The Ray job
``python -m cluster.jobs.improve`` and ``twinloop demo`` run these.
"""

from __future__ import annotations

import functools

from actors.orchestrator import Orchestrator
from twinloop.loop import StageFn
from twinloop.loop.model import Stage
from twinloop.loop.retraining import candidates
from twinloop.loop.stages import default_stages


def cluster_stages(orchestrator: Orchestrator | None = None) -> dict[Stage, StageFn]:
    """The default stages with the ``candidates`` stage on Ray Tune and the agents' actors."""
    from tuning.search import search_retraining

    agents = orchestrator or Orchestrator()
    stages: dict[Stage, StageFn] = dict(default_stages())
    stages["candidates"] = functools.partial(
        candidates, search=search_retraining, ask=agents.run_action
    )
    return stages
