#!/usr/bin/env python3
"""The CLI fault suite: hostile inputs to the `nudge` binary, each of which must end with a clear
error (a non-zero exit, no trap or backtrace, a message naming the file, line, row or field), and
runs that must never leave non-finite weights behind.

    scripts/fault_suite.py [path/to/nudge] [--table]

Builds its inputs in a temporary directory (models with `nudge lm init`, the GPT-2 test fixture,
JSONL and TOML files), runs every case, prints one line per case (or a Markdown table with
--table) and exits 1 if any case failed. The cases are the ones a hostile review found (the
reliability issue), each checked at its root.
"""

import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUDGE = os.path.abspath(next((a for a in sys.argv[1:] if not a.startswith("--")), os.path.join(ROOT, ".build/debug/nudge")))
TABLE = "--table" in sys.argv
CRASH_CODES = {132, 133, 134, 135, 136, 137, 139}
CRASH_TEXT = ("Program crashed", "Fatal error", "Backtrace", "Illegal instruction", "Segmentation fault", "NSError", "Error Domain=")

work = tempfile.mkdtemp(prefix="nudge-faults-")
os.chdir(work)
results = []


def run(args, timeout=300, stdin=None, cwd=None):
    started = time.time()
    p = subprocess.run([NUDGE] + args, capture_output=True, text=True, timeout=timeout, input=stdin, cwd=cwd)
    return p.returncode, p.stdout + p.stderr, time.time() - started


def first_error_line(text):
    for line in text.splitlines():
        if line.startswith("Error:") or "error" in line.lower():
            return line.strip()
    lines = [l for l in text.splitlines() if l.strip()]
    return lines[-1].strip() if lines else ""


def case(name, args, expect, code=None, stdin=None, check=None):
    """Runs one case: it passes when the exit status is non-zero (or `code`), nothing crashed, and
    every string of `expect` is in the output; `check` (optional) is a further predicate."""
    rc, out, seconds = run(args, stdin=stdin)
    problems = []
    if rc in CRASH_CODES or any(t in out for t in CRASH_TEXT):
        problems.append("crashed")
    if code is None and rc == 0:
        problems.append("exit 0")
    if code is not None and rc != code:
        problems.append(f"exit {rc}, expected {code}")
    for text in expect:
        if text not in out:
            problems.append(f"no {text!r} in the message")
    if check:
        problem = check()
        if problem:
            problems.append(problem)
    message = first_error_line(out)
    results.append((name, rc, message, problems))
    if not TABLE:
        status = "ok  " if not problems else "FAIL"
        print(f"{status} {name}: exit {rc}: {message[:160]}" + ("" if not problems else f"  <-- {'; '.join(problems)}"), flush=True)
        if problems:
            print("      output:", out[-1500:].replace("\n", "\n      "))


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def jsonl(path, rows):
    write(path, "".join(json.dumps(r) + "\n" for r in rows))


