"""A PEFT LoRA adapter for the tiny llama fixture, and the logits of PEFT's merge_and_unload.

    /work/venv-gguf/bin/pip install peft   # 0.21.2
    /work/venv-gguf/bin/python peft_adapter_fixture.py

Writes llama_peft_adapter/ beside this script: adapter_config.json and adapter_model.safetensors as
`save_pretrained` writes them (r 4, lora_alpha 8, q_proj/v_proj/down_proj; B is random instead of
PEFT's zeros so the merge changes the logits), and expected.safetensors with `input_ids` [2,16] and
the merged model's `logits` [2,16,256].
"""
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import LlamaForCausalLM

here = Path(__file__).resolve().parent
out = here / "llama_peft_adapter"
base = LlamaForCausalLM.from_pretrained(here / "llama", attn_implementation="eager").eval()
config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], lora_dropout=0.0,
                    bias="none", task_type="CAUSAL_LM")
model = get_peft_model(base, config)
gen = torch.Generator().manual_seed(11)
with torch.no_grad():
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.copy_(0.2 * torch.randn(p.shape, generator=gen))
model.save_pretrained(out)
(out / "README.md").unlink()
# A path relative to the adapter instead of this machine's absolute one.
import json  # noqa: E402
cfg = json.loads((out / "adapter_config.json").read_text())
cfg["base_model_name_or_path"] = "../llama"
(out / "adapter_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
merged = model.merge_and_unload().eval()
ids = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    logits = merged(input_ids=ids).logits.float().contiguous()
save_file({"input_ids": ids.to(torch.int64), "logits": logits}, out / "expected.safetensors")
for f in out.iterdir():
    f.chmod(0o644)
print(sorted(p.name for p in out.iterdir()))
