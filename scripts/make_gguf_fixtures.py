#!/usr/bin/env python3
"""Writes the GGUF fixtures the tests read, with the `gguf` Python package (llama.cpp's gguf-py).

    python3 -m venv /tmp/venv-gguf && /tmp/venv-gguf/bin/pip install gguf numpy safetensors
    /tmp/venv-gguf/bin/python scripts/make_gguf_fixtures.py

Tests/NudgeNNTests/Fixtures/gguf/
  types.gguf   one tensor per ggml type Nudge reads (F32, F16, BF16, Q4_0 ... Q8_0, Q2_K ... Q6_K),
               random blocks with sane scales, and one metadata key of every value type
  types.json   each tensor's values as gguf.quants.dequantize gives them, and the metadata
Tests/NudgeLMTests/Fixtures/gguf/
  llama.gguf   the tiny Llama fixture (Fixtures/lm/llama) as llama.cpp's converter writes it: llama-arch
               names, Q/K rows permuted for ggml's RoPE, F32 weights
  qwen2.gguf   the tiny Qwen2 fixture (biases on q/k/v, no permutation), F32
  qwen3.gguf   the tiny Qwen3 fixture (attn_q_norm/attn_k_norm, head_dim 32 != hidden/heads written as
               attention.key_length/value_length, no permutation), F32
  tiny_tokenizer.gguf  a one-layer llama whose metadata holds a small byte-level BPE tokenizer
"""
import json
import pathlib
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from safetensors.numpy import load_file

root = pathlib.Path(__file__).resolve().parent.parent
rng = np.random.default_rng(20261206)


