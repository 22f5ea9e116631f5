#!/usr/bin/env python3
"""Check that a run directory's TensorBoard events match its metrics.jsonl.

Usage: check_tensorboard.py RUN_DIR [RUN_DIR ...]

Loads each run directory with TensorBoard's own reader (EventAccumulator, which
also applies its purge rules, e.g. SessionLog START after a rollback) and
compares every scalar tag, step and value with metrics.jsonl, the run's source
of truth. Values are compared after rounding to float32, the precision of
TensorBoard's simple_value; null in the JSONL (a non-finite value) must be NaN
or infinite in TensorBoard. Exits 0 when everything matches, 1 on a mismatch,
2 when a run directory cannot be read.
"""

import json
import math
import os
import struct
import sys

RESERVED = {"step", "wall_time"}
MAX_REPORTED = 10


class Unreadable(Exception):
    """A run directory or file that cannot be checked."""


def float32(value):
    """value rounded to float32 (what the writer stores), overflowing to +-inf."""
    try:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def read_jsonl(path):
    """{tag: [(step, value), ...]} from metrics.jsonl, in file order.

    Like the Swift reader, blank lines are ignored and an unterminated last line
    that does not parse (a crash mid-write) is skipped.
    """
    if not os.path.isfile(path):
        raise Unreadable(f"{path}: no such file (not a run directory?)")
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    expected = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                raise ValueError('expected a JSON object with an integer "step"')
        except ValueError as error:
            if number == len(lines):  # truncated final line
                break
            raise Unreadable(f"{path}:{number}: {error}")
        for tag, value in row.items():
            if tag in RESERVED:
                continue
            if value is not None and not isinstance(value, (int, float)):
                raise Unreadable(f"{path}:{number}: metric {tag!r} is not a number")
            expected.setdefault(tag, []).append((row["step"], math.nan if value is None else float(value)))
    return expected


def read_tensorboard(run_dir):
    """{tag: [(step, value), ...]} as TensorBoard's EventAccumulator sees the directory."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError as error:
        raise Unreadable(f"cannot import TensorBoard ({error}); install it with `pip install tensorboard`")
    if not any("tfevents" in name for name in os.listdir(run_dir)):
        raise Unreadable(f"{run_dir}: no events.out.tfevents.* file")
    # size_guidance 0 keeps every scalar; the default samples 10,000 per tag.
    accumulator = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def same_value(logged, stored):
    if math.isnan(logged) or math.isinf(logged):
        # JSONL writes every non-finite value as null, read back as NaN.
        return not math.isfinite(stored)
    return float32(logged) == stored


def compare(expected, actual):
    """A list of human-readable mismatches (empty when the two agree)."""
    problems = []
    for tag in sorted(set(expected) - set(actual)):
        problems.append(f"tag {tag!r}: in metrics.jsonl ({len(expected[tag])} points) but not in TensorBoard")
    for tag in sorted(set(actual) - set(expected)):
        problems.append(f"tag {tag!r}: in TensorBoard ({len(actual[tag])} points) but not in metrics.jsonl")
    for tag in sorted(set(expected) & set(actual)):
        want, got = expected[tag], actual[tag]
        if len(want) != len(got):
            problems.append(f"tag {tag!r}: {len(want)} points in metrics.jsonl, {len(got)} in TensorBoard")
        for i, ((step, value), (tb_step, tb_value)) in enumerate(zip(want, got)):
            if step != tb_step:
                problems.append(f"tag {tag!r}, point {i}: step {step} in metrics.jsonl, {tb_step} in TensorBoard")
                break
            if not same_value(value, tb_value):
                problems.append(
                    f"tag {tag!r}, step {step}: value {value!r} in metrics.jsonl "
                    f"(float32 {float32(value)!r}), {tb_value!r} in TensorBoard")
    return problems


def check(run_dir):
    if not os.path.isdir(run_dir):
        raise Unreadable(f"{run_dir}: not a directory")
    expected = read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
    actual = read_tensorboard(run_dir)
    problems = compare(expected, actual)
    points = sum(len(v) for v in expected.values())
    if problems:
        print(f"FAIL {run_dir}: TensorBoard events do not match metrics.jsonl", file=sys.stderr)
        for problem in problems[:MAX_REPORTED]:
            print(f"  {problem}", file=sys.stderr)
        if len(problems) > MAX_REPORTED:
            print(f"  ... and {len(problems) - MAX_REPORTED} more", file=sys.stderr)
        return False
    print(f"OK {run_dir}: {len(expected)} tags, {points} scalars match metrics.jsonl")
    return True


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    ok = True
    for run_dir in argv[1:]:
        try:
            ok = check(run_dir) and ok
        except Unreadable as error:
            print(f"ERROR {error}", file=sys.stderr)
            return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
