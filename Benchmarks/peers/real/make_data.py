"""The real-model benchmark's data: 2-digit addition chats in TRL's conversational shapes.
grpo_prompts.jsonl (prompt + answer), sft.jsonl (prompt + completion), dpo.jsonl (prompt, chosen,
rejected: the right sum against a sum off by 1-9), generate.txt (16 plain-text prompts).
The first three follow ../shared/peers/real/make_data.py (same seed, same rows); dpo.jsonl and
generate.txt are added here. Usage: python3 make_data.py OUT_DIR"""
import json, random, sys
out = sys.argv[1] if len(sys.argv) > 1 else "."
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
rng = random.Random(0)
def q(a, b): return f"What is {a} + {b}? Reply with only the number."
def prompt(a, b): return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q(a, b)}]
def reply(a, s): return [{"role": "assistant", "content": f"{a} = {s}. The answer is {s}."}]
with open(f"{out}/grpo_prompts.jsonl", "w") as f:
    for _ in range(512):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        f.write(json.dumps({"prompt": prompt(a, b), "answer": str(a + b)}) + "\n")
with open(f"{out}/grpo_eval.jsonl", "w") as f:
    for _ in range(200):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        f.write(json.dumps({"prompt": prompt(a, b), "answer": str(a + b)}) + "\n")
with open(f"{out}/sft.jsonl", "w") as f:
    for _ in range(512):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        f.write(json.dumps({"prompt": prompt(a, b), "completion": reply(f"{a} + {b}", a + b)}) + "\n")
with open(f"{out}/dpo.jsonl", "w") as f:
    for _ in range(512):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        wrong = a + b + rng.choice([-1, 1]) * rng.randint(1, 9)
        f.write(json.dumps({"prompt": prompt(a, b), "chosen": reply(f"{a} + {b}", a + b),
                            "rejected": reply(f"{a} + {b}", wrong)}) + "\n")
with open(f"{out}/generate.txt", "w") as f:
    for _ in range(16):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        f.write(f"Question: what is {a} + {b}? Explain the carry step by step.\nAnswer:\n")
print("wrote", out)
