#!/usr/bin/env python3
"""Writes the Parquet fixtures of Tests/NudgeAlignTests/Fixtures/parquet with pyarrow, and
expected.json: each file's rows as pyarrow's to_pylist() gives them (the truth our reader must
match). Run with a Python that has pyarrow:  python scripts/make_parquet_fixtures.py
"""
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "NudgeAlignTests", "Fixtures", "parquet")
os.makedirs(out, exist_ok=True)

message = pa.struct([("role", pa.string()), ("content", pa.string())])

scalars = pa.table({
    "s": pa.array(["alpha", None, "", "héllo wörld ✓", "alpha", "beta", None, "alpha"] * 3, pa.string()),
    "i32": pa.array([1, -2, None, 2147483647, -2147483648, 0, 7, 7] * 3, pa.int32()),
    "i64": pa.array([10**12, None, -5, 0, 9223372036854775807, -9223372036854775808, 3, 3] * 3, pa.int64()),
    "f32": pa.array([0.5, 1.25, None, -3.75, 0.1, 2.5, 1e-3, 7.125] * 3, pa.float32()),
    "f64": pa.array([0.1, None, -2.5, 1e300, 3.141592653589793, 6.5, -0.25, 1.5] * 3, pa.float64()),
    "b": pa.array([True, False, None, True, True, False, False, True] * 3, pa.bool_()),
    "req": pa.array(list(range(24)), pa.int32()),
})
scalars = scalars.cast(scalars.schema.set(scalars.schema.get_field_index("req"), pa.field("req", pa.int32(), nullable=False)))

