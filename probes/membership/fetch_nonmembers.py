#!/usr/bin/env python3
"""Fetch the non-member documents of probes/membership/default.json.

Non-members are Python modules from PyPI packages whose first release came after
SmolLM2's release (1 Nov 2024), most of them built on frameworks that did not exist
before then (MCP, announced 25 Nov 2024; the OpenAI Agents SDK, March 2025; Google ADK,
April 2025; A2A, April 2025; the Claude Agent SDK, 2025). The packages and their exact
versions are pinned below (versions and upload months from a snapshot of the PyPI index);
nothing is looked up in bulk: each pinned wheel is downloaded once with
`pip download --no-deps`.

For every package the script:
  1. downloads the pinned wheel into <cache>/wheels (skipped if already there),
  2. reads the license from the wheel's METADATA (License-Expression, License, classifiers)
     and keeps only MIT, BSD or Apache-2.0 packages,
  3. picks up to --per-package of its largest .py modules between --min-bytes and
     --max-bytes (no tests, no __init__.py, no generated code (*_pb2.py, _generated/), no
     vendored code), and extracts them to <cache>/nonmembers/<package>-<version>/<path>,
  4. records per module: path, sha256, bytes, license, the pinned version's upload month
     and which post-cutoff frameworks the module imports (intrinsic evidence that the code
     cannot predate them).

The extracted code is not committed (it stays in the cache directory); only the manifest
(names, versions, paths, hashes, evidence) is, as probes/membership/nonmembers.json.

Usage:
  python3 probes/membership/fetch_nonmembers.py                 # fetch + verify against the manifest
  python3 probes/membership/fetch_nonmembers.py --write-manifest  # (re)build the manifest

The cache directory is $HEADLIGHT_CACHE, else $XDG_CACHE_HOME/headlight, else
~/.cache/headlight (the same one Headlight uses), under membership/.
"""

import argparse
import email.parser
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(HERE, "nonmembers.json")

# (package, pinned version, upload month of that version, first PyPI release (year-month,
# from the project's release history; the script does not re-check it)).
CANDIDATES = [
    ("openai-agents", "0.24.0", "2026-10", "2025-03"),
    ("google-adk", "2.13.0", "2026-10", "2025-04"),
    ("a2a-sdk", "1.3.0", "2026-10", "2025-05"),
    ("strands-agents", "1.62.0", "2026-10", "2025-05"),
    ("strands-agents-tools", "0.8.10", "2026-10", "2025-05"),
    ("fastapi-mcp", "0.4.0", "2025-07", "2025-03"),
    ("langchain-mcp-adapters", "0.3.2", "2026-08", "2025-02"),
    ("langgraph-supervisor", "0.0.31", "2025-11", "2025-02"),
    ("langgraph-swarm", "0.1.0", "2025-12", "2025-03"),
    ("langgraph-bigtool", "0.0.3", "2025-06", "2025-03"),
    ("langmem", "0.0.30", "2025-10", "2025-01"),
    ("mcp-agent", "0.2.6", "2025-12", "2025-01"),
    ("mcp-use", "1.7.1", "2026-09", "2025-03"),
    ("mcpadapt", "0.1.20", "2025-10", "2025-01"),
    ("mini-swe-agent", "2.4.6", "2026-07", "2025-07"),
    ("openai-guardrails", "0.3.6", "2026-10", "2025-10"),
    ("openhands-sdk", "1.58.2", "2026-10", "2025-10"),
    ("openhands-tools", "1.58.2", "2026-10", "2025-10"),
    ("openinference-instrumentation-openai-agents", "2.6.0", "2026-10", "2025-03"),
    ("opentelemetry-instrumentation-openai-agents-v2", "0.1.0", "2025-10", "2025-10"),
    ("pydantic-evals", "2.62.0", "2026-10", "2025-03"),
    ("pydantic-graph", "2.68.0", "2026-11", "2025-01"),
    ("claude-agent-sdk", "0.2.184", "2026-11", "2025-09"),
    ("claude-code-sdk", "0.0.25", "2025-09", "2025-06"),
    ("agent-framework-core", "1.23.0", "2026-10", "2025-10"),
    ("agent-client-protocol", "0.12.1", "2026-08", "2025-09"),
    ("ag-ui-protocol", "1.0.0", "2026-09", "2025-05"),
    ("gepa", "0.1.4", "2026-07", "2025-07"),
    ("sb-cli", "0.1.5", "2025-05", "2025-02"),
    ("swesmith", "0.0.9", "2026-02", "2025-04"),
    ("fast-agent-mcp", "0.10.48", "2026-10", "2025-01"),
    ("serena-agent", "2.1.0", "2026-10", "2025-07"),
    ("docling-mcp", "3.3.0", "2026-10", "2025-04"),
    ("kimi-cli", "1.52.0", "2026-09", "2025-10"),
    ("llama-index-tools-mcp", "0.6.0", "2026-08", "2025-01"),
    ("any-agent", "1.18.0", "2026-02", "2025-03"),
    ("verifiers", "0.4.0", "2026-10", "2025-02"),
    ("swe-rex", "1.4.0", "2025-08", "2025-02"),
    ("langchain-protocol", "0.0.20", "2026-10", "2026-01"),
    ("openai-harmony", "0.0.8", "2025-11", "2025-08"),
]

