"""Contracts of off-policy evaluation: the target policy, the settings, and the estimates out.

A target policy is data, never code: a table of action probabilities (the same for every
decision, or looked up by one context column) or a linear scoring model over the numeric
context features (softmax at a temperature, or greedy at temperature 0). Both are plain JSON,
so a policy travels without pickles or imports.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from twinloop.contract import FrozenModel

Estimator = Literal["ips", "snips", "dr"]
ESTIMATORS: tuple[Estimator, ...] = ("ips", "snips", "dr")
OffPolicyCode = Literal["low_effective_sample_size", "unsupported_action", "few_decisions"]
PROBABILITY_TOLERANCE = 1e-6  # a distribution's probabilities must sum to 1 within this


def _check_distribution(probabilities: dict[str, float], field: str) -> None:
    if not probabilities:
        raise ValueError(f"{field}: no actions")
    if any(p < 0 for p in probabilities.values()):
        raise ValueError(f"{field}: probabilities must be >= 0")
    total = sum(probabilities.values())
    if abs(total - 1.0) > PROBABILITY_TOLERANCE:
        raise ValueError(f"{field}: probabilities sum to {total:g}, not 1")


class TablePolicy(FrozenModel):
    """Action probabilities from a table: ``default`` for every decision, or per value of ``by``.

    With ``by`` (a column of the logs, compared as text) each decision takes ``rows[value]``;
    a value missing from ``rows`` takes ``default``, and without a default it is bad input.
    """

    kind: Literal["table"] = "table"
    by: str | None = None
    rows: dict[str, dict[str, float]] = Field(default_factory=dict)
    default: dict[str, float] | None = None

    @model_validator(mode="after")
    def _distributions(self) -> TablePolicy:
        if self.default is None and not self.rows:
            raise ValueError("a table policy needs rows or a default distribution")
        if self.rows and self.by is None:
            raise ValueError("rows need 'by', the column whose value picks the row")
        if self.default is not None:
            _check_distribution(self.default, "default")
        for key, row in self.rows.items():
            _check_distribution(row, f"rows.{key}")
        return self


class LinearPolicy(FrozenModel):
    """Scores ``intercepts[a] + Σ_f weights[a][f]·x_f`` per action; softmax or greedy.

    ``temperature`` 0 picks the best-scoring action (ties: the first in ``actions`` order), a
    positive one draws from softmax(score / temperature). Features missing from an action's
    weights count 0; a feature that is not a numeric column of the logs is bad input.
    """

    kind: Literal["linear"] = "linear"
    actions: tuple[str, ...] = Field(min_length=1)
    weights: dict[str, dict[str, float]] = Field(default_factory=dict)
    intercepts: dict[str, float] = Field(default_factory=dict)
    temperature: float = Field(default=1.0, ge=0.0)

    @model_validator(mode="after")
    def _known_actions(self) -> LinearPolicy:
        if len(set(self.actions)) != len(self.actions):
            raise ValueError("actions: repeated action")
        for name, table in (("weights", self.weights), ("intercepts", self.intercepts)):
            unknown = sorted(set(table) - set(self.actions))
            if unknown:
                raise ValueError(f"{name}: actions {unknown} are not in actions")
        return self


TargetPolicy = Annotated[TablePolicy | LinearPolicy, Field(discriminator="kind")]


class PolicyFile(FrozenModel):
    """The JSON document holding a target policy (``{"policy": {...}}``)."""

    name: str = Field(default="target", min_length=1, max_length=120)
    policy: TargetPolicy


class OffPolicySettings(FrozenModel):
    """How the estimates are made; every random choice (the cross-fitting folds) uses ``seed``."""

    level: float = Field(default=0.95, gt=0.0, lt=1.0, description="confidence level")
    folds: int = Field(
        default=5, ge=2, le=50, description="cross-fitting folds of DR's reward model"
    )
    ridge: float = Field(
        default=1.0, ge=0.0, description="ridge penalty of the per-action reward regressions"
    )
    seed: int = Field(default=0, ge=0)


class Estimate(FrozenModel):
    """One estimator's value of the target policy with its normal-approximation interval."""

    estimator: Estimator
    value: float
    std_error: float = Field(ge=0.0)
    lower: float
    upper: float


class OffPolicyNote(FrozenModel):
    """A coded finding about the logs or the policy (a value, not an exception)."""

    code: OffPolicyCode
    message: str


class OffPolicyResult(FrozenModel):
    """The target policy's value estimated from logged decisions, and what produced it."""

    policy: str
    n: int = Field(ge=1, description="logged decisions used")
    actions: tuple[str, ...]
    logged_value: float = Field(description="mean logged reward (the logging policy's value)")
    estimates: tuple[Estimate, ...]
    effective_sample_size: float = Field(description="(Σw)² / Σw² of the importance weights")
    max_weight: float
    notes: tuple[OffPolicyNote, ...] = ()
    settings: OffPolicySettings
    seed: int
