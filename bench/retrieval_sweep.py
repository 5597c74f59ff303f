#!/usr/bin/env python3
"""Wall time of a retrieval-head detection sweep: Headlight vs the transformers reference.

  python3 bench/retrieval_sweep.py                  # default suite (3 needles x 4 lengths x 5 depths)
  python3 bench/retrieval_sweep.py --ref-subset 12  # how many trials the reference runs (default 12)
  python3 bench/retrieval_sweep.py --ref-subset all # the whole sweep through transformers too (slow)

1. Headlight: `headlight retrieval-heads --probes SUITE` runs the whole sweep (prefix reuse on,
   as by default) with OPENBLAS_CORETYPE removed from its environment (Headlight picks and
   verifies the kernel). Wall time of the process, model loading included.
2. Reference: Tests/Fixtures/retrieval/reference_detect.py (Wu et al.'s rule with transformers,
   eager attention, float32, 2 threads) on the *same prompts* (`--export-trials`). By default it
   runs a stratified subset (every needle x length at the middle depth, then more depths until
   --ref-subset trials), and the full sweep's time is estimated per context length: mean seconds
   of the measured trials of that length x the sweep's trials of that length, plus the
   measured model load. The subset's trials are also compared one by one with Headlight's
   per-trial seconds from the run file.
3. Prints both wall times, the ratio, and whether the two agree on the subset (responses).

The machine should be quiet (the 1-minute load average is printed before and after).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--probes", default=os.path.join(ROOT, "probes/niah/default.json"))
    ap.add_argument("--ref-subset", default="12", help="trials the reference runs, or 'all'")
    ap.add_argument("--headlight-bin", default=os.environ.get("HEADLIGHT_BIN")
                    or os.path.join(ROOT, ".build/release/headlight"))
    ap.add_argument("--keep", help="directory for the run file and the reference JSON (default: a temp dir)")
    a = ap.parse_args()
    if not os.path.exists(a.headlight_bin):
        raise SystemExit(f"retrieval_sweep: {a.headlight_bin} not found; run `make build` first")
    work = a.keep or tempfile.mkdtemp(prefix="hl-sweep-bench-")
    os.makedirs(work, exist_ok=True)
    run = os.path.join(work, "sweep.h5")
    trials_json = os.path.join(work, "trials.json")
    ref_json = os.path.join(work, "reference.json")
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("HEADLIGHT_BLAS_CORETYPE", None)
    print(f"load average before: {loadavg():.2f}", flush=True)

    # 1. Headlight, the whole sweep.
    for p in (run, run + ".partial"):
        if os.path.exists(p):
            os.remove(p)
    t = time.perf_counter()
    p = subprocess.run([a.headlight_bin, "retrieval-heads", "--probes", a.probes, "-o", run, "--json",
                        "--no-progress"], capture_output=True, text=True, env=env)
    hl_wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit("retrieval_sweep: headlight failed:\n" + p.stderr)
    summary = json.loads(p.stdout)
    import h5py
    with h5py.File(run, "r") as f:
        tr = f["retrieval_heads/trials"]
        hl_trials = {int(i): {"seconds": float(s), "response": r.decode() if isinstance(r, bytes) else r,
                              "length": int(n), "prefilled": int(pf)}
                     for i, s, r, n, pf in zip(tr["trial_index"][:], tr["seconds"][:], tr["response"][:],
                                               tr["length"][:], tr["prefilled_tokens"][:])}
    print(f"headlight: {len(hl_trials)} trials in {hl_wall:.1f} s wall (model load included); "
          f"{summary.get('counted', '?')} counted", flush=True)

    # 2. The same prompts for the reference.
    p = subprocess.run([a.headlight_bin, "retrieval-heads", "--probes", a.probes, "--export-trials", trials_json],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit("retrieval_sweep: --export-trials failed:\n" + p.stderr)
    exported = json.load(open(trials_json))
    items = exported["trials"] if isinstance(exported, dict) else exported
    cells = [(int(x["trial_index"]), x) for x in items]
    if a.ref_subset == "all":
        chosen = [i for i, _ in cells]
    else:
        k = int(a.ref_subset)
        depths = sorted({float(x["depth"]) for _, x in cells})
        order = sorted(depths, key=lambda d: (abs(d - 50), d))   # middle depth first
        chosen = []
        for d in order:
            for i, x in cells:
                if float(x["depth"]) == d and len(chosen) < k:
                    chosen.append(i)
    t = time.perf_counter()
    p = subprocess.run([sys.executable, os.path.join(ROOT, "Tests/Fixtures/retrieval/reference_detect.py"),
                        "--trials", trials_json, "--out", ref_json, "--threads", "2", "--no-fixture",
                        "--only", ",".join(map(str, chosen))], capture_output=True, text=True)
    ref_wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit("retrieval_sweep: reference failed:\n" + p.stderr[-3000:])
    ref = json.load(open(ref_json))
    load = float(ref.get("load_seconds", 0))
    by_len = {}
    for x in ref["trials"]:
        by_len.setdefault(int(x["length"]), []).append(float(x["seconds"]))
    lengths = sorted({v["length"] for v in hl_trials.values()})
    est = load
    for n in lengths:
        if n not in by_len:
            raise SystemExit(f"retrieval_sweep: the subset has no trial of length {n}; raise --ref-subset")
        est += statistics.mean(by_len[n]) * sum(1 for v in hl_trials.values() if v["length"] == n)
    full = a.ref_subset == "all"
    print(f"reference (transformers, eager, 2 threads): {len(ref['trials'])} trials in {ref_wall:.1f} s wall "
          f"(model load {load:.1f} s)")
    print()
    print(f"{'length':>7} {'ref s/trial':>12} {'headlight s/trial':>18} {'ratio':>7}")
    for n in lengths:
        ids = [int(x["trial_index"]) for x in ref["trials"] if int(x["length"]) == n]
        r = statistics.mean(by_len[n])
        h = statistics.mean(hl_trials[i]["seconds"] for i in ids)
        print(f"{n:>7} {r:>12.2f} {h:>18.2f} {r / h:>7.1f}x")
    same = sum(1 for x in ref["trials"] if x["response"] == hl_trials[int(x["trial_index"])]["response"])
    print()
    print(f"responses identical on the reference's trials: {same}/{len(ref['trials'])}")
    label = "measured" if full else f"estimated from {len(ref['trials'])} trials, per length"
    print(f"sweep wall time: headlight {hl_wall:.1f} s, transformers {est:.1f} s ({label}); "
          f"headlight is {est / hl_wall:.1f}x faster")
    print(f"load average after: {loadavg():.2f}")
    print(f"files: {work}")


if __name__ == "__main__":
    main()