PERMISSIVE = [
    (re.compile(r"\bMIT\b", re.I), "MIT"),
    (re.compile(r"\bApache\b", re.I), "Apache-2.0"),
    (re.compile(r"\bBSD\b", re.I), "BSD"),
]

# Top-level modules of frameworks first released after 1 Nov 2024: importing one of them is
# evidence the module was written after that date.
POST_CUTOFF_FRAMEWORKS = {
    "mcp": "MCP Python SDK (protocol announced 2024-11-25)",
    "fastmcp": "FastMCP (2024-12)",
    "agents": "OpenAI Agents SDK (2025-03)",
    "google.adk": "Google Agent Development Kit (2025-04)",
    "a2a": "A2A SDK (2025-04)",
    "strands": "Strands Agents (2025-05)",
    "claude_agent_sdk": "Claude Agent SDK (2025-09)",
    "claude_code_sdk": "Claude Code SDK (2025-06)",
    "pydantic_ai": "Pydantic AI (2024-12)",
    "pydantic_graph": "pydantic-graph (2025-01)",
    "pydantic_evals": "pydantic-evals (2025-03)",
    "agent_framework": "Microsoft Agent Framework (2025-10)",
    "acp": "Agent Client Protocol (2025-09)",
    "ag_ui": "AG-UI protocol (2025-05)",
    "openhands.sdk": "OpenHands SDK (2025-10)",
    "mcp_agent": "mcp-agent (2025-01)",
    "mcp_use": "mcp-use (2025-03)",
    "openai_harmony": "openai-harmony (2025-08)",
    "langgraph_supervisor": "langgraph-supervisor (2025-02)",
    "langgraph_swarm": "langgraph-swarm (2025-03)",
    "langchain_mcp_adapters": "langchain-mcp-adapters (2025-02)",
    "swerex": "SWE-ReX (2025-02)",
    "minisweagent": "mini-swe-agent (2025-07)",
    "gepa": "GEPA (2025-07)",
}


def cache_root():
    env = os.environ
    if env.get("HEADLIGHT_CACHE"):
        base = env["HEADLIGHT_CACHE"]
    elif env.get("XDG_CACHE_HOME"):
        base = os.path.join(env["XDG_CACHE_HOME"], "headlight")
    else:
        base = os.path.join(os.path.expanduser("~"), ".cache", "headlight")
    return os.path.join(base, "membership")


def wheel_path(wheels, package, version):
    norm = re.sub(r"[-_.]+", "_", package).lower()
    for name in sorted(os.listdir(wheels)) if os.path.isdir(wheels) else []:
        if name.endswith(".whl") and name.lower().startswith(f"{norm}-{version}-"):
            return os.path.join(wheels, name)
    return None


def download(wheels, package, version):
    found = wheel_path(wheels, package, version)
    if found:
        return found
    os.makedirs(wheels, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--ignore-requires-python", "--no-cache-dir", "-q", "-d", wheels, f"{package}=={version}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"pip download {package}=={version} failed: {r.stderr.strip()[-400:]}")
    found = wheel_path(wheels, package, version)
    if not found:
        raise RuntimeError(f"pip download {package}=={version}: no wheel found in {wheels}")
    return found


def license_of(zf):
    meta_name = next((n for n in zf.namelist() if n.endswith(".dist-info/METADATA")), None)
    if meta_name is None:
        return None, "no METADATA"
    meta = email.parser.Parser().parsestr(zf.read(meta_name).decode("utf-8", "replace"))
    texts = []
    if meta.get("License-Expression"):
        texts.append(("License-Expression", meta["License-Expression"]))
    for c in meta.get_all("Classifier") or []:
        if c.startswith("License ::"):
            texts.append(("Classifier", c))
    lic = meta.get("License")
    if lic:
        texts.append(("License", lic.strip().splitlines()[0][:120]))
    for n in zf.namelist():   # license files shipped in the wheel
        base = n.rsplit("/", 1)[-1].upper()
        if ".dist-info/" in n and (base.startswith("LICENSE") or base.startswith("LICENCE") or base.startswith("COPYING")):
            head = zf.read(n).decode("utf-8", "replace")[:400]
            texts.append((n.split(".dist-info/")[1], " ".join(head.split())[:120]))
    for source, text in texts:
        if re.search(r"\bGPL|AGPL|LGPL|MPL|Proprietary|Commercial\b", text, re.I) and source != "Classifier":
            return None, f"{source}: {text}"
        for rx, name in PERMISSIVE:
            if rx.search(text):
                return name, f"{source}: {text}"
    return None, "; ".join(f"{s}: {t}" for s, t in texts) or "no license information"


SKIP = re.compile(r"(^|/)(tests?|testing|_vendor|vendor|vendored|examples?|migrations|_?generated)(/|$)|(^|/)_?generated[^/]*\.py$|_pb2(_grpc)?\.py$|(^|/)__init__\.py$|(^|/)conftest\.py$")