conversations = pa.table({
    "messages": pa.array([
        [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
        [],
        None,
        [{"role": "user", "content": None}, None, {"role": "assistant", "content": "ok"}],
    ], pa.list_(message)),
    "tags": pa.array([["a", "b"], [], None, ["c", None], ["d"]], pa.list_(pa.string())),
    "nested": pa.array([[[1, 2], [3]], [[]], None, [None, [4]], [[5, 6, 7]]], pa.list_(pa.list_(pa.int64()))),
    "meta": pa.array([{"id": 1, "src": "x"}, None, {"id": None, "src": "y"}, {"id": 4, "src": None}, {"id": 5, "src": "z"}],
                     pa.struct([("id", pa.int64()), ("src", pa.string())])),
})

questions = [f"Natalia sold clips to {n} of her friends. How many clips did she sell?" for n in range(40)]
gsm8k = pa.table({
    "question": questions,
    "answer": [f"She sold {n} + {n} = {2 * n} clips.\n#### {2 * n}" for n in range(40)],
})

def conv(user, answer):
    return [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]

preference = pa.table({
    "chosen": pa.array([conv(f"Question {i}?", f"Good answer {i}.") for i in range(12)], pa.list_(message)),
    "rejected": pa.array([conv(f"Question {i}?", f"Bad answer {i}.") for i in range(12)], pa.list_(message)),
    "score_chosen": pa.array([float(i) + 0.5 for i in range(12)], pa.float64()),
})

prompts = pa.table({"prompt": [f"Write a haiku about {t}." for t in ["rain", "snow", "wind", "sun"]]})

delta = pa.table({
    "i32": pa.array([5, 3, 3, 100, -7, None, 42, 8] * 20, pa.int32()),
    "i64": pa.array([1, 1000, 10**15, -3, 77, 2, None, 9] * 20, pa.int64()),
    "s": pa.array(["prefix_one", "prefix_two", "prefix_three", "other", None, "", "prefix_two", "z"] * 20, pa.string()),
    "s2": pa.array(["apple", "applesauce", "apply", "banana", "band", None, "bandana", "x"] * 20, pa.string()),
})

cases = []  # (file name, table, write options)
for codec in ["none", "snappy", "gzip", "zstd"]:
    for dictionary in [True, False]:
        for page in ["1.0", "2.0"]:
            name = f"scalars_{codec}_{'dict' if dictionary else 'plain'}_v{page[0]}.parquet"
            cases.append((name, scalars, dict(compression=codec, use_dictionary=dictionary, data_page_version=page)))
for codec in ["none", "snappy", "gzip"]:
    for page in ["1.0", "2.0"]:
        cases.append((f"messages_{codec}_v{page[0]}.parquet", conversations, dict(compression=codec, data_page_version=page)))
cases.append(("messages_plain_rowgroups.parquet", conversations, dict(compression="snappy", use_dictionary=False, row_group_size=2)))
cases.append(("gsm8k.parquet", gsm8k, dict(compression="snappy", row_group_size=16, data_page_size=512)))
cases.append(("gsm8k_gzip_v2.parquet", gsm8k, dict(compression="gzip", data_page_version="2.0", use_dictionary=False, data_page_size=300)))
cases.append(("preference.parquet", preference, dict(compression="snappy")))
cases.append(("prompts.parquet", prompts, dict(compression="none")))
cases.append(("delta.parquet", delta, dict(compression="snappy", use_dictionary=False, data_page_version="2.0",
                                           column_encoding={"i32": "DELTA_BINARY_PACKED", "i64": "DELTA_BINARY_PACKED",
                                                            "s": "DELTA_LENGTH_BYTE_ARRAY", "s2": "DELTA_BYTE_ARRAY"})))
cases.append(("delta_v1.parquet", delta, dict(compression="none", use_dictionary=False,
                                              column_encoding={"i32": "DELTA_BINARY_PACKED", "i64": "DELTA_BINARY_PACKED",
                                                               "s": "DELTA_BYTE_ARRAY", "s2": "DELTA_LENGTH_BYTE_ARRAY"})))

split = pa.table({
    "f32": pa.array([0.5, -1.25, None, 3.0e-5, 8.5] * 6, pa.float32()),
    "f64": pa.array([1.5, None, -2.25, 1e-300, 7.75] * 6, pa.float64()),
    "i32": pa.array([1, -1, 65536, None, 7] * 6, pa.int32()),
    "i64": pa.array([2**40, -3, None, 5, 6] * 6, pa.int64()),
})
cases.append(("byte_stream_split.parquet", split, dict(compression="none", use_dictionary=False,
                                                       column_encoding={c: "BYTE_STREAM_SPLIT" for c in split.column_names})))

# Columns without a JSON form: binary that is not UTF-8, fixed-size binary, INT96 timestamps. Our
# reader gives null for those values (and text for binary that is UTF-8), so the expected rows do too.
import datetime
binary = pa.table({
    "text": ["a", "b", None, "d"],
    "blob": pa.array([b"\xff\xd8\xff\xe0", b"plain", None, b"\x00\x80"], pa.binary()),
    "fixed": pa.array([b"abc", b"\x00\x01\x02", None, b"xyz"], pa.binary(3)),
    "when": pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5)] * 3 + [None], pa.timestamp("ns")),
    "image": pa.array([{"bytes": b"\x89PNG\r\n", "path": "a.png"}, None, {"bytes": None, "path": "c.png"},
                       {"bytes": b"GIF89a", "path": None}], pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
})
cases.append(("binary_columns.parquet", binary, dict(compression="snappy", use_deprecated_int96_timestamps=True)))
cases.append(("binary_columns_plain.parquet", binary, dict(compression="none", use_dictionary=False,
                                                           use_deprecated_int96_timestamps=True)))


def jsonable(value, column=None):
    """pyarrow's value as our reader gives it: bytes as text when UTF-8 (else null), no timestamps."""
    if column in ("fixed", "when"):
        return None
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


expected = {}
for name, table, options in cases:
    pq.write_table(table, os.path.join(out, name), **options)
    rows = pq.read_table(os.path.join(out, name)).to_pylist()
    expected[name] = [{k: jsonable(v, k) for k, v in row.items()} for row in rows]
with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(expected, f, indent=0, ensure_ascii=False, sort_keys=True)
print(f"wrote {len(cases)} Parquet files to {os.path.normpath(out)}")
