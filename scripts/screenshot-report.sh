#!/usr/bin/env bash
# Renders a Headlight report in headless Chromium and checks it the way a person would see it.
#
#   scripts/screenshot-report.sh [REPORT_DIR] [OUT_DIR] [--figures] [--dark]
#
# REPORT_DIR  a report directory with index.html (default: reports/retrieval-heads, else the
#             synthetic report the RunReportCommandTests write to ${HL_RUNREPORT_DIR:-/tmp/hl-runreport})
# OUT_DIR     where the PNGs go (default: REPORT_DIR/screenshots)
# --figures   also one PNG per figures/*.svg (OUT_DIR/figure-NAME.png)
# --dark      also a dark-mode screenshot (OUT_DIR/index-dark.png)
#
# Checks (exit 1 on failure):
#   1. Chromium loads index.html: a probe copy of the page (same markup, the CSP meta removed and a
#      measuring script appended) is laid out at 1280 px and its DOM dumped; the script records the
#      size of every figure's <svg> (getBoundingClientRect), the page height and whether every
#      figure number is present. Each figure must be at least 40 x 40 CSS px, their count must
#      equal the number of <figure> elements in index.html, and no figure may overflow the page.
#   2. The full-page screenshot (OUT_DIR/index.png, 1280 px wide) is a valid PNG of that size
#      and not blank: many distinct colours and > 2% of pixels differing from the background.
# Prints one line per check and the PNG paths.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
report="" out="" figures=0 dark=0
for a in "$@"; do
  case "$a" in
    --figures) figures=1 ;;
    --dark) dark=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) if [ -z "$report" ]; then report="$a"; elif [ -z "$out" ]; then out="$a"; else echo "unexpected argument: $a" >&2; exit 2; fi ;;
  esac
done
if [ -z "$report" ]; then
  if [ -f "$root/reports/retrieval-heads/index.html" ]; then report="$root/reports/retrieval-heads"
  else report="${HL_RUNREPORT_DIR:-/tmp/hl-runreport}"; fi
fi
report=$(cd "$report" 2>/dev/null && pwd) || { echo "screenshot-report: no report directory $report" >&2; exit 1; }
[ -f "$report/index.html" ] || { echo "screenshot-report: $report/index.html not found" >&2; exit 1; }
out=${out:-$report/screenshots}
mkdir -p "$out"
out=$(cd "$out" && pwd)

chrome=""
for c in chromium chromium-browser google-chrome; do
  if command -v "$c" >/dev/null 2>&1; then chrome=$(command -v "$c"); break; fi
done
if [ -z "$chrome" ]; then
  echo "screenshot-report: installing chromium (HEADLIGHT_WITH_CHROMIUM=1 scripts/install-deps.sh)" >&2
  HEADLIGHT_WITH_CHROMIUM=1 bash "$root/scripts/install-deps.sh" >&2
  chrome=$(command -v chromium)
fi

profile=$(mktemp -d /tmp/hl-chromium.XXXXXX)
probe="$report/.probe-$$.html"
trap 'rm -rf "$profile" "$probe"' EXIT
run_chrome() {
  # Headless, no GPU, no sandbox (containers), a throwaway profile; Chromium's D-Bus noise dropped.
  timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --no-default-browser-check --user-data-dir="$profile" --disable-dev-shm-usage "$@" 2> >(grep -v -E 'dbus|DBus|Fontconfig|unexpected operator|bytes written to file' >&2 || true)
}

