"""Writes q4_1.gguf: a matrix `values` (F32) and the same matrix quantized to Q4_1 by gguf-py
(`blocks`), whose `quantize_blocks` is llama.cpp's `quantize_row_q4_1_ref` in numpy. Nudge's Q4_1
quantizer must make the same blocks. Rows: normal values, a row with a constant block (d = 0), a
row of wide-ranging values. Run with the venv that has gguf-py (gguf 0.x, numpy 2.x):
    python q4_1_fixture.py  (writes q4_1.gguf next to this script)"""
import os
import numpy as np
import gguf

rng = np.random.default_rng(0)
values = rng.normal(0, 0.05, size=(6, 128)).astype(np.float32)
values[1, :32] = 0.25                                    # a constant block: d = 0
values[2] = rng.uniform(-40, 40, size=128).astype(np.float32)
values[3, 32:64] = np.linspace(-1, 1, 32, dtype=np.float32)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "q4_1.gguf")
writer = gguf.GGUFWriter(path, "llama")
writer.add_tensor("values", values)
blocks = gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q4_1)
writer.add_tensor("blocks", blocks, raw_shape=blocks.shape, raw_dtype=gguf.GGMLQuantizationType.Q4_1)
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()
print(path, values.shape, blocks.shape)
