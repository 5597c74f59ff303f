#!/usr/bin/env python3
"""Where Headlight's decode and prefill time goes, against this machine's limits.

Decode is bound by memory: every step streams all weight matrices (the output head once) and
the K/V rows of the context. The script measures the streaming-read bandwidth the kernel pool
gets (`headlight bench --bandwidth`), counts the bytes a decode step must read (from the GGUF:
matrix sizes, layers, KV heads, head size, sliding windows), and compares the measured time per
token with bytes / bandwidth. Prefill is bound by arithmetic: it compares the GFLOP/s of the
matrix products and of attention (`headlight bench --prefill N --profile`) with the sgemm peak
`headlight doctor` measures.

  python3 bench/roofline.py                       # default model, decode at 1k, prefill 2048
  python3 bench/roofline.py --prefill 2048,8000 --kv f16 --qdot int16
  python3 bench/roofline.py --model ~/.cache/headlight/models/gemma-3-270m-q4_k_m.gguf

Medians of --repeats fresh processes; run on a quiet machine (load average is printed).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402  (default_model, cpu_name)


def field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    v = f.parts[f.data[0]]
    try:
        return bytes(v).decode() if f.types and f.types[0].name == "STRING" else v.tolist()[0]
    except Exception:
        return default


def decode_bytes(model, context, kv_bytes):
    """Bytes one decode step at `context` keys reads: (weights, kv), from the GGUF."""
    from gguf import GGUFReader
    r = GGUFReader(model)
    arch = field(r, "general.architecture")
    names = {t.name for t in r.tensors}
    weights = 0
    for t in r.tensors:
        if len(t.shape) < 2 or int(t.shape[1]) == 1:
            weights += int(t.n_bytes)     # vectors (norms): read whole
        elif t.name == "token_embd.weight":
            # The embedding row lookup reads one row; a tied output head reads all of it.
            weights += int(t.n_bytes) if "output.weight" not in names else int(t.n_bytes) // int(t.shape[1])
        else:
            weights += int(t.n_bytes)
    layers = field(r, f"{arch}.block_count")
    heads = field(r, f"{arch}.attention.head_count")
    kv_heads = field(r, f"{arch}.attention.head_count_kv", heads)
    d_model = field(r, f"{arch}.embedding_length")
    d_head = field(r, f"{arch}.attention.key_length", d_model // heads)
    window = field(r, f"{arch}.attention.sliding_window", 0) or 0
    kv = 0
    for layer in range(layers):
        # Gemma 3: every sixth layer attends globally, the others within the window
        # (llama.cpp's default pattern; Headlight reads the same rule).
        local = arch == "gemma3" and window > 0 and (layer + 1) % 6 != 0
        keys = min(context, window) if local else context
        kv += 2 * keys * kv_heads * d_head * kv_bytes
    return weights, kv, arch


def run(cmd, env=None):
    e = dict(os.environ)
    e.pop("OPENBLAS_CORETYPE", None)
    if env:
        e.update(env)
    p = subprocess.run(cmd, capture_output=True, text=True, env=e)
    if p.returncode != 0:
        raise SystemExit(f"roofline: {' '.join(cmd)} failed:\n{p.stderr.strip()}")
    return p.stdout


def median_runs(cmd, repeats, env):
    runs = [json.loads(run(cmd, env).strip().splitlines()[-1]) for _ in range(repeats)]
    runs.sort(key=lambda r: r["seconds"])
    return runs[len(runs) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=bench.default_model())
    ap.add_argument("--context", type=int, default=1024, help="decode context (keys)")
    ap.add_argument("--decode", type=int, default=64, help="decode steps (0: skip decode)")
    ap.add_argument("--prefill", default="2048", help="prefill sizes, comma-separated ('' to skip)")
    ap.add_argument("--kv", choices=["f32", "f16"], default="f32")
    ap.add_argument("--qdot", choices=["float", "int8", "int16"], default="float")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--headlight-bin", default=os.environ.get("HEADLIGHT_BIN")
                    or os.path.join(ROOT, ".build", "release", "headlight"))
    a = ap.parse_args()
    exe = a.headlight_bin
    if not os.path.exists(exe):
        raise SystemExit(f"roofline: {exe} not found; run `make build` first (or pass --headlight-bin)")
    if not os.path.exists(a.model):
        raise SystemExit(f"roofline: model not found: {a.model} (run scripts/fetch-model.sh)")
    env = {"HEADLIGHT_QDOT": a.qdot}
    threads = ["--threads", str(a.threads)]
    load = os.getloadavg()

    bw = statistics.median(
        json.loads(run([exe, "bench", "--bandwidth", "1024", *threads]).strip())["gb_per_s"]
        for _ in range(a.repeats))
    doctor = run([exe, "doctor"])
    m = re.search(r"sgemm:\s+([0-9.]+) GFLOP/s", doctor)
    peak = float(m.group(1)) if m else float("nan")

    print(f"CPU: {bench.cpu_name()}; {a.threads} threads; model {os.path.basename(a.model)}; "
          f"KV cache {a.kv}; quantized products {a.qdot}")
    print(f"streaming-read bandwidth (headlight bench --bandwidth 1024, median of {a.repeats}): {bw:.1f} GB/s; "
          f"sgemm peak (headlight doctor): {peak:.1f} GFLOP/s")

    if a.decode > 0:
        r = median_runs([exe, "bench", "--model", a.model, "--decode", str(a.decode), "--context", str(a.context),
                         "--kv", a.kv, "--profile", *threads], a.repeats, env)
        w, kv, arch = decode_bytes(a.model, a.context + a.decode // 2, 2 if a.kv == "f16" else 4)
        per = r["seconds"] / r["tokens"]
        prof = r["profile"]
        lin = prof.get("quantized_linear", {}).get("seconds", 0) / r["tokens"]
        att = prof.get("attention", {}).get("seconds", 0) / r["tokens"]
        bound = (w + kv) / (bw * 1e9)
        print(f"\n### Decode at {a.context} keys ({arch}; median of {a.repeats} runs of {a.decode} steps)\n")
        print("| part | ms/token | share | bytes/token (MB) | GB/s achieved | of measured bandwidth |")
        print("|---|---|---|---|---|---|")
        print(f"| matrix-vector products | {lin * 1e3:.2f} | {lin / per:.0%} | {w / 1e6:.1f} | "
              f"{w / lin / 1e9 if lin else 0:.1f} | {w / lin / 1e9 / bw if lin else 0:.0%} |")
        print(f"| attention over the KV cache | {att * 1e3:.2f} | {att / per:.0%} | {kv / 1e6:.1f} | "
              f"{kv / att / 1e9 if att else 0:.1f} | {kv / att / 1e9 / bw if att else 0:.0%} |")
        rest = per - lin - att
        print(f"| everything else | {rest * 1e3:.2f} | {rest / per:.0%} | | | |")
        print(f"| **step** | **{per * 1e3:.2f}** ({1 / per:.1f} tok/s) | | {(w + kv) / 1e6:.1f} | "
              f"{(w + kv) / per / 1e9:.1f} | {(w + kv) / per / 1e9 / bw:.0%} |")
        print(f"\nroofline: {(w + kv) / 1e6:.1f} MB / {bw:.1f} GB/s = {bound * 1e3:.2f} ms/token "
              f"({1 / bound:.0f} tok/s); measured {per * 1e3:.2f} ms = {bound / per:.0%} of the roofline")

    for n in [int(x) for x in a.prefill.split(",") if x]:
        r = median_runs([exe, "bench", "--model", a.model, "--prefill", str(n), "--kv", a.kv, "--profile",
                         *threads], a.repeats, env)
        prof = r["profile"]
        print(f"\n### Prefill of {n} tokens (median of {a.repeats}): {r['tokens'] / r['seconds']:.1f} tok/s, "
              f"{r['seconds']:.2f} s\n")
        print("| part | seconds | share | GFLOP/s | of sgemm peak |")
        print("|---|---|---|---|---|")
        for k in sorted(prof, key=lambda k: -prof[k]["seconds"]):
            v = prof[k]
            gf = v.get("gflops")
            print(f"| {k} | {v['seconds']:.3f} | {v['share']:.0%} | {f'{gf:.1f}' if gf else ''} | "
                  f"{f'{gf / peak:.0%}' if gf else ''} |")
    after = os.getloadavg()
    print("\nload average (1/5/15 min) before: %.2f %.2f %.2f, after: %.2f %.2f %.2f" % (load + after))


if __name__ == "__main__":
    main()
