#!/usr/bin/env python3
"""Writes the golden dequantization fixtures used by Tests/GGUFTests/DequantTests.swift.

For every GGML type Headlight dequantizes, this writes
  <TYPE>.bin   raw block bytes, exactly as they would sit in a GGUF tensor
  <TYPE>.f32   the expected Float32 output (little-endian), one per element
and manifest.json describing both (block counts and named sections).

Expected values come from gguf-py's numpy dequantizers (gguf.quants, pip package
"gguf"), an implementation independent of the Swift one. Q8_K has no gguf-py
dequantizer, so it is decoded here with numpy (y = d * q, as in ggml-quants.c).

Each quantized type gets three kinds of blocks:
  quantized  random floats run through gguf-py's quantizer (only the types it can quantize)
  random     random bytes, with every f16/f32 scale field replaced by a finite, reasonable value
  edge cases zero/negative/-0/huge/subnormal scales, all-0x00 and all-0xFF quant bytes
F32/F16/BF16 get random values plus special bit patterns (±0, ±Inf, NaNs, subnormals, extremes).

Deterministic: one seeded numpy Generator; re-running reproduces the files byte for byte.
Usage: python3 Tests/Fixtures/dequant/make_fixtures.py
"""

import importlib.metadata
import json
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants
from gguf.constants import GGML_QUANT_SIZES

SEED = 20250601
OUT = Path(__file__).resolve().parent

# Byte offset and kind of every floating-point scale field in a block (ggml-common.h).
SCALE_FIELDS = {
    T.Q4_0: [(0, "f16")],                  # d
    T.Q4_1: [(0, "f16"), (2, "f16")],      # d, m
    T.Q5_0: [(0, "f16")],                  # d
    T.Q5_1: [(0, "f16"), (2, "f16")],      # d, m
    T.Q8_0: [(0, "f16")],                  # d
    T.Q2_K: [(80, "f16"), (82, "f16")],    # d, dmin (after scales[16], qs[64])
    T.Q3_K: [(108, "f16")],                # d (after hmask[32], qs[64], scales[12])
    T.Q4_K: [(0, "f16"), (2, "f16")],      # d, dmin
    T.Q5_K: [(0, "f16"), (2, "f16")],      # d, dmin
    T.Q6_K: [(208, "f16")],                # d (after ql[128], qh[64], scales[16])
    T.Q8_K: [(0, "f32")],                  # d
}

# Types gguf-py can quantize (it has quantize_blocks for these).
QUANTIZABLE = {T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0}

rng = np.random.default_rng(SEED)


def scale_bytes(value, kind):
    """Little-endian bytes of one scale field; `value` is a float or ("bits", int)."""
    if isinstance(value, tuple):
        dtype = np.uint16 if kind == "f16" else np.uint32
        return np.array([value[1]], dtype=dtype).view(np.uint8)
    dtype = np.float16 if kind == "f16" else np.float32
    return np.array([value], dtype=dtype).view(np.uint8)


def set_scales(block, qtype, values):
    """Writes `values` (one per scale field, or one for all) into a block's scale fields."""
    fields = SCALE_FIELDS[qtype]
    if not isinstance(values, list):
        values = [values] * len(fields)
    for (offset, kind), value in zip(fields, values):
        raw = scale_bytes(value, kind)
        block[offset:offset + len(raw)] = raw


def random_scale():
    """A finite, reasonable scale: |s| in about [1e-5, 3], either sign."""
    return float(rng.standard_normal() * 10.0 ** rng.uniform(-4, 0))


def random_floats(n_blocks, block_size):
    """Weights with a per-block magnitude spread and occasional outliers."""
    x = rng.standard_normal((n_blocks, block_size)) * 10.0 ** rng.uniform(-3, 1, (n_blocks, 1))
    outliers = rng.random((n_blocks, block_size)) < 0.03
    x[outliers] *= 8
    return x.astype(np.float32)


def quantized_blocks(qtype, n_blocks):
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    x = random_floats(n_blocks, block_size)
    x[0] = 0.0  # an all-zero input block quantizes to d = 0
    raw = quants.quantize(x, qtype)
    return raw.reshape(n_blocks, type_size)


def random_blocks(qtype, n_blocks):
    _, type_size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (n_blocks, type_size), dtype=np.uint8)
    for block in raw:
        set_scales(block, qtype, [random_scale() for _ in SCALE_FIELDS[qtype]])
    return raw


