"""twinloop's pure core: simulator, statistics, analysis and metric replication, with no Ray.

Nothing in this package imports ``ray``, ``redis`` or ``fastapi``; a test
(``tests/unit/test_core_purity.py``) enforces it so the core stays testable in milliseconds and
picklable into any Ray worker.
"""

__version__ = "0.1.0"
