"""Where agents come from: the built-ins by kind, plus the ``twinloop.agents`` entry-point group.

A third-party package registers an agent class with an entry point::

    [project.entry-points."twinloop.agents"]
    pricing = "my_package.agents:PricingAgent"

The kind is the entry point's name; the value is an import path ``module:Class`` — what travels
to a Ray actor, which imports and builds the agent there (no pickled code crosses). A
third-party agent may not take a built-in's kind.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from twinloop.agents.protocol import Agent
from twinloop.errors import InvalidInput, NotFound

GROUP = "twinloop.agents"
BUILTIN: dict[str, str] = {
    "performance": "twinloop.agents.performance:PerformanceAgent",
    "ml_pipeline": "twinloop.agents.ml_pipeline:MlPipelineAgent",
    "business": "twinloop.agents.business:BusinessAgent",
    "qa": "twinloop.agents.qa:QaAgent",
}


def discover() -> dict[str, str]:
    """Every agent kind and its import path: built-ins first, then installed entry points."""
    found = dict(BUILTIN)
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name not in found:
            found[ep.name] = ep.value
    return found


def import_agent(path: str) -> Agent:
    """Build the agent class at ``module:Class``; InvalidInput when it is not an agent."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        raise InvalidInput("agent", f"{path!r} is not module:Class")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput("agent", f"cannot import {path!r}: {exc}") from exc
    agent = cls()
    if not isinstance(agent, Agent):
        raise InvalidInput("agent", f"{path} has no propose(action, context) method")
    return agent


def agent_path(kind: str, known: dict[str, str] | None = None) -> str:
    """The import path of an agent kind; NotFound for a kind nobody registered."""
    paths = discover() if known is None else known
    if kind not in paths:
        raise NotFound("agent", kind)
    return paths[kind]
