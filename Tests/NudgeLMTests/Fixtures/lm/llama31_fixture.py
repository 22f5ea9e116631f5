"""The tiny Llama 3.1-style fixture: the llama fixture's shape (fixtures.py) with Llama 3.1's RoPE
scaling (`rope_type: llama3`). head_dim 16 and theta 10⁴ put the 8 rotary frequencies in all three
regimes of original_max_position_embeddings 32 / high_freq_factor 4 / low_freq_factor 1: wavelength
6.3 < 8 is kept, 19.9 is interpolated, the rest (> 32) are divided by factor 8.

    /work/venv-gguf/bin/python llama31_fixture.py   # writes llama31/ beside this script; drop expected.json
"""
import os
from pathlib import Path

os.environ.setdefault("PEERS_OUT", str(Path(__file__).resolve().parent))
import fixtures  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402


def llama31_config():
    cfg = fixtures.llama_config()
    cfg.rope_parameters = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                           "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
    return LlamaConfig(**cfg.to_dict())


if __name__ == "__main__":
    model = fixtures.build(LlamaForCausalLM, llama31_config(), seed=1)
    assert model.model.rotary_emb.rope_type == "llama3", model.model.rotary_emb.rope_type
    fixtures.save_fixture("llama31", model, fixtures.input_batch(), 1,
                          "LlamaForCausalLM with rope_type llama3 (factor 8, low 1, high 4, original 32)")
    print(sorted(p.name for p in (fixtures.OUT / "llama31").iterdir()))

    # llama.cpp's convert_hf_to_gguf.py (LlamaModel.generate_extra_tensors) stores, per rotary
    # frequency, what ggml divides it by as `rope_freqs.weight`; the same formula, for the test.
    import json, math  # noqa: E401,E402
    import torch  # noqa: E402
    p = model.config.rope_parameters
    dim = model.config.head_dim
    freqs = 1.0 / (p["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    low_wavelen = p["original_max_position_embeddings"] / p["low_freq_factor"]
    high_wavelen = p["original_max_position_embeddings"] / p["high_freq_factor"]
    factors = []
    for freq in freqs.tolist():
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(p["factor"])
        else:
            smooth = (p["original_max_position_embeddings"] / wavelen - p["low_freq_factor"]) / (p["high_freq_factor"] - p["low_freq_factor"])
            factors.append(1 / ((1 - smooth) / p["factor"] + smooth))
    (fixtures.OUT / "llama31" / "rope_freqs.json").write_text(json.dumps(factors) + "\n")
