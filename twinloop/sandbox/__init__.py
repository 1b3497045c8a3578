"""The model performance sandbox: Monte Carlo, head-to-head, grids and A/B tests in the twin.

Entry points: :func:`run_sandbox` (any spec), or ``run_test`` / ``run_head_to_head`` /
``run_grid`` / ``run_ab_test``; specs in ``specs.py``, results in ``results.py``. Every runner
takes an ``executor`` (default: :class:`SerialExecutor`; ``actors.sandbox_pool.RayExecutor`` on
a cluster) and returns the same result whichever executor ran it.
"""

from twinloop.sandbox.abtest import run_ab_test
from twinloop.sandbox.executor import Executor, SerialExecutor
from twinloop.sandbox.grid import run_grid
from twinloop.sandbox.headtohead import run_head_to_head
from twinloop.sandbox.montecarlo import run_test
from twinloop.sandbox.runner import run_sandbox, write_result
from twinloop.sandbox.specs import (
    AbTestSpec,
    EarlyStop,
    GridSpec,
    HeadToHeadSpec,
    SandboxTestSpec,
    Scenario,
    parse_sandbox_spec,
)

__all__ = [
    "AbTestSpec",
    "EarlyStop",
    "Executor",
    "GridSpec",
    "HeadToHeadSpec",
    "SandboxTestSpec",
    "Scenario",
    "SerialExecutor",
    "parse_sandbox_spec",
    "run_ab_test",
    "run_grid",
    "run_head_to_head",
    "run_sandbox",
    "run_test",
    "write_result",
]
