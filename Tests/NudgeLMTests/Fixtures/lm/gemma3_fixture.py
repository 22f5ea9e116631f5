"""The tiny Gemma 3 text fixture (Gemma3ForCausalLM, model_type gemma3_text): writes gemma3/ beside
this script, built like the others in fixtures.py (same input batch (2, 16), init std 0.1, every 1-D
parameter perturbed) except that Gemma's RMSNorm gains are offsets (x·(1 + w), zeros at init), so
they are perturbed to 0.1·N(0, 1) around 0.

Shape: 4 layers [sliding, sliding, sliding, full], sliding_window 8 < 16 tokens (so the window
masks keys), head_dim 32 != 64/4, GQA 4q/2kv, query_pre_attn_scalar 32, local RoPE θ 1e4 and global
θ 1e6 with linear scaling ×8 (as released Gemma 3 4B+), tied embeddings, eager attention, float32.

expected.safetensors also holds `softcap.logits`: the same model's logits with
final_logit_softcapping = 10 (tanh capping of the logits; transformers' Gemma3Attention does not pass
attn_logit_softcapping to its attention, so that field changes nothing there).

    /work/venv-gguf/bin/python gemma3_fixture.py   # then drop gemma3/expected.json
"""
import os
from pathlib import Path

os.environ.setdefault("PEERS_OUT", str(Path(__file__).resolve().parent))
import fixtures  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import Gemma3ForCausalLM, Gemma3TextConfig  # noqa: E402


def gemma3_config():
    return Gemma3TextConfig(
        vocab_size=256, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=32, intermediate_size=128, hidden_activation="gelu_pytorch_tanh",
        layer_types=["sliding_attention"] * 3 + ["full_attention"], sliding_window=8,
        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                         "full_attention": {"rope_type": "linear", "rope_theta": 1000000.0, "factor": 8.0}},
        query_pre_attn_scalar=32, rms_norm_eps=1e-6, max_position_embeddings=128, tie_word_embeddings=True,
        attention_bias=False, final_logit_softcapping=None, attn_logit_softcapping=None,
        initializer_range=0.1, bos_token_id=2, eos_token_id=1, pad_token_id=0, attn_implementation="eager")


def build(seed):
    torch.manual_seed(seed)
    m = Gemma3ForCausalLM(gemma3_config())
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return m.eval()


if __name__ == "__main__":
    model = build(seed=1)
    names = [n for n, _ in model.named_parameters()]
    assert any("pre_feedforward_layernorm" in n for n in names) and any("q_norm" in n for n in names), names
    ids = fixtures.input_batch()
    fixtures.save_fixture("gemma3", model, ids, 1,
                          "Gemma3ForCausalLM: layers [sliding x3, full], window 8, head_dim 32, GQA 4q/2kv, "
                          "query_pre_attn_scalar 32, local theta 1e4, global theta 1e6 linear x8, tied")
    d = fixtures.OUT / "gemma3"
    # The window must matter: the same weights with a window of 16 give other logits.
    with torch.no_grad():
        base = model(input_ids=ids, use_cache=False).logits
        model.config.final_logit_softcapping = 10.0
        capped = model(input_ids=ids, use_cache=False).logits
        model.config.final_logit_softcapping = None
        model.config.sliding_window = 16
        wide = model(input_ids=ids, use_cache=False).logits
    print("window effect max |Δ|", (wide - base).abs().max().item(), "softcap effect", (capped - base).abs().max().item())
    tensors = load_file(str(d / "expected.safetensors"))
    tensors["softcap.logits"] = capped.float().contiguous()
    save_file(tensors, str(d / "expected.safetensors"))
    (d / "expected.json").unlink()
    print(sorted((p.name, p.stat().st_size) for p in d.iterdir()))
    print(open(d / "config.json").read())
