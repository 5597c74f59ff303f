#!/usr/bin/env python3
"""Headlight vs llama.cpp vs transformers, side by side on this machine.

Runs, for each engine, prefill of 512 / 2,048 / 8,000 tokens and decoding of
64 tokens at 1k context, each measurement in a fresh subprocess (so peak RSS
is per measurement), `--repeats` times, and prints medians, ratios and peak
RSS. Every engine gets the same token ids and 2 threads.

  python3 bench/bench.py                      # all engines, all sizes, 3 repeats
  python3 bench/bench.py --engines headlight --prefill 512 --repeats 1
  python3 bench/bench.py --engines headlight,headlight@Haswell --decode 0
  python3 bench/bench.py --engines headlight,headlight+f16,llama.cpp --prefill 2048,8000
  python3 bench/bench.py --profile            # + Headlight's per-kernel time breakdown
  python3 bench/bench.py --engines headlight,headlight+f16+int16,llama.cpp --prefill ""

Engines:
  headlight     .build/release/headlight bench (build with `make build`; --headlight-bin
                or $HEADLIGHT_BIN for another build). Run with OPENBLAS_CORETYPE removed
                from its environment, so Headlight picks and verifies the best OpenBLAS
                kernel for the CPU (a preset OPENBLAS_CORETYPE is otherwise respected as a
                user choice).
  headlight@K   the same with OPENBLAS_CORETYPE=K (e.g. headlight@Haswell), for comparison.
  headlight+f16 the same with a binary16 KV cache (`headlight bench --kv f16`; combines with @K:
                headlight@Haswell+f16). Plain `headlight` uses --kv (default f32).
  headlight+int16, headlight+int8
                the quantized products' integer paths (HEADLIGHT_QDOT=int16|int8; default
                float); options combine: headlight+f16+int16.
  llama.cpp     llama-cpp-python from PyPI (pip install llama-cpp-python), same GGUF
  transformers  torch CPU + transformers from PyPI, same GGUF dequantized to f32, sdpa

Models: any GGUF the engines load; tested with SmolLM2-135M (llama) and Gemma 3 270M
(`--model ~/.cache/headlight/models/gemma-3-270m-q4_k_m.gguf`). The architecture is read
from the GGUF (gguf-py) to choose the range of the pseudo-random token ids.

The machine should be quiet: the script warns when the 1-minute load average
is above 0.5 before it starts, and prints the load average before and after.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
THREADS = 2


def default_model():
    if os.environ.get("HEADLIGHT_MODEL"):
        return os.environ["HEADLIGHT_MODEL"]
    cache = os.environ.get("HEADLIGHT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "headlight")
    return os.path.join(cache, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


# Token ids are drawn from [LOW, 49152) for every model, so SmolLM2's ids are those of earlier
# runs. LOW skips the special tokens at the start of the vocabulary: SmolLM2's end below 100;
# Gemma 3's control and unused tokens run to id 107 (<end_of_turn> 106), so gemma3 uses 1000.
# Set from the GGUF's general.architecture in main().
LOW = 100


def token_ids(n, vocab=49152, seed=1234):
    """Deterministic pseudo-random token ids in [LOW, vocab), avoiding special tokens."""
    x = seed
    out = []
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        out.append(LOW + (x >> 33) % (vocab - LOW))
    return out


def architecture(model):
    """general.architecture of a GGUF file (gguf-py), or None if it cannot be read."""
    try:
        from gguf import GGUFReader
        f = GGUFReader(model).fields["general.architecture"]
        return bytes(f.parts[f.data[0]]).decode()
    except Exception:
        return None


def low_token(arch):
    return 1000 if arch in ("gemma3", "gemma2", "gemma") else 100


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


# ---------------------------------------------------------------- workers (run in a child process)

def worker_llama(model, mode, n):
    import numpy as np
    from llama_cpp import Llama
    ctx = max(n, 1024) + 128
    llm = Llama(model_path=model, n_ctx=ctx, n_threads=THREADS, n_threads_batch=THREADS,
                n_batch=512, n_ubatch=512, verbose=False)
    ids = token_ids(n if mode == "prefill" else 1024)
    if mode == "prefill":
        llm.reset()
        t = time.perf_counter()
        llm.eval(ids)
        dt = time.perf_counter() - t
        return {"tokens": n, "seconds": dt}
    llm.reset()
    llm.eval(ids)
    steps = n
    t = time.perf_counter()
    tok = ids[-1]
    for _ in range(steps):
        llm.eval([tok])
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
        tok = int(logits.argmax())
    dt = time.perf_counter() - t
    return {"tokens": steps, "seconds": dt}


def worker_transformers(model, mode, n):
    import torch
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(THREADS)
    d, f = os.path.split(model)
    m = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32,
                                             attn_implementation="sdpa")
    m.eval()
    ids = torch.tensor([token_ids(n if mode == "prefill" else 1024)])
    with torch.inference_mode():
        if mode == "prefill":
            t = time.perf_counter()
            m(ids, use_cache=False, logits_to_keep=1)
            dt = time.perf_counter() - t
            return {"tokens": n, "seconds": dt}
        out = m(ids, use_cache=True, logits_to_keep=1)
        past = out.past_key_values
        tok = out.logits[:, -1:].argmax(-1)
        t = time.perf_counter()
        for _ in range(n):
            out = m(tok, past_key_values=past, use_cache=True)
            past = out.past_key_values
            tok = out.logits[:, -1:].argmax(-1)
        dt = time.perf_counter() - t
        return {"tokens": n, "seconds": dt}


HEADLIGHT_BIN = os.environ.get("HEADLIGHT_BIN") or os.path.join(ROOT, ".build", "release", "headlight")


KV = "f32"


def cpu_name():
    """The CPU's model name and family/model numbers (/proc/cpuinfo), for every printed table."""
    name, fam, mod = "unknown CPU", "?", "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k, v = k.strip(), v.strip()
                if k == "model name" and name == "unknown CPU":
                    name = v
                elif k == "cpu family" and fam == "?":
                    fam = v
                elif k == "model" and mod == "?":
                    mod = v
    except OSError:
        pass
    return f"{name} (family {fam}, model {mod}), {os.cpu_count()} logical CPUs"


