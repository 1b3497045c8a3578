"""Run a plan's actions in-process, agent by agent: the serial twin of the Ray orchestrator.

Used where Ray is not (a unit test, a third-party agent's own check). An agent that raises gives
a ``failed`` result with the error and the plan goes on; results land in the Store when given.
"""

from __future__ import annotations

from collections.abc import Mapping

from twinloop.agents.protocol import AgentContext
from twinloop.agents.registry import agent_path, discover, import_agent
from twinloop.agents.results import ACTION_RESULTS, ActionResult
from twinloop.errors import TwinloopError
from twinloop.store import Store
from twinloop.strategy.models import Plan


def dispatch_serial(
    plan: Plan,
    context: AgentContext,
    *,
    store: Store | None = None,
    agents: Mapping[str, str] | None = None,
) -> list[ActionResult]:
    """Every action to its agent, in plan order; ``agents`` maps kind → import path."""
    paths = dict(agents) if agents is not None else discover()
    out = []
    for action in plan.actions:
        try:
            agent = import_agent(agent_path(action.agent, paths))
            found = agent.propose(action, context)
            result = ActionResult(
                plan_id=plan.id,
                action_id=action.id,
                agent=action.agent,
                status="completed",
                candidates=tuple(found),
                attempts=1,
            )
        except (TwinloopError, ValueError, RuntimeError) as exc:
            result = ActionResult(
                plan_id=plan.id,
                action_id=action.id,
                agent=action.agent,
                status="failed",
                attempts=1,
                error=f"{type(exc).__name__}: {exc}",
            )
        if store is not None:
            store.put_model(ACTION_RESULTS, result.store_id, result)
        out.append(result)
    return out
