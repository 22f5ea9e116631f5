#!/usr/bin/env python3
"""Expected values for the TOML parser's fixtures, from Python's own TOML 1.0 reader (tomllib).

    python3 scripts/make_toml_fixtures.py          # rewrites Tests/NudgeConfigTests/Fixtures/toml/expected.json
    python3 scripts/make_toml_fixtures.py --check  # exits 1 when expected.json is out of date

Each Tests/NudgeConfigTests/Fixtures/toml/*.toml is read with tomllib as bytes decoded as UTF-8.
A valid file maps to its values, tagged with their TOML types as toml-test does
({"type": "integer", "value": "42"}; tables are JSON objects, arrays JSON arrays); an invalid one
maps to "error". A file's name says which it should be (valid-* or invalid-*), so a fixture that
tomllib reads differently than its author meant is caught here. TOMLParserTests checks that the
Swift parser agrees on every file.
"""

import datetime
import json
import math
import pathlib
import sys
import tomllib

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "Tests/NudgeConfigTests/Fixtures/toml"


def tagged(value):
    """A TOML value as toml-test's tagged JSON (dates with every field spelled out)."""
    if isinstance(value, dict):
        return {key: tagged(item) for key, item in value.items()}
    if isinstance(value, list):
        return [tagged(item) for item in value]
    if isinstance(value, bool):  # before int: bool is an int in Python
        return {"type": "bool", "value": "true" if value else "false"}
    if isinstance(value, int):
        return {"type": "integer", "value": str(value)}
    if isinstance(value, float):
        if math.isnan(value):
            text = "nan"
        elif math.isinf(value):
            text = "inf" if value > 0 else "-inf"
        else:
            text = repr(value)
        return {"type": "float", "value": text}
    if isinstance(value, str):
        return {"type": "string", "value": value}
    # Spelled out field by field: strftime does not pad years before 1000 on every platform.
    if isinstance(value, datetime.datetime):
        text = f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
        text += f".{value.microsecond:06d}"
        if value.tzinfo is None:
            return {"type": "datetime-local", "value": text}
        minutes = int(value.utcoffset().total_seconds() // 60)
        sign = "-" if minutes < 0 else "+"
        return {"type": "datetime", "value": text + f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"}
    if isinstance(value, datetime.date):
        return {"type": "date-local", "value": f"{value.year:04d}-{value.month:02d}-{value.day:02d}"}
    if isinstance(value, datetime.time):
        text = f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
        return {"type": "time-local", "value": text}
    raise TypeError(f"unexpected value {value!r}")


def expected(path):
    try:
        return tagged(tomllib.loads(path.read_bytes().decode("utf-8")))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return "error"


def main():
    files = sorted(FIXTURES.glob("*.toml"))
    result = {}
    wrong = []
    for path in files:
        value = expected(path)
        if path.name.startswith("valid-") == (value == "error") or not path.name.startswith(("valid-", "invalid-")):
            wrong.append(path.name)
        result[path.name] = value
    if wrong:
        print("tomllib disagrees with the file's name (valid-*/invalid-*):", ", ".join(wrong), file=sys.stderr)
        return 1
    text = json.dumps(result, indent=1, ensure_ascii=False) + "\n"
    out = FIXTURES / "expected.json"
    if "--check" in sys.argv[1:]:
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            print(f"{out} is out of date; run {sys.argv[0]}", file=sys.stderr)
            return 1
        print(f"{out.name} is up to date ({len(files)} files)")
        return 0
    out.write_text(text, encoding="utf-8")
    valid = sum(1 for v in result.values() if v != "error")
    print(f"wrote {out} ({valid} valid, {len(result) - valid} invalid)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
