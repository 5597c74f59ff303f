#!/usr/bin/env python3
"""A batch trace (`headlight trace --prompts FILE.jsonl`, one process, one model load) against the
same prompts traced by separate `headlight trace --prompt` invocations (one process each).

  python3 bench/batch_trace.py                      # 100 prompts, 3 repeats, medians
  python3 bench/batch_trace.py --prompts 20 --repeats 1

Prompts: consecutive ~40-word pieces of probes/niah/haystack/jargon-file-4.4.7.txt (about 50-70
tokens each), written as a JSONL file. Hooks for both: every layer's attention rows of the last
4 queries and the last layer's residual stream there, float16 (--hooks pattern,blocks.-1.hook_resid_post
--queries last:4 --float16). Each repeat times the batch (one process) and the 100 separate
processes in turn (wall time; CPU time user+sys from getrusage of the children), then checks
that every prompt's captures in the batch file equal its separate file's (h5py, if installed).
The model file is read from the page cache after the first run (the warm-up), as it would be for
a user looping over prompts in a shell.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench import default_model  # noqa: E402  (bench/bench.py)

HOOKS = ["--hooks", "pattern,blocks.-1.hook_resid_post", "--queries", "last:4", "--float16"]


def prompts(n):
    text = open(os.path.join(ROOT, "probes/niah/haystack/jargon-file-4.4.7.txt"), encoding="utf-8").read()
    words = text[20000:].split()
    return [" ".join(words[i * 40:(i + 1) * 40]) for i in range(n)]


def timed(cmds, env):
    """Runs the commands one after another: (wall s, cpu s) of all of them."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    for cmd in cmds:
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def check_equal(batch, singles):
    try:
        import h5py
    except ImportError:
        return "not checked (no h5py)"
    with h5py.File(batch, "r") as b:
        names = list(b["inputs"].attrs["names"])
        for name, path in zip(names, singles):
            with h5py.File(path, "r") as s:
                for k in s["captures"]:
                    if s["captures"][k][()].tobytes() != b[f"inputs/{name}/captures/{k}"][()].tobytes():
                        raise SystemExit(f"MISMATCH {name} {k}")
    return f"{len(singles)} prompts equal bit for bit"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build/release/headlight"))
    ap.add_argument("--prompts", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    ps = prompts(a.prompts)
    with tempfile.TemporaryDirectory(prefix="hl-batch-bench-") as work:
        jsonl = os.path.join(work, "prompts.jsonl")
        with open(jsonl, "w", encoding="utf-8") as f:
            for p in ps:
                f.write(json.dumps({"prompt": p}) + "\n")
        batch_out = os.path.join(work, "batch.h5")
        singles = [os.path.join(work, f"s{i:04d}.h5") for i in range(len(ps))]
        batch_cmd = [a.bin, "trace", "-m", a.model, "--prompts", jsonl, *HOOKS, "--quiet", "-o", batch_out]
        single_cmds = [[a.bin, "trace", "-m", a.model, "--prompt", p, *HOOKS, "--quiet", "-o", out]
                       for p, out in zip(ps, singles)]
        timed([batch_cmd], env)                      # warm-up: page cache, binary
        rows = {"batch": [], "separate": []}
        for r in range(a.repeats):
            for name, cmds in (("batch", [batch_cmd]), ("separate", single_cmds)):
                for pth in ([batch_out] if name == "batch" else singles):
                    if os.path.exists(pth):
                        os.remove(pth)
                wall, cpu = timed(cmds, env)
                rows[name].append((wall, cpu))
                print(f"repeat {r + 1} {name}: wall {wall:.2f} s, cpu {cpu:.2f} s", flush=True)
        same = check_equal(batch_out, singles)
        size_b = os.path.getsize(batch_out)
        size_s = sum(os.path.getsize(s) for s in singles)
    mb = statistics.median
    bw, bc = mb(x[0] for x in rows["batch"]), mb(x[1] for x in rows["batch"])
    sw, sc = mb(x[0] for x in rows["separate"]), mb(x[1] for x in rows["separate"])
    print(f"\n{a.prompts} prompts, hooks {' '.join(HOOKS)}; medians of {a.repeats}")
    print("| run | wall s | cpu s (user+sys) | per prompt, wall | output |")
    print("|---|---|---|---|---|")
    print(f"| one batch process (`--prompts`) | {bw:.2f} | {bc:.2f} | {1000 * bw / a.prompts:.0f} ms "
          f"| 1 file, {size_b / 1e6:.1f} MB |")
    print(f"| {a.prompts} separate processes | {sw:.2f} | {sc:.2f} | {1000 * sw / a.prompts:.0f} ms "
          f"| {a.prompts} files, {size_s / 1e6:.1f} MB |")
    print(f"separate / batch: wall {sw / bw:.1f}x, cpu {sc / bc:.1f}x; {same}")
    print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
