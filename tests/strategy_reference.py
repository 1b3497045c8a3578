"""The reference scenario for the strategy and agent tests: the demo's planted flaw, small twin.

The A/B test keeps the demo's full size (below it the loss is too often not significant); the
twin is the ``sales`` preset rather than the calibrated one (calibration takes minutes and is
tested elsewhere). Built once per process.
"""

from __future__ import annotations

import functools

from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.demo.scenario import reference_scenario, train_models
from twinloop.demo.story import ab_test, analyze
from twinloop.sandbox.executor import SerialExecutor
from twinloop.sim.domains import preset
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.models import PredictorModel


@functools.lru_cache(maxsize=1)
def reference() -> tuple[BusinessEnvironment, PredictorModel, PredictorModel, FailureAnalysis]:
    """(twin, champion v2, flawed challenger v3, the analysis of the lost A/B test)."""
    scenario = reference_scenario(small=True).model_copy(update={"ab_replicates": 2})
    env = preset("sales").environment.model_copy(update={"initial_customers": scenario.customers})
    v2, v3 = train_models(env, scenario)
    step, units = ab_test(scenario, env, (v2, v3), SerialExecutor())
    return env, v2, v3, analyze(step, units)
