#!/usr/bin/env bash
# Render an HTML report in headless Chromium and check that the screenshot is not blank.
#
# Usage: scripts/check_report_render.sh REPORT.html [SCREENSHOT.png]
#
# The screenshot (1280x2000) is kept at SCREENSHOT.png (default: next to the report,
# REPORT.png). The check, in stdlib-only Python, decodes the PNG and requires some
# non-white pixels (text, tables) and some saturated ones (the SVG plot lines), so an
# empty page or a page whose inline SVG failed to render fails. Exit status: 0 ok,
# 1 blank or missing screenshot, 2 usage error or no browser.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 REPORT.html [SCREENSHOT.png]" >&2
    exit 2
fi
html=$1
png=${2:-${html%.html}.png}
if [ ! -f "$html" ]; then
    echo "error: no such file: $html" >&2
    exit 2
fi
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
    echo "error: Chromium not found (Debian: apt-get install chromium)" >&2
    exit 2
fi

# A file:// URI with the path percent-encoded (spaces and the like).
uri=$(python3 -c 'import pathlib, sys; print(pathlib.Path(sys.argv[1]).resolve().as_uri())' "$html")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$png"
# A throwaway profile keeps parallel runs apart; /dev/shm is small in containers.
# Chromium's exit status is not reliable in headless mode, so the screenshot decides.
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --hide-scrollbars --user-data-dir="$profile" --window-size=1280,2000 --screenshot="$png" "$uri" \
    >"$profile/chromium.log" 2>&1 || true
if [ ! -s "$png" ]; then
    echo "FAIL $html: Chromium wrote no screenshot; its output:" >&2
    tail -n 20 "$profile/chromium.log" >&2
    exit 1
fi

python3 - "$png" "$html" <<'PY'
import struct
import sys
import zlib

png_path, html_path = sys.argv[1], sys.argv[2]
MIN_INK = 0.01        # fraction of pixels that are not (near) white
MIN_COLORED = 200     # saturated pixels: plot lines and legend swatches


def fail(message):
    print(f"FAIL {html_path}: {message} (screenshot: {png_path})", file=sys.stderr)
    sys.exit(1)


def decode(path):
    """(width, height, channels, rows) of an 8-bit RGB/RGBA non-interlaced PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("not a PNG file")
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        fail("PNG without IHDR")
    width, height, depth, color_type, _, _, interlace = header
    channels = {2: 3, 6: 4}.get(color_type)
    if depth != 8 or channels is None or interlace != 0:
        fail(f"unsupported PNG format (bit depth {depth}, color type {color_type}, interlace {interlace})")
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:    # Sub
            for i in range(channels, stride):
                row[i] = (row[i] + row[i - channels]) & 0xFF
        elif kind == 2:  # Up
            row = bytearray((a + b) & 0xFF for a, b in zip(row, previous))
        elif kind == 3:  # Average
            for i in range(stride):
                left = row[i - channels] if i >= channels else 0
                row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = row[i - channels] if i >= channels else 0
                b = previous[i]
                c = previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        elif kind != 0:
            fail(f"bad PNG filter type {kind} in row {y}")
        rows.append(row)
        previous = row
    return width, height, channels, rows


width, height, channels, rows = decode(png_path)
ink = colored = 0
for row in rows:
    for i in range(0, len(row), channels):
        r, g, b = row[i], row[i + 1], row[i + 2]
        if r < 235 or g < 235 or b < 235:
            ink += 1
            if max(r, g, b) - min(r, g, b) > 80:
                colored += 1
total = width * height
if ink < MIN_INK * total:
    fail(f"the page looks blank: {ink} of {total} pixels are not white")
if colored < MIN_COLORED:
    fail(f"no plots visible: only {colored} colored pixels")
print(f"OK {html_path}: {width}x{height} screenshot, {100 * ink / total:.1f}% ink, "
      f"{colored} colored pixels ({png_path})")
PY
