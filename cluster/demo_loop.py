"""The demo's improvement loop on Ray: Tune retraining and the canary on Serve, wired as stages.

The pure pieces are ``twinloop.demo.loop`` (family, improvement, what the report reads) and
``twinloop.loop`` (the stages). This adapter binds the two Ray-backed ones: the ``candidates``
stage of ``cluster.loop_stages`` (retraining on Ray Tune, agents on their actors), and the
``canary`` stage talks to the family served on Ray Serve (``serve_apps.canary_client``), whose
outcomes come from the hidden production. The rest are the loop's default stages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from cluster.loop_stages import cluster_stages
from twinloop.demo.loop import loop_step, register_family, run_loop
from twinloop.demo.results import DemoResult, LoopStep
from twinloop.demo.scenario import DemoScenario
from twinloop.demo.story import World
from twinloop.loop import Improvement, StageFn
from twinloop.loop.model import Stage
from twinloop.loop.served_canary import CanaryApi, Production, served_canary
from twinloop.registry.registry import Registry
from twinloop.sim.environment import BusinessEnvironment
from twinloop.store import Store

NEXT: Final = {
    "analyzed": "plan: the strategy generator's actions, ROI × past success of each kind",
    "planned": "retraining on Ray Tune (search, confirmation on fresh seeds)",
    "candidates": "championship in the loop's twin (round robin, then fresh-seed confirmation)",
    "championship": "canary on Ray Serve: production traffic through the served family",
}


def ray_stages(api: CanaryApi, production: Production) -> Mapping[Stage, StageFn]:
    """The cluster's stages (search on Ray Tune, agents on actors) and the canary on Serve."""
    stages = cluster_stages()
    stages["canary"] = served_canary(api, production)
    return stages


def production_of(scenario: DemoScenario, world: World) -> Production:
    """Hidden production: the A/B's world; its traffic on seeds the twin never used."""
    return Production(
        environment=world.environment,
        seed=scenario.seed + 1_000_003,
        units_per_batch=100,
        rows_per_unit=500,
        max_batches=40,
    )


def run_demo_loop(
    result: DemoResult,
    world: World,
    twin: BusinessEnvironment,
    store: Store,
    out: Path,
    redis_url: str | None,
    say: Callable[[str], None],
    *,
    ray_ends: bool = False,
) -> LoopStep:
    """Register, improve (plan → Tune → championship → canary on Serve), read back the step."""
    from serve_apps.canary_client import serve_canary_api

    scenario = result.scenario
    say("5/5 improvement loop: registering the family, its versions and the failure")
    improvement = register_family(store, scenario, twin, world.models, result.analysis)
    champion = Registry(store).alias(improvement.family, "champion").version
    say(f"    {improvement.id}: family {improvement.family}, champion {champion}")
    if improvement.terminal:
        say(f"    already {improvement.stage} in this store: resumed, nothing runs again")

    def told(now: Improvement) -> None:
        last = now.records[-1] if now.records else None
        if last is None:
            return
        took = last.duration_seconds or 0.0
        say(f"    {last.stage}: {last.status} in {took:.1f} s — {last.summary or last.reason}")
        follows = NEXT.get(last.stage)
        if follows and now.status == "running":
            say(f"    next: {follows}")

    say("    stages: analyzed → planned → candidates (Tune) → championship → canary (Serve)")
    early = not improvement.terminal  # Serve starts during the retraining, not after it
    with serve_canary_api(
        out, redis_url, improvement.family, ray_ends=ray_ends, early=early
    ) as api:
        done = run_loop(store, improvement, ray_stages(api, production_of(scenario, world)), told)
    return loop_step(store, done, twin)