def frameworks_imported(text, own_modules):
    found = []
    for mod, desc in POST_CUTOFF_FRAMEWORKS.items():
        if mod in own_modules:
            continue
        pat = re.escape(mod)
        if re.search(rf"^\s*(from\s+{pat}(\.|\s)|import\s+{pat}(\.|\s|$|,))", text, re.M):
            found.append(mod)
    return found


def pick_modules(zf, args):
    files = []
    for info in zf.infolist():
        n = info.filename
        if not n.endswith(".py") or ".dist-info/" in n or ".data/" in n or SKIP.search(n):
            continue
        if args.min_bytes <= info.file_size <= args.max_bytes:
            files.append((info.file_size, n))
    files.sort(key=lambda x: (-x[0], x[1]))
    return [n for _, n in files[:args.per_package]]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=cache_root(), help="cache directory (default: %(default)s)")
    ap.add_argument("--write-manifest", action="store_true", help="rebuild probes/membership/nonmembers.json")
    ap.add_argument("--per-package", type=int, default=2, help="modules per package (default 2)")
    ap.add_argument("--min-bytes", type=int, default=10000)
    ap.add_argument("--max-bytes", type=int, default=120000)
    ap.add_argument("--count", type=int, default=60, help="modules in the manifest (default 60)")
    args = ap.parse_args()

    wheels = os.path.join(args.cache, "wheels")
    out_root = os.path.join(args.cache, "nonmembers")

    if not args.write_manifest:
        # Fetch exactly what the manifest names, and check the hashes.
        with open(MANIFEST) as f:
            manifest = json.load(f)
        bad = 0
        by_pkg = {}
        for e in manifest["files"]:
            by_pkg.setdefault((e["package"], e["version"]), []).append(e)
        for (pkg, ver), entries in by_pkg.items():
            whl = download(wheels, pkg, ver)
            with zipfile.ZipFile(whl) as zf:
                for e in entries:
                    data = zf.read(e["wheel_path"])
                    dest = os.path.join(out_root, e["path"])
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    with open(dest, "wb") as g:
                        g.write(data)
                    if hashlib.sha256(data).hexdigest() != e["sha256"]:
                        print(f"sha256 mismatch: {e['path']}", file=sys.stderr)
                        bad += 1
        print(f"{len(manifest['files'])} non-member modules in {out_root}" + (f", {bad} hash mismatches" if bad else ""))
        return 1 if bad else 0

    entries, rejected = [], []
    for pkg, ver, month, first in CANDIDATES:
        try:
            whl = download(wheels, pkg, ver)
        except RuntimeError as e:
            rejected.append({"package": pkg, "version": ver, "reason": str(e)})
            print(f"skip {pkg}: {e}", file=sys.stderr)
            continue
        with zipfile.ZipFile(whl) as zf:
            lic, evidence = license_of(zf)
            if lic is None:
                rejected.append({"package": pkg, "version": ver, "reason": f"license not MIT/BSD/Apache: {evidence}"})
                print(f"skip {pkg}: license {evidence}", file=sys.stderr)
                continue
            own = {n.split("/")[0] for n in zf.namelist() if "/" in n and ".dist-info" not in n}
            own |= {"/".join(n.split("/")[:2]).replace("/", ".") for n in zf.namelist() if n.count("/") >= 2}
            picked = pick_modules(zf, args)
            if not picked:
                rejected.append({"package": pkg, "version": ver, "reason": "no module in the size range"})
            for n in picked:
                data = zf.read(n)
                text = data.decode("utf-8", "replace")
                entries.append({
                    "path": f"{pkg}-{ver}/{n}",
                    "package": pkg, "version": ver, "wheel_path": n,
                    "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                    "license": lic, "license_evidence": evidence,
                    "version_month": month, "first_release": first,
                    "imports_post_cutoff": frameworks_imported(text, own),
                })
    # Round-robin over packages (largest module of each first) up to --count modules.
    firsts, seconds, seen = [], [], set()
    for e in entries:
        (seconds if e["package"] in seen else firsts).append(e)
        seen.add(e["package"])
    chosen = (firsts + seconds)[:args.count]
    chosen.sort(key=lambda e: e["path"])
    for e in chosen:
        dest = os.path.join(out_root, e["path"])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with zipfile.ZipFile(wheel_path(wheels, e["package"], e["version"])) as zf:
            with open(dest, "wb") as g:
                g.write(zf.read(e["wheel_path"]))
    manifest = {
        "description": "Non-members: Python modules from PyPI packages first released in 2025-2026, "
                       "after SmolLM2 (Nov 2024). Written by fetch_nonmembers.py --write-manifest; "
                       "the code itself stays in the cache directory.",
        "root": "{cache}/membership/nonmembers",
        "hint": "run `python3 probes/membership/fetch_nonmembers.py` to download them",
        "files": chosen,
        "rejected": rejected,
    }
    with open(MANIFEST, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=False)
        f.write("\n")
    print(f"{len(chosen)} modules from {len({e['package'] for e in chosen})} packages -> {MANIFEST}; "
          f"{len(rejected)} packages rejected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
