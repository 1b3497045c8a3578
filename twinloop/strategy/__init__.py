"""The improvement strategy: from a failure analysis to a plan of actions ranked by ROI.

``models`` holds the plan's contract, ``evidence`` turns sandbox runs into uplift evidence,
``costs`` prices an action (compute, labelled rows from a power analysis, rollout risk),
``generator`` builds and stores the plan, ``render`` prints it.
"""

from twinloop.strategy.generator import PLAN_KIND, build_plan, load_analysis, plan_analysis
from twinloop.strategy.models import (
    Action,
    Cost,
    Estimate,
    Plan,
    PlanSettings,
    SandboxEvidence,
    TrainingPlan,
    Uplift,
)
from twinloop.strategy.render import render_plan

__all__ = [
    "PLAN_KIND",
    "Action",
    "Cost",
    "Estimate",
    "Plan",
    "PlanSettings",
    "SandboxEvidence",
    "TrainingPlan",
    "Uplift",
    "build_plan",
    "load_analysis",
    "plan_analysis",
    "render_plan",
]
