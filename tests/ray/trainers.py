"""Trainers the Ray tests plug in through the trainer contract (import paths)."""

from __future__ import annotations

import os
import time
from typing import Any

from twinloop.improve.data import TrainingData
from twinloop.improve.reference import logistic
from twinloop.sim.models import PredictorModel


def explosive(config: dict[str, Any], data: TrainingData, seed: int) -> PredictorModel:
    """The reference logistic trainer, except that a recipe asking to explode raises."""
    if config.get("explode"):
        raise ValueError("exploded as asked")
    if os.environ.get("TWINLOOP_TEST_SLOW_TRAINER"):
        time.sleep(2.0)  # the restore test's driver: long enough to be killed mid-search
    return logistic(config, data, seed)
