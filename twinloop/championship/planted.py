"""Planted candidates with a known truth, for the championship's tests and benchmark.

``NullPredictor`` knows the environment's true intent probabilities and flips a fixed share of
its decisions, chosen by a salted hash of the features. Every salt has the same expected
accuracy — no salt can truly beat another — yet two salts decide differently customer by
customer, so under common random numbers they still differ replicate by replicate. That is the
null world of the winner's curse: among many such candidates one always looks best by chance.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.groundtruth import truth_tables
from twinloop.sim.models import PredictorModel

IMPORT_PATH: Final = "twinloop.championship.planted:NullPredictor"


class NullPredictor:
    """P(intent) from the true weights, with a salted ``flip`` share of decisions reversed."""

    def __init__(
        self,
        weights: list[list[float]],
        biases: list[float],
        flip: float = 0.1,
        salt: int = 0,
    ) -> None:
        if not 0.0 <= flip <= 0.5:
            raise ValueError(f"flip must be in [0, 0.5], got {flip}")
        self.weights = np.asarray(weights, dtype=np.float64)  # segments × features
        self.biases = np.asarray(biases, dtype=np.float64)
        self.flip = flip
        width = self.weights.shape[1] + self.weights.shape[0]
        self.direction = np.random.default_rng(np.random.SeedSequence(salt)).normal(size=width)

    def predict(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        d = self.weights.shape[1]
        x, one_hot = features[:, :d], features[:, d:]
        seg = one_hot.argmax(axis=1)
        p = 1.0 / (1.0 + np.exp(-(np.einsum("ij,ij->i", x, self.weights[seg]) + self.biases[seg])))
        # A hash of the row, uniform on [0, 1): the fractional part of a scaled sine.
        u = np.modf(np.abs(np.sin(features @ self.direction) * 43_758.5453))[0]
        flipped: NDArray[np.float64] = np.where(u < self.flip, 1.0 - p, p)
        return flipped


def null_model(env: BusinessEnvironment, name: str, salt: int, flip: float = 0.1) -> PredictorModel:
    """A ``NullPredictor`` for ``env`` as a JSON-ready model spec."""
    weights, biases = truth_tables(env)
    params: dict[str, Any] = {
        "weights": weights.tolist(),
        "biases": biases.tolist(),
        "flip": flip,
        "salt": salt,
    }
    return PredictorModel(name=name, import_path=IMPORT_PATH, params=params)
