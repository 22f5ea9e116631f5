#!/usr/bin/env bash
# Fuzzes every parser a user feeds (Fuzz/: JSONL and Parquet datasets, config.json, tokenizer.json and
# tokenizer_config.json, TOML and YAML configs, safetensors files and indexes, metrics.jsonl,
# chat templates) for a bounded time, and fails when one crashes.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default: 60 seconds, every target)
#
# Builds the Fuzz package with libFuzzer and AddressSanitizer into .build-fuzz (never the main
# .build), then runs each target for the given seconds on a copy of its seed corpus
# (Fuzz/corpus/<target>) plus the inputs that once crashed it (Fuzz/crashes/<target>), with
# the dictionary Fuzz/dicts/<target>.dict; what the fuzzer adds stays in the copy. Prints per
# target the inputs executed and the seconds taken. Any input that crashes, times out (-timeout=10 s per input) or
# runs out of memory (-rss_limit_mb=2048) is kept under $FUZZ_ARTIFACTS (default
# .build-fuzz/artifacts/<target>/) with the fuzzer's log, and the script exits 1.
#
# Reproduce a finding:  SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 \
#                       .build-fuzz/debug/<target> <input file>
# Leaks are not checked (Foundation's Data(contentsOf:) leaks a buffer on empty files), and Swift's
# own backtracer is off: it hangs under AddressSanitizer, whose report names file and line.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || { echo "usage: $0 [seconds-per-target] [target...]" >&2; exit 2; }
shift $(( $# > 0 ? 1 : 0 ))
if (( $# > 0 )); then
    targets=("$@")
else
    targets=()
    for dir in Fuzz/Sources/Fuzz*/; do
        name="$(basename "$dir")"
        [[ "$name" == FuzzSupport ]] || targets+=("$name")
    done
fi

scratch=.build-fuzz
artifacts="${FUZZ_ARTIFACTS:-$scratch/artifacts}"
mkdir -p "$scratch" "$artifacts"
start=$SECONDS

# The ld.gold warnings about AddressSanitizer's local symbols are noise; the log keeps them.
echo "fuzz: building Fuzz/ (libFuzzer + AddressSanitizer, debug) into $scratch"
build_log="$scratch/build.log"
build=(swift build -c debug --package-path Fuzz --scratch-path "$scratch" -Xswiftc -sanitize=fuzzer,address)
: >"$build_log"
# Every product, or only the targets named on the command line.
products=("")
(( $# > 0 )) && products=("${targets[@]}")
for product in "${products[@]}"; do
    if ! "${build[@]}" ${product:+--product "$product"} >>"$build_log" 2>&1; then
        grep -v "warning: Cannot export local symbol" "$build_log" | tail -60
        echo "fuzz: build failed (full log: $build_log)" >&2
        exit 1
    fi
done
bin="$(swift build -c debug --package-path Fuzz --scratch-path "$scratch" --show-bin-path)"
echo "fuzz: built in $((SECONDS - start)) s; $seconds s per target"

export ASAN_OPTIONS="detect_leaks=0:handle_abort=1:symbolize=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export SWIFT_BACKTRACE=enable=no
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

failed=()
summary=()
for target in "${targets[@]}"; do
    [[ -x "$bin/$target" ]] || { echo "fuzz: no such target: $target" >&2; exit 2; }
    corpus="$work/$target"
    mkdir -p "$corpus"
    # The seeds, and every input that once crashed this target (regressions once fixed).
    for seeds in "Fuzz/corpus/$target" "Fuzz/crashes/$target"; do
        if [[ -d "$seeds" ]]; then cp -R "$seeds/." "$corpus/"; fi
    done
    dict=()
    if [[ -f "Fuzz/dicts/$target.dict" ]]; then dict=(-dict="Fuzz/dicts/$target.dict"); fi
    out="$artifacts/$target"
    rm -rf "$out"
    mkdir -p "$out"
    log="$work/$target.log"
    t0=$(date +%s.%N)
    rc=0
    # The outer timeout only guards against a fuzzer that ignores -max_total_time.
    timeout --signal=KILL $((seconds * 2 + 120)) "$bin/$target" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$out/" ${dict[@]+"${dict[@]}"} "$corpus" >"$log" 2>&1 || rc=$?
    elapsed=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    executed=$(awk '/^stat::number_of_executed_units:/ { n = $NF } END { print n + 0 }' "$log")
    findings=$(find "$out" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
    if [[ $rc -ne 0 || -n "$findings" ]]; then
        result="FAILED"
        failed+=("$target")
        cp "$log" "$out/fuzzer.log"
        echo "---- $target: exit $rc; inputs kept in $out/"
        # The sanitizer's report: what trapped and where.
        grep -v "warning: Cannot export local symbol" "$log" \
            | awk '/==[0-9]+==|Fatal error|ERROR: libFuzzer|SUMMARY|^ *#[0-9]+ /' | head -60
        for f in $findings; do echo "  $(basename "$f") ($(wc -c <"$f") bytes)"; done
        echo "----"
    else
        result="ok"
        rmdir "$out" 2>/dev/null || true
    fi
    line=$(printf '%-22s %-7s %12s executions %7s s' "$target" "$result" "$executed" "$elapsed")
    summary+=("$line")
    echo "fuzz: $line"
done

echo
echo "fuzz: summary ($seconds s per target, $((SECONDS - start)) s in all, build included)"
printf '  %s\n' "${summary[@]}"
if (( ${#failed[@]} > 0 )); then
    echo "fuzz: FAILED: ${failed[*]} (inputs and logs under $artifacts/)" >&2
    exit 1
fi
echo "fuzz: no crashes"
