"""A retraining-search driver run in a subprocess so a test can kill it mid-search.

python tests/ray/retrain_driver.py ADDRESS STORAGE SPEC_JSON
"""

from __future__ import annotations

import sys
from pathlib import Path

import ray

from tuning.search import search_retraining
from twinloop.improve.search import RetrainSpec

if __name__ == "__main__":
    address, storage, spec_json = sys.argv[1:4]
    ray.init(
        address=address,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"TWINLOOP_TEST_SLOW_TRAINER": "1", "RAY_AUTH_MODE": "disabled"}},
    )
    search_retraining(RetrainSpec.model_validate_json(spec_json), storage_path=Path(storage))
