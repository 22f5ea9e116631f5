#!/usr/bin/env python3
"""Kill -9 at random moments, resume, and compare with an uninterrupted run.

    scripts/kill_resume.py [path/to/nudge] [--kills 20] [--only sft|grpo|ppo] [--optim adamw_8bit] [--bf16]

For each of `nudge sft`, `nudge grpo` and `nudge rl train ppo` (small settings, checkpoints every
few steps), runs once uninterrupted, then again with SIGKILL sent at seeded random moments
`--kills` times: after each kill the run is resumed with `--resume` (or started again when the
kill came before its first checkpoint). The finished run's metrics (timings aside), samples and
final weights must equal the uninterrupted run's byte for byte. Exits 1 on any difference.
`--optim NAME` runs sft and grpo with that optimizer (`sft.optim`, `grpo.optim`), e.g. the 8-bit
AdamW, whose quantized state must resume as exactly. `--bf16` runs them with mixed-precision
products (`sft.bf16`, `grpo.bf16`), which must be as deterministic.
"""

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
args = sys.argv[1:]
OPTIM = args[args.index("--optim") + 1] if "--optim" in args else None
BF16 = "--bf16" in args
NUDGE = os.path.abspath(next((a for a in args if not a.startswith("--") and not a.isdigit() and a not in ("sft", "grpo", "ppo", OPTIM)),
                             os.path.join(ROOT, ".build/debug/nudge")))
KILLS = int(args[args.index("--kills") + 1]) if "--kills" in args else 20
ONLY = args[args.index("--only") + 1] if "--only" in args else None

CASES = {
    "sft": (["sft", "--rows", "256", "--epochs", "4", "--batch-size", "16", "--set", "checkpoint.every=4"],
            ["sft", "--resume"], "checkpoints/model/model.safetensors"),
    "grpo": (["grpo", "--steps", "24", "--set", "warmup.sft_epochs=1", "--set", "warmup.sft_rows=256", "--set", "grpo.prompts_per_step=4",
              "--set", "grpo.num_generations=4", "--set", "eval.rows=16", "--set", "eval.every=8", "--set", "checkpoint.every=3",
              "--set", "log.samples_every=1"],
             ["grpo", "--resume"], "checkpoints/model/model.safetensors"),
    "ppo": (["rl", "train", "ppo", "--env", "CartPole-v1", "--total-timesteps", "8192", "--set", "checkpoint_every=1024",
             "--set", "eval_every=4096", "--set", "eval_episodes=2"],
            ["rl", "train", "ppo", "--resume"], "checkpoints/latest/model.safetensors"),
}

if OPTIM:
    for name in ("sft", "grpo"):
        CASES[name][0].extend(["--set", f"{name}.optim={OPTIM}"])  # a resume reads it from the run's config.toml
if BF16:
    for name in ("sft", "grpo"):
        CASES[name][0].extend(["--set", f"{name}.bf16=true"])


def digest(run_dir, weights):
    """The run's metrics without wall times, its samples and its final weights, as hashes."""
    out = {}
    rows = []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                for clock in ("wall_time", "step_time", "charts/SPS"):  # timings differ run to run
                    row.pop(clock, None)
                rows.append(json.dumps(row, sort_keys=True))
    out["metrics"] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16])
    samples = os.path.join(run_dir, "samples.jsonl")
    if os.path.exists(samples):
        out["samples"] = hashlib.sha256(open(samples, "rb").read()).hexdigest()[:16]
    out["weights"] = hashlib.sha256(open(os.path.join(run_dir, weights), "rb").read()).hexdigest()[:16]
    return out


def run_to_end(argv):
    p = subprocess.run([NUDGE] + argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {p.returncode}:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return p


failed = False
work = tempfile.mkdtemp(prefix="nudge-kill-")
for name, (fresh, resume, weights) in CASES.items():
    if ONLY and name != ONLY:
        continue
    straight = os.path.join(work, f"{name}-straight")
    started = time.time()
    run_to_end(fresh + ["--output", straight])
    duration = time.time() - started
    expected = digest(straight, weights)

    killed = os.path.join(work, f"{name}-killed")
    rng = random.Random(f"{name}-kills")
    kills = restarts = resumes = mid_save = 0
    finished = False
    while not finished:
        # A checkpoint to continue from: latest, or the previous one a killed swap left aside.
        checkpoints = os.path.join(killed, "checkpoints")
        resumable = os.path.exists(os.path.join(killed, "config.toml")) and os.path.isdir(checkpoints) and \
            any(e == "latest" or e == ".latest.old" for e in os.listdir(checkpoints))
        argv = resume + [killed] if resumable else fresh + ["--output", killed]
        if resumable:
            resumes += 1
        else:
            # Killed before its first checkpoint: start over, as a user would.
            shutil.rmtree(killed, ignore_errors=True)
            restarts += 1
        log = tempfile.TemporaryFile(mode="w+")
        process = subprocess.Popen([NUDGE] + argv, stdout=log, stderr=subprocess.STDOUT, text=True)

        def output():
            log.seek(0)
            return log.read()[-3000:]

        if kills < KILLS:
            # Spread over the whole run (mean gap: its duration / kills), so kills land everywhere
            # from loading and the warm start to checkpoint swaps and the report. Half the fresh starts
            # are killed early (loading, warm start: the run restarts); the other half soon after their
            # first checkpoint, so one long fresh start never leaves too little run to kill 20 times.
            window = max(0.5, 2 * duration / KILLS)
            if not resumable and rng.random() < 0.5:
                first = os.path.join(checkpoints, "latest")
                deadline = time.time() + 4 * duration
                while process.poll() is None and not os.path.exists(first) and time.time() < deadline:
                    time.sleep(0.02)
            delay = rng.uniform(0.05, window)
            try:
                process.wait(timeout=delay)
                finished = process.returncode == 0
                if process.returncode != 0:
                    raise SystemExit(f"{name}: {' '.join(argv)} exited {process.returncode} without a kill:\n{output()}")
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills += 1
                # Left mid-save: a temporary checkpoint or the previous one moved aside.
                if os.path.isdir(checkpoints) and any(e.startswith(".") for e in os.listdir(checkpoints)):
                    mid_save += 1
        else:
            process.wait()
            if process.returncode != 0:
                raise SystemExit(f"{name}: {' '.join(argv)} exited {process.returncode}:\n{output()}")
            finished = True
    got = digest(killed, weights)
    same = got == expected
    failed |= not same
    print(f"{'ok  ' if same else 'FAIL'} {name}: {kills} kills ({mid_save} mid-save), {resumes} resumes, {restarts} fresh starts; "
          f"uninterrupted {duration:.1f} s; metrics rows {expected['metrics'][0]}; "
          f"{'metrics, samples and weights identical' if same else f'expected {expected}, got {got}'}", flush=True)
shutil.rmtree(work, ignore_errors=True)
sys.exit(1 if failed else 0)
