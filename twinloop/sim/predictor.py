"""`LogisticPredictor`: the small trainable reference model that later issues retrain.

L2-regularised logistic regression fitted with scipy's L-BFGS. Optional segment × feature
interaction terms let it learn per-segment slopes — but only from the data it is given, which is
how a training set that under-represents a segment yields a model that is wrong on that segment.
The fitted model is plain JSON (``to_params`` / ``LogisticPredictor(**params)``), so it enters the
twin as a ``PredictorModel`` without any pickling.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from twinloop.errors import InvalidInput


def _expand(x: NDArray[np.float64], n_base: int, interactions: bool) -> NDArray[np.float64]:
    """Add segment × feature products (columns after ``n_base`` are the segment one-hot)."""
    if not interactions:
        return x
    base, one_hot = x[:, :n_base], x[:, n_base:]
    products = (one_hot[:, :, None] * base[:, None, :]).reshape(x.shape[0], -1)
    return np.hstack([x, products])


class LogisticPredictor:
    """Logistic regression on the twin's predictor features; ``predict`` returns P(intent)."""

    def __init__(
        self,
        weights: list[float] | None = None,
        bias: float = 0.0,
        n_base_features: int = 0,
        interactions: bool = False,
        l2: float = 1.0,
    ) -> None:
        if l2 < 0:
            raise InvalidInput("l2", f"must be >= 0, got {l2}")
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.bias = float(bias)
        self.n_base_features = int(n_base_features)
        self.interactions = bool(interactions)
        self.l2 = float(l2)

    def fit(
        self,
        x: NDArray[np.float64],
        y: NDArray[np.integer],
        n_base_features: int,
        sample_weight: NDArray[np.float64] | None = None,
    ) -> LogisticPredictor:
        """Fit by penalised (row-weighted) maximum likelihood; returns self."""
        if x.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise InvalidInput("training_data", f"x {x.shape} and y {y.shape} do not match")
        self.n_base_features = n_base_features
        z = _expand(x, n_base_features, self.interactions)
        yf = y.astype(np.float64)
        n, d = z.shape
        # Weights are rescaled to mean 1 so that l2 keeps its per-row meaning.
        sw = np.ones(n) if sample_weight is None else sample_weight * (n / sample_weight.sum())

        def loss(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
            w, b = theta[:d], theta[d]
            eta = z @ w + b
            nll = -np.sum(sw * (yf * log_expit(eta) + (1.0 - yf) * log_expit(-eta)))
            resid = sw * (expit(eta) - yf)
            grad = np.concatenate([z.T @ resid + self.l2 * w, [resid.sum()]])
            return float(nll + 0.5 * self.l2 * w @ w) / n, grad / n

        fit = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B")
        self.weights, self.bias = fit.x[:d], float(fit.x[d])
        return self

    def predict(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.weights is None:
            raise InvalidInput("model", "LogisticPredictor is not fitted")
        z = _expand(np.asarray(features, dtype=np.float64), self.n_base_features, self.interactions)
        if z.shape[1] != self.weights.size:
            raise InvalidInput(
                "features",
                f"expected {self.weights.size} columns after expansion, got {z.shape[1]}",
            )
        return expit(z @ self.weights + self.bias)  # type: ignore[no-any-return]

    def to_params(self) -> dict[str, Any]:
        """JSON-ready constructor arguments of the fitted model."""
        return {
            "weights": [] if self.weights is None else [float(w) for w in self.weights],
            "bias": self.bias,
            "n_base_features": self.n_base_features,
            "interactions": self.interactions,
            "l2": self.l2,
        }
