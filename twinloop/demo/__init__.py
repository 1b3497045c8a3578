"""The main job: from a lost A/B test to validated hypotheses (``twinloop demo``)."""

from twinloop.demo.results import DemoResult
from twinloop.demo.scenario import DemoScenario, reference_scenario
from twinloop.demo.story import run_story

__all__ = ["DemoResult", "DemoScenario", "reference_scenario", "run_story"]
