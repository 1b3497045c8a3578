"""Agents and predictors planted for tests: importable by path, in-process and on Ray workers."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinloop.agents.protocol import AgentContext, Candidate
from twinloop.sim.predictor import LogisticPredictor
from twinloop.strategy.models import Action


class ColdStartBreaker(LogisticPredictor):
    """A good model with a cold-start bug: no history (all-zero features) divides 0 by 0 → NaN."""

    def predict(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        scores = super().predict(features)
        history = np.abs(features[:, : self.n_base_features]).sum(axis=1)
        with np.errstate(invalid="ignore"):
            return scores * history / history


class SlowAgent:
    """Sleeps ``params['sleep']`` s, then proposes the context's model renamed (deterministic).

    With ``params['marker']`` it first writes that file, so a test knows the action has started.
    """

    def propose(self, action: Action, context: AgentContext) -> list[Candidate]:
        marker: Any = context.params.get("marker")
        if marker:
            with open(marker, "a", encoding="utf-8") as f:
                f.write(f"{os.getpid()}\n")
        time.sleep(float(context.params.get("sleep", 0.0)))
        model = context.model.model_copy(update={"name": f"{context.model.name}-{action.id}"})
        return [
            Candidate(
                name=model.name,
                agent="slow",
                action_id=action.id,
                model=model,
                details={"seed": context.seed},
            )
        ]


class QuickAgent(SlowAgent):
    """A SlowAgent that never sleeps nor marks: the action after a hung one."""

    def propose(self, action: Action, context: AgentContext) -> list[Candidate]:
        quick = context.model_copy(update={"params": {}})
        return super().propose(action, quick)
