"""The performance agent: serving configurations searched in the twin, best KPI within guardrails.

A serving configuration is a profile of the same model: batching trades latency for cost per
call, more replicas the reverse, a quantised or distilled model trades accuracy for both. The
factors below are planning assumptions (documented in docs/strategy.md); every option is measured
against the current configuration in the twin on common random numbers, and the agent proposes
the one with the best business KPI whose p95 latency stays within the guardrail. Accuracy trades
apply to profiles only: a predictor's accuracy emerges from its weights, so for predictors the
quantised options are skipped rather than guessed.
"""

from __future__ import annotations

from pydantic import Field

from twinloop.agents.protocol import AgentContext, Candidate
from twinloop.agents.twin import compare
from twinloop.contract import FrozenModel
from twinloop.sim.models import ModelProfile, ModelSpec
from twinloop.strategy.models import Action


class ServingOption(FrozenModel):
    """One serving configuration as factors on the current one (units: × current)."""

    name: str
    latency_factor: float = Field(gt=0.0)
    cost_factor: float = Field(gt=0.0)
    accuracy_delta: float = Field(default=0.0, ge=-1.0, le=0.0)


SERVING_OPTIONS = (
    ServingOption(name="batch-16", latency_factor=1.6, cost_factor=0.5),
    ServingOption(name="replicas-x2", latency_factor=0.6, cost_factor=1.3),
    ServingOption(name="replicas-x4", latency_factor=0.35, cost_factor=2.0),
    ServingOption(name="quantised-int8", latency_factor=0.5, cost_factor=0.6, accuracy_delta=-0.01),
    ServingOption(name="distilled", latency_factor=0.35, cost_factor=0.3, accuracy_delta=-0.05),
)


def configured(model: ModelSpec, option: ServingOption) -> ModelSpec | None:
    """The model under a serving option (None when the option cannot apply to it)."""
    update: dict[str, object] = {
        "name": f"{model.name}-{option.name}",
        "latency_p50_ms": model.latency_p50_ms * option.latency_factor,
        "latency_p95_ms": model.latency_p95_ms * option.latency_factor,
        "cost_per_call": model.cost_per_call * option.cost_factor,
    }
    if option.accuracy_delta:
        if not isinstance(model, ModelProfile):
            return None
        update["accuracy"] = max(0.0, model.accuracy + option.accuracy_delta)
        update["segment_overrides"] = {
            k: o.model_copy(
                update={
                    "accuracy": None
                    if o.accuracy is None
                    else max(0.0, o.accuracy + option.accuracy_delta)
                }
            )
            for k, o in model.segment_overrides.items()
        }
    return model.model_copy(update=update)


class PerformanceAgent:
    """Tries every serving option; proposes the best KPI among those within the guardrail."""

    kind = "performance"

    def propose(self, action: Action, context: AgentContext) -> list[Candidate]:
        limit = context.guardrail_ms()
        tried: list[dict[str, object]] = []
        best: Candidate | None = None
        for option in SERVING_OPTIONS:
            model = configured(context.model, option)
            if model is None:
                tried.append({"option": option.name, "skipped": "accuracy trade on a predictor"})
                continue
            within = limit is None or model.latency_p95_ms <= limit
            evidence, _ = compare(context, context.model, model)
            tried.append(
                {
                    "option": option.name,
                    "gain": evidence.difference.estimate,
                    "latency_p95_ms": model.latency_p95_ms,
                    "within_guardrail": within,
                }
            )
            if not within or evidence.difference.lower <= 0:
                continue
            if best is None or evidence.difference.estimate > best.evidence.difference.estimate:  # type: ignore[union-attr]
                best = Candidate(
                    name=model.name,
                    agent=self.kind,
                    action_id=action.id,
                    model=model,
                    evidence=evidence,
                    details={"option": option.model_dump(), "latency_p95_limit_ms": limit},
                )
        if best is None:
            return []
        return [best.model_copy(update={"details": {**best.details, "tried": tried}})]
