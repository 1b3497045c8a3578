"""Drive a live canary with outcomes simulated by the twin, batch by batch, until it decides.

    python docs/examples/canary/twin_outcomes.py --api http://127.0.0.1:8766 --token TOKEN \\
        --family lead-scoring --model v1=/tmp/canarydoc/good.onnx \\
        --model v2=/tmp/canarydoc/inverted.onnx

Reads the family's live configuration (``GET /models/{family}/canary``), draws leads from the
``sales`` environment, scores each with the version the configuration assigns it (the same ONNX
files the family serves), turns the ground truth into a 0/1 ``conversions`` outcome, and posts
the events in batches (``POST /models/{family}/outcomes``) until the monitor decides.
"""

import argparse

import httpx

from twinloop.canary.assignment import CanaryConfig
from twinloop.canary.traffic import traffic_batches
from twinloop.sim.domains import environment
from twinloop.sim.onnxmodel import OnnxPredictor

parser = argparse.ArgumentParser()
parser.add_argument("--api", required=True)
parser.add_argument("--token", default=None)
parser.add_argument("--family", required=True)
parser.add_argument("--model", action="append", required=True, help="version=path.onnx")
parser.add_argument("--batches", type=int, default=20)
parser.add_argument("--batch-size", type=int, default=4_000)
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()
headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
with httpx.Client(base_url=args.api, headers=headers, timeout=120) as api:
    state = api.get(f"/models/{args.family}/canary").json()
    config = CanaryConfig.model_validate(state["config"])
    predictors = {}
    for item in args.model:
        version, _, path = item.partition("=")
        with open(path, "rb") as handle:
            predictors[version] = OnnxPredictor(handle.read())
    stream = traffic_batches(
        environment("sales"), config, predictors, batch_size=args.batch_size, seed=args.seed
    )
    for step in range(args.batches):
        units, outcomes = next(stream)
        taken = {version: 0 for version in outcomes}
        events = []
        for unit, version in zip(units, config.versions(units), strict=True):
            value = float(outcomes[version]["conversions"][taken[version]])
            taken[version] += 1
            events.append({"unitId": unit, "metrics": {"conversions": value}, "timestamp": step})
        body = {"batchId": f"seed{args.seed}-{step}", "events": events}
        answer = api.post(f"/models/{args.family}/outcomes", json=body)
        answer.raise_for_status()
        result = answer.json()
        decision = result["decision"]
        print(
            f"batch {step}: accepted {result['accepted']}, unassigned {result['unassigned']}, "
            f"decision {decision['action'] + ' by ' + decision['by'] if decision else None}"
        )
        if decision:
            break
