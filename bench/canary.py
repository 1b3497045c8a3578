"""Canary serving benchmark: prediction latency and throughput, and rollback under load.

Run: ``nice -n 10 .venv/bin/python -m bench.canary [--seconds 8] [--rollbacks 3]``. One local
Ray (2 CPUs) and Serve on a free loopback port: the ingress with the canary capability, a family
``bench`` whose champion v1 and canary v2 (50% of units) are a small ONNX logistic model
(scikit-learn export, 7 features). Per concurrency (1 and 16) it measures, with the lean load
generator of ``bench.loadgen`` in its own process:

* the no-op POST floor (``POST /healthz``: 405 after reading the body, answered by the ingress),
* ``POST /models/bench/predict`` (one unit, 4 rows) with ``serve.batch`` on the Model deployment,
* the same with batching off (a reconfigure of the Router's ``user_config``).

Then, under 16 closed-loop clients predicting for fresh units, it rolls the canary back
``--rollbacks`` times and reports how long the rollback call took to answer, when the last canary
answer was *sent* relative to the call (time to effect), and failed requests.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.serve import Case, _free_port, _loadgen

FAMILY = "bench"


def _onnx() -> bytes:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    from twinloop.sim.domains import environment
    from twinloop.sim.groundtruth import sample_customers

    x, y, _ = sample_customers(environment("sales"), 4_000, np.random.default_rng(1))
    model = LogisticRegression(max_iter=500).fit(x, y)
    onnx = to_onnx(model, x[:1].astype(np.float32), options={id(model): {"zipmap": False}})
    return onnx.SerializeToString()  # type: ignore[no-any-return]


def _setup(data_dir: Path) -> tuple[int, Any]:
    from ray import serve

    from serve_apps.app import Canary, Ingress
    from serve_apps.config import app_config
    from twinloop.config import load_settings
    from twinloop.registry.models import ModelFamily
    from twinloop.registry.registry import Registry
    from twinloop.sim.models import OnnxModel
    from twinloop.sim.onnxmodel import sha256_hex
    from twinloop.store import SqliteStore

    settings = load_settings(data_dir=data_dir)
    registry = Registry(SqliteStore(data_dir / "twinloop.sqlite3"), settings=settings)
    registry.create_family(ModelFamily(name=FAMILY, environment="sales", guardrails={}))
    content = _onnx()
    for _ in range(2):
        registry.register(FAMILY, OnnxModel(sha256=sha256_hex(content), content=content))
    registry.move_alias(FAMILY, "champion", "v1")
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    config = app_config({"settings": {"data_dir": str(data_dir)}})
    ingress: Any = Ingress
    serve.run(ingress.bind(config, canary=Canary.bind(config)), name="twinloop", route_prefix="/")
    return port, settings


def _summary(name: str, seen: dict[str, Any], expect: int | None) -> str:
    latencies = sorted(seen["latencies_s"])
    errors = seen["errors"]
    if expect is not None:
        errors = sum(n for status, n in seen["statuses"].items() if int(status) != expect)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000
    rate = len(latencies) / seen["seconds"]
    return f"| {name} | {len(latencies)} | {errors} | {p50:.1f} | {p99:.1f} | {rate:.0f} |"


def _client(
    base: str,
    name: str,
    rows: list[list[float]],
    stop: threading.Event,
    seen: list[tuple[float, str, int]],
) -> None:
    """Predict for fresh units until ``stop``; keep (sent at, version, status) of each."""
    import httpx

    with httpx.Client(base_url=base, timeout=30) as http:
        i = 0
        while not stop.is_set():
            sent = time.perf_counter()
            body = {"unitId": f"{name}-{i}", "rows": rows}
            try:
                answer = http.post(f"/models/{FAMILY}/predict", json=body)
                version = answer.json().get("version", "") if answer.is_success else ""
                seen.append((sent, version, answer.status_code))
            except httpx.HTTPError:
                seen.append((sent, "", 0))
            i += 1


def _rollback_under_load(port: int, width: int, rounds: int) -> list[str]:
    import httpx

    base = f"http://127.0.0.1:{port}"
    rows = np.random.default_rng(0).normal(0, 1, (4, width)).round(4).tolist()
    lines = []
    with httpx.Client(base_url=base, timeout=60) as admin:
        for round_ in range(rounds):
            put = admin.put(f"/models/{FAMILY}/canary", json={"version": "v2", "weight": 0.5})
            put.raise_for_status()
            stop = threading.Event()
            seen: list[tuple[float, str, int]] = []  # (sent at, version, status)

            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                futures = [
                    pool.submit(_client, base, f"r{round_}-{w}", rows, stop, seen)
                    for w in range(16)
                ]
                time.sleep(3.0)
                start = time.perf_counter()
                admin.post(f"/models/{FAMILY}/rollback").raise_for_status()
                acked = time.perf_counter()
                time.sleep(2.0)
                stop.set()
                for future in futures:
                    future.result()
            last_canary = max((t for t, v, _ in seen if v == "v2"), default=start)
            failed = sum(1 for _, _, status in seen if status != 200)
            after = [v for t, v, _ in seen if t >= acked]
            lines.append(
                f"| {round_ + 1} | {len(seen)} | {failed} | {1000 * (acked - start):.0f} | "
                f"{1000 * (last_canary - start):.0f} | {after.count('v2')} of {len(after)} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.canary", description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per case")
    parser.add_argument("--rollbacks", type=int, default=3)
    args = parser.parse_args()
    import ray
    from ray import serve

    from serve_apps.family import deploy
    from twinloop.canary.assignment import CanaryConfig

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory(prefix="twinloop-bench-canary-") as tmp:
        port, settings = _setup(Path(tmp))
        import httpx

        state = httpx.put(
            f"http://127.0.0.1:{port}/models/{FAMILY}/canary",
            json={"version": "v2", "weight": 0.5},
            timeout=120,
        ).json()
        config = CanaryConfig.model_validate(state["config"])
        width = config.n_features or 1
        rows = np.random.default_rng(0).normal(0, 1, (4, width)).round(4).tolist()
        predict = {"unitId": "bench-unit", "rows": rows}
        floor = Case("no-op POST floor (405)", "POST", "/healthz", predict, 405)
        path = f"/models/{FAMILY}/predict"
        print("| case | requests | errors | p50 ms | p99 ms | req/s |")
        print("|---|---:|---:|---:|---:|---:|")
        scratch = Path(tmp)
        for concurrency in (1, 16):
            for batching in (True, False):
                deploy(config.model_copy(update={"batching": batching}), settings)
                case = Case(f"predict, batch {'on' if batching else 'off'}", "POST", path, predict)
                _loadgen(port, case, 2.0, concurrency, scratch)  # warm-up
                seen = _loadgen(port, case, args.seconds, concurrency, scratch)
                print(_summary(f"{case.name}, concurrency {concurrency}", seen, None))
            seen = _loadgen(port, floor, args.seconds, concurrency, scratch)
            print(_summary(f"{floor.name}, concurrency {concurrency}", seen, 405))
        deploy(config, settings)
        print()
        print(
            "| rollback | predictions | failed | answered after ms | last canary sent at ms "
            "| canary answers sent after the answer |"
        )
        print("|---:|---:|---:|---:|---:|---:|")
        for line in _rollback_under_load(port, width, args.rollbacks):
            print(line)
        serve.shutdown()  # type: ignore[no-untyped-call]
    ray.shutdown()


if __name__ == "__main__":
    main()
