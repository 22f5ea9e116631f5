"""Fixtures for Nudge's blockwise 8-bit AdamW (optim=adamw_8bit): bitsandbytes' own dynamic
quantization maps, blockwise quantization and AdamW8bit steps, run on the CPU.

bitsandbytes >= 0.48 runs `bnb.optim.AdamW8bit` on the CPU (its `optimizer_update_8bit_blockwise`
CPU kernel: dequantize the blocks of 256, the Float32 AdamW update as torch.optim.AdamW,
requantize with the C++ `cquantize_blockwise_cpu_fp32`). This records, with bitsandbytes 0.50.2
and torch 2.15 (CPU) in a fresh venv:
  - `create_dynamic_map(signed=True)` and `(signed=False)`: the maps of the first and second
    moments (qmap1, qmap2), as float32 values;
  - `quantize_blockwise` of a fixed vector (blocksize 256, signed map): codes and absmax;
  - five AdamW8bit steps (lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 1e-2,
    min_8bit_size 4096) on a 33x128 parameter (8-bit state, 17 blocks, the last one partial) and
    an 8x8 one (Float32 state): parameters and state after steps 1 and 5.
Inputs are formulas of the index (sin/cos in float64 through libm, then rounded to float32), so
the Swift test computes the same numbers without storing them.

Usage: python3 -m venv /tmp/bnb && /tmp/bnb/bin/pip install bitsandbytes==0.50.2
       /tmp/bnb/bin/python scripts/make_adam8bit_fixtures.py
Writes Tests/NudgeNNTests/Fixtures/adam8bit/bnb_adamw8bit.json.
"""

import json
import math
import os

import bitsandbytes as bnb
import bitsandbytes.functional as F
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "Tests", "NudgeNNTests", "Fixtures", "adam8bit", "bnb_adamw8bit.json")


def vector(n, f):
    return torch.tensor([f(i) for i in range(n)], dtype=torch.float32)


def param_init(i):
    return 0.5 * math.cos(0.11 * i)


def grad(i, t, scale):
    # Magnitudes over two decades, both signs. Never near 0: where a block's v is over ~10^7 times
    # a value's v, that value's v rounds to code 0, and a later near-zero gradient then divides m by
    # eps alone — a jump of ~lr·m/eps whose size depends on which code a tie picked, not a check of
    # the arithmetic (bitsandbytes' CPU search also returns non-nearest codes for tiny values).
    sign = -1.0 if i % 3 == 0 else 1.0
    return sign * scale * (1.2 + math.sin(0.37 * i + 1.3 * t)) * math.exp(-((i * 7) % 97) / 40.0)


def floats(t):
    return [float(x) for x in t.reshape(-1).tolist()]


def ints(t):
    return [int(x) for x in t.reshape(-1).tolist()]


def main():
    torch.manual_seed(0)
    out = {
        "bitsandbytes": bnb.__version__,
        "torch": torch.__version__,
        "qmap_signed": floats(F.create_dynamic_map(signed=True)),
        "qmap_unsigned": floats(F.create_dynamic_map(signed=False)),
    }
    # Blockwise quantization of a fixed vector (3 full blocks and a partial one).
    x = vector(1000, lambda i: math.sin(0.73 * i) * math.exp(-(i % 61) / 9.0))
    codes, qstate = F.quantize_blockwise(x, code=F.create_dynamic_map(signed=True), blocksize=256)
    out["quantize"] = {"n": 1000, "blocksize": 256, "codes": ints(codes), "absmax": floats(qstate.absmax)}

    big = torch.nn.Parameter(vector(33 * 128, param_init).reshape(33, 128))
    small = torch.nn.Parameter(vector(64, param_init).reshape(8, 8))
    opt = bnb.optim.AdamW8bit([big, small], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, min_8bit_size=4096)
    steps = []
    for t in range(1, 6):
        big.grad = vector(big.numel(), lambda i: grad(i, t, 0.01)).reshape(big.shape)
        small.grad = vector(small.numel(), lambda i: grad(i, t, 0.01)).reshape(small.shape)
        opt.step()
        if t in (1, 5):
            s, s_small = opt.state[big], opt.state[small]
            steps.append({
                "step": t,
                "big": floats(big.detach()),
                "state1": ints(s["state1"]),
                "state2": ints(s["state2"]),
                "absmax1": floats(s["absmax1"]),
                "absmax2": floats(s["absmax2"]),
                "small": floats(small.detach()),
                "small_state1_dtype": str(s_small["state1"].dtype),
            })
    out["adamw8bit"] = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 1e-2,
                        "big_shape": [33, 128], "small_shape": [8, 8], "steps": steps}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