def random_blocks(qtype, n_blocks):
    """Random bytes for n_blocks of qtype, with every f16 scale field set to a sane value."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)

    def put_f16(col, scale):
        vals = (rng.standard_normal(n_blocks) * scale).astype(np.float16)
        raw[:, col:col + 2] = vals.view(np.uint8).reshape(n_blocks, 2)

    if qtype in (T.Q4_0, T.Q5_0, T.Q8_0):
        put_f16(0, 0.05)
    elif qtype in (T.Q4_1, T.Q5_1):
        put_f16(0, 0.05); put_f16(2, 0.5)
    elif qtype == T.Q2_K:
        put_f16(80, 0.05); put_f16(82, 0.05)
    elif qtype == T.Q3_K:
        put_f16(108, 0.05)
    elif qtype in (T.Q4_K, T.Q5_K):
        put_f16(0, 0.05); put_f16(2, 0.05)
    elif qtype == T.Q6_K:
        put_f16(208, 0.05)
    return raw


def write_types():
    out = root / "Tests/NudgeNNTests/Fixtures/gguf"
    out.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(out / "types.gguf"), arch="test")
    meta = {}
    w.add_uint8("test.u8", 200); meta["test.u8"] = 200
    w.add_int8("test.i8", -100); meta["test.i8"] = -100
    w.add_uint16("test.u16", 60000); meta["test.u16"] = 60000
    w.add_int16("test.i16", -30000); meta["test.i16"] = -30000
    w.add_uint32("test.u32", 4000000000); meta["test.u32"] = 4000000000
    w.add_int32("test.i32", -2000000000); meta["test.i32"] = -2000000000
    w.add_float32("test.f32", 0.25); meta["test.f32"] = 0.25
    w.add_uint64("test.u64", 2**63 + 5); meta["test.u64"] = 2**63 + 5
    w.add_int64("test.i64", -(2**62)); meta["test.i64"] = -(2**62)
    w.add_float64("test.f64", 1e-300); meta["test.f64"] = 1e-300
    w.add_bool("test.bool", True); meta["test.bool"] = True
    w.add_string("test.string", "héllo ✓ 🤗"); meta["test.string"] = "héllo ✓ 🤗"
    w.add_array("test.array", ["a", "bc", ""]); meta["test.array"] = ["a", "bc", ""]
    w.add_array("test.ints", [1, -2, 3]); meta["test.ints"] = [1, -2, 3]
    expected = {"metadata": meta, "tensors": {}}
    for name, qtype in [("q4_0", T.Q4_0), ("q4_1", T.Q4_1), ("q5_0", T.Q5_0), ("q5_1", T.Q5_1), ("q8_0", T.Q8_0),
                        ("q2_k", T.Q2_K), ("q3_k", T.Q3_K), ("q4_k", T.Q4_K), ("q5_k", T.Q5_K), ("q6_k", T.Q6_K)]:
        block_size, _ = gguf.GGML_QUANT_SIZES[qtype]
        rows = 2
        raw = random_blocks(qtype, rows * (512 // block_size if block_size == 32 else 2))
        raw = raw.reshape(rows, -1)
        values = gguf.quants.dequantize(raw, qtype)  # shape (rows, elements per row)
        w.add_tensor(name, raw, raw_dtype=qtype)
        expected["tensors"][name] = {"shape": list(values.shape), "values": [float(v) for v in values.reshape(-1)]}
    f32 = rng.standard_normal((3, 5)).astype(np.float32)
    w.add_tensor("f32", f32)
    expected["tensors"]["f32"] = {"shape": [3, 5], "values": [float(v) for v in f32.reshape(-1)]}
    f16 = rng.standard_normal((4, 8)).astype(np.float16)
    w.add_tensor("f16", f16)
    expected["tensors"]["f16"] = {"shape": [4, 8], "values": [float(v) for v in f16.astype(np.float32).reshape(-1)]}
    bf = rng.standard_normal((2, 16)).astype(np.float32)
    bf_bits = (bf.view(np.uint32) >> 16).astype(np.uint16)
    w.add_tensor("bf16", bf_bits.view(np.uint8).reshape(2, 32), raw_dtype=T.BF16)
    expected["tensors"]["bf16"] = {"shape": [2, 16], "values": [float(v) for v in (bf_bits.astype(np.uint32) << 16).view(np.float32).reshape(-1)]}
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    # Export's Q8_0 quantizer against gguf-py's (ggml's reference): values with ties and a zero block.
    q_in = (rng.standard_normal(96) * 0.3).astype(np.float32)
    q_in[32:64] = 0
    q_in[70] = 2.5; q_in[71] = -2.5
    expected["q8_0_quantize"] = {"values": [float(v) for v in q_in],
                                 "bytes": gguf.quants.quantize(q_in.reshape(1, 96), T.Q8_0).reshape(-1).tobytes().hex()}
    (out / "types.json").write_text(json.dumps(expected))


def permute(weights, n_head, n_head_kv):
    # llama.cpp's convert_hf_to_gguf.py LlamaModel.permute: ggml's RoPE pairs adjacent dimensions.
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def write_model(family, arch):
    src = root / "Tests/NudgeLMTests/Fixtures/lm" / family
    cfg = json.loads((src / "config.json").read_text())
    tensors = load_file(str(src / "model.safetensors"))
    out = root / "Tests/NudgeLMTests/Fixtures/gguf"
    out.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(out / f"{family}.gguf"), arch=arch)
    n_head, n_kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    hidden = cfg["hidden_size"]
    w.add_context_length(cfg.get("max_position_embeddings", 2048))
    w.add_embedding_length(hidden)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    theta = cfg.get("rope_theta") or cfg.get("rope_parameters", {}).get("rope_theta", 10000.0)
    w.add_rope_freq_base(float(theta))
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    if cfg.get("head_dim") is not None:  # as convert_hf_to_gguf.py does
        w.add_key_length(cfg["head_dim"])
        w.add_value_length(cfg["head_dim"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    names = {
        "model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    per_layer = {
        "input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
        "self_attn.q_norm.weight": "attn_q_norm.weight", "self_attn.k_norm.weight": "attn_k_norm.weight",
        "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.bias": "attn_v.bias",
        "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
    }
    for key, value in tensors.items():
        if key in names:
            name = names[key]
        else:
            parts = key.split(".")
            assert parts[0] == "model" and parts[1] == "layers", key
            name = f"blk.{parts[2]}." + per_layer[".".join(parts[3:])]
        value = value.astype(np.float32)
        if arch == "llama" and key.endswith("q_proj.weight"):
            value = permute(value, n_head, n_head)
        if arch == "llama" and key.endswith("k_proj.weight"):
            value = permute(value, n_head, n_kv)
        w.add_tensor(name, value)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


def byte_level_alphabet():
    # GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest move to U+0100 and up.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, n = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return [chars[b] for b in range(256)]


def write_tiny_with_tokenizer():
    """A one-layer llama with a byte-level BPE tokenizer in its metadata (the fuzzer's seed, and the
    GGUF tokenizer's unit test): special tokens first (control), 256 bytes, a few merges."""
    out = root / "Tests/NudgeLMTests/Fixtures/gguf"
    w = gguf.GGUFWriter(str(out / "tiny_tokenizer.gguf"), arch="llama")
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    alphabet = byte_level_alphabet()
    merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("Ġ", "w"), ("o", "r"), ("Ġw", "or"), ("Ġwor", "l"), ("Ġworl", "d")]
    tokens = specials + alphabet + ["".join(m) for m in merges] + ["<tool>"]
    types = [3] * len(specials) + [1] * (len(tokens) - len(specials) - 1) + [4]
    hidden, vocab = 8, len(tokens)
    w.add_context_length(64); w.add_embedding_length(hidden); w.add_block_count(1); w.add_feed_forward_length(16)
    w.add_head_count(2); w.add_head_count_kv(1); w.add_rope_freq_base(10000.0); w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2"); w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens); w.add_token_types(types); w.add_token_merges([f"{a} {b}" for a, b in merges])
    w.add_bos_token_id(0); w.add_eos_token_id(2); w.add_pad_token_id(0)
    w.add_chat_template("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}")
    small = np.random.default_rng(7)
    def t(*shape):
        return (small.standard_normal(shape) * 0.1).astype(np.float32)
    w.add_tensor("token_embd.weight", t(vocab, hidden))
    w.add_tensor("output_norm.weight", np.ones(hidden, dtype=np.float32))
    for name, shape in [("attn_norm.weight", (hidden,)), ("ffn_norm.weight", (hidden,)), ("attn_q.weight", (hidden, hidden)),
                        ("attn_k.weight", (4, hidden)), ("attn_v.weight", (4, hidden)), ("attn_output.weight", (hidden, hidden)),
                        ("ffn_gate.weight", (16, hidden)), ("ffn_up.weight", (16, hidden)), ("ffn_down.weight", (hidden, 16))]:
        w.add_tensor(f"blk.0.{name}", t(*shape) if len(shape) == 2 else np.ones(shape, dtype=np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


if __name__ == "__main__":
    write_tiny_with_tokenizer()
    write_types()
    write_model("llama", "llama")
    write_model("qwen2", "qwen2")
    write_model("qwen3", "qwen3")
    print("wrote the GGUF fixtures", file=sys.stderr)
