#!/usr/bin/env python3
"""Reference fixtures for the model families beyond Llama/Qwen2 (issue 12), from Hugging Face
transformers loading GGUF files.

1. Tiny random-weight GGUFs (tiny-<family>.gguf, F32, vocab 128, d_model 32), written with gguf-py
   under llama.cpp's architecture names, metadata keys and tensor names, with the tensor transforms
   llama.cpp's convert_hf_to_gguf.py applies (see README.md):

     qwen3         QK-norm (attn_q_norm / attn_k_norm), no biases, head_dim 16 != d_model / n_head
     mistral       arch `llama` with `llama.attention.sliding_window` = 8 (Mistral-style window)
     phi3          fused attn_qkv and fused ffn_up (gate rows first, then up rows)
     llama3rope    arch `llama` with Llama-3 rope scaling, stored as the `rope_freqs.weight` tensor
     gemma2        pre/post norms, GeGLU (tanh), attention and final logit soft-capping, sliding
                   window 8 on even layers, norms stored as (1 + w)
     gemma3        QK-norm, pre/post norms, GeGLU (tanh), 5 local : 1 global layers (6 layers),
                   sliding window 8, local rope base 10000 / global rope base 1e6, norms as (1 + w)

   Each GGUF is then loaded back with transformers' GGUF loader (`from_pretrained(dir,
   gguf_file=...)`, float32, eager attention) and its outputs are checked against the in-memory
   model it was written from (they must agree to 1e-4: this proves the GGUF round trip). Where the
   GGUF loader does not read a key llama.cpp reads (the sliding window of `llama`, the rope_freqs
   tensor, the Gemma soft-caps ...), the value is passed to from_pretrained as a config override
   and the manifest says so. Written per family:
     tiny-<family>.json         manifest: config, prompts (token ids), greedy continuation, overrides
     tiny-<family>.logits.f32   per prompt [T, V] float32 logits, prompts concatenated
     tiny-<family>.attn.f32     per prompt, per listed layer: [H, T, T] attention probabilities
                                (zeros above the diagonal)

2. The real Gemma 3 270M Q4_K_M GGUF (`scripts/fetch-model.sh gemma3-270m`; never committed):
     gemma3-270m.json           prompts (token ids, from the GGUF's own tokenizer via transformers),
                                top-5 ids and logits at every position, attention rows (local layer 0
                                and global layer 5, a few query positions, every head), the 32-token
                                greedy continuation of each prompt
     gemma3-270m.logits.f32     full last-position logits [V] of the prompts listed in the manifest
     gemma3-270m.attn.f32       attention rows, [H, q + 1] each, in manifest order

Binary files are little-endian float32, row-major; shapes are in the manifests.

Usage (torch, transformers >= 5, gguf, numpy; see Tests/Fixtures/requirements.txt):
    python3 Tests/Fixtures/families/make_families.py [--skip-tiny] [--skip-gemma] [--gemma PATH]
"""
import argparse
import hashlib
import importlib.metadata
import json
import math
import os
import shutil
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("HEADLIGHT_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "headlight")
GEMMA_PATH = os.path.join(CACHE, "models", "gemma-3-270m-q4_k_m.gguf")
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"

VOCAB = 128
TINY_GREEDY = 16
GEMMA_GREEDY = 32


def versions():
    return {name: importlib.metadata.version(name) for name in ("transformers", "torch", "gguf", "numpy")}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_f32(path, arrays):
    np.concatenate([np.asarray(a, dtype="<f4").reshape(-1) for a in arrays]).tofile(path)


class AttentionTap:
    """Forward hooks on the self_attn modules of chosen layers. Eager attention returns
    (attn_output, attn_weights [B, H, T, S]); keeps the last call's weights per layer."""

    def __init__(self, model, layers):
        self.weights = {}
        self.handles = [model.model.layers[l].self_attn.register_forward_hook(self._hook(l)) for l in layers]

    def _hook(self, layer):
        def fn(_module, _inputs, output):
            w = output[1]
            assert w is not None, "attention weights missing: use attn_implementation='eager'"
            self.weights[layer] = w[0].detach().float().numpy().copy()   # [H, T, S]
        return fn

    def close(self):
        for h in self.handles:
            h.remove()


@torch.no_grad()
def greedy(model, ids, steps):
    """Greedy continuation with the KV cache; EOS is not special (always `steps` tokens)."""
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


# ---------------------------------------------------------------------------------------------
# 1. Tiny random-weight families

def permute_qk(w, n_head):
    """convert_hf_to_gguf.py LlamaModel.permute: HF rotate-half rows -> adjacent (GPT-J) pairs, so
    that llama.cpp's "normal" RoPE on (2i, 2i+1) reproduces HF's rotate-half RoPE."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape))


def llama3_rope_factors(head_dim, theta, scaling):
    """convert_hf_to_gguf.py LlamaModel.generate_extra_tensors: the `rope_freqs.weight` values for
    rope_type llama3 (llama.cpp divides each frequency by its factor)."""
    factor = scaling["factor"]
    low_freq_factor = scaling["low_freq_factor"]
    high_freq_factor = scaling["high_freq_factor"]
    old_context_len = scaling["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    factors = []
    for freq in freqs.tolist():
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            factors.append(1)
        elif wavelen > low_freq_wavelen:
            factors.append(factor)
        else:
            smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


# Per family: the transformers classes, config, GGUF architecture, and the loader overrides.
def family_specs():
    from transformers import (Gemma2Config, Gemma2ForCausalLM, Gemma3ForCausalLM, Gemma3TextConfig,
                              LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Phi3Config,
                              Phi3ForCausalLM, Qwen3Config, Qwen3ForCausalLM)
    common = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-6,
                  attn_implementation="eager")
    llama3_scaling = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    return {
        "qwen3": dict(
            arch="qwen3", seed=21, layers=2, attn_layers=[0, 1],
            make=lambda: Qwen3ForCausalLM(Qwen3Config(
                **common, num_hidden_layers=2, head_dim=16, tie_word_embeddings=False, attention_bias=False,
                use_sliding_window=False, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}))),
        "mistral": dict(
            arch="llama", seed=22, layers=2, attn_layers=[0, 1], sliding_window=8,
            make=lambda: MistralForCausalLM(MistralConfig(
                **common, num_hidden_layers=2, head_dim=8, tie_word_embeddings=False, sliding_window=8,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0}))),
        "phi3": dict(
            arch="phi3", seed=23, layers=2, attn_layers=[0, 1],
            make=lambda: Phi3ForCausalLM(Phi3Config(
                **{**common, "num_key_value_heads": 4}, num_hidden_layers=2, tie_word_embeddings=False,
                original_max_position_embeddings=512, sliding_window=None, pad_token_id=0,
                bos_token_id=1, eos_token_id=2,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0}))),
        "llama3rope": dict(
            arch="llama", seed=24, layers=2, attn_layers=[0, 1], llama3_scaling=llama3_scaling,
            make=lambda: LlamaForCausalLM(LlamaConfig(
                **common, num_hidden_layers=2, tie_word_embeddings=True, rope_parameters=dict(llama3_scaling)))),
        "gemma2": dict(
            arch="gemma2", seed=25, layers=2, attn_layers=[0, 1],
            make=lambda: Gemma2ForCausalLM(Gemma2Config(
                **common, num_hidden_layers=2, head_dim=16, query_pre_attn_scalar=16, sliding_window=8,
                attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0}))),
        "gemma3": dict(
            arch="gemma3", seed=26, layers=6, attn_layers=[0, 5],
            make=lambda: Gemma3ForCausalLM(Gemma3TextConfig(
                **common, num_hidden_layers=6, head_dim=16, query_pre_attn_scalar=16, sliding_window=8,
                layer_types=["sliding_attention"] * 5 + ["full_attention"],
                hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
                final_logit_softcapping=None, attn_logit_softcapping=None,
                rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                                 "full_attention": {"rope_type": "default", "rope_theta": 1000000.0}}))),
    }


def randomize(model, seed):
    """Seeded random weights with enough spread that attention is far from uniform. Norm weights
    are drawn around 1 for (x * w) norms and around 0 for Gemma's (x * (1 + w)) norms."""
    gemma = "Gemma" in type(model).__name__
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_((0.0 if gemma else 1.0) + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5 * 1.5)


def write_tiny_gguf(path, family, spec, model):
    import gguf
    cfg = model.config
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    arch, L = spec["arch"], cfg.num_hidden_layers
    H, Hkv = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // H
    gemma = family.startswith("gemma")

    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"headlight tiny random {family} (seed {spec['seed']})")
    w.add_block_count(L)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(H)
    w.add_head_count_kv(Hkv)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    if head_dim != cfg.hidden_size // H or gemma:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    if family == "gemma3":
        w.add_rope_freq_base(cfg.rope_parameters["full_attention"]["rope_theta"])
        w.add_sliding_window(cfg.sliding_window)
    else:
        w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    if family == "gemma2":
        w.add_sliding_window(cfg.sliding_window)
        w.add_attn_logit_softcapping(cfg.attn_logit_softcapping)
        w.add_final_logit_softcapping(cfg.final_logit_softcapping)
    if family == "mistral":
        w.add_sliding_window(cfg.sliding_window)        # llama.attention.sliding_window (see README)
    if family in ("mistral", "llama3rope"):
        w.add_rope_dimension_count(head_dim)
    if family == "phi3":
        w.add_rope_dimension_count(head_dim)
        w.add_context_length(cfg.max_position_embeddings)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)

    def t(name, arr):
        w.add_tensor(name, np.ascontiguousarray(arr, dtype=np.float32))

    def norm(arr):
        # Gemma's RMSNorm multiplies by (1 + w); convert_hf_to_gguf.py stores 1 + w.
        return arr + 1.0 if gemma else arr

    t("token_embd.weight", sd["model.embed_tokens.weight"])
    if "llama3_scaling" in spec:
        t("rope_freqs.weight", llama3_rope_factors(head_dim, spec["llama3_scaling"]["rope_theta"],
                                                   spec["llama3_scaling"]))
    for i in range(L):
        p = f"model.layers.{i}."
        t(f"blk.{i}.attn_norm.weight", norm(sd[p + "input_layernorm.weight"]))
        if family == "phi3":
            t(f"blk.{i}.attn_qkv.weight", sd[p + "self_attn.qkv_proj.weight"])
        else:
            q, k = sd[p + "self_attn.q_proj.weight"], sd[p + "self_attn.k_proj.weight"]
            if arch == "llama":
                q, k = permute_qk(q, H), permute_qk(k, Hkv)
            t(f"blk.{i}.attn_q.weight", q)
            t(f"blk.{i}.attn_k.weight", k)
            t(f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        if family in ("qwen3", "gemma3"):
            t(f"blk.{i}.attn_q_norm.weight", norm(sd[p + "self_attn.q_norm.weight"]))
            t(f"blk.{i}.attn_k_norm.weight", norm(sd[p + "self_attn.k_norm.weight"]))
        t(f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        if gemma:
            t(f"blk.{i}.post_attention_norm.weight", norm(sd[p + "post_attention_layernorm.weight"]))
            t(f"blk.{i}.ffn_norm.weight", norm(sd[p + "pre_feedforward_layernorm.weight"]))
            t(f"blk.{i}.post_ffw_norm.weight", norm(sd[p + "post_feedforward_layernorm.weight"]))
        else:
            t(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        if family == "phi3":
            t(f"blk.{i}.ffn_up.weight", sd[p + "mlp.gate_up_proj.weight"])
        else:
            t(f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
            t(f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        t(f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    t("output_norm.weight", norm(sd["model.norm.weight"]))
    if not cfg.tie_word_embeddings:
        t("output.weight", sd["lm_head.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def loader_overrides(family, spec, cfg):
    """Config values passed to from_pretrained because transformers' GGUF loader does not read them
    from the GGUF (llama.cpp does; README.md lists the keys). Probed: only what the loaded config
    gets wrong is overridden."""
    want = {}
    if family == "llama3rope":
        want["rope_parameters"] = dict(spec["llama3_scaling"])
    if family == "gemma2":
        want.update(sliding_window=cfg.sliding_window, attn_logit_softcapping=cfg.attn_logit_softcapping,
                    final_logit_softcapping=cfg.final_logit_softcapping,
                    query_pre_attn_scalar=cfg.query_pre_attn_scalar, head_dim=cfg.head_dim)
    if family == "gemma3":
        want.update(sliding_window=cfg.sliding_window, layer_types=list(cfg.layer_types),
                    query_pre_attn_scalar=cfg.query_pre_attn_scalar, head_dim=cfg.head_dim,
                    rope_parameters=json.loads(json.dumps(cfg.rope_parameters)),
                    final_logit_softcapping=None, attn_logit_softcapping=None)
    if family == "qwen3":
        want["head_dim"] = cfg.head_dim
    if family == "phi3":
        want["sliding_window"] = None
        want["pad_token_id"] = 0        # Phi3Config's default 32000 is outside the tiny vocabulary
    return want


def load_gguf_model(path, overrides):
    from transformers import AutoConfig, AutoModelForCausalLM
    d, n = os.path.split(path)
    base = AutoConfig.from_pretrained(d, gguf_file=n)
    needed = {}
    for key, value in overrides.items():
        if getattr(base, key, "<absent>") != value:
            needed[key] = value
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=n, dtype=torch.float32,
                                                 attn_implementation="eager", **needed)
    return model.eval(), needed, type(base).__name__


def as_mistral(llama, sliding_window):
    """transformers' GGUF loader reads arch `llama` as LlamaForCausalLM (it maps to Mistral only for
    general.name == "mistral", and that path fails with gguf 0.19: gguf-py has no `mistral` arch).
    Mistral's parameters are Llama's, so the weights it loaded from the GGUF are moved into a
    MistralForCausalLM with the sliding window on."""
    from transformers import MistralConfig, MistralForCausalLM
    c = llama.config
    cfg = MistralConfig(vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
                        num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
                        num_key_value_heads=c.num_key_value_heads, head_dim=c.head_dim,
                        max_position_embeddings=c.max_position_embeddings, rms_norm_eps=c.rms_norm_eps,
                        tie_word_embeddings=c.tie_word_embeddings, sliding_window=sliding_window,
                        rope_parameters=dict(c.rope_parameters), attn_implementation="eager")
    model = MistralForCausalLM(cfg).float().eval()
    missing, unexpected = model.load_state_dict(llama.state_dict(), strict=False)
    assert not unexpected and all("rotary" in m for m in missing), (missing, unexpected)
    return model


def make_tiny(family, spec):
    torch.manual_seed(spec["seed"])
    model = spec["make"]().float().eval()
    randomize(model, spec["seed"])
    cfg = model.config
    gguf_name = f"tiny-{family}.gguf"
    path = os.path.join(HERE, gguf_name)
    write_tiny_gguf(path, family, spec, model)

    tmp = tempfile.mkdtemp()
    try:
        shutil.copy(path, os.path.join(tmp, gguf_name))
        loaded, overrides, cfg_class = load_gguf_model(os.path.join(tmp, gguf_name),
                                                       loader_overrides(family, spec, cfg))
    finally:
        shutil.rmtree(tmp)
    reference = type(loaded).__name__
    if family == "mistral":
        loaded = as_mistral(loaded, cfg.sliding_window)
        overrides["sliding_window"] = cfg.sliding_window
        reference = f"MistralForCausalLM holding the weights {reference} loaded from the GGUF"

    rng = np.random.default_rng(spec["seed"])
    prompts = [rng.integers(0, VOCAB, size=n).tolist() for n in (40, 13, 27)]
    layers = spec["attn_layers"]
    logits_all, attn_all, entries = [], [], []
    worst = 0.0
    with torch.no_grad():
        for ids in prompts:
            tap = AttentionTap(loaded, layers)
            logits = loaded(torch.tensor([ids])).logits[0].float().numpy()            # [T, V]
            tap.close()
            direct = model(torch.tensor([ids])).logits[0].float().numpy()
            diff = float(np.abs(logits - direct).max())
            worst = max(worst, diff)
            assert diff < 1e-4, f"{family}: GGUF round trip differs from the source model by {diff}"
            logits_all.append(logits)
            for l in layers:
                attn_all.append(tap.weights[l])                                          # [H, T, T]
            entries.append({"tokens": ids, "greedy": greedy(loaded, ids, TINY_GREEDY),
                            "top1": logits.argmax(-1).tolist()})
    write_f32(os.path.join(HERE, f"tiny-{family}.logits.f32"), logits_all)
    write_f32(os.path.join(HERE, f"tiny-{family}.attn.f32"), attn_all)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    manifest = {
        "family": family,
        "gguf": gguf_name,
        "architecture": spec["arch"],
        "seed": spec["seed"],
        "vocab_size": cfg.vocab_size,
        "n_layers": cfg.num_hidden_layers,
        "n_heads": cfg.num_attention_heads,
        "n_kv_heads": cfg.num_key_value_heads,
        "head_dim": head_dim,
        "transformers_config": cfg_class,
        "reference_model": reference,
        "loader_overrides": overrides,
        "roundtrip_max_abs_diff": worst,
        "prompts": entries,
        "logits_file": f"tiny-{family}.logits.f32",
        "logits_layout": "per prompt [T, vocab_size], prompts in order",
        "attention_file": f"tiny-{family}.attn.f32",
        "attention_layers": layers,
        "attention_layout": "per prompt, per attention_layers entry: [n_heads, T, T] (zeros above the diagonal)",
        "greedy_steps": TINY_GREEDY,
        "generator": "Tests/Fixtures/families/make_families.py, float32 eager",
        "versions": versions(),
    }
    with open(os.path.join(HERE, f"tiny-{family}.json"), "w") as f:
        json.dump(manifest, f, separators=(",", ":"))
        f.write("\n")
    print(f"tiny {family}: {os.path.getsize(path)} bytes, overrides {sorted(overrides)}, "
          f"round trip max |diff| {worst:.2e}, greedy {entries[0]['greedy']}")


# ---------------------------------------------------------------------------------------------
# 2. Gemma 3 270M

def gemma_prompts(tok):
    """(name, ids) with BOS first: ~20, ~100 and >= 1000 tokens (the last crosses the 512-token
    window of the local layers)."""
    bos = tok.bos_token_id
    short = "The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is"
    story = (
        "Once upon a time, in a small village at the edge of a great forest, there lived an old "
        "clockmaker named Elias. Every morning he opened the shutters of his workshop, wound the "
        "hundred clocks that hung on its walls, and listened as they ticked together like rain on "
        "a roof. One winter a girl knocked on his door carrying a broken pocket watch that had "
        "belonged to her grandmother. \"Can you make it run again?\" she asked. Elias turned the "
        "watch over in his hands, opened its back, and smiled. ")
    with open("/usr/share/common-licenses/GPL-3") as f:
        license_text = f.read()
    out = []
    for name, text, limit in (("short", short, None), ("story", story, None), ("license", license_text, 1100)):
        ids = [bos] + tok(text, add_special_tokens=False).input_ids
        if limit is not None:
            ids = ids[:limit]
        out.append((name, ids))
    return out


@torch.no_grad()
def make_gemma(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    if not os.path.exists(path):
        raise SystemExit(f"{path} not found: run scripts/fetch-model.sh gemma3-270m")
    digest = sha256(path)
    if digest != GEMMA_SHA256:
        raise SystemExit(f"{path}: sha256 {digest}, expected {GEMMA_SHA256}")
    d, n = os.path.split(path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=n)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=n, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    cfg = model.config
    local_layer, global_layer = 0, 5
    assert cfg.layer_types[local_layer] == "sliding_attention", cfg.layer_types
    assert cfg.layer_types[global_layer] == "full_attention", cfg.layer_types
    full_logits_of = {"short", "license"}                 # the size budget allows two full [V] rows
    logits_rows, attn_rows, entries = [], [], []
    for name, ids in gemma_prompts(tok):
        T = len(ids)
        tap = AttentionTap(model, [local_layer, global_layer])
        logits = model(torch.tensor([ids])).logits[0].float()                           # [T, V]
        tap.close()
        top = logits.topk(5, dim=-1)
        queries = sorted({T - 1, T // 2, min(T - 1, 3)} | ({600, 1000} if T > 1000 else set()))
        attention = []
        for layer in (local_layer, global_layer):
            w = tap.weights[layer]                                                         # [H, T, T]
            for q in queries:
                attn_rows.append(w[:, q, : q + 1])                                         # [H, q + 1]
                attention.append({"layer": layer, "query": q,
                                  "kind": cfg.layer_types[layer]})
        entry = {
            "name": name,
            "tokens": ids,
            "top5_ids": top.indices.tolist(),
            "top5_logits": [[round(float(v), 5) for v in row] for row in top.values],
            "attention": attention,
            "greedy": greedy(model, ids, GEMMA_GREEDY),
        }
        if name in full_logits_of:
            entry["full_logits_index"] = len(logits_rows)
            logits_rows.append(logits[-1].numpy())
        entry["greedy_text"] = tok.decode(entry["greedy"])
        entries.append(entry)
        print(f"gemma3 {name}: T={T} top1 last {entry['top5_ids'][-1][0]} greedy {entry['greedy_text'][:60]!r}")
    write_f32(os.path.join(HERE, "gemma3-270m.logits.f32"), logits_rows)
    write_f32(os.path.join(HERE, "gemma3-270m.attn.f32"), attn_rows)
    manifest = {
        "model_file": n,
        "model_sha256": digest,
        "fetch": "scripts/fetch-model.sh gemma3-270m",
        "vocab_size": cfg.vocab_size,
        "n_layers": cfg.num_hidden_layers,
        "n_heads": cfg.num_attention_heads,
        "n_kv_heads": cfg.num_key_value_heads,
        "head_dim": cfg.head_dim,
        "sliding_window": cfg.sliding_window,
        "layer_types": list(cfg.layer_types),
        "transformers_config": type(cfg).__name__,
        "logits_file": "gemma3-270m.logits.f32",
        "logits_layout": "[vocab_size] last-position logits per prompt with full_logits_index, in that order",
        "attention_file": "gemma3-270m.attn.f32",
        "attention_layout": "per prompt, per attention entry: [n_heads, query + 1]",
        "greedy_steps": GEMMA_GREEDY,
        "prompts": entries,
        "generator": "Tests/Fixtures/families/make_families.py, float32 eager",
        "versions": versions(),
    }
    with open(os.path.join(HERE, "gemma3-270m.json"), "w") as f:
        json.dump(manifest, f, separators=(",", ":"))
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-tiny", action="store_true")
    ap.add_argument("--skip-gemma", action="store_true")
    ap.add_argument("--only", help="comma-separated tiny families")
    ap.add_argument("--gemma", default=GEMMA_PATH)
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    if not a.skip_tiny:
        specs = family_specs()
        for family, spec in specs.items():
            if a.only and family not in a.only.split(","):
                continue
            make_tiny(family, spec)
    if not a.skip_gemma:
        make_gemma(a.gemma)


if __name__ == "__main__":
    main()
