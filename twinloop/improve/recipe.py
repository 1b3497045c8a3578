"""A training recipe: what to change about the data and the fit before a trainer runs.

A recipe reweights or oversamples segments (the analyzer's localized segment), chooses the
customer features a model may use, can add cold-start rows (features zeroed, for new customers),
sets the regularisation and the decision threshold, and passes trainer-specific parameters
through. The data changes are applied here, once, so every trainer — the reference ones and a
user's — gets them the same way; the threshold is applied to the trained model
(``twinloop.improve.trainer``) because the twin acts on ``score >= 0.5``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.improve.data import TrainingData

Resample = Literal["weight", "oversample"]
ParamValue = float | int | str | bool


class Recipe(FrozenModel):
    """One point of a search space: data mix, features, regularisation, threshold."""

    name: str = Field(default="recipe", min_length=1, max_length=128)
    segment_weights: dict[str, float] = Field(
        default_factory=dict, description="× weight of each named segment's rows (1 = as is)."
    )
    resample: Resample = Field(
        default="weight", description="Apply segment weights as row weights or by oversampling."
    )
    features: list[int] | None = Field(
        default=None, description="Customer feature indices the model may use; None = all."
    )
    l2: float = Field(default=1.0, gt=0.0, le=1e4, description="Regularisation strength.")
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0, description="Act when score >= this.")
    params: dict[str, ParamValue] = Field(
        default_factory=dict, description="Trainer-specific settings (max_iter, max_depth …)."
    )
    cold_start_share: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Extra rows, as a share of the training rows: seeded copies with every "
        "customer feature zeroed (new customers without history), label and segment kept.",
    )

    @field_validator("segment_weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        for name, w in value.items():
            if not np.isfinite(w) or w < 0 or w > 1e3:
                raise ValueError(f"weight of {name!r} must be in [0, 1000], got {w}")
        return value

    def trainer_config(self) -> dict[str, Any]:
        """The ``config`` a trainer receives: regularisation and its own parameters."""
        return {"l2": self.l2, **self.params}


def apply_recipe(data: TrainingData, recipe: Recipe, seed: int) -> TrainingData:
    """The training rows the recipe asks for (reweighted or resampled, features masked)."""
    factor = np.ones(len(data.segment_names))
    for name, w in recipe.segment_weights.items():
        if name not in data.segment_names:
            raise InvalidInput(
                "recipe.segment_weights",
                f"unknown segment {name!r}; known {list(data.segment_names)}",
            )
        factor[data.segment_names.index(name)] = w
    out = data
    if recipe.features is not None:
        bad = [i for i in recipe.features if not 0 <= i < data.n_base]
        if bad or not recipe.features:
            raise InvalidInput(
                "recipe.features", f"indices must be in [0, {data.n_base}), got {recipe.features}"
            )
        # A masked feature becomes a constant 0: every trainer then learns no use of it, and the
        # trained model still takes the full predictor matrix the twin hands it.
        masked = data.features.copy()
        drop = [i for i in range(data.n_base) if i not in recipe.features]
        masked[:, drop] = 0.0
        out = replace(out, features=masked)
    row_factor = factor[data.segment]
    if row_factor.sum() <= 0:
        raise InvalidInput("recipe.segment_weights", "every row would get weight 0")
    if recipe.resample == "weight":
        if not np.all(factor == 1.0):
            out = replace(out, weight=out.sample_weight() * row_factor)
    else:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,)))
        p = out.sample_weight() * row_factor
        rows = rng.choice(out.n, size=out.n, p=p / p.sum())
        out = replace(out.take(np.sort(rows)), weight=None)
    return with_cold_start(out, recipe.cold_start_share, seed)


def with_cold_start(data: TrainingData, share: float, seed: int) -> TrainingData:
    """The rows plus ``share`` × n seeded copies whose customer features are all zero.

    Serving hands a model all-zero features for a customer it has no history of (the qa agent's
    cold-start scenario). A model that never saw such rows extrapolates its slopes to them and
    can do worse than a coin flip; copies with the features zeroed and the label kept teach it
    each segment's base rate there, at a small cost on ordinary rows (the one-hot segment
    columns stay, so the base rate is learned per segment).
    """
    k = round(share * data.n)
    if k == 0:
        return data
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(9,)))
    extra = data.take(np.sort(rng.choice(data.n, size=k, replace=False)))
    zeroed = extra.features.copy()
    zeroed[:, : data.n_base] = 0.0
    weight = None if data.weight is None else np.concatenate([data.weight, extra.sample_weight()])
    return replace(
        data,
        features=np.vstack([data.features, zeroed]),
        label=np.concatenate([data.label, extra.label]),
        segment=np.concatenate([data.segment, extra.segment]),
        weight=weight,
    )
