"""Session fixtures: real run files written by the headlight CLI, one of every kind it writes.

The binary is $HEADLIGHT_BIN, else ../.build/release/headlight relative to python/ (build it with
`swift build -c release -Xswiftc -enable-testing --product headlight`). The model is the CLI's
default (SmolLM2-135M, `bash scripts/fetch-model.sh`) unless $HEADLIGHT_MODEL says otherwise.
Commands run two at a time (independent ones together) from the repository root, with grids
kept tiny so that the whole suite stays within a few minutes on two cores.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
PROMPT = "The cat sat on the mat. The dog sat on the rug. The cat"
NIAH = ["--probes", "probes/niah/smoke.json", "--needle-ids", "beijing"]


def headlight_bin() -> str:
    env = os.environ.get("HEADLIGHT_BIN")
    path = Path(env) if env else REPO / ".build" / "release" / "headlight"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.exit(f"headlight binary not found at {path}: build it with `swift build -c release -Xswiftc "
                    f"-enable-testing --product headlight` or set HEADLIGHT_BIN", returncode=3)
    return str(path.resolve())


@dataclass
class CLIRun:
    """One CLI invocation of the fixture: its run file and what it printed."""
    name: str
    path: Path
    args: List[str]
    stdout: str
    stderr: str
    seconds: float

    @property
    def json(self) -> dict:
        return json.loads(self.stdout)


IOI = "When Mary and John went to the store, John gave a drink to"


def _run(binary: str, name: str, args: List[str], out: Path, expect_ok: bool = True) -> CLIRun:
    argv = [binary, *args, "-o", str(out)]
    t0 = time.time()
    proc = subprocess.run(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          stdin=subprocess.DEVNULL, timeout=600)
    if expect_ok and proc.returncode != 0:
        raise RuntimeError(f"fixture {name}: {' '.join(argv)} exited {proc.returncode}:\n{proc.stderr}")
    return CLIRun(name, out, argv, proc.stdout, proc.stderr, time.time() - t0)


def _membership_docs(root: Path) -> Dict[str, Path]:
    """Six member-like (Jargon File excerpts, in the web text the model was trained on) and six
    synthetic word-salad documents, as two directories of text files."""
    hay = (REPO / "probes/niah/haystack/jargon-file-4.4.7.txt").read_text(encoding="utf-8")
    m, n = root / "members", root / "nonmembers"
    m.mkdir()
    n.mkdir()
    rng = random.Random(0)
    words = "alpha beta gamma delta quantum river ledger orbit maple tensor violet harbor".split()
    for i in range(6):
        (m / f"jargon{i}.txt").write_text(hay[20000 + i * 1500:20000 + (i + 1) * 1500], encoding="utf-8")
        (n / f"salad{i}.txt").write_text(" ".join(rng.choice(words) for _ in range(250)), encoding="utf-8")
    return {"members": m, "nonmembers": n}


def _killed_trace(binary: str, out: Path) -> Optional[Path]:
    """Starts a long trace and SIGKILLs it once its temporary file exists: the leftover
    `<out>.tmp-<pid>` (complete = 0, or an unreadable HDF5 file if killed mid-flush)."""
    text = ("The quick brown fox jumps over the lazy dog. " * 400)
    proc = subprocess.Popen([binary, "trace", "--prompt", text, "--hooks", "pattern,resid_post", "--quiet",
                             "-o", str(out)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tmp = out.parent / f"{out.name}.tmp-{proc.pid}"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if tmp.exists() and tmp.stat().st_size > 0:
            time.sleep(0.5)                      # let it write its header
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    return tmp if tmp.exists() else None


@pytest.fixture(scope="session")
def binary() -> str:
    return headlight_bin()


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory, binary: str) -> Dict[str, CLIRun]:
    d = tmp_path_factory.mktemp("runs")
    docs = _membership_docs(d)
    rh = d / "detect.h5"
    stage1 = {
        "rh": (["retrieval-heads", *NIAH, "--lengths", "300", "--depths", "0,100", "--no-progress", "--json"], rh),
        "rows": (["trace", "--prompt", PROMPT, "--hooks", "pattern,resid_post,hook_k", "--layers", "2,3",
                  "--heads", "0,4", "--queries", "last:3"], d / "rows.h5"),
        "full": (["trace", "--prompt", PROMPT, "--hooks", "blocks.3.attn.hook_pattern,blocks.3.attn.hook_z",
                  "--generate", "3", "--ignore-eos"], d / "full.h5"),
        "topk": (["trace", "--prompt", PROMPT, "--hooks", "blocks.3.attn.hook_pattern", "--top-k", "3",
                  "--generate", "3", "--ignore-eos", "--float16"], d / "topk.h5"),
        "spans": (["trace", "--prompt", PROMPT, "--hooks", "blocks.3.attn.hook_pattern",
                   "--spans", "first=1:4", "--spans", "rug=rug"], d / "spans.h5"),
        "membership": (["membership", "--members", str(docs["members"]), "--nonmembers", str(docs["nonmembers"]),
                        "--folds", "2", "--max-tokens-per-doc", "96", "--bootstrap", "100", "--workers", "1",
                        "--no-progress", "--json"], d / "membership.h5"),
        "partial": (["retrieval-heads", *NIAH, "--lengths", "300", "--depths", "0,100", "--no-progress",
                     "--stop-after", "1"], d / "stopped.h5"),
        "profile": (["profile", "--lengths", "64,128", "--samples", "2", "--queries", "4", "--no-progress",
                     "--json"], d / "profile.h5"),
        "lens": (["lens", "--prompt", IOI, "--target", " Mary", "--baseline", " John", "--positions=-1,-3",
                  "--top", "4"], d / "lens.h5"),
    }
    stage2 = {
        "ablate": (["ablate", *NIAH, "--scores", str(rh), "--top", "2", "--controls", "1", "--lengths", "300",
                    "--depths", "0,100", "--ppl-tokens", "48", "--bootstrap", "200", "--no-progress", "--json"],
                   d / "ablation.h5"),
        "causal": (["ablate", *NIAH, "--scores", str(rh), "--causal", "2", "--lengths", "300", "--depths", "50",
                    "--ppl-tokens", "0", "--bootstrap", "100", "--no-progress", "--json"], d / "causal.h5"),
        "cite": (["cite", "--probes", "probes/citation/smoke.jsonl", "--limit", "3", "--retrieval-heads", str(rh),
                  "--top", "4", "--resamples", "200", "--no-progress", "--json"], d / "cite.h5"),
        "qr": (["query-heads", "--limit", "4", "--top", "4", "--retrieval-heads", str(rh), "--resamples", "100",
                "--no-progress", "--json"], d / "qr.h5"),
        "attention": (["report", "attention", *NIAH, "--heads-from", str(rh), "--lengths", "300",
                       "--depths", "0,100", "--top", "3", "--max-steps", "12"], d / "attention.h5"),
        "composition": (["report", "composition", "--heads-from", str(rh), "--top", "4", "--baseline-draws", "1"],
                        d / "composition.h5"),
        "kv": (["kv-policy", *NIAH, "--full-heads-from", str(rh), "--top", "2", "--window", "32", "--sinks", "2",
                "--controls", "1", "--lengths", "300", "--depths", "0,100", "--ppl-tokens", "130",
                "--bootstrap", "200", "--no-progress", "--json"], d / "kv.h5"),
    }
    out: Dict[str, CLIRun] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for stage in (stage1, stage2):
            futures = {k: pool.submit(_run, binary, k, args, path) for k, (args, path) in stage.items()}
            for k, fut in futures.items():
                out[k] = fut.result()
    out["partial"].path = Path(str(out["partial"].path) + ".partial")
    return out


@pytest.fixture(scope="session")
def killed_trace(tmp_path_factory: pytest.TempPathFactory, binary: str, runs: Dict[str, CLIRun]) -> Optional[Path]:
    return _killed_trace(binary, tmp_path_factory.mktemp("killed") / "long.h5")


#: The prompts of the batch fixture (`trace --prompts`): names given and defaulted, one chat prompt, one
#: that generates; the first is PROMPT so that it can be compared with the single-prompt "rows" fixture.
BATCH_LINES = [
    {"prompt": PROMPT, "name": "cat"},
    {"prompt": IOI, "generate": 2},
    {"prompt": "Name a colour.", "name": "chat-1", "chat": True},
]
BATCH_HOOKS = ["--hooks", "pattern,resid_post,hook_k", "--layers", "2,3", "--heads", "0,4", "--queries", "last:3"]


@pytest.fixture(scope="session")
def batch(tmp_path_factory: pytest.TempPathFactory, binary: str, runs: Dict[str, CLIRun]) -> Dict[str, CLIRun]:
    """A finished 3-prompt batch, the same batch stopped after one prompt (its `.partial`), and the
    prompts file."""
    d = tmp_path_factory.mktemp("batch")
    jsonl = d / "prompts.jsonl"
    jsonl.write_text("\n".join(json.dumps(x) for x in BATCH_LINES) + "\n", encoding="utf-8")
    args = ["trace", "--prompts", str(jsonl), *BATCH_HOOKS, "--ignore-eos"]
    out = {"done": _run(binary, "batch", args, d / "batch.h5"),
           "stopped": _run(binary, "stopped", [*args, "--stop-after", "1"], d / "stopped.h5")}
    out["stopped"].path = Path(str(out["stopped"].path) + ".partial")
    out["jsonl"] = CLIRun("jsonl", jsonl, [], "", "", 0.0)
    return out
