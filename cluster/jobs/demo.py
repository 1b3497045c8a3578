"""Ray job: the main job (``twinloop demo``) on a cluster.

    ray job submit --working-dir . -- python -m cluster.jobs.demo --out /shared/twinloop-demo

Inside ``ray job submit`` Ray sets ``RAY_ADDRESS``, so the story joins the job's cluster and its
validation replicates spread over every node; the report is written on the node that runs the
entrypoint (give ``--out`` a path on shared storage to read it elsewhere). The improvement
loop's Tune trials run on the job's cluster and its canary on the cluster's Serve (HTTP on
127.0.0.1 of the node running the entrypoint; with several nodes, use Redis as the store). Set
``TWINLOOP_REDIS_URL`` in the job's ``runtime_env`` to keep the run's summary in Redis. Nothing
happens at import time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cluster.commands.demo import add_arguments, main_checked


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cluster.jobs.demo", description="Run the main job (twinloop demo) on Ray."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return main_checked(args, "demo job")


if __name__ == "__main__":
    sys.exit(main())
