#!/usr/bin/env bash
# Step times of SmolLM2-135M GRPO and SFT at 1 rank × 1 thread, 1 rank × 2 threads and 2 ranks ×
# 1 thread (README "Scaling"). Needs a release build (swift build -c release --product nudge),
# Open MPI, and the GGUF file:
#   [TRAINERS="grpo sft"] scripts/mpi_scaling.sh /path/SmolLM2-135M-Instruct.Q4_1.gguf [repeats]
set -euo pipefail
cd "$(dirname "$0")/.."
model="$1"; repeats="${2:-1}"
bin="$PWD/.build/release/nudge"
out="$(mktemp -d)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
grpo=(grpo --model "$model" --steps 4 --set grpo.prompts_per_step=2 --set grpo.num_generations=4
      --set grpo.max_completion_length=16 --set grpo.learning_rate=1e-5 --set eval.rows=1 --set eval.every=100)
sft=(sft --model "$model" --rows 32 --epochs 1 --set sft.batch_size=8 --set sft.learning_rate=1e-5)
summary() {  # median step time after the first step, from metrics.jsonl's wall_time
    python3 - "$1" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if '"loss"' in l]
t = [b["wall_time"] - a["wall_time"] for a, b in zip(rows, rows[1:])]
print("steps %d, median step after the first %.2f s (all: %s)" % (len(rows), statistics.median(t), " ".join("%.2f" % x for x in t)))
PY
}
for r in $(seq 1 "$repeats"); do
    for name in ${TRAINERS:-grpo sft}; do
        declare -n args="$name"
        NUDGE_THREADS=1 "$bin" "${args[@]}" --output "$out/$name-1x1" > "$out/$name-1x1.log" 2>&1
        echo "$name 1 rank x 1 thread: $(summary "$out/$name-1x1")"
        NUDGE_THREADS=2 "$bin" "${args[@]}" --output "$out/$name-1x2" > "$out/$name-1x2.log" 2>&1
        echo "$name 1 rank x 2 threads: $(summary "$out/$name-1x2")"
        NUDGE_THREADS=1 mpirun -np 2 --oversubscribe -x NUDGE_THREADS "$bin" "${args[@]}" --output "$out/$name-2x1" > "$out/$name-2x1.log" 2>&1
        echo "$name 2 ranks x 1 thread: $(summary "$out/$name-2x1"); $(grep -o 'rank 0 spent.*' "$out/$name-2x1.log")"
    done
done
rm -rf "$out"