# 1. Probe copy: measure every figure after layout.
python3 - "$report/index.html" "$probe" <<'PY'
import re, sys
src, dst = sys.argv[1], sys.argv[2]
html = open(src, encoding="utf-8").read()
html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html, count=1)
probe = """<pre id="hl-probe"></pre><script>
window.addEventListener('load', function () {
  var figs = Array.prototype.slice.call(document.querySelectorAll('figure'));
  var out = figs.map(function (f, i) {
    var svg = f.querySelector('.fig > svg');
    var r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0, left: 0, right: 0};
    var link = f.querySelector('a.svg-link');
    return {i: i + 1, name: link ? link.getAttribute('href') : '', w: r.width, h: r.height,
            left: r.left, right: r.right, caption: !!f.querySelector('figcaption')};
  });
  var res = {figures: out, height: document.documentElement.scrollHeight,
             width: document.documentElement.scrollWidth, title: document.title,
             sections: document.querySelectorAll('section').length};
  document.getElementById('hl-probe').textContent = JSON.stringify(res);
});
</script>"""
html = html.replace("</body>", probe + "</body>", 1)
open(dst, "w", encoding="utf-8").write(html)
PY
dom=$(run_chrome --window-size=1280,900 --virtual-time-budget=5000 --dump-dom "file://$probe")
measure=$(printf '%s' "$dom" | python3 -c '
import sys, re, html, json
m = re.search(r"<pre id=\"hl-probe\">(.*?)</pre>", sys.stdin.read(), re.S)
print(html.unescape(m.group(1)) if m and m.group(1).strip() else "{}")')

height=$(python3 - "$report/index.html" "$measure" <<'PY'
import json, re, sys
html = open(sys.argv[1], encoding="utf-8").read()
m = json.loads(sys.argv[2] or "{}")
figs = m.get("figures")
expected = len(re.findall(r"<figure>", html))
ok = True
def fail(msg):
    global ok
    ok = False
    print("FAIL " + msg, file=sys.stderr)
if figs is None:
    fail("Chromium did not load the page (no measurements in the dumped DOM)")
    figs = []
else:
    print(f"check: page loaded in Chromium: '{m.get('title', '')}', {m.get('sections', 0)} sections, "
          f"{m.get('height', 0)} px tall", file=sys.stderr)
if len(figs) != expected:
    fail(f"{len(figs)} figures laid out, index.html has {expected}")
for f in figs:
    name = f["name"] or f"figure {f['i']}"
    if not (f["w"] >= 40 and f["h"] >= 40):
        fail(f"{name}: rendered size {f['w']:.0f} x {f['h']:.0f} px")
    elif f["right"] > 1280 + 1:
        fail(f"{name}: overflows the 1280 px page (right edge {f['right']:.0f})")
if figs and ok:
    sizes = ", ".join(f"{f['name'].split('/')[-1].replace('.svg', '')} {f['w']:.0f}x{f['h']:.0f}" for f in figs)
    print(f"check: {len(figs)} figures with non-zero size: {sizes}", file=sys.stderr)
if m.get("width", 0) > 1280 + 1:
    fail(f"page is {m['width']} px wide (horizontal scrolling at 1280 px)")
print(min(max(int(m.get("height", 2000)), 600), 30000) if ok else "FAIL")
PY
)
[ "$height" != FAIL ] || exit 1

# 2. Full-page screenshot, checked for size and content.
check_png() {
python3 - "$1" "$2" <<'PY'
import struct, sys, zlib
path, want_w = sys.argv[1], int(sys.argv[2])
data = open(path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w = 8, b"", 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
assert depth == 8 and ctype in (2, 6), f"unexpected PNG type {ctype}/{depth}"
bpp = 3 if ctype == 2 else 4
raw, stride = zlib.decompress(idat), w * bpp
prev, rows, i = bytearray(stride), [], 0
for y in range(h):
    f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else (b if pb <= pc else c))) & 255
    rows.append(bytes(line)); prev = line
bg = rows[0][:3]
colours, differ, total = set(), 0, 0
for y in range(0, h, 3):
    r = rows[y]
    for x in range(0, w, 3):
        px = r[x * bpp:x * bpp + 3]
        colours.add(px); total += 1
        differ += px != bg
frac = differ / max(total, 1)
ok = w == want_w and len(colours) > 64 and frac > 0.02
print(f"check: {path}: {w}x{h} PNG, {len(colours)} colours, {frac:.1%} non-background pixels"
      + ("" if ok else " -> looks blank or wrong size"), file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}
rm -f "$out/index.png"
run_chrome --window-size=1280,"$height" --screenshot="$out/index.png" "file://$report/index.html" >/dev/null
[ -s "$out/index.png" ] || { echo "FAIL Chromium wrote no screenshot" >&2; exit 1; }
check_png "$out/index.png" 1280
echo "$out/index.png"

if [ "$dark" = 1 ]; then
  run_chrome --window-size=1280,"$height" --force-dark-mode --blink-settings=preferredColorScheme=0 \
    --screenshot="$out/index-dark.png" "file://$report/index.html" >/dev/null
  check_png "$out/index-dark.png" 1280
  echo "$out/index-dark.png"
fi

if [ "$figures" = 1 ] && [ -d "$report/figures" ]; then
  for svg in "$report"/figures/*.svg; do
    name=$(basename "$svg" .svg)
    size=$(python3 -c '
import re, sys
t = open(sys.argv[1], encoding="utf-8").read(4000)
w = re.search(r"<svg[^>]*\swidth=\"([0-9.]+)(?:pt|px)?\"", t); h = re.search(r"<svg[^>]*\sheight=\"([0-9.]+)(?:pt|px)?\"", t)
scale = 4 / 3 if w and "pt\"" in t[w.start():w.end() + 2] else 1
print(f"{int(float(w.group(1)) * scale) + 16},{int(float(h.group(1)) * scale) + 16}" if w and h else "1000,700")' "$svg")
    run_chrome --window-size="$size" --screenshot="$out/figure-$name.png" "file://$svg" >/dev/null
    echo "$out/figure-$name.png"
  done
fi
