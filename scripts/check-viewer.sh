#!/usr/bin/env bash
# Checks the attention viewer of a trace report in headless Chromium, with scripts on and off.
#
#   scripts/check-viewer.sh [REPORT_DIR]
#
# Without REPORT_DIR: traces a short prompt with the built binary (.build/release/headlight,
# default model; patterns of layers 0-2 and resid_post), writes its report to
# ${HL_VIEWER_DIR:-/tmp/hl-viewer}/report and checks that.
#
# Scripts on: a probe copy of index.html keeps the page's Content-Security-Policy and adds the
# hash of one probe script to its script-src, so the viewer's own script runs only if the page's
# hash for it is right. The probe waits for the viewer (data-ready), hovers the third token of the
# strip (a mouseover event), records the highlighted row and the row marker's position, switches
# the head selector to the second head (a change event) and records the view shown; the DOM is
# dumped (--dump-dom) and the records checked: the hover moved the highlight to that token's row,
# the selector switched heads, the token strip was coloured.
# Scripts off (a copy whose CSP says script-src 'none'; Chromium's --dump-dom itself needs
# scripting): every <figure> still holds an <svg>, the viewer stays hidden. Exit 1 on any failure.
#
# A page with several viewers (a batch trace, `trace --prompts`: one per prompt) must have every
# one running, and hovering a token in the last one must move its highlight and leave the first
# one's alone. Without REPORT_DIR the script then does the same for a 3-prompt batch report
# (${HL_VIEWER_DIR}/batch-report), requiring a viewer per prompt (HL_VIEWER_EXPECT=3).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
report=${1:-}
if [ -z "$report" ]; then
  dir=${HL_VIEWER_DIR:-/tmp/hl-viewer}
  mkdir -p "$dir"
  bin="$root/.build/release/headlight"
  [ -x "$bin" ] || { echo "check-viewer: build first ($bin missing)" >&2; exit 1; }
  "$bin" trace --prompt 'When Mary and John went to the store, John gave a drink to' \
    --hooks pattern,resid_post --layers 0:3 --quiet -o "$dir/trace.h5"
  "$bin" report "$dir/trace.h5" -o "$dir/report" >/dev/null
  report="$dir/report"
  batch=1
fi
expect=${HL_VIEWER_EXPECT:-1}
[ -f "$report/index.html" ] || { echo "check-viewer: $report/index.html not found" >&2; exit 1; }
chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$chrome" ] || { echo "check-viewer: no chromium (HEADLIGHT_WITH_CHROMIUM=1 scripts/install-deps.sh)" >&2; exit 1; }

profile=$(mktemp -d /tmp/hl-chromium.XXXXXX)
probe="$report/.viewer-probe-$$.html"
trap 'rm -rf "$profile" "$probe"' EXIT
run_chrome() {
  timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --no-first-run --no-default-browser-check \
    --user-data-dir="$profile" --disable-dev-shm-usage --window-size=1280,900 "$@" \
    2> >(grep -v -E 'dbus|DBus|Fontconfig|unexpected operator|bytes written to file' >&2 || true)
}

python3 - "$report/index.html" "$probe" <<'PY'
import base64, hashlib, re, sys
src, dst = sys.argv[1], sys.argv[2]
html = open(src, encoding="utf-8").read()
if 'class="hl-viewer"' not in html:
    sys.exit("FAIL the report has no attention viewer")
probe = """
window.addEventListener('load', function () {
  var out = {};
  var v = document.querySelector('.hl-viewer');
  out.ready = v.getAttribute('data-ready');
  out.hidden = v.hidden;
  var toks = v.querySelectorAll('.hl-v-tok');
  out.tokens = toks.length;
  out.initialRow = v.getAttribute('data-row');
  toks[2].dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
  out.hoverRow = v.getAttribute('data-row');
  var mark = v.querySelector('.hl-v-rowmark');
  out.markY = mark ? mark.getAttribute('y') : null;
  out.coloured = Array.prototype.filter.call(toks, function (t) { return t.style.background !== ''; }).length;
  out.status = v.querySelector('.hl-v-status').textContent;
  out.view1 = v.getAttribute('data-view');
  var sel = v.querySelector('select');
  out.options = sel.options.length;
  sel.value = '1';
  sel.dispatchEvent(new Event('change'));
  out.view2 = v.getAttribute('data-view');
  out.cells = v.querySelectorAll('.hl-v-matrix rect').length;
  var all = document.querySelectorAll('.hl-viewer');
  out.viewers = all.length;
  out.readyAll = Array.prototype.filter.call(all, function (x) { return x.getAttribute('data-ready') === '1'; }).length;
  if (all.length > 1) {
    var last = all[all.length - 1];
    out.firstBefore = v.getAttribute('data-row');
    last.querySelectorAll('.hl-v-tok')[1].dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
    out.lastRow = last.getAttribute('data-row');
    out.firstAfter = v.getAttribute('data-row');
  }
  var pre = document.createElement('pre');
  pre.id = 'hl-probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
"""
h = base64.b64encode(hashlib.sha256(probe.encode()).digest()).decode()
html, n = re.subn(r"(script-src [^\"]*)\"", lambda m: m.group(1) + " 'sha256-" + h + "'\"", html, count=1)
if n != 1:
    sys.exit("FAIL the Content-Security-Policy has no script-src for the viewer")
