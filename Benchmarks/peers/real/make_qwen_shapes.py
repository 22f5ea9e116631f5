"""A Qwen2.5-0.5B-shaped model with random weights (no download): Qwen2.5-0.5B's config.json values
(hidden 896, 24 layers, 14 query / 2 key-value heads, intermediate 4864, vocabulary 151936, tied
embeddings, q/k/v biases, rope theta 1e6), initialized by transformers with a fixed seed, saved as a
Hugging Face directory in Float32 with SmolLM2's tokenizer files (its 49,152 ids fit the larger
vocabulary), so Nudge and TRL load the same weights.
Usage: python make_qwen_shapes.py SMOLLM2_HF_DIR OUT_DIR"""
import shutil, sys, torch
from transformers import Qwen2Config, Qwen2ForCausalLM
src, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
config = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                     num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
                     tie_word_embeddings=True, hidden_act="silu", bos_token_id=1, eos_token_id=2, pad_token_id=2)
model = Qwen2ForCausalLM(config).to(torch.float32)
model.save_pretrained(out, safe_serialization=True)
for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
    try: shutil.copy(f"{src}/{name}", f"{out}/{name}")
    except FileNotFoundError: pass
print("wrote", out, sum(p.numel() for p in model.parameters()), "parameters")
