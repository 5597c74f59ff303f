#!/usr/bin/env python3
"""Regenerates Headlight's forward-pass fidelity fixtures from Hugging Face transformers.

Two kinds of fixture, both read by Tests/InferenceTests/Model/ForwardTests.swift:

1. smollm2/  — references for the default model (SmolLM2-135M-Instruct.Q4_1.gguf, Llama
   architecture). transformers dequantizes the GGUF to float32 (undoing llama.cpp's Q/K
   permutation) and runs the eager float32 forward pass. For each prompt we store the token ids
   (from transformers' own tokenizer, so the Swift test does not depend on Headlight's
   tokenizer), the top-1 token at every position, full-vocab logits at a few positions,
   attention probabilities of every head at a few (layer, query) positions and the 64-token
   greedy continuation (EOS not special: always 64 steps).

2. tiny-qwen2.gguf, tiny-llama.gguf + tiny-*.json/.f32 — random-weight toy models built in
   transformers with a fixed seed and written to F32 GGUF files with the `gguf` package, named
   the way llama.cpp's convert_hf_to_gguf.py names them. llama's attn_q/attn_k rows are
   permuted the way the converter does (so ggml's "normal" RoPE on adjacent pairs reproduces
   HF's rotate-half RoPE); qwen2's are stored unpermuted (llama.cpp applies NEOX RoPE to it).

Usage (torch, transformers, accelerate, gguf, numpy):
    python3 Tests/Fixtures/reference/make_reference.py [--model PATH] [--skip-smollm2] [--skip-tiny]

Binary files are little-endian float32, row-major, with shapes given in the JSON manifests.
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODEL = os.path.expanduser("~/.cache/headlight/models/SmolLM2-135M-Instruct.Q4_1.gguf")
GREEDY_STEPS = 64


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class AttentionTap:
    """Forward hooks on self_attn modules of chosen layers; eager attention returns
    (attn_output, attn_weights[B, H, T, T]). Keeps only the requested query rows."""

    def __init__(self, model, wanted):  # wanted: {layer: [query positions]}
        self.rows = {}
        self.handles = []
        for layer, queries in wanted.items():
            mod = model.model.layers[layer].self_attn
            self.handles.append(mod.register_forward_hook(self._hook(layer, queries)))

    def _hook(self, layer, queries):
        def fn(_module, _inputs, output):
            w = output[1]
            assert w is not None, "attention weights missing: use attn_implementation='eager'"
            for q in queries:
                self.rows[(layer, q)] = w[0, :, q, : q + 1].detach().float().numpy().copy()
        return fn

    def close(self):
        for h in self.handles:
            h.remove()


@torch.no_grad()
def greedy(model, ids, steps):
    """Greedy continuation with the KV cache; EOS is not special."""
    out = model(torch.tensor([ids]), use_cache=True)
    cache = out.past_key_values
    nxt = int(out.logits[0, -1].argmax())
    result = [nxt]
    for _ in range(steps - 1):
        out = model(torch.tensor([[nxt]]), past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        nxt = int(out.logits[0, -1].argmax())
        result.append(nxt)
    return result


def sample_positions(T, k):
    """k distinct positions spread over [0, T): always the first and the last."""
    if T <= k:
        return list(range(T))
    return sorted(set(int(round(x)) for x in np.linspace(0, T - 1, k)))


# ---------------------------------------------------------------------------------------------
# 1. SmolLM2 references

def smollm2_prompts(tok):
    chat = tok.apply_chat_template(
        [{"role": "user", "content": "Write one sentence about the sea."}],
        tokenize=False, add_generation_prompt=True)
    story = (
        "Once upon a time, in a small village at the edge of a great forest, there lived an old "
        "clockmaker named Elias. Every morning he opened the shutters of his workshop, wound the "
        "hundred clocks that hung on its walls, and listened as they ticked together like rain on "
        "a roof. One winter a girl knocked on his door carrying a broken pocket watch that had "
        "belonged to her grandmother. \"Can you make it run again?\" she asked. Elias turned the "
        "watch over in his hands, opened its back, and smiled. ")
    with open(os.path.join(sys.prefix, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}",
                           "json", "decoder.py")) as f:
        code = f.read()
    license_path = "/usr/share/common-licenses/GPL-3"
    with open(license_path) as f:
        license_text = f.read()
    prompts = [
        ("capital", "The capital of France is", None),
        ("chat", chat, None),
        ("story", story, None),
        ("code", code, 600),
        ("license", license_text, 2000),
    ]
    out = []
    for name, text, limit in prompts:
        ids = tok(text, add_special_tokens=False).input_ids
        if limit is not None:
            ids = ids[:limit]
        out.append((name, ids))
    return out


@torch.no_grad()
def make_smollm2(model_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    d, n = os.path.split(model_path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=n)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=n, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    cfg = model.config
    outdir = os.path.join(HERE, "smollm2")
    os.makedirs(outdir, exist_ok=True)
    manifest = {
        "model_file": n,
        "model_sha256": sha256(model_path),
        "generator": f"transformers {__import__('transformers').__version__}, torch {torch.__version__}, float32 eager",
        "vocab_size": cfg.vocab_size,
        "n_layers": cfg.num_hidden_layers,
        "n_heads": cfg.num_attention_heads,
        "greedy_steps": GREEDY_STEPS,
        "prompts": [],
    }
    rng = np.random.default_rng(1234)
    for name, ids in smollm2_prompts(tok):
        T = len(ids)
        logit_pos = sample_positions(T, 3 if T > 100 else 2)
        # Attention rows: three (layer, query) pairs spread over layers and positions.
        layers = [0, cfg.num_hidden_layers // 2, cfg.num_hidden_layers - 1]
        queries = [T - 1, int(rng.integers(0, T)), min(T - 1, max(1, T // 3))]
        samples = list(zip(layers, queries))
        wanted = {}
        for l, q in samples:
            wanted.setdefault(l, []).append(q)
        tap = AttentionTap(model, wanted)
        out = model(torch.tensor([ids]))
        tap.close()
        logits = out.logits[0].float()                             # [T, V]
        top1 = logits.argmax(-1).tolist()
        top2 = logits.topk(2, dim=-1).values
        margin = (top2[:, 0] - top2[:, 1]).tolist()
        logits_np = logits[logit_pos].numpy().astype("<f4")         # [P, V]
        logits_np.tofile(os.path.join(outdir, f"{name}.logits.f32"))
        attn = np.concatenate([tap.rows[(l, q)].reshape(-1) for l, q in samples]).astype("<f4")
        attn.tofile(os.path.join(outdir, f"{name}.attn.f32"))      # per sample [H, q+1]
        cont = greedy(model, ids, GREEDY_STEPS)
        manifest["prompts"].append({
            "name": name,
            "tokens": ids,
            "top1": top1,
            "top1_margin": [round(m, 5) for m in margin],
            "logit_positions": logit_pos,
            "logits_file": f"{name}.logits.f32",
            "attention": [{"layer": l, "query": q} for l, q in samples],
            "attention_file": f"{name}.attn.f32",
            "greedy": cont,
            "greedy_text": tok.decode(cont),
        })
        print(f"{name}: T={T} logits at {logit_pos} attention {samples} min margin {min(margin):.4f}"
              f" greedy: {tok.decode(cont)[:60]!r}")
    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump(manifest, f, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------
# 2. Tiny random-weight models

def permute_qk(w, n_head, n_head_kv):
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute: HF rotate-half rows -> adjacent pairs."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
             .swapaxes(1, 2).reshape(w.shape))


def make_tiny(arch, seed):
    import gguf
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(seed)
    common = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  rms_norm_eps=1e-6, attn_implementation="eager")
    theta = 10000.0
    if arch == "qwen2":
        cfg = Qwen2Config(**common, tie_word_embeddings=False, use_sliding_window=False,
                          rope_parameters={"rope_type": "default", "rope_theta": theta})
        model = Qwen2ForCausalLM(cfg)
    else:
        cfg = LlamaConfig(**common, tie_word_embeddings=True,
                          rope_parameters={"rope_type": "default", "rope_theta": theta})
        model = LlamaForCausalLM(cfg)
    model = model.float().eval()
    # Seeded random weights with enough spread that attention is far from uniform.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif pname.endswith("bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5 * 1.5)
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    H, Hkv, L = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.num_hidden_layers

    path = os.path.join(HERE, f"tiny-{arch}.gguf")
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"headlight tiny random {arch} (seed {seed})")
    w.add_block_count(L)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(H)
    w.add_head_count_kv(Hkv)
    w.add_rope_freq_base(theta)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    if arch == "llama":
        w.add_rope_dimension_count(cfg.hidden_size // H)
        w.add_vocab_size(cfg.vocab_size)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)

    def t(name, arr):
        w.add_tensor(name, np.ascontiguousarray(arr, dtype=np.float32))

    t("token_embd.weight", sd["model.embed_tokens.weight"])
    for i in range(L):
        p = f"model.layers.{i}."
        q, k = sd[p + "self_attn.q_proj.weight"], sd[p + "self_attn.k_proj.weight"]
        if arch == "llama":
            q, k = permute_qk(q, H, H), permute_qk(k, H, Hkv)
        t(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"])
        t(f"blk.{i}.attn_q.weight", q)
        t(f"blk.{i}.attn_k.weight", k)
        t(f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        if arch == "qwen2":
            t(f"blk.{i}.attn_q.bias", sd[p + "self_attn.q_proj.bias"])
            t(f"blk.{i}.attn_k.bias", sd[p + "self_attn.k_proj.bias"])
            t(f"blk.{i}.attn_v.bias", sd[p + "self_attn.v_proj.bias"])
        t(f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        t(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        t(f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        t(f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        t(f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    t("output_norm.weight", sd["model.norm.weight"])
    if not cfg.tie_word_embeddings:
        t("output.weight", sd["lm_head.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    rng = np.random.default_rng(seed)
    ids = rng.integers(0, cfg.vocab_size, size=40).tolist()
    with torch.no_grad():
        tap = AttentionTap(model, {l: list(range(len(ids))) for l in range(L)})
        logits = model(torch.tensor([ids])).logits[0].float().numpy().astype("<f4")  # [T, V]
        tap.close()
        cont = greedy(model, ids, 16)
    logits.tofile(os.path.join(HERE, f"tiny-{arch}.logits.f32"))
    # Attention: every layer, head and query: [L, H, T, T] with zeros above the diagonal.
    T = len(ids)
    attn = np.zeros((L, H, T, T), dtype="<f4")
    for l in range(L):
        for q in range(T):
            attn[l, :, q, : q + 1] = tap.rows[(l, q)]
    attn.tofile(os.path.join(HERE, f"tiny-{arch}.attn.f32"))
    manifest = {"gguf": f"tiny-{arch}.gguf", "seed": seed, "tokens": ids, "vocab_size": cfg.vocab_size,
                "n_layers": L, "n_heads": H, "logits_file": f"tiny-{arch}.logits.f32",
                "attention_file": f"tiny-{arch}.attn.f32", "greedy": cont,
                "generator": f"transformers {__import__('transformers').__version__}, torch {torch.__version__}"}
    with open(os.path.join(HERE, f"tiny-{arch}.json"), "w") as f:
        json.dump(manifest, f, separators=(",", ":"))
    print(f"tiny {arch}: {os.path.getsize(path)} bytes, greedy {cont}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--skip-smollm2", action="store_true")
    ap.add_argument("--skip-tiny", action="store_true")
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    if not a.skip_tiny:
        make_tiny("qwen2", seed=7)
        make_tiny("llama", seed=11)
    if not a.skip_smollm2:
        make_smollm2(a.model)


if __name__ == "__main__":
    main()
