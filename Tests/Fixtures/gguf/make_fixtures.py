#!/usr/bin/env python3
"""Regenerates the GGUF reader fixtures in this directory with the Python `gguf`
package (gguf-py, llama.cpp's own reader/writer; tested with gguf 0.19.0, numpy 2.4).

    python3 Tests/Fixtures/gguf/make_fixtures.py [MODEL.gguf]

Writes:
  gguf_py_small.bin        a small little-endian GGUF v3 written by gguf-py's GGUFWriter
                           (metadata of every scalar type, string/number/bool arrays,
                           F32, F16, Q8_0, Q4_0 and Q4_1 tensors); `.bin`, not `.gguf`,
                           because the repository's .gitignore drops *.gguf
  gguf_py_small.json       what gguf-py's GGUFReader reads back from it, and the
                           dequantized values from gguf.quants.dequantize
  gguf_py_bigendian.bin    the same writer with endianess=BIG (must be rejected as byte-swapped)
  smollm2_reference.json   facts about the default model (SmolLM2-135M-Instruct.Q4_1.gguf,
                           sha256 b179c952...) and dequantized values of a few tensors at
                           fixed element indices, plus whole-tensor sums, all from gguf-py

  gemma3_reference.json    the same for Gemma 3 270M Q4_K_M (gemma-3-270m-q4_k_m.gguf, sha256
                           a5fd3b62..., `scripts/fetch-model.sh gemma3-270m`): one tensor of each
                           type it holds (Q8_0, Q5_0, Q4_K, Q6_K, F32), written only when the file is
                           cached

Element indices are into the flattened tensor in ggml order (dims[0] fastest), which is
the order Headlight's GGUFFile.dequantize returns.
"""
import hashlib, json, os, sys
import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def default_model_path():
    if os.environ.get("HEADLIGHT_MODEL"):
        return os.environ["HEADLIGHT_MODEL"]
    cache = os.environ.get("HEADLIGHT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "headlight")
    return os.path.join(cache, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


def gemma_model_path():
    cache = os.environ.get("HEADLIGHT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "headlight")
    return os.path.join(cache, "models", "gemma-3-270m-q4_k_m.gguf")


def flat(reader_tensor):
    """Dequantized values of a GGUFReader tensor, flattened in ggml order."""
    data = gguf.quants.dequantize(reader_tensor.data, reader_tensor.tensor_type)
    return np.asarray(data, dtype=np.float32).reshape(-1)


def f(x):
    return float(np.float32(x))  # exact: every float32 is a float64


def field_value(field):
    v = field.contents()
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    return v


def small_file():
    rng = np.random.RandomState(1234)
    path = os.path.join(HERE, "gguf_py_small.bin")
    w = gguf.GGUFWriter(path, arch="tinyllama")
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_uint64("test.u64", 18000000000000000000)
    w.add_int64("test.i64", -9000000000000000000)
    w.add_float32("test.f32", 0.15625)
    w.add_float64("test.f64", -2.5e-300)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo, GGUF ✓")
    w.add_array("test.strings", ["a", "", "ü", "<|im_start|>"])
    w.add_array("test.ints", [1, -2, 3])          # gguf-py stores these as i32
    w.add_array("test.floats", [0.5, -1.25])      # ... and these as f32
    w.add_array("test.bools", [True, False, True])
    w.add_uint32("tinyllama.block_count", 2)
    tensors = {
        "f32.weight": (rng.randn(3, 8).astype(np.float32), None),
        "f16.weight": (rng.randn(2, 16).astype(np.float16), None),
        "q8_0.weight": (rng.randn(2, 64).astype(np.float32), Q.Q8_0),
        "q4_0.weight": (rng.randn(3, 32).astype(np.float32), Q.Q4_0),
        "q4_1.weight": (rng.randn(1, 64).astype(np.float32), Q.Q4_1),
    }
    for name, (arr, qt) in tensors.items():
        if qt is None:
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, gguf.quants.quantize(arr, qt), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    r = gguf.GGUFReader(path)
    meta = {}
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        types = [t.name for t in field.types]
        meta[name] = {"types": types, "value": field_value(field)}
    out = {
        "file": "gguf_py_small.bin",
        "size": os.path.getsize(path),
        "version": int(r.fields["GGUF.version"].contents()),
        "metadata": meta,
        "tensors": [],
    }
    for t in r.tensors:
        vals = flat(t)
        out["tensors"].append({
            "name": t.name,
            "type": t.tensor_type.name,
            "dims": [int(d) for d in t.shape],          # ggml order
            "absolute_offset": int(t.data_offset),
            "bytes": int(t.n_bytes),
            "values": [f(v) for v in vals],
        })
    with open(os.path.join(HERE, "gguf_py_small.json"), "w") as fh:
        json.dump(out, fh, indent=1, ensure_ascii=False)
        fh.write("\n")

    be = os.path.join(HERE, "gguf_py_bigendian.bin")
    w = gguf.GGUFWriter(be, arch="tinyllama", endianess=gguf.GGUFEndian.BIG)
    w.add_uint32("tinyllama.block_count", 2)
    w.add_tensor("f32.weight", np.arange(8, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def model_reference(model):
    with open(model, "rb") as fh:
        sha = hashlib.sha256(fh.read()).hexdigest()
    if sha != MODEL_SHA256:
        sys.exit(f"{model}: sha256 {sha}, expected {MODEL_SHA256}")
    r = gguf.GGUFReader(model)
    fields = r.fields
    types = sorted({t.tensor_type.name for t in r.tensors})
    ref = {
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "sha256": sha,
        "generated_by": f"gguf-py {getattr(gguf, '__version__', '0.19.0')} (make_fixtures.py)",
        "file_size": os.path.getsize(model),
        "version": int(fields["GGUF.version"].contents()),
        "metadata_count": len([k for k in fields if not k.startswith("GGUF.")]),
        "tensor_count": len(r.tensors),
        "tensor_types": types,
        "type_counts": {ty: sum(1 for t in r.tensors if t.tensor_type.name == ty) for ty in types},
        "data_offset": int(r.data_offset),
        "hyperparameters": {k: int(fields[k].contents()) for k in [
            "llama.block_count", "llama.context_length", "llama.embedding_length",
            "llama.feed_forward_length", "llama.attention.head_count",
            "llama.attention.head_count_kv", "llama.rope.dimension_count", "llama.vocab_size"]},
        "rms_epsilon": f(fields["llama.attention.layer_norm_rms_epsilon"].contents()),
        "rope_freq_base": f(fields["llama.rope.freq_base"].contents()),
        "architecture": fields["general.architecture"].contents(),
        "tokenizer_model": fields["tokenizer.ggml.model"].contents(),
        "vocab_size": len(fields["tokenizer.ggml.tokens"].data),
        "merges": len(fields["tokenizer.ggml.merges"].data),
        "tokens_sample": {str(i): fields["tokenizer.ggml.tokens"].contents(i) for i in [0, 1, 2, 100, 49151]},
        "tensors": {},
    }
    picks = ["token_embd.weight", "blk.0.attn_q.weight", "blk.29.ffn_down.weight",
             "blk.0.attn_norm.weight", "output_norm.weight"]
    ref["tensors"] = tensor_samples(r, picks)
    with open(os.path.join(HERE, "smollm2_reference.json"), "w") as fh:
        json.dump(ref, fh, indent=1, ensure_ascii=False)
        fh.write("\n")


def tensor_samples(r, picks):
    """Dequantized values at fixed flat indices plus whole-tensor sums, per tensor name."""
    out = {}
    by_name = {t.name: t for t in r.tensors}
    for name in picks:
        t = by_name[name]
        vals = flat(t)
        n = vals.size
        rng = np.random.RandomState(7)
        idx = sorted(set([0, 1, 2, 31, 32, 33, 63, 64, n // 2, n - 33, n - 1]
                         + [int(i) for i in rng.randint(0, n, size=12)]))
        idx = [i for i in idx if 0 <= i < n]
        out[name] = {
            "type": t.tensor_type.name,
            "dims": [int(d) for d in t.shape],
            "absolute_offset": int(t.data_offset),
            "bytes": int(t.n_bytes),
            "samples": {str(i): f(vals[i]) for i in idx},
            "sum": float(np.sum(vals, dtype=np.float64)),
            "sum_abs": float(np.sum(np.abs(vals), dtype=np.float64)),
        }
    return out


def gemma_reference(model):
    """Gemma 3 270M Q4_K_M: structure, and one tensor of each quantization type it holds."""
    with open(model, "rb") as fh:
        sha = hashlib.sha256(fh.read()).hexdigest()
    if sha != GEMMA_SHA256:
        sys.exit(f"{model}: sha256 {sha}, expected {GEMMA_SHA256}")
    r = gguf.GGUFReader(model)
    fields = r.fields
    types = sorted({t.tensor_type.name for t in r.tensors})
    ints = ["gemma3.block_count", "gemma3.context_length", "gemma3.embedding_length",
            "gemma3.feed_forward_length", "gemma3.attention.head_count", "gemma3.attention.head_count_kv",
            "gemma3.attention.key_length", "gemma3.attention.value_length", "gemma3.attention.sliding_window",
            "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
            "tokenizer.ggml.padding_token_id"]
    ref = {
        "model": "gemma-3-270m-q4_k_m.gguf",
        "sha256": sha,
        "generated_by": f"gguf-py {getattr(gguf, '__version__', '0.19.0')} (make_fixtures.py)",
        "file_size": os.path.getsize(model),
        "metadata_count": len([k for k in fields if not k.startswith("GGUF.")]),
        "tensor_count": len(r.tensors),
        "type_counts": {ty: sum(1 for t in r.tensors if t.tensor_type.name == ty) for ty in types},
        "data_offset": int(r.data_offset),
        "architecture": fields["general.architecture"].contents(),
        "integers": {k: int(fields[k].contents()) for k in ints},
        "floats": {k: f(fields[k].contents()) for k in ["gemma3.rope.freq_base",
                                                         "gemma3.attention.layer_norm_rms_epsilon"]},
        "bools": {k: bool(fields[k].contents()) for k in ["tokenizer.ggml.add_bos_token",
                                                          "tokenizer.ggml.add_eos_token",
                                                          "tokenizer.ggml.add_space_prefix"]},
        "tokenizer_model": fields["tokenizer.ggml.model"].contents(),
        "vocab_size": len(fields["tokenizer.ggml.tokens"].data),
        "tokens_sample": {str(i): fields["tokenizer.ggml.tokens"].contents(i)
                          for i in [0, 1, 2, 3, 105, 106, 1000, 262143]},
    }
    ref["tensors"] = tensor_samples(r, ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_output.weight",
                                        "blk.0.ffn_down.weight", "blk.17.ffn_down.weight",
                                        "blk.0.attn_q_norm.weight", "blk.0.post_ffw_norm.weight"])
    with open(os.path.join(HERE, "gemma3_reference.json"), "w") as fh:
        json.dump(ref, fh, indent=1, ensure_ascii=False)
        fh.write("\n")


if __name__ == "__main__":
    small_file()
    model = sys.argv[1] if len(sys.argv) > 1 else default_model_path()
    if os.path.exists(model):
        model_reference(model)
    else:
        print(f"model not found at {model}; smollm2_reference.json left unchanged", file=sys.stderr)
    if os.path.exists(gemma_model_path()):
        gemma_reference(gemma_model_path())
    else:
        print(f"Gemma 3 270M not found at {gemma_model_path()} (scripts/fetch-model.sh gemma3-270m); "
              "gemma3_reference.json left unchanged", file=sys.stderr)
