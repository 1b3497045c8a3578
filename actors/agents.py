"""The agent actor: one built-in or third-party agent, imported by path inside a Ray worker."""

from __future__ import annotations

import os
from typing import Any

import ray

from twinloop.agents.protocol import AgentContext, Candidate
from twinloop.agents.registry import import_agent
from twinloop.strategy.models import Action


class AgentWorker:
    """Holds one agent; ``propose`` is the agent's, ``ping`` proves the actor is up."""

    def __init__(self, kind: str, path: str) -> None:
        self.kind = kind
        self.agent = import_agent(path)

    def ping(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
        }

    def propose(self, action: Action, context: AgentContext) -> list[Candidate]:
        return self.agent.propose(action, context)


AgentActor = ray.remote(AgentWorker)
