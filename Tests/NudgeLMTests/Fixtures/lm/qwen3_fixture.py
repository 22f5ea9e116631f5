"""The tiny Qwen3 fixture (Qwen3ForCausalLM): writes qwen3/ beside this script, built like the others
in fixtures.py (same input batch, init std 0.1, every 1-D parameter perturbed, q_norm/k_norm gains
included), with head_dim 32 != hidden/heads = 16 so that the decoupled head size is exercised.

    /work/venv-gguf/bin/python qwen3_fixture.py   # then drop qwen3/expected.json
"""
import os
from pathlib import Path

os.environ.setdefault("PEERS_OUT", str(Path(__file__).resolve().parent))
import fixtures  # noqa: E402
from transformers import Qwen3Config, Qwen3ForCausalLM  # noqa: E402


def qwen3_config():
    return Qwen3Config(
        vocab_size=256, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=32, intermediate_size=176, hidden_act="silu",
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, rms_norm_eps=1e-6,
        max_position_embeddings=128, tie_word_embeddings=True, attention_bias=False,
        use_sliding_window=False, initializer_range=0.1, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        attn_implementation="eager")


if __name__ == "__main__":
    model = fixtures.build(Qwen3ForCausalLM, qwen3_config(), seed=1)
    names = [n for n, _ in model.named_parameters()]
    assert any("q_norm" in n for n in names) and any("k_norm" in n for n in names), names
    fixtures.save_fixture("qwen3", model, fixtures.input_batch(), 1,
                          "Qwen3ForCausalLM, q/k RMSNorm over head_dim before RoPE, head_dim 32 != 64/4, "
                          "GQA 4q/2kv, tied embeddings, rope_theta 1e6")
    print(sorted(p.name for p in (fixtures.OUT / "qwen3").iterdir()))