def engine_options(engine):
    """headlight[@CORETYPE][+f16|+f32][+int16|+int8|+float] -> (coretype, kv, qdot)."""
    name, *opts = engine.split("+")
    kv = qdot = None
    for o in opts:
        if o in ("f32", "f16"):
            kv = o
        elif o in ("float", "int8", "int16"):
            qdot = o
        else:
            raise SystemExit(f"bench: engine {engine}: unknown option '+{o}' (expected +f32, +f16, +float, "
                             "+int8 or +int16)")
    return name.partition("@")[2] or None, kv, qdot


def run_headlight(model, mode, n, coretype=None, profile=False, kv=None, qdot=None):
    exe = HEADLIGHT_BIN
    if not os.path.exists(exe):
        raise SystemExit(f"bench: {exe} not found; run `make build` first (or pass --headlight-bin)")
    cmd = [exe, "bench", "--model", model, "--threads", str(THREADS), "--json", "--kv", kv or KV]
    cmd += ["--prefill", str(n)] if mode == "prefill" else ["--decode", str(n), "--context", "1024"]
    if profile:
        cmd.append("--profile")
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("HEADLIGHT_BLAS_CORETYPE", None)
    if qdot:
        env["HEADLIGHT_QDOT"] = qdot
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"bench: headlight failed: {p.stderr.strip()}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_child(engine, model, mode, n):
    if is_headlight(engine):
        coretype, kv, qdot = engine_options(engine)
        return run_headlight(model, mode, n, coretype=coretype, kv=kv, qdot=qdot)
    p = subprocess.run([sys.executable, __file__, "--worker", engine, "--model", model,
                        "--mode", mode, "--n", str(n)], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"bench: {engine} worker failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def is_headlight(engine):
    """headlight, headlight@K, headlight+f16, headlight+int16, headlight@K+f16+int16, ..."""
    return engine == "headlight" or engine.startswith("headlight@") or engine.startswith("headlight+")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--engines", default="headlight,llama.cpp,transformers")
    ap.add_argument("--prefill", default="512,2048,8000")
    ap.add_argument("--decode", type=int, default=64, help="decode steps at 1k context (0 to skip)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write all raw results to this file")
    ap.add_argument("--headlight-bin", help="headlight executable (default: $HEADLIGHT_BIN or .build/release/headlight)")
    ap.add_argument("--kv", choices=["f32", "f16"], default="f32",
                    help="KV cache storage of the plain headlight engines (headlight+f16 always uses f16)")
    ap.add_argument("--profile", action="store_true",
                    help="also run `headlight bench --profile` once per prefill size and print the time breakdown")
    ap.add_argument("--worker"), ap.add_argument("--mode"), ap.add_argument("--n", type=int)
    a = ap.parse_args()
    global LOW
    arch = architecture(a.model) if os.path.exists(a.model) else None
    LOW = low_token(arch)

    if a.worker:
        fn = {"llama.cpp": worker_llama, "transformers": worker_transformers}[a.worker]
        r = fn(a.model, a.mode, a.n)
        r["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(r))
        return

    global HEADLIGHT_BIN, KV
    KV = a.kv
    for e in a.engines.split(","):
        if is_headlight(e):
            engine_options(e)
    if a.headlight_bin:
        HEADLIGHT_BIN = os.path.abspath(a.headlight_bin)
    if not os.path.exists(a.model):
        raise SystemExit(f"bench: model not found: {a.model} (run scripts/fetch-model.sh)")
    load = os.getloadavg()
    if load[0] > 0.5:
        print(f"warning: 1-minute load average is {load[0]:.2f}; results will be noisy", file=sys.stderr)
    engines = [e for e in a.engines.split(",") if e]
    cases = [("prefill", int(n)) for n in a.prefill.split(",") if n]
    if a.decode > 0:
        cases.append(("decode@1k", a.decode))
    results = {}
    for mode, n in cases:
        for e in engines:
            runs = []
            for r in range(a.repeats):
                res = run_child(e, a.model, "prefill" if mode == "prefill" else "decode", n)
                runs.append(res)
                print(f"  {e:12s} {mode:9s} n={n:5d} run {r + 1}: {res['tokens'] / res['seconds']:8.1f} tok/s, "
                      f"peak RSS {res['peak_rss_mb']:.0f} MB", file=sys.stderr)
            tps = statistics.median(x["tokens"] / x["seconds"] for x in runs)
            rss = max(x["peak_rss_mb"] for x in runs)
            results[(mode, n, e)] = {"tok_s": tps, "rss_mb": rss, "runs": runs}

    load_after = os.getloadavg()
    print(f"\nmedian of {a.repeats} runs, {THREADS} threads, model {os.path.basename(a.model)} ({arch}), "
          f"token ids in [{LOW}, 49152)")
    print("load average (1/5/15 min) before: %.2f %.2f %.2f, after: %.2f %.2f %.2f" % (load + load_after))
    print(f"CPU: {cpu_name()}")
    for e in engines:
        if is_headlight(e):
            r0 = next(iter(results[(m, n, e)] for m, n in cases))["runs"][0]
            print(f"{e}: OpenBLAS kernel {r0.get('blas_kernel')}, native kernels {r0.get('kernels', '?')}, "
                  f"KV cache {r0.get('kv_cache', 'f32')}, quantized products {r0.get('quantized_products', '?')}")
    header = f"{'case':16s}" + "".join(f"{e + ' tok/s':>20s}{'RSS MB':>8s}" for e in engines)
    others = [e for e in engines if not is_headlight(e)]
    # Ratios: plain headlight and the +kv variants against every other engine.
    mine = [e for e in engines if e == "headlight" or e.startswith("headlight+")]
    header += "".join(f"{('HL' + h[len('headlight'):]) + '/' + e:>16s}" for h in mine for e in others)
    print(header)
    for mode, n in cases:
        row = f"{mode + ' ' + str(n):16s}"
        for e in engines:
            r = results[(mode, n, e)]
            row += f"{r['tok_s']:20.1f}{r['rss_mb']:8.0f}"
        for h in mine:
            for e in others:
                row += f"{results[(mode, n, h)]['tok_s'] / results[(mode, n, e)]['tok_s']:15.2f}x"
        print(row)
    profiles = {}
    if a.profile:
        for n in [int(x) for x in a.prefill.split(",") if x]:
            r = run_headlight(a.model, "prefill", n, profile=True, kv=a.kv)
            profiles[f"prefill:{n}"] = r
            print_profile(f"prefill {n}", r)
        if a.decode > 0:
            r = run_headlight(a.model, "decode", a.decode, profile=True, kv=a.kv)
            profiles[f"decode:{a.decode}"] = r
            print_profile(f"decode {a.decode} at 1k", r)
    if a.json:
        with open(a.json, "w") as f:
            out = {f"{k[0]}:{k[1]}:{k[2]}": v for k, v in results.items()}
            out["load_before"], out["load_after"] = load, load_after
            out["cpu"] = cpu_name()
            if profiles:
                out["profiles"] = profiles
            json.dump(out, f, indent=1)


def print_profile(label, r):
    """One `headlight bench --profile` result: seconds, share and GFLOP/s per kernel category."""
    prof = r["profile"]
    print(f"\nHeadlight {label}: {r['seconds']:.3f} s wall, {r['cpu_seconds']:.3f} s CPU, "
          f"{r['tokens'] / r['seconds']:.1f} tok/s")
    print(f"  {'kernel':18s}{'wall s':>9s}{'share':>8s}{'CPU s':>9s}{'GFLOP/s':>9s}{'GFLOP/CPU-s':>13s}")
    for name, v in sorted(prof.items(), key=lambda kv: -kv[1]["seconds"]):
        gf = f"{v['gflops']:9.1f}{v['gflops_per_cpu_second']:13.1f}" if "gflops" in v else ""
        cpu = f"{v['cpu_seconds']:9.3f}" if "cpu_seconds" in v else f"{'':9s}"
        print(f"  {name:18s}{v['seconds']:9.3f}{100 * v['share']:7.1f}%{cpu}{gf}")


if __name__ == "__main__":
    main()
