#!/usr/bin/env python3
"""The real-model benchmark, Nudge and its Python peers side by side in one sitting (issue 21).
Each run is its own process under /usr/bin/time -v (peak RSS); Nudge's step times come from the
run's metrics.jsonl wall_time column (median step after the first), the peers' from a Trainer
callback (Benchmarks/peers/real/bench_trl_real.py). Pairs run interleaved, peer first.
Usage: scripts/bench_real.py NUDGE_BIN NUDGEBENCH_BIN HF_DIR DATA_DIR PYTHON [--rounds 1] [--only grpo,sft,...] [--lora-base q8_0] [--steps 6]
  [--rollout-bf16]  (generate and GRPO modes: Nudge also runs with bf16 rollout weights, reported as nudge_bf16_* and ratio_bf16)
  [--mixed]  (training modes: both sides also run in mixed precision: the peer with bf16=True / torch.autocast (peer_mixed_*),
              Nudge with <trainer>.bf16=true, GRPO with rollout_dtype=bf16 too (nudge_mixed_*); ratio_mixed compares the two;
              generate: transformers with the model in bf16 too (peer_bf16_*), against Nudge's bf16 weights)
Modes: generate, sft, torch_sft, dpo, grpo, grpo_beta, grpo_lora (Nudge: QLoRA over a lora.base base; TRL: PEFT LoRA, Float32 base).
DATA_DIR comes from Benchmarks/peers/real/make_data.py; HF_DIR from ../shared/peers/real/convert_gguf.py."""
import json, os, re, shutil, statistics, subprocess, sys, tempfile, time

nudge, bench, hf, data, python = sys.argv[1:6]
lora_base = sys.argv[sys.argv.index("--lora-base") + 1] if "--lora-base" in sys.argv else "q8_0"
rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 1
only = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else ["generate", "sft", "torch_sft", "dpo", "grpo", "grpo_beta"]
peer = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Benchmarks", "peers", "real", "bench_trl_real.py")
steps = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 6
rollout_bf16 = "--rollout-bf16" in sys.argv
mixed = "--mixed" in sys.argv
work = tempfile.mkdtemp(prefix="bench-real-")
for name, n in (("sft.jsonl", 8 * steps), ("dpo.jsonl", 8 * steps)):   # one epoch = `steps` steps of 8 rows
    with open(os.path.join(data, name)) as f, open(os.path.join(work, name), "w") as g:
        g.writelines(f.readlines()[:n])

def timed(cmd, env=None):
    out = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1)) / 1024 ** 2
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", out.stderr).group(1)
    return out.stdout, rss, wall

def nudge_steps(run):
    times = [json.loads(l)["wall_time"] for l in open(os.path.join(run, "metrics.jsonl")) if '"loss"' in l or '"reward"' in l]
    d = [b - a for a, b in zip(times, times[1:])]
    return statistics.median(d) if d else None, [round(x, 3) for x in d]

def nudge_cmd(mode, run):
    common = ["--model", hf, "--output", run, "--set", "checkpoint.every=1000"]
    if mode == "sft":
        return [nudge, "sft", "--data", os.path.join(work, "sft.jsonl"), "--set", "sft.batch_size=8", "--set", "sft.max_length=256",
                "--set", "sft.learning_rate=2e-5"] + common
    if mode == "dpo":
        return [nudge, "dpo", "--data", os.path.join(work, "dpo.jsonl"), "--set", "dpo.batch_size=8", "--set", "dpo.max_length=256",
                "--set", "dpo.learning_rate=1e-6", "--set", "dpo.beta=0.1"] + common
    beta = "0" if mode == "grpo" else "0.04"
    lora = []
    if mode == "grpo_lora":
        lora = ["--set", "lora.r=16", "--set", "lora.alpha=32", "--set", "lora.target_modules=all-linear", "--set", f"lora.base={lora_base}",
                "--set", "grpo.learning_rate=1e-5"]
    return [nudge, "grpo", "--data", os.path.join(data, "grpo_prompts.jsonl"), "--set", f"grpo.steps={steps}", "--set", "grpo.prompts_per_step=2",
            "--set", "grpo.num_generations=8", "--set", "grpo.max_completion_length=32", "--set", "grpo.learning_rate=1e-6",
            "--set", f"grpo.beta={beta}", "--set", "eval.rows=0", "--set", "log.samples_every=1000"] + common + lora

