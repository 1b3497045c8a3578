"""The loop's qa gate: the qa agent's edge-case scenarios run on a registered candidate.

Every candidate a ``candidates`` stage registers — an ONNX artifact from a retraining, a
predictor, a serving configuration — goes through the qa agent's scenarios (cold start, surge,
segment-mix drift, missing and extreme values; ``twinloop.agents.qa``) against the family's
champion, in the family's environment, with the stage's seed. The verdict lands in the stage
outcome as ``qa: {passed, failed_scenario, checks}``, which the championship stage turns into
its external gate ``qa`` (``championship_stage.qa_gates``): a candidate that fails a scenario
cannot be promoted, whatever it wins on the twin's ordinary traffic. The verdict is a pure
function of the two models and the seed, so a re-run of the stage gives the same one.
"""

from __future__ import annotations

from typing import Any

from twinloop.agents.protocol import AgentContext, Candidate
from twinloop.agents.qa import gate
from twinloop.registry.registry import Registry


def qa_verdict(
    registry: Registry, family: str, candidate: str, champion: str, seed: int
) -> dict[str, Any]:
    """The qa agent's verdict on version ``candidate`` against ``champion`` (JSON-ready)."""
    fam = registry.family(family)
    model = registry.runnable(registry.version(family, candidate))  # ONNX bytes attached
    reference = registry.runnable(registry.version(family, champion))
    context = AgentContext(
        environment=registry.environment(fam),
        model=model,
        champion=reference,
        seed=seed % 2**63,
    )
    proposed = Candidate(name=candidate, agent="qa", action_id="qa-gate", model=model)
    verdict = gate(proposed, reference, context).model_dump(mode="json")
    return dict(verdict)


def qa_summary(verdict: dict[str, Any]) -> str:
    """``qa passed`` or ``qa failed on <scenario>``, for a stage's one-line summary."""
    if verdict.get("passed"):
        return "qa passed"
    return f"qa failed on {verdict.get('failed_scenario')}"