def safetensors_finite(path):
    """True when every F32 tensor of a safetensors file is finite (a minimal reader)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        start, end = info["data_offsets"]
        values = struct.unpack(f"<{(end - start) // 4}f", data[start:end])
        if not all(math.isfinite(v) for v in values):
            return False
    return True


def no_nonfinite_weights(run_dir):
    def check():
        for root, _, files in os.walk(run_dir):
            for name in files:
                if name.endswith(".safetensors") and not safetensors_finite(os.path.join(root, name)):
                    return f"non-finite weights written: {os.path.join(root, name)}"
        return None
    return check


# ---- Inputs -------------------------------------------------------------------------------------
assert run(["lm", "init", "--output", "m256", "--vocab-size", "256"])[0] == 0
assert run(["lm", "init", "--output", "tiny"])[0] == 0
fixtures = os.path.join(ROOT, "Tests/NudgeLMTests/Fixtures")
shutil.copytree(os.path.join(fixtures, "lm/gpt2"), "gpt2")
# A 256-id byte-level tokenizer for the GPT-2 fixture (its 256 byte symbols, no merges, EOS at 255).
tok = json.load(open(os.path.join(fixtures, "tokenizers/gpt2-prefix-space.json")))
tok["model"]["vocab"] = {k: i for k, i in tok["model"]["vocab"].items() if i < 255}
tok["model"]["merges"] = []
tok["added_tokens"][0]["id"] = 255
json.dump(tok, open("gpt2/tokenizer.json", "w"))
# The same model with the full tokenizer: an added token (id 1200) beyond its 256-id vocabulary.
shutil.copytree("gpt2", "gpt2-bigtok")
shutil.copy(os.path.join(fixtures, "tokenizers/gpt2-prefix-space.json"), "gpt2-bigtok/tokenizer.json")
for name, edit in [("neg", {"hidden_size": -64}), ("huge", {"hidden_size": 1e12}), ("eps", {"rms_norm_eps": -1e-5}),
                   ("heads0", {"num_attention_heads": 0})]:
    shutil.copytree("tiny", f"cfg-{name}")
    config = json.load(open("tiny/config.json"))
    config.update(edit)
    json.dump(config, open(f"cfg-{name}/config.json", "w"))
jsonl("sft.jsonl", [{"prompt": f"{a}+{b}=", "completion": str(a + b)} for a in range(4) for b in range(4)])
jsonl("prompts.jsonl", [{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(10) for b in range(10)])
jsonl("pairs.jsonl", [{"prompt": "1+1=", "chosen": "2", "rejected": "3"}] * 4)
jsonl("unpaired.jsonl", [{"prompt": "1+1=", "completion": "2", "label": True}, {"prompt": "1+1=", "completion": "3", "label": False}])
jsonl("empty-prompt.jsonl", [{"prompt": "", "answer": "1"}])
jsonl("no-answer.jsonl", [{"prompt": f"{a}+1="} for a in range(10)])
jsonl("ids.jsonl", [{"input_ids": [1, 2, 300], "completion_mask": [0, 1, 1]}])
jsonl("long.jsonl", [{"prompt": "x" * 80, "completion": "y"}])
jsonl("missing-completion.jsonl", [{"prompt": "a", "completion": "b"}, {"prompt": "a"}])
write("empty.jsonl", "")
with open("utf16.jsonl", "wb") as f:
    f.write('{"prompt": "a", "completion": "b"}\n'.encode("utf-16"))
os.mkfifo("fifo.jsonl")
write("bad.toml", "[[\nx = 1\n")
write("bad2.toml", "[sft]\nlearning_rate = 1e-3\n[\n")

T = ["--set", "warmup.sft_epochs=0"]  # online commands: skip the preset's warm start where it is not the point
G = ["--steps", "2", "--set", "grpo.prompts_per_step=2", "--set", "grpo.num_generations=2", "--set", "grpo.max_completion_length=2",
     "--set", "eval.rows=0"]

# ---- 1. Token ids outside the vocabulary ---------------------------------------------------------
case("sft, model without tokenizer.json, 256-id vocabulary", ["sft", "--model", "m256", "--data", "sft.jsonl", "--output", "r/sft"],
     ["m256", "no tokenizer.json", "vocab_size is 256"])
case("grpo, same model", ["grpo", "--model", "m256", "--data", "prompts.jsonl", "--output", "r/grpo"] + G, ["no tokenizer.json"])
case("dpo, same model", ["dpo", "--model", "m256", "--data", "pairs.jsonl", "--output", "r/dpo"], ["no tokenizer.json"])
case("dpo, dpo.ref_model with another vocabulary", ["dpo", "--model", "tiny", "--data", "pairs.jsonl", "--set", "dpo.ref_model=gpt2",
     "--output", "r/dpo2"], ["vocabulary"])
case("sft, pre-tokenized id 300 in a 260-id model", ["sft", "--model", "tiny", "--data", "ids.jsonl", "--output", "r/ids"],
     ["row 1", "token id 300"])
case("tokenizer.json with an added token beyond the vocabulary", ["generate", "--model", "gpt2-bigtok", "--prompt", "hi"],
     ["tokenizer.json", "1200", "vocab_size 256"])
case("lm logits --ids 300", ["lm", "logits", "--model", "tiny", "--ids", "300"], ["--ids", "token id 300"])

assert run(["lm", "init", "--output", "m49k", "--vocab-size", "49152"])[0] == 0
case("sft, 49k-vocabulary model without tokenizer.json", ["sft", "--model", "m49k", "--data", "sft.jsonl", "--output", "r/m49k"],
     ["m49k", "no tokenizer.json"])

# ---- 2. Empty prompts and prompt sets ------------------------------------------------------------
case("generate --prompt ''", ["generate", "--model", "tiny", "--prompt", ""], ["--prompt", "no tokens"])
case("grpo, {\"prompt\": \"\"}", ["grpo", "--model", "tiny", "--data", "empty-prompt.jsonl", "--output", "r/ep"] + G, ["row 1", "no tokens"])
case("rloo, {\"prompt\": \"\"}", ["rloo", "--model", "tiny", "--data", "empty-prompt.jsonl", "--output", "r/ep2", "--steps", "1",
     "--set", "eval.rows=0"], ["row 1", "no tokens"])
case("eval, {\"prompt\": \"\"}", ["eval", "tiny", "--data", "empty-prompt.jsonl"], ["row 1", "no tokens"])
for command in ["grpo", "rloo", "ppo", "sft", "dpo", "rm", "kto"]:
    case(f"{command}, empty JSONL", [command, "--model", "tiny", "--data", "empty.jsonl", "--output", f"r/empty-{command}"],
         ["empty.jsonl", "no rows"])

# ---- 3. GPT-2 past n_positions (64) --------------------------------------------------------------
case("generate past n_positions", ["generate", "--model", "gpt2", "--prompt", "hello", "--max-new-tokens", "100"], ["n_positions", "64"])
case("sft past n_positions", ["sft", "--model", "gpt2", "--data", "long.jsonl", "--set", "sft.max_length=0", "--output", "r/g2"],
     ["row 1", "n_positions"])
case("grpo past n_positions", ["grpo", "--model", "gpt2", "--data", "prompts.jsonl", "--output", "r/g3", "--steps", "1",
     "--set", "grpo.max_completion_length=100", "--set", "eval.rows=0"], ["n_positions"])

# ---- 4. TOML that once aborted toml++ ------------------------------------------------------------
case("--config with '[[' alone", ["sft", "--config", "bad.toml"], ["bad.toml line 1", "table header needs a name"])
case("--config with '[' alone", ["sft", "--config", "bad2.toml"], ["bad2.toml line 3"])

# ---- 5. Negative or absurd sizes -----------------------------------------------------------------
case("config.json hidden_size -64", ["generate", "--model", "cfg-neg", "--prompt", "a"], ["config.json", "hidden_size"])
case("config.json hidden_size 1e12", ["generate", "--model", "cfg-huge", "--prompt", "a"], ["config.json", "memory"])
case("config.json rms_norm_eps < 0", ["generate", "--model", "cfg-eps", "--prompt", "a"], ["config.json", "rms_norm_eps"])
case("config.json 0 attention heads", ["generate", "--model", "cfg-heads0", "--prompt", "a"], ["config.json", "num_attention_heads"])
case("generate --max-new-tokens=-1", ["generate", "--model", "tiny", "--prompt", "a", "--max-new-tokens=-1"], ["--max-new-tokens"])
case("lm init --vocab-size=-5", ["lm", "init", "--output", "x", "--vocab-size=-5"], ["--vocab-size"])
case("lm init --vocab-size 0", ["lm", "init", "--output", "x", "--vocab-size", "0"], ["--vocab-size"])
case("lm logits --ids ''", ["lm", "logits", "--model", "tiny", "--ids", ""], ["--ids"])
case("lm logits --ids overflowing Int", ["lm", "logits", "--model", "tiny", "--ids", "99999999999999999999999"], ["--ids"])

# ---- 6. Non-finite weights never saved -----------------------------------------------------------
case("sft lr 1e38", ["sft", "--rows", "32", "--epochs", "1", "--set", "sft.learning_rate=1e38", "--set", "sft.max_grad_norm=0",
     "--set", "checkpoint.every=1", "--output", "r/nan-sft"], ["step", "not saved"], code=1, check=no_nonfinite_weights("r/nan-sft"))
case("grpo lr 1e38", ["grpo", "--model", "tiny", "--data", "prompts.jsonl", "--set", "grpo.learning_rate=1e38", "--set", "grpo.max_grad_norm=0",
     "--set", "checkpoint.every=1", "--output", "r/nan-grpo"] + G[:-2] + ["--set", "grpo.reward_funcs=[format]"],
     ["step", "not saved"], code=1, check=no_nonfinite_weights("r/nan-grpo"))

# ---- 7. Accepted and then NaN or nonsense --------------------------------------------------------
for command in ["grpo", "rloo", "ppo"]:
    case(f"{command} temperature 0", [command, "--set", f"{command}.temperature=0"], [f"{command}.temperature", "> 0"])
case("grpo temperature nan", ["grpo", "--set", "grpo.temperature=nan"], ["grpo.temperature"])
case("grpo top_p 2", ["grpo", "--set", "grpo.top_p=2"], ["grpo.top_p"])
case("generate --top-p 2", ["generate", "--model", "tiny", "--prompt", "a", "--top-p", "2"], ["--top-p"])
case("generate --min-p 5", ["generate", "--model", "tiny", "--prompt", "a", "--min-p", "5"], ["--min-p"])
case("generate --temperature nan", ["generate", "--model", "tiny", "--prompt", "a", "--temperature", "nan"], ["--temperature"])
case("grpo reward_timeout 0", ["grpo", "--set", "grpo.reward_timeout=0"], ["grpo.reward_timeout"])
case("grpo, accuracy reward, rows without an answer", ["grpo", "--model", "tiny", "--data", "no-answer.jsonl", "--output", "r/na"] + G,
     ["row 1", "answer"])
case("sft.max_length=1", ["sft", "--model", "tiny", "--data", "sft.jsonl", "--set", "sft.max_length=1", "--output", "r/ml"], ["max_length"])

# ---- 9-11, 13. Runs: lock, relative paths, exit codes --------------------------------------------
slow = [NUDGE, "sft", "--rows", "2000", "--epochs", "50", "--output", "r/locked"]
holder = subprocess.Popen(slow, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(100):
    if os.path.exists("r/locked/.lock"):
        break
    time.sleep(0.1)
time.sleep(0.5)
case("two runs with the same --output", ["sft", "--rows", "8", "--epochs", "1", "--output", "r/locked"], ["in use by another nudge process"])
holder.send_signal(signal.SIGINT)
try:
    holder_rc = holder.wait(timeout=120)
except subprocess.TimeoutExpired:
    holder.kill()
    holder_rc = None
results.append(("Ctrl-C (SIGINT) during sft: saves, exits 130", holder_rc, f"exit {holder_rc}",
                [] if holder_rc == 130 and os.path.exists("r/locked/checkpoints/latest") else ["expected exit 130 and checkpoints/latest"]))
if not TABLE:
    print(("ok   " if holder_rc == 130 else "FAIL ") + f"Ctrl-C during sft: exit {holder_rc}", flush=True)
# Ctrl-C while the reward command runs: the command's process group is killed, the run saves and exits 130.
reward_run = [NUDGE, "grpo", "--model", "tiny", "--data", "prompts.jsonl", "--output", "r/reward-int"] + G + [
    "--set", "grpo.reward_funcs=[command]", "--set", "grpo.reward_command=sleep 60; cat", "--set", "grpo.reward_timeout=120"]
scorer = subprocess.Popen(reward_run, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
time.sleep(4)
scorer.send_signal(signal.SIGINT)
try:
    scorer_out, _ = scorer.communicate(timeout=60)
except subprocess.TimeoutExpired:
    scorer.kill()
    scorer_out, _ = scorer.communicate()
left = subprocess.run(["pgrep", "-f", "sleep 60; cat"], capture_output=True, text=True).stdout.split()
ok = scorer.returncode == 130 and "Interrupted" in scorer_out and not left and os.path.exists("r/reward-int/checkpoints/latest")
results.append(("Ctrl-C while the reward command runs: group killed, saves, exits 130", scorer.returncode,
                next((l for l in scorer_out.splitlines() if "Interrupted" in l), scorer_out.strip()[-200:]),
                [] if ok else [f"exit {scorer.returncode}, leftover processes {left}"]))
if not TABLE:
    print(("ok   " if ok else "FAIL ") + f"Ctrl-C during the reward command: exit {scorer.returncode}", flush=True)
os.makedirs("elsewhere", exist_ok=True)
assert run(["sft", "--data", "sft.jsonl", "--epochs", "1", "--output", "r/rel"])[0] == 0
case("--resume from another directory (config.toml has absolute paths)", ["sft", "--resume", os.path.join(work, "r/rel"), "--epochs", "2"],
     [], code=0)


def shrink_first_moment(path):
    """Rewrites a safetensors file with its first `.exp_avg` tensor cut to 10 values (stdlib only)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    key = sorted(k for k in header if k.endswith(".exp_avg"))[0]
    out, offset = bytearray(), 0
    for name in sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0]):
        start, end = header[name]["data_offsets"]
        chunk = data[start:end] if name != key else data[start:start + 40]
        if name == key:
            header[name]["shape"] = [10]
        header[name]["data_offsets"] = [offset, offset + len(chunk)]
        out += chunk
        offset += len(chunk)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + bytes(out))
    return key


