"""Train a scikit-learn lead-scoring model on twin-generated leads and export it to ONNX.

    python docs/examples/registry/export_onnx.py lead_model.onnx

The model takes the twin's predictor features (the environment's features, then a one-hot of the
segment) and returns P(lead converts); ``zipmap=False`` makes the probabilities a plain tensor.
"""

import sys

import numpy as np
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from twinloop.sim.domains import environment
from twinloop.sim.groundtruth import sample_customers

env = environment("sales")
x, y, _ = sample_customers(env, 20_000, np.random.default_rng(0))
model = LogisticRegression(max_iter=1000).fit(x, y)
onnx = to_onnx(model, x[:1].astype(np.float32), options={id(model): {"zipmap": False}})
with open(sys.argv[1], "wb") as out:
    out.write(onnx.SerializeToString())
print(f"wrote {sys.argv[1]}: {x.shape[1]} features in, P(convert) out")