html = html.replace("</body>", "<script>" + probe + "</script></body>", 1)
open(dst, "w", encoding="utf-8").write(html)
PY

dom=$(run_chrome --virtual-time-budget=5000 --dump-dom "file://$probe")
printf '%s' "$dom" | HL_VIEWER_EXPECT=$expect python3 -c '
import os
import html, json, re, sys
m = re.search(r"<pre id=\"hl-probe\">(.*?)</pre>", sys.stdin.read(), re.S)
if not m:
    sys.exit("FAIL scripts on: the probe did not run (did the viewer script throw or the CSP block it?)")
r = json.loads(html.unescape(m.group(1)))
print("scripts on: " + json.dumps(r), file=sys.stderr)
problems = []
if r.get("ready") != "1": problems.append("viewer script did not run (data-ready missing; CSP hash wrong?)")
if r.get("hidden"): problems.append("viewer still hidden")
if r.get("tokens", 0) < 3: problems.append("token strip has %s tokens" % r.get("tokens"))
if r.get("hoverRow") != "2": problems.append("hovering token 2 highlighted row %s, not 2" % r.get("hoverRow"))
if r.get("hoverRow") == r.get("initialRow"): problems.append("hover did not change the highlighted row")
if r.get("markY") in (None, "0"): problems.append("row marker did not move (y=%s)" % r.get("markY"))
if r.get("coloured", 0) < 1: problems.append("no token coloured by attention after the hover")
if r.get("options", 0) >= 2 and r.get("view1") == r.get("view2"):
    problems.append("the head selector did not switch heads (%s)" % r.get("view2"))
if r.get("cells", 0) < 2: problems.append("matrix has %s cells" % r.get("cells"))
expect = int(os.environ.get("HL_VIEWER_EXPECT", "1"))
if r.get("viewers", 0) < expect: problems.append("%s viewers, expected %d" % (r.get("viewers"), expect))
if r.get("readyAll") != r.get("viewers"): problems.append("%s of %s viewers ran" % (r.get("readyAll"), r.get("viewers")))
if r.get("viewers", 0) > 1:
    if r.get("lastRow") != "1": problems.append("hovering token 1 of the last viewer highlighted row %s" % r.get("lastRow"))
    if r.get("firstAfter") != r.get("firstBefore"): problems.append("hovering the last viewer moved the first one")
for p in problems: print("FAIL scripts on: " + p, file=sys.stderr)
if problems: sys.exit(1)
print("check: scripts on: hover moved the highlight to row %s, selector switched %s -> %s, %d matrix cells; "
      "%d viewer(s) running independently" % (r["hoverRow"], r["view1"], r["view2"], r["cells"], r["viewers"]),
      file=sys.stderr)
'

# --dump-dom needs scripting in Chromium itself, so "scripts off" is a copy whose CSP allows no
# script at all (script-src 'none'): the page's own script is blocked exactly as in a browser
# with JavaScript disabled.
python3 - "$report/index.html" "$probe" <<'PY'
import re, sys
html = open(sys.argv[1], encoding="utf-8").read()
html, n = re.subn(r"script-src [^\"]*\"", "script-src 'none'\"", html, count=1)
if n != 1:
    sys.exit("FAIL the Content-Security-Policy has no script-src")
open(sys.argv[2], "w", encoding="utf-8").write(html)
PY
dom=$(run_chrome --virtual-time-budget=3000 --dump-dom "file://$probe")
printf '%s' "$dom" | python3 -c '
import re, sys
d = sys.stdin.read()
figs = re.findall(r"<figure>(.*?)</figure>", d, re.S)
with_svg = [f for f in figs if "<svg" in f]
problems = []
if not figs: problems.append("no figures")
if len(with_svg) != len(figs): problems.append("%d of %d figures have no SVG" % (len(figs) - len(with_svg), len(figs)))
if "attention-grid" not in d: problems.append("no head-grid figure")
if "data-ready=\"1\"" in d: problems.append("the viewer script ran although scripts are off")
viewers = re.findall(r"<div class=\"hl-viewer\"[^>]*>", d)
if not viewers or any("hidden" not in v for v in viewers): problems.append("an inert viewer is not hidden")
for p in problems: print("FAIL scripts off: " + p, file=sys.stderr)
if problems: sys.exit(1)
print("check: scripts off: %d figures, each with its static SVG; viewer inert" % len(figs), file=sys.stderr)
'
echo "$report/index.html"

# The batch report: one viewer per prompt, each working on its own.
if [ -n "${batch:-}" ]; then
  printf '%s\n' '{"prompt": "When Mary and John went to the store, John gave a drink to", "name": "ioi"}' \
    '{"prompt": "The cat sat on the mat. The dog sat on the rug. The cat"}' \
    '{"prompt": "One, two, three, four, five, six", "name": "count"}' > "$dir/prompts.jsonl"
  "$bin" trace --prompts "$dir/prompts.jsonl" --hooks pattern --layers 0:2 --quiet --restart -o "$dir/batch.h5"
  "$bin" report "$dir/batch.h5" -o "$dir/batch-report" >/dev/null
  HL_VIEWER_EXPECT=3 bash "$0" "$dir/batch-report"
fi
