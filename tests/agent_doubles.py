"""Agents and predictors planted for tests: importable by path, in-process and on Ray workers."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinloop.agents.protocol import AgentContext, Candidate
from twinloop.improve.data import TrainingData
from twinloop.improve.reference import sklearn_logistic
from twinloop.sim.predictor import LogisticPredictor
from twinloop.strategy.models import Action


class ColdStartBreaker(LogisticPredictor):
    """A good model with a cold-start bug: no history (all-zero features) divides 0 by 0 → NaN."""

    def predict(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        scores = super().predict(features)
        history = np.abs(features[:, : self.n_base_features]).sum(axis=1)
        with np.errstate(invalid="ignore"):
            return scores * history / history


def break_on_cold_start(artifact: bytes, n_base: int) -> bytes:
    """The same ONNX scorer with the same bug: a row whose customer features are all zero
    (no history) scores NaN; every other row scores as before."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(artifact)
    graph = model.graph
    features, score = graph.input[0].name, graph.output[0].name
    for name, values in (("cs_start", [0]), ("cs_end", [n_base]), ("cs_axis", [1])):
        graph.initializer.append(helper.make_tensor(name, TensorProto.INT64, [1], values))
    for name, value in (("cs_zero", 0.0), ("cs_nan", float("nan"))):
        graph.initializer.append(helper.make_tensor(name, TensorProto.FLOAT, [], [value]))
    graph.node.extend(
        [
            helper.make_node("Slice", [features, "cs_start", "cs_end", "cs_axis"], ["cs_x"]),
            helper.make_node("Abs", ["cs_x"], ["cs_abs"]),
            helper.make_node("ReduceSum", ["cs_abs", "cs_axis"], ["cs_sum"], keepdims=0),
            helper.make_node("Equal", ["cs_sum", "cs_zero"], ["cs_cold"]),
            helper.make_node("Where", ["cs_cold", "cs_nan", score], ["cs_score"]),
        ]
    )
    graph.output.pop()
    graph.output.append(helper.make_tensor_value_info("cs_score", TensorProto.FLOAT, [None]))
    return bytes(model.SerializeToString())


def cold_start_onnx(config: dict[str, Any], data: TrainingData, seed: int) -> bytes:
    """A trainer (``train(config, data, seed)``) whose ONNX models have the cold-start bug:
    scikit-learn's logistic regression, sound on every customer with a history."""
    return break_on_cold_start(sklearn_logistic(config, data, seed), data.n_base)


def new_customers_unseen_onnx(config: dict[str, Any], data: TrainingData, seed: int) -> bytes:
    """A trainer whose model has the cold-start bug unless its training rows held customers
    without history: the double of a model that only handles what it was shown."""
    artifact = sklearn_logistic(config, data, seed)
    if np.any(np.abs(data.features[:, : data.n_base]).sum(axis=1) == 0):
        return artifact
    return break_on_cold_start(artifact, data.n_base)


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
