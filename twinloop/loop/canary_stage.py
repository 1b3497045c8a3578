"""The ``canary`` stage: the championship's winner on a share of simulated production traffic.

With no live Serve family in the job or the demo, the canary's pure core is driven in-process:
units are drawn from the family's environment and their outcomes from its ground truth
(``twinloop.canary.traffic``), split between champion and candidate by the canary's hash
assignment, and the sequential rule (``twinloop.canary.decision.decide``, always-valid confidence
sequences) is evaluated after every batch on a virtual clock until it promotes, rolls back, or
the maximum duration passes (the champion is kept). The traffic is a pure function of the stage's
seed, so a re-run after a crash replays the same batches to the same decision. The traffic source
is a parameter (:data:`Traffic`), so a benchmark can feed the same rule outcomes from a hidden
production instead of the twin without a second canary stage.

A promotion moves the ``champion`` alias by compare-and-set from the champion the championship
met, marked ``improvement:<id>``; a re-run finds that move in the alias history and does not move
it again. A rollback (or an expiry) moves nothing. The output carries the measured relative
effect (``measured_effect``, positive = better) that the KPIs compare with the prediction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from twinloop.canary.assignment import CanaryConfig
from twinloop.canary.decision import DecisionSettings, MetricReport, Verdict, decide
from twinloop.canary.outcomes import CanaryStats
from twinloop.canary.traffic import merge_outcomes, traffic_batches
from twinloop.loop.machine import StageContext, StageResult, StageUnavailable
from twinloop.loop.model import Stage
from twinloop.registry.registry import Registry
from twinloop.sim.groundtruth import decision_thresholds
from twinloop.sim.models import OnnxModel, PredictorModel, load_predictor

WEIGHT: Final = 0.5  # share of units the canary gets
BATCH: Final = 2_000  # units per batch
BATCH_SECONDS: Final = 60.0  # virtual time one batch stands for
MAX_DURATION_S: Final = 3_600.0  # then keep the champion
TRAFFIC_KPIS: Final = ("revenue", "conversions")  # what the simulated traffic measures
ENDS: Final[dict[str, Stage]] = {
    "promote": "promoted",
    "rollback": "rolled_back",
    "expire": "rolled_back",
}


def judged_kpi(primary: str) -> str:
    """The family's primary KPI when the traffic measures it, else revenue."""
    return primary if primary in TRAFFIC_KPIS else "revenue"


Outcomes = Mapping[str, dict[str, NDArray[np.float64]]]
Traffic = Callable[[Registry, str, str, str, int], Iterator[Outcomes]]


def twin_traffic(
    registry: Registry, family: str, champion: str, candidate: str, seed: int
) -> Iterator[Outcomes]:
    """Endless batches of twin traffic: units from the family's environment, outcomes from its
    ground truth, split by the canary's hash assignment (the default traffic source)."""
    env = registry.environment(registry.family(family))
    predictors = {}
    thresholds = {}
    for version in (champion, candidate):
        spec = registry.runnable(registry.version(family, version))
        if not isinstance(spec, PredictorModel | OnnxModel):
            raise StageUnavailable("canary", f"{version} is a profile, not a scoring model")
        predictors[version] = load_predictor(spec)
        cuts = decision_thresholds(env, spec)  # a predictor's own policy; ONNX: 0.5 (built in)
        if cuts is not None:
            thresholds[version] = cuts
    config = CanaryConfig(
        family=family, champion=champion, canary=candidate, weight=WEIGHT, salt=f"s{seed}",
        generation=1, n_features=env.n_features + len(env.segments),
    )  # fmt: skip
    stream = traffic_batches(
        env, config, predictors, batch_size=BATCH, seed=seed, thresholds=thresholds
    )
    for _, outcomes in stream:
        yield outcomes


def run_canary(
    registry: Registry,
    family: str,
    champion: str,
    candidate: str,
    seed: int,
    traffic: Traffic = twin_traffic,
) -> tuple[Verdict, int, CanaryStats]:
    """Batches of traffic until the rule decides: the verdict, batches run, statistics."""
    fam = registry.family(family)
    settings = DecisionSettings(
        primary_kpi=judged_kpi(fam.primary_kpi), max_duration_s=MAX_DURATION_S
    )
    stream = traffic(registry, family, champion, candidate, seed)
    stats = CanaryStats(family=family, generation=1)
    step = 0
    while True:
        step += 1
        stats = merge_outcomes(stats, next(stream))
        verdict = decide(stats, champion, candidate, settings, elapsed_s=step * BATCH_SECONDS)
        if verdict.action != "continue":
            return verdict, step, stats


def measured(report: MetricReport) -> tuple[float | None, float | None, float | None]:
    """The canary's relative effect on the judged KPI and its confidence sequence at the
    decision, relative to the champion's mean (positive = better)."""
    if report.estimate is None or not report.mean_champion:
        return None, None, None
    base = abs(report.mean_champion)
    lower = None if report.lower is None else report.lower / base
    upper = None if report.upper is None else report.upper / base
    return report.estimate / base, lower, upper


def promote(context: StageContext, family: str, champion: str, candidate: str) -> bool:
    """Move ``champion`` to the candidate once; False when this improvement had moved it."""
    registry = Registry(context.store)
    by = f"improvement:{context.improvement.id}"
    history = registry.alias_history(family, "champion")
    if any(s.moved_by == by and s.version == candidate for s in history):
        return False
    context.check_cancelled()
    registry.move_alias(
        family, "champion", candidate, expected=champion, by=by,
        reason=f"canary promoted {candidate} over {champion}",
    )  # fmt: skip
    return True


def canary(context: StageContext, traffic: Traffic = twin_traffic) -> StageResult:
    """Run the canary of the championship's winner; promote or keep the champion.

    ``traffic`` is where outcomes come from: the twin by default; a live family or a benchmark's
    hidden production passes its own (``functools.partial(canary, traffic=...)``)."""
    before = context.outputs["championship"].outcome
    candidate, champion = before.get("winner"), before.get("champion")
    if not isinstance(candidate, str) or not isinstance(champion, str):
        raise StageUnavailable("canary", "the championship promoted no challenger")
    family = context.improvement.family
    registry = Registry(context.store)
    verdict, batches, stats = run_canary(
        registry, family, champion, candidate, context.seed, traffic
    )
    primary = verdict.metrics[0]
    effect, lower, upper = measured(primary)
    outcome: dict[str, Any] = {
        "action": verdict.action,
        "reason": verdict.reason,
        "champion": champion,
        "candidate": candidate,
        "kpi": primary.metric,
        "measured_effect": effect,
        "measured_lower": lower,
        "measured_upper": upper,
        "units": {v: stats.units(v) for v in (champion, candidate)},
        "batches": batches,
        "virtual_seconds": batches * BATCH_SECONDS,
        "verdict": verdict.model_dump(mode="json"),
    }
    if verdict.action == "promote":
        outcome["alias_moved"] = promote(context, family, champion, candidate)
        summary = f"{candidate} promoted to champion: {verdict.reason}"
    else:
        summary = f"champion {champion} kept ({verdict.action}): {verdict.reason}"
    shown = "n/a" if effect is None else f"{effect:+.1%}"
    return StageResult(
        summary=f"{summary} ({primary.metric} {shown} measured, {batches} batches)",
        outcome=outcome,
        decision=ENDS[verdict.action],
    )
