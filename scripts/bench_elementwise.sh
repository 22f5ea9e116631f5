#!/usr/bin/env bash
# Bulk elementwise throughput on (1024, 2048), Nudge beside PyTorch, interleaved ROUNDS times:
# NudgeBench with the portable Swift path (NUDGE_ELEMENTWISE_KERNEL=portable, the code before the C
# kernels), NudgeBench with the C kernel this CPU runs, then PyTorch's bench_elementwise() from
# Benchmarks/peers/bench_engine_torch.py (2 threads, no contention retries). Ends with the per-op
# floor (100 taped ops on 64 floats) on both Nudge paths.
# Usage: scripts/bench_elementwise.sh [PYTHON] [ROUNDS]   (build first: swift build -c release --product NudgeBench)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-/work/venv-gguf/bin/python}
ROUNDS=${2:-2}
BENCH=.build/release/NudgeBench
grep -o -w -m1 'avx512f' /proc/cpuinfo >/dev/null && echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) (AVX-512F)"
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round $(date -u +%H:%M:%S) Nudge portable Swift: (name, ms median, ms best, GB/s best)"
    NUDGE_ELEMENTWISE_KERNEL=portable "$BENCH" --only throughput
    echo "== round $round $(date -u +%H:%M:%S) Nudge C kernel (default)"
    "$BENCH" --only throughput
    echo "== round $round $(date -u +%H:%M:%S) PyTorch: name ms-median ms-best foreign_cpu_frac"
    PEERS_RETRIES=0 "$PY" - <<'PYEOF'
import sys; sys.path.insert(0, "Benchmarks/peers")
import torch, bench_engine_torch as b
r = b.bench_elementwise()
print("torch", torch.__version__, "threads", torch.get_num_threads())
for k in ("add", "mul", "exp", "softmax", "rmsnorm_F", "silu", "log_softmax"):
    v = r[k]
    print(f"{k:12s} {v['ms']['median']:7.3f} {v['ms']['best']:7.3f}  {v['foreign_cpu_frac']}")
PYEOF
done
echo "== per-op floor, µs/op ((forward median, best), (forward+backward median, best))"
echo -n "portable: "; NUDGE_ELEMENTWISE_KERNEL=portable "$BENCH" --only floor
echo -n "default:  "; "$BENCH" --only floor
