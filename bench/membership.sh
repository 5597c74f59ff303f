#!/usr/bin/env bash
# Membership scoring throughput: `headlight membership` on the shipped set (60 CPython stdlib
# modules + 60 PyPI modules of 2025-26, 2,000 tokens each: ~240k tokens), medians of $REPEATS
# (default 1) runs. Prints tokens scored, wall time and tokens/s as Headlight reports them
# (scoring only, model load and classification excluded) plus the process's wall time.
#
#   bash bench/membership.sh            # needs probes/membership/fetch_nonmembers.py run once
#   REPEATS=3 bash bench/membership.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${HEADLIGHT_BIN:-$root/.build/release/headlight}
[ -x "$bin" ] || { echo "bench/membership.sh: $bin not found; run make build" >&2; exit 1; }
out=$(mktemp -d /tmp/hl-membership-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT
echo "load average before: $(cut -d' ' -f1 /proc/loadavg)"
for i in $(seq "${REPEATS:-1}"); do
  start=$(date +%s.%N)
  env -u OPENBLAS_CORETYPE "$bin" membership --set "$root/probes/membership/default.json" --no-progress --json \
    -o "$out/run$i.h5" > "$out/run$i.json"
  end=$(date +%s.%N)
  python3 - "$out/run$i.json" "$start" "$end" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"run: {d['tokens_scored']} tokens scored ({d['forward_tokens']} forward tokens) in {d['scoring_seconds']:.1f} s: "
      f"{d['tokens_per_second']:.0f} tokens/s; process wall {wall:.1f} s")
PY
done
echo "load average after: $(cut -d' ' -f1 /proc/loadavg)"
