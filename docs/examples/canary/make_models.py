"""Two lead-scoring models as ONNX: a fitted logistic model and the same model inverted.

    python docs/examples/canary/make_models.py /tmp/canarydoc

The inverted one (coefficients negated) acts on exactly the wrong leads: a truly worse version,
for watching the canary monitor roll it back.
"""

import sys
from pathlib import Path

import numpy as np
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from twinloop.sim.domains import environment
from twinloop.sim.groundtruth import sample_customers

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
x, y, _ = sample_customers(environment("sales"), 20_000, np.random.default_rng(0))
good = LogisticRegression(max_iter=1000).fit(x, y)
bad = LogisticRegression(max_iter=1000).fit(x, y)
bad.coef_, bad.intercept_ = -good.coef_, -good.intercept_
for name, model in (("good", good), ("inverted", bad)):
    onnx = to_onnx(model, x[:1].astype(np.float32), options={id(model): {"zipmap": False}})
    (out / f"{name}.onnx").write_bytes(onnx.SerializeToString())
    print(f"wrote {out / name}.onnx: {x.shape[1]} features in, P(convert) out")