moment = shrink_first_moment(os.path.join(work, "r/rel/checkpoints/latest/optimizer.safetensors"))
case("--resume with an optimizer file of another shape (a moment cut short)", ["sft", "--resume", os.path.join(work, "r/rel"), "--epochs", "3"],
     [moment, "shape [10]"])

# ---- Unclear messages ----------------------------------------------------------------------------
case("UTF-16 JSONL", ["sft", "--data", "utf16.jsonl", "--output", "r/u16"], ["utf16.jsonl", "UTF-16"])
case("FIFO as data", ["sft", "--data", "fifo.jsonl", "--output", "r/fifo"], ["fifo.jsonl", "not a regular file"])
case("/dev/null as data", ["sft", "--data", "/dev/null", "--output", "r/devnull"], ["null", "not a regular file"])
case("row missing its completion", ["sft", "--data", "missing-completion.jsonl", "--output", "r/mc"], ["missing-completion.jsonl:2"])
jsonl("chat-roles.jsonl", [{"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "user", "content": "yo"}]}])
case("chat completion that starts with a user turn", ["sft", "--model", "tiny", "--data", "chat-roles.jsonl", "--output", "r/roles"],
     ["chat-roles.jsonl:1", "completion[0].role", "assistant"])
case("--state -0.1,0 (a negative value without '=')", ["env", "replay", "--env", "Pendulum-v1", "--state", "-0.1,0", "--actions", "-1", "--json"],
     ['"step":1'], code=0)
case("unwritable --output", ["sft", "--rows", "8", "--epochs", "1", "--output", "/proc/nudge-run"], ["/proc/nudge-run"])

# ---- Chat templates (nudge lm template) ----------------------------------------------------------
os.makedirs("tpl-model", exist_ok=True)
write("tpl-model/tokenizer_config.json", '{"chat_template": "{{ bos_token }}x", "bos_token": ')
write("chat.json", json.dumps([{"role": "user", "content": "hi"}, {"role": "user", "content": "again"}]))
case("lm template: truncated tokenizer_config.json", ["lm", "template", "--model", "tpl-model", "--messages", "chat.json"],
     ["tokenizer_config.json", "invalid JSON"])
write("tpl-model/tokenizer_config.json", '{"eos_token": "</s>"}')
case("lm template: no chat template", ["lm", "template", "--model", "tpl-model", "--messages", "chat.json"], ["tpl-model", "no chat template"])
write("syntax.jinja", "{% for m in messages %}\n  {{ m.content }\n{% endfor %}")
case("lm template: syntax error", ["lm", "template", "--template", "syntax.jinja", "--messages", "chat.json"], ["syntax.jinja:2:"])
write("alternate.jinja", "{% for m in messages %}{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}"
      "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% endfor %}")
case("lm template: raise_exception", ["lm", "template", "--template", "alternate.jinja", "--messages", "chat.json"],
     ["Error: Conversation roles must alternate user/assistant/user/assistant/..."], code=1)
write("recursive.jinja", "{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}")
case("lm template: unbounded recursion", ["lm", "template", "--template", "recursive.jinja", "--messages", "chat.json"],
     ["recursive.jinja:1:", "recursion"], code=1)
write("explode.jinja", "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}")
case("lm template: exponential string growth", ["lm", "template", "--template", "explode.jinja", "--messages", "chat.json"],
     ["explode.jinja:1:", "exceeds"], code=1)
write("not-a-list.json", '{"role": "user"}')
case("lm template: messages not a list", ["lm", "template", "--template", "explode.jinja", "--messages", "not-a-list.json"], ["--messages"])
case("lm template: a file that is neither a directory nor a GGUF as --model", ["lm", "template", "--model", "chat.json", "--messages", "chat.json"], ["--model", "directory", ".gguf"])

# ---- Datasets: Parquet, Hub directories, held-out evaluation (issue 25) -------------------------
parquet = os.path.join(ROOT, "Tests/NudgeAlignTests/Fixtures/parquet")
os.makedirs("gsm8k/data")
# Two train shards (80 rows) and one test shard (40 rows), so a count tells which split was read.
for shard in ["train-00000-of-00002", "train-00001-of-00002"]:
    shutil.copy(os.path.join(parquet, "gsm8k.parquet"), f"gsm8k/data/{shard}.parquet")
shutil.copy(os.path.join(parquet, "gsm8k_gzip_v2.parquet"), "gsm8k/data/test-00000-of-00001.parquet")
M = ["--set", "dataset.columns=question=prompt", "--set", "dataset.answer=gsm8k"]
GS = G[:-2]  # G without eval.rows=0


def eval_json(args, rows, source):
    """A check: `nudge eval ARGS --json` succeeds on `rows` rows and names `source` as its held-out rows."""
    def check():
        rc, out, _ = run(["eval"] + args + ["--json"])
        if rc != 0:
            return f"nudge eval {' '.join(args)}: exit {rc}: {out[-300:]}"
        result = json.loads(out.strip().splitlines()[-1])
        if result.get("rows") != rows or source not in result.get("held_out", ""):
            return f"nudge eval {' '.join(args)}: {result.get('rows')} rows from {result.get('held_out')!r}, expected {rows} from {source!r}"
        return None
    return check


def recorded(run_dir, *texts):
    """A check: the run's config.toml records every one of `texts`."""
    def check():
        config = open(os.path.join(run_dir, "config.toml")).read()
        missing = [t for t in texts if t not in config]
        return f"config.toml lacks {missing}" if missing else None
    return check


def both(*checks):
    """A check: the first problem any of `checks` finds."""
    return lambda: next((p for p in (c() for c in checks) if p), None)


gsm8k_dir = os.path.abspath("gsm8k")
case("grpo on a GSM8K Hub directory, eval.data = its test split (succeeds; nudge eval reuses it)",
     ["grpo", "--model", "tiny", "--data", "gsm8k", "--set", "eval.data=gsm8k", "--set", "eval.rows=4", "--output", "r/gsm8k"] + M + GS,
     ["first 4 verifiable rows of eval.data", "(split test)"], code=0,
     check=both(recorded("r/gsm8k", f'data = "{gsm8k_dir}"', 'split = "test"', 'rows = 4', 'columns = "question=prompt"'),
                eval_json(["r/gsm8k"], 4, "split test"), eval_json(["r/gsm8k", "--rows", "100"], 40, "split test")))
case("grpo, eval.split names a split the directory lacks",
     ["grpo", "--model", "tiny", "--data", "gsm8k", "--set", "eval.data=gsm8k", "--set", "eval.split=validation", "--output", "r/gsm8k-v"] + M + GS,
     ["gsm8k", "data/validation-*.parquet"])
case("grpo, eval.data is the training split itself",
     ["grpo", "--model", "tiny", "--data", "gsm8k", "--set", "eval.data=gsm8k", "--set", "eval.split=train", "--output", "r/gsm8k-t"] + M + GS,
     ["eval.split 'train'", "dataset.split"])
case("grpo, eval.data is the training file itself",
     ["grpo", "--model", "tiny", "--data", "prompts.jsonl", "--set", "eval.data=prompts.jsonl", "--output", "r/same"] + GS,
     ["prompts.jsonl", "training data itself"])
case("grpo with rows held out of --data (succeeds; nudge eval reuses the seeded sample)",
     ["grpo", "--model", "tiny", "--data", "prompts.jsonl", "--set", "eval.rows=5", "--output", "r/sample"] + GS,
     ["Held out 5 of 100 rows"], code=0,
     check=both(eval_json(["r/sample"], 5, "held out from training"), eval_json(["r/sample", "--rows", "3"], 3, "held out from training")))
assert run(["grpo", "--model", "tiny", "--data", "prompts.jsonl", "--output", "r/no-eval"] + G)[0] == 0
case("eval of a run that held no rows out (eval.rows = 0)", ["eval", "r/no-eval"], ["held out no rows", "--data"])
case("eval --answer unknown", ["eval", "tiny", "--data", "gsm8k", "--answer", "bogus"], ["--answer", "bogus"])
case("eval --data DIR without the split", ["eval", "tiny", "--data", "gsm8k", "--split", "dev"], ["data/dev-*.parquet"])
with open(os.path.join(parquet, "gsm8k.parquet"), "rb") as f:
    gsm8k_bytes = f.read()
with open("truncated.parquet", "wb") as f:
    f.write(gsm8k_bytes[: len(gsm8k_bytes) // 2])
case("data show, truncated Parquet", ["data", "show", "truncated.parquet"], ["truncated.parquet", "cannot read the file"])
with open("corrupt-page.parquet", "wb") as f:
    f.write(gsm8k_bytes[:4] + b"\xff" * 60 + gsm8k_bytes[64:])
case("data show, corrupt Parquet page", ["data", "show", "corrupt-page.parquet"] + ["--columns", "question=prompt"],
     ["corrupt-page.parquet", "row group 0, column"])
case("data show, Hub directory without the split", ["data", "show", "gsm8k", "--split", "validation"], ["data/validation-*.parquet"])
case("data show, unmapped GSM8K", ["data", "show", "gsm8k"], ["row 1", "prompt", "missing"])
case("data show, GSM8K mapped (succeeds, with the summary)",
     ["data", "show", "gsm8k", "--columns", "question=prompt", "--answer", "gsm8k", "--rows", "1"],
     ["80 rows; shape prompt/answer (80)", "columns: answer (0 null), question (0 null)"], code=0)

# ---- Summary -------------------------------------------------------------------------------------
failed = [r for r in results if r[3]]
if TABLE:
    print("| case | exit | message |\n|---|---|---|")
    for name, rc, message, problems in results:
        cell = message.replace("|", "\\|")[:220]
        print(f"| {name} | {rc} | {cell}{' **FAILED: ' + '; '.join(problems) + '**' if problems else ''} |")
print(f"\n{len(results) - len(failed)} of {len(results)} fault cases passed" + (f"; FAILED: {', '.join(r[0] for r in failed)}" if failed else ""))
shutil.rmtree(work, ignore_errors=True)
sys.exit(1 if failed else 0)
