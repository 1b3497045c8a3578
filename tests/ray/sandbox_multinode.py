"""Helper of test_sandbox_multinode: a grid on a 3-node local Ray cluster, reported as JSON.

``ray.cluster_utils.Cluster`` cannot share a process with the test session's Ray, so the test
runs this file in a subprocess:

    python tests/ray/sandbox_multinode.py '<GridSpec JSON>'

It starts a head and two worker nodes (1 CPU each), runs the grid on a 3-worker pool spread
over them, and prints one JSON line: the nodes the universes ran on, the cluster's nodes and
the result's fingerprint. Set ``RAY_TMPDIR`` to keep this cluster's address file private.
"""

from __future__ import annotations

import json
import os
import sys


def main(spec_json: str) -> int:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray.cluster_utils import Cluster

    from actors.sandbox_pool import RayExecutor
    from twinloop.sandbox import GridSpec, run_grid

    spec = GridSpec.model_validate_json(spec_json)
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
        with RayExecutor(3, num_cpus=1) as executor:  # SPREAD: one worker per node
            result = run_grid(spec, executor=executor)
        alive = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
        print(
            json.dumps(
                {
                    "nodes_used": result.execution.nodes,
                    "cluster_nodes": alive,
                    "fingerprint": result.fingerprint(),
                }
            )
        )
    finally:
        ray.shutdown()
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
