"""Universes spread over a three-node cluster give the single-node result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from twinloop.sandbox import GridSpec, Scenario, run_grid
from twinloop.sim.models import ModelProfile

pytestmark = pytest.mark.ray
REPO = Path(__file__).resolve().parents[2]


def test_grid_on_three_nodes_uses_several_nodes_and_matches_one_node() -> None:
    """A head and two worker nodes (ray.cluster_utils.Cluster, in a subprocess): replicates run
    on more than one node and the fingerprint equals the single-node (serial) run's."""
    spec = GridSpec(
        customers=800,
        days=6,
        replicates=3,
        seed=8,
        scenarios=[Scenario(name="base"), Scenario(name="big", customers=1600)],
        models=[ModelProfile(name="a"), ModelProfile(name="b", accuracy=0.9)],
    )
    # A short private temp dir: Ray's socket paths must stay short, and its address file must
    # not point other Ray users on this machine at this throwaway cluster.
    with tempfile.TemporaryDirectory(prefix="tlmn", dir="/tmp") as private:
        env = {
            **os.environ,
            "RAY_TMPDIR": private,
            "RAY_AUTH_MODE": "disabled",
            "PYTHONPATH": str(REPO),
        }
        env.pop("RAY_ADDRESS", None)
        done = subprocess.run(
            [
                sys.executable,
                str(REPO / "tests" / "ray" / "sandbox_multinode.py"),
                spec.model_dump_json(),
            ],
            capture_output=True,
            text=True,
            timeout=400,
            env=env,
            cwd=REPO,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(report["cluster_nodes"]) == 3
    assert len(set(report["nodes_used"])) > 1
    assert set(report["nodes_used"]) <= set(report["cluster_nodes"])
    assert report["fingerprint"] == run_grid(spec).fingerprint()
