"""Regenerates the safetensors test fixtures with the official `safetensors` library.

    python3 -m venv venv && venv/bin/pip install safetensors numpy ml_dtypes
    venv/bin/python generate_fixtures.py   # run inside this directory

Writes reference.safetensors (+ reference_expected.json) and a two-shard checkpoint in
sharded/ (+ sharded_expected.json). Expected values are the exact stored values widened to
float64 (floats) or ints, so the Swift reader must match them exactly.
"""
import json
import os

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))


def expected(tensors):
    out = {}
    for name, arr in tensors.items():
        flat = arr.reshape(-1)
        if arr.dtype.kind in "iub":
            values = [int(v) for v in flat]
        else:
            values = [float(np.float32(v)) for v in flat]
        out[name] = {"shape": list(arr.shape), "values": values}
    return out


reference = {
    "weight_f32": np.array([[1.0, -2.5, 3.14159265], [-0.0, 1e-8, 123456.789]], dtype=np.float32),
    "bias_f16": np.array([0.1, -65504.0, 6e-8, 1.0009765625], dtype=np.float16),
    "emb_bf16": np.array([[0.1, -1.5], [3e38, 1e-39], [7.0, -0.0]], dtype=ml_dtypes.bfloat16),
    "ids_i64": np.array([-3, 0, 7, 123456789, 2**40], dtype=np.int64),
    "mask_bool": np.array([[True, False], [False, True]]),
    "scalar_f64": np.array(2.718281828459045, dtype=np.float64),
    "empty_f32": np.zeros((0, 4), dtype=np.float32),
}
reference_metadata = {"format": "np", "note": "unicode \u2713 \"quoted\""}
save_file(reference, os.path.join(HERE, "reference.safetensors"), metadata=reference_metadata)
with open(os.path.join(HERE, "reference_expected.json"), "w") as f:
    json.dump({"metadata": reference_metadata, "tensors": expected(reference)}, f, indent=1, sort_keys=True)

shard1 = {
    "layer.0.weight": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
    "layer.0.bias": np.array([0.5, -0.25], dtype=np.float16),
}
shard2 = {
    "layer.1.weight": np.array([[1.0, 2.0], [3.0, 4.0]], dtype=ml_dtypes.bfloat16),
}
os.makedirs(os.path.join(HERE, "sharded"), exist_ok=True)
names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
save_file(shard1, os.path.join(HERE, "sharded", names[0]), metadata={"format": "np"})
save_file(shard2, os.path.join(HERE, "sharded", names[1]), metadata={"format": "np"})
total = sum(a.nbytes for a in list(shard1.values()) + list(shard2.values()))
index = {
    "metadata": {"total_size": total},
    "weight_map": {**{k: names[0] for k in shard1}, **{k: names[1] for k in shard2}},
}
with open(os.path.join(HERE, "sharded", "model.safetensors.index.json"), "w") as f:
    json.dump(index, f, indent=2, sort_keys=True)
with open(os.path.join(HERE, "sharded_expected.json"), "w") as f:
    json.dump({"total_size": total, "tensors": expected({**shard1, **shard2})}, f, indent=1, sort_keys=True)
