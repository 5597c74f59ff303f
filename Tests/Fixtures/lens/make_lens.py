#!/usr/bin/env python3
"""Reference logit lens and direct logit attribution for `headlight lens`, from transformers.

Hugging Face transformers loads the default model's GGUF (SmolLM2-135M-Instruct Q4_1, dequantized
to float32) and runs the eager float32 forward pass of IOI-style prompts. Forward hooks take, at
every layer, the residual stream entering the block (`hook_resid_pre`), the input of `o_proj` (the
heads' z, so each head's output z_h · W_O[:, h]ᵀ is `hook_result`), the block's attention and MLP
outputs, and the last block's output (`hook_resid_post`). In float64 numpy:

- logit lens of row r at position p: W_U · (x / sqrt(mean(x²) + eps) ⊙ w_norm), top-k ids/logits,
  the target's logit and rank, the baseline's logit;
- direct logit attribution of each head / MLP / the embedding to u = W_U[target] − W_U[baseline]:
  (c ⊙ w_norm) · u / s(x_final) — TransformerLens's `logit_attrs` with the cached final scale.

Token ids come from transformers' own tokenizer of the GGUF (the Swift test checks Headlight
tokenizes the prompts the same way). Output: lens.json next to this script.

Usage (torch, transformers, gguf, numpy; see Tests/Fixtures/requirements.txt):
    python3 Tests/Fixtures/lens/make_lens.py [--model PATH]
"""
import argparse
import hashlib
import json
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODEL = os.path.expanduser("~/.cache/headlight/models/SmolLM2-135M-Instruct.Q4_1.gguf")
TOP = 5

CASES = [
    {"name": "ioi", "prompt": "When Mary and John went to the store, John gave a drink to",
     "target": " Mary", "baseline": " John", "positions": [-1]},
    {"name": "ioi-swapped", "prompt": "When John and Mary went to the park, Mary handed the ball to",
     "target": " John", "baseline": " Mary", "positions": [-1, -3]},
    {"name": "capital", "prompt": "The capital of France is",
     "target": " Paris", "baseline": None, "positions": [-1, 2]},
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=DEFAULT_MODEL)
    args = ap.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    d, n = os.path.split(args.model)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=n)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=n, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    cfg = model.config
    L, H = cfg.num_hidden_layers, cfg.num_attention_heads
    D = cfg.hidden_size
    dh = getattr(cfg, "head_dim", None) or D // H
    eps = cfg.rms_norm_eps
    W_U = model.lm_head.weight.detach().double().numpy()  # [V, D]
    w_norm = model.model.norm.weight.detach().double().numpy()  # [D]
    layers = model.model.layers

    taps = {}
    hooks = []
    for l, layer in enumerate(layers):
        def pre(_m, a, kw, l=l):
            x = a[0] if a else kw["hidden_states"]
            taps[("resid_pre", l)] = x[0].detach().double().numpy()
        hooks.append(layer.register_forward_pre_hook(pre, with_kwargs=True))

        def post(_m, _a, out, l=l):
            x = out[0] if isinstance(out, tuple) else out
            taps[("resid_post", l)] = x[0].detach().double().numpy()
        hooks.append(layer.register_forward_hook(post))

        def z(_m, a, l=l):
            taps[("z", l)] = a[0][0].detach().double().numpy()
        hooks.append(layer.self_attn.o_proj.register_forward_pre_hook(z))

        def attn_out(_m, _a, out, l=l):
            taps[("attn_out", l)] = out[0][0].detach().double().numpy()
        hooks.append(layer.self_attn.register_forward_hook(attn_out))

        def mlp_out(_m, _a, out, l=l):
            taps[("mlp_out", l)] = out[0].detach().double().numpy()
        hooks.append(layer.mlp.register_forward_hook(mlp_out))

    def rms(x):
        return np.sqrt(np.mean(x * x) + eps)

    cases = []
    for case in CASES:
        ids = tok(case["prompt"], add_special_tokens=True)["input_ids"]
        t_ids = tok(case["target"], add_special_tokens=False)["input_ids"]
        assert len(t_ids) == 1, (case["target"], t_ids)
        target = t_ids[0]
        baseline = None
        if case["baseline"] is not None:
            b_ids = tok(case["baseline"], add_special_tokens=False)["input_ids"]
            assert len(b_ids) == 1, (case["baseline"], b_ids)
            baseline = b_ids[0]
        taps.clear()
        out = model(torch.tensor([ids]))
        model_logits = out.logits[0].double().numpy()  # [T, V]
        T = len(ids)
        positions = sorted({p % T for p in case["positions"]})
        u = W_U[target] - (W_U[baseline] if baseline is not None else 0)
        wu = w_norm * u
        rows = [taps[("resid_pre", l)] for l in range(L)] + [taps[("resid_post", L - 1)]]
        lens = []
        for p in positions:
            entry = {"position": p, "rows": []}
            for x in rows:
                xn = x[p] / rms(x[p]) * w_norm
                logits = W_U @ xn
                order = np.argsort(-logits, kind="stable")[:TOP]
                entry["rows"].append({
                    "top_ids": [int(i) for i in order],
                    "top_logits": [float(logits[i]) for i in order],
                    "target_logit": float(logits[target]),
                    "target_rank": int(np.sum(logits > logits[target])),
                    "log_normalizer": float(logits.max() + np.log(np.sum(np.exp(logits - logits.max())))),
                    "baseline_logit": float(logits[baseline]) if baseline is not None else None,
                })
            xf = rows[L][p]
            s = rms(xf)
            heads = []
            mlp = []
            for l in range(L):
                zl = taps[("z", l)][p]  # [H*dh]
                wo = layers[l].self_attn.o_proj.weight.detach().double().numpy()  # [D, H*dh]
                heads.append([float((wo[:, h * dh:(h + 1) * dh] @ zl[h * dh:(h + 1) * dh]) @ wu / s) for h in range(H)])
                mlp.append(float(taps[("mlp_out", l)][p] @ wu / s))
            embed = float(rows[0][p] @ wu / s)
            model_diff = float(model_logits[p, target] - (model_logits[p, baseline] if baseline is not None else 0))
            entry["dla"] = {"heads": heads, "mlp": mlp, "embed": embed, "final_scale": float(s),
                            "logit_diff": model_diff,
                            "total": embed + float(np.sum(heads)) + float(np.sum(mlp))}
            entry["model_top"] = int(np.argmax(model_logits[p]))
            lens.append(entry)
        cases.append({"name": case["name"], "prompt": case["prompt"], "ids": [int(i) for i in ids],
                      "target": case["target"], "target_id": int(target), "baseline": case["baseline"],
                      "baseline_id": int(baseline) if baseline is not None else None,
                      "positions": positions, "lens": lens})
    for h in hooks:
        h.remove()
    manifest = {
        "model_file": n, "model_sha256": sha256(args.model),
        "generator": f"transformers {__import__('transformers').__version__}, torch {torch.__version__}, "
                     "float32 eager forward, float64 lens",
        "n_layers": L, "n_heads": H, "top": TOP, "rms_norm_eps": eps, "cases": cases,
    }
    with open(os.path.join(HERE, "lens.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"wrote {os.path.join(HERE, 'lens.json')}: {len(cases)} cases")


if __name__ == "__main__":
    main()