results = []
for r in range(rounds):
    for mode in only:
        out, rss, wall = timed([python, peer, hf, data, mode, str(steps)])
        p = json.loads(out.strip().splitlines()[-1])
        row = {"round": r, "mode": mode, "peer_rss_gb": round(rss, 2), "peer_wall": wall}
        if mode == "generate":
            row["peer_tokens_per_s"] = round(p["tokens_per_s"], 1)
            gen = [bench, "--only", "realgen", "--model", hf, "--prompts", os.path.join(data, "generate.txt"), "--rounds", str(steps)]
            out, rss, wall = timed(gen)
            n = json.loads(out.strip().splitlines()[-1])
            row.update(nudge_tokens_per_s=round(n["tokens_per_s"], 1), nudge_rss_gb=round(rss, 2), ratio=round(n["tokens_per_s"] / p["tokens_per_s"], 2))
            if rollout_bf16:
                out, rss, wall = timed(gen + ["--weights", "bf16"])
                n = json.loads(out.strip().splitlines()[-1])
                row.update(nudge_bf16_tokens_per_s=round(n["tokens_per_s"], 1), nudge_bf16_rss_gb=round(rss, 2),
                           ratio_bf16=round(n["tokens_per_s"] / p["tokens_per_s"], 2),
                           bf16_fidelity={k: n[k] for k in ("mean_abs_logprob_diff", "max_abs_logprob_diff", "greedy_tokens_agreeing", "greedy_tokens")})
            if mixed:
                out, rss, wall = timed([python, peer, hf, data, mode, str(steps)], env={"PEERS_BF16": "1"})
                pb = json.loads(out.strip().splitlines()[-1])["tokens_per_s"]
                row.update(peer_bf16_tokens_per_s=round(pb, 1), peer_bf16_rss_gb=round(rss, 2))
                if "nudge_bf16_tokens_per_s" in row: row["ratio_bf16_to_peer_bf16"] = round(row["nudge_bf16_tokens_per_s"] / pb, 2)
        elif mode == "torch_sft":
            row["peer_s_per_step"] = round(p["s_per_step_median_excl_first"], 3)
            if mixed:
                out, rss, wall = timed([python, peer, hf, data, mode, str(steps)], env={"PEERS_BF16": "1"})
                row["peer_mixed_s_per_step"] = round(json.loads(out.strip().splitlines()[-1])["s_per_step_median_excl_first"], 3)
        else:
            peer_s = p["s_per_step_median_excl_first"]
            row["peer_s_per_step"] = round(peer_s, 3)

            def nudge_run(tag, extra=()):
                """Runs Nudge's `mode` with `extra` settings; records nudge{tag}_* in the row; returns the median step."""
                run = os.path.join(work, f"{mode}{tag.replace('_', '-')}-{r}")
                _, rss, wall = timed(nudge_cmd(mode, run) + list(extra))
                median, each = nudge_steps(run)
                row.update({f"nudge{tag}_s_per_step": round(median, 3), f"nudge{tag}_steps": each, f"nudge{tag}_rss_gb": round(rss, 2),
                            f"nudge{tag}_wall": wall})
                return median

            row["ratio"] = round(peer_s / nudge_run(""), 2)
            if rollout_bf16 and mode.startswith("grpo"):
                row["ratio_bf16"] = round(peer_s / nudge_run("_bf16", ["--set", "grpo.rollout_dtype=bf16"]), 2)
            if mixed:
                out, rss, wall = timed([python, peer, hf, data, mode, str(steps)], env={"PEERS_BF16": "1"})
                pm = json.loads(out.strip().splitlines()[-1])["s_per_step_median_excl_first"]
                row.update(peer_mixed_s_per_step=round(pm, 3), peer_mixed_rss_gb=round(rss, 2))
                section = "grpo" if mode.startswith("grpo") else mode
                median = nudge_run("_mixed", ["--set", f"{section}.bf16=true"] + (["--set", "grpo.rollout_dtype=bf16"] if section == "grpo" else []))
                row.update(ratio_mixed=round(pm / median, 2), ratio_mixed_to_peer_float32=round(peer_s / median, 2))
        row["load"] = os.getloadavg()[0]
        results.append(row)
        print(json.dumps(row), flush=True)
shutil.rmtree(work, ignore_errors=True)  # each run saved a model: gigabytes