def edge_blocks(qtype):
    """(label, block) pairs with extreme scales and quant bytes."""
    _, type_size = GGML_QUANT_SIZES[qtype]
    kind = SCALE_FIELDS[qtype][0][1]
    n_fields = len(SCALE_FIELDS[qtype])
    huge = 65504.0 if kind == "f16" else 1e36            # largest f16; f32 kept well clear of overflow
    tiny = ("bits", 0x0001)                               # smallest subnormal (f16 and f32 alike)
    largest_subnormal = ("bits", 0x03FF if kind == "f16" else 0x007FFFFF)

    def rand():
        return rng.integers(0, 256, type_size, dtype=np.uint8)

    cases = [
        ("all quant bytes 0x00, scales +1", np.zeros(type_size, np.uint8), 1.0),
        ("all quant bytes 0xFF, scales -1.5", np.full(type_size, 0xFF, np.uint8), -1.5),
        ("random quants, scales +0", rand(), 0.0),
        ("random quants, scales -0", rand(), -0.0),
        ("random quants, scales max", rand(), huge),
        ("random quants, subnormal scales", rand(), [tiny, largest_subnormal][:n_fields]),
        ("random quants, mixed-sign scales", rand(), [0.25, -0.125][:n_fields]),
    ]
    out = []
    for label, block, scales in cases:
        set_scales(block, qtype, scales)
        out.append((label, block))
    return out


def expected_values(qtype, raw):
    """Float32 reference output for raw block bytes (shape (n_blocks, type_size))."""
    flat = np.ascontiguousarray(raw).reshape(-1)
    if qtype == T.Q8_K:
        # block_q8_K: f32 d | i8 qs[256] | i16 bsums[16]; y = d * q.
        d = raw[:, 0:4].copy().view(np.float32)
        q = raw[:, 4:260].copy().view(np.int8).astype(np.float32)
        return (d * q).reshape(-1).astype(np.float32)
    return np.asarray(quants.dequantize(flat, qtype), dtype=np.float32).reshape(-1)


def scalar_type_fixture(qtype):
    """Sections for F32/F16/BF16: random values plus special bit patterns."""
    values = random_floats(8, 32).reshape(-1)
    if qtype == T.F32:
        specials = [0x00000000, 0x80000000, 0x00000001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF,
                    0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFC12345]
        random_part = values.view(np.uint8)
        special_part = np.array(specials, dtype=np.uint32).view(np.uint8)
        return [("random", random_part), ("special bit patterns", special_part)]
    if qtype == T.F16:
        specials = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x3C00, 0x7BFF,
                    0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFE00, 0xFFFF]
        sweep = np.arange(0, 65536, 97, dtype=np.uint32).astype(np.uint16)
        return [("random", values.astype(np.float16).view(np.uint8)),
                ("special bit patterns", np.array(specials, dtype=np.uint16).view(np.uint8)),
                ("every 97th bit pattern", sweep.view(np.uint8))]
    if qtype == T.BF16:
        specials = [0x0000, 0x8000, 0x0001, 0x007F, 0x0080, 0x3F80, 0x7F7F, 0xFF7F, 0x7F80,
                    0xFF80, 0x7FC0, 0x7F81, 0xFFC1]
        return [("random (gguf-py quantized)", quants.quantize(values, T.BF16).view(np.uint8).reshape(-1)),
                ("special bit patterns", np.array(specials, dtype=np.uint16).view(np.uint8))]
    raise ValueError(qtype)


def quant_type_fixture(qtype):
    sections = []
    if qtype in QUANTIZABLE:
        sections.append(("quantized by gguf-py (block 0: all-zero input)", quantized_blocks(qtype, 16)))
    sections.append(("random bytes, finite scales", random_blocks(qtype, 16 if qtype in QUANTIZABLE else 10)))
    for label, block in edge_blocks(qtype):
        sections.append((label, block.reshape(1, -1)))
    return [(label, blocks.reshape(-1)) for label, blocks in sections]


def main():
    types = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
             T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.Q8_K]
    manifest = {
        "generator": "make_fixtures.py",
        "seed": SEED,
        "gguf_py_version": importlib.metadata.version("gguf"),
        "numpy_version": np.__version__,
        "types": [],
    }
    for qtype in types:
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        if qtype in (T.F32, T.F16, T.BF16):
            sections = scalar_type_fixture(qtype)
        else:
            sections = quant_type_fixture(qtype)
        raw = np.concatenate([np.asarray(part, dtype=np.uint8) for _, part in sections])
        assert raw.size % type_size == 0
        blocks = raw.reshape(-1, type_size)
        expected = expected_values(qtype, blocks)
        assert expected.dtype == np.float32 and expected.size == blocks.shape[0] * block_size
        if qtype not in (T.F32, T.F16, T.BF16):
            assert np.isfinite(expected).all(), f"{qtype.name}: non-finite expected output"

        raw_name, expected_name = f"{qtype.name}.bin", f"{qtype.name}.f32"
        (OUT / raw_name).write_bytes(blocks.tobytes())
        (OUT / expected_name).write_bytes(expected.astype("<f4").tobytes())
        manifest["types"].append({
            "type": qtype.name,
            "id": int(qtype),
            "block_size": block_size,
            "type_size": type_size,
            "blocks": int(blocks.shape[0]),
            "raw": raw_name,
            "expected": expected_name,
            "sections": [{"name": label, "blocks": len(part) // type_size} for label, part in sections],
        })
        print(f"{qtype.name:5} {blocks.shape[0]:4} blocks  {expected.size:6} values")
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
