"""The ml_pipeline agent: retraining for accuracy failures, scored head-to-head in the twin.

The search itself sits behind :func:`search_recipes` so the Tune search of the retraining issue
can replace the recipe grid without touching the agent: it takes the action's training plan and
returns scores best first. Until then it is the explicit grid of ``twinloop.improve.retrain``
recipes over the plan's search space, each trained on twin data and judged against the model to
improve on common random numbers.
"""

from __future__ import annotations

import itertools

from twinloop.agents.protocol import AgentContext, Candidate
from twinloop.errors import InvalidInput
from twinloop.improve.retrain import RetrainConfig, RetrainScore, score_variant
from twinloop.strategy.models import Action, Estimate, SandboxEvidence, TrainingPlan

DEFAULT_ROWS = 8_000


def recipe_grid(plan: TrainingPlan, context: AgentContext) -> list[RetrainConfig]:
    """The plan's search space as explicit recipes (capped by ``params['max_trials']``)."""
    space = plan.search_space
    axes = [
        space.get("l2", [1.0]),
        space.get("interactions", [True]),
        space.get("segment_weights", [{}]),
    ]
    rows = int(context.params.get("training_rows", DEFAULT_ROWS))
    model = context.model
    out = [
        RetrainConfig(
            name=f"{model.name}-retrain-{i:03d}",
            l2=l2,
            interactions=inter,
            segment_weights=weights,
            training_rows=rows,
            training_seed=context.seed,
            latency_p50_ms=model.latency_p50_ms,
            latency_p95_ms=model.latency_p95_ms,
            cost_per_call=model.cost_per_call,
        )
        for i, (l2, inter, weights) in enumerate(itertools.product(*axes))
    ]
    return out[: int(context.params.get("max_trials", plan.trials))]


def search_recipes(plan: TrainingPlan, context: AgentContext) -> list[RetrainScore]:
    """Score every recipe against the model to improve; best first (swappable for Tune)."""
    scores = [
        score_variant(
            recipe,
            context.model,
            environment=context.environment,
            customers=context.customers,
            days=context.days,
            replicates=context.replicates,
            seed=context.seed,
            kpi=context.kpi,
        )
        for recipe in recipe_grid(plan, context)
    ]
    scores.sort(key=lambda s: (-s.win_rate, -s.difference, s.config.name))
    return scores


class MlPipelineAgent:
    """Retrains along the action's training plan; proposes the best recipe that wins in the twin."""

    kind = "ml_pipeline"

    def propose(self, action: Action, context: AgentContext) -> list[Candidate]:
        if action.training_plan is None:
            raise InvalidInput("action.training_plan", f"{action.id} has no training plan")
        scores = search_recipes(action.training_plan, context)
        best = scores[0]
        if best.lower <= 0:
            return []
        evidence = SandboxEvidence(
            kpi=best.kpi,
            baseline=context.model.name,
            challenger=best.model.name,
            baseline_mean=0.0,
            difference=Estimate(estimate=best.difference, lower=best.lower, upper=best.upper),
            replicates=best.replicates,
            replicate_seconds=0.0,
            win_rate=best.win_rate,
            prob_better=best.prob_better,
        )
        return [
            Candidate(
                name=best.model.name,
                agent=self.kind,
                action_id=action.id,
                model=best.model,
                evidence=evidence,
                details={"recipe": best.config.model_dump(), "trials": len(scores)},
            )
        ]
