"""Ray job entrypoints: ``python -m cluster.jobs.<name>``; none does work at import time."""
