import GGUF

// The Llama family: `llama` (Llama 1-3, Mistral, SmolLM, ... as llama.cpp converts them) and
// `qwen2`. One pre-norm block per layer:
//
//   xn   = RMSNorm(x) * attn_norm
//   q,k,v = xn·Wqᵀ(+bq), xn·Wkᵀ(+bk), xn·Wvᵀ(+bv)        qwen2 has the biases
//   q,k  = RoPE(q), RoPE(k)                             llama: adjacent pairs, qwen2: NEOX halves
//   z    = softmax(q·kᵀ/√dh + causal mask)·v            grouped-query: H/Hkv query heads per KV head
//   x   += z·Woᵀ
//   xn   = RMSNorm(x) * ffn_norm
//   x   += (silu(xn·Wgateᵀ) * xn·Wupᵀ)·Wdownᵀ
//
// and at the end logits = (RMSNorm(x) * output_norm)·Woutᵀ (Wout = token_embd when tied).
//
// RoPE pairing (llama.cpp `llama_model_rope_type`): LLM_ARCH_LLAMA is LLAMA_ROPE_TYPE_NORM, and
// convert_hf_to_gguf.py permutes the rows of attn_q/attn_k of llama models (LlamaModel.permute)
// so that rotating adjacent pairs equals Hugging Face's rotate-half on the original weights;
// LLM_ARCH_QWEN2 is LLAMA_ROPE_TYPE_NEOX and its weights are stored unpermuted.

/// Config decoding for the Llama family.
public enum LlamaFamily {
    public static let family = ModelFamily(name: "Llama", architectures: ["llama", "qwen2"],
                                           decodeConfig: { file, arch in try config(file, architecture: arch) })

    /// RoPE pairing per architecture (llama.cpp's rope type table).
    public static func ropeStyle(for architecture: String) -> RopeStyle {
        architecture == "qwen2" ? .neox : .normal
    }

    /// Decodes `{arch}.*` hyperparameters. Required: block_count, embedding_length,
    /// feed_forward_length, attention.head_count, attention.layer_norm_rms_epsilon, token_embd.weight.
    public static func config(_ file: GGUFFile, architecture arch: String) throws -> ModelConfig {
        func key(_ k: String) -> String { "\(arch).\(k)" }
        func required(_ k: String) throws -> Int {
            guard let v = file.metadata[key(k)] else {
                throw ModelError.invalidConfig(key: key(k), reason: "missing")
            }
            guard let i = v.intValue, i > 0 else {
                throw ModelError.invalidConfig(key: key(k), reason: "expected a positive integer, found \(v.summary)")
            }
            return i
        }
        func optional(_ k: String) throws -> Int? {
            guard file.metadata[key(k)] != nil else { return nil }
            return try required(k)
        }
        func number(_ k: String) throws -> Double? {
            guard let v = file.metadata[key(k)] else { return nil }
            guard let d = v.doubleValue else {
                throw ModelError.invalidConfig(key: key(k), reason: "expected a number, found \(v.summary)")
            }
            return d
        }

        let nLayers = try required("block_count")
        let dModel = try required("embedding_length")
        let dFF = try required("feed_forward_length")
        let nHeads = try required("attention.head_count")
        let nKVHeads = try optional("attention.head_count_kv") ?? nHeads
        guard nHeads % nKVHeads == 0 else {
            throw ModelError.invalidConfig(key: key("attention.head_count_kv"),
                                           reason: "\(nKVHeads) does not divide head_count \(nHeads)")
        }
        let dHead = try optional("attention.key_length") ?? dModel / nHeads
        if let dv = try optional("attention.value_length"), dv != dHead {
            throw ModelError.invalidConfig(key: key("attention.value_length"),
                                           reason: "\(dv) differs from key_length \(dHead) (unsupported)")
        }
        let ropeDims = try optional("rope.dimension_count") ?? dHead
        guard ropeDims <= dHead, ropeDims % 2 == 0 else {
            throw ModelError.invalidConfig(key: key("rope.dimension_count"),
                                           reason: "\(ropeDims) must be even and at most the head size \(dHead)")
        }
        guard let eps = try number("attention.layer_norm_rms_epsilon") else {
            throw ModelError.invalidConfig(key: key("attention.layer_norm_rms_epsilon"), reason: "missing")
        }
        var freqScale: Float = 1
        if let scaling = file.metadata[key("rope.scaling.type")]?.stringValue, scaling != "none" {
            guard scaling == "linear" else {
                throw ModelError.invalidConfig(key: key("rope.scaling.type"),
                                               reason: "RoPE scaling '\(scaling)' is not supported (only none, linear)")
            }
            if let factor = try number("rope.scaling.factor"), factor > 0 { freqScale = Float(1 / factor) }
        }
        guard let embd = file.tensor(named: "token_embd.weight") else {
            throw ModelError.missingTensor("token_embd.weight")
        }
        guard embd.dims.count == 2, embd.dims[0] == dModel else {
            throw ModelError.tensorShape("token_embd.weight", expected: [dModel, try optional("vocab_size") ?? -1],
                                         found: embd.dims)
        }
        return ModelConfig(
            architecture: arch, nLayers: nLayers, dModel: dModel, nHeads: nHeads, nKVHeads: nKVHeads,
            dHead: dHead, dFF: dFF, vocabSize: embd.dims[1],
            contextLength: try optional("context_length") ?? 2048,
            rmsNormEps: Float(eps), ropeStyle: ropeStyle(for: arch),
            ropeBase: Float(try number("rope.freq_base") ?? 10_000), ropeDims: ropeDims,
            ropeFreqScale: freqScale,
            attentionBias: arch == "qwen2",
            tiedEmbeddings: file.tensor(named: "output.weight") == nil)
    }
}

// MARK: - The block, one step per function

extension InferenceSession {
    /// One transformer block on the chunk's residual stream `x` [T, D] at positions P..<P+T.
    func llamaBlock(_ l: Int, rows t: Int, start p: Int) {
        attentionInput(l, rows: t, start: p)
        attend(l, rows: t, start: p)
        attentionOutput(l, rows: t)
        mlp(l, rows: t)
    }

    /// xn = RMSNorm(x); q = xn·Wqᵀ (+bq), k, v likewise, written straight into the KV cache
    /// rows P..<P+T; RoPE on q and k.
    func attentionInput(_ l: Int, rows t: Int, start p: Int) {
        let c = config, w = model.weights.layers[l], s = scratch
        Kernels.rmsNorm(s.x.pointer, rows: t, width: c.dModel, weight: w.attnNorm.data, eps: c.rmsNormEps,
                        into: s.xn.pointer)                                     // xn [T, D]
        let kRows = cache.keys(layer: l) + p * c.kvWidth                        // [T, Hkv, dh]
        let vRows = cache.values(layer: l) + p * c.kvWidth                      // [T, Hkv, dh]
        Kernels.linear(s.xn.pointer, rows: t, weight: w.wq, bias: w.bq, into: s.q.pointer)   // q [T, H, dh]
        Kernels.linear(s.xn.pointer, rows: t, weight: w.wk, bias: w.bk, into: kRows)
        Kernels.linear(s.xn.pointer, rows: t, weight: w.wv, bias: w.bv, into: vRows)
        Kernels.rope(s.q.pointer, rows: t, heads: c.nHeads, dHead: c.dHead, rowStride: c.qWidth, start: p,
                     table: rope, style: c.ropeStyle)
        Kernels.rope(kRows, rows: t, heads: c.nKVHeads, dHead: c.dHead, rowStride: c.kvWidth, start: p,
                     table: rope, style: c.ropeStyle)
    }

    /// z = softmax(q·kᵀ/√dh + causal mask)·v per head; hands probabilities to the capture.
    func attend(_ l: Int, rows t: Int, start p: Int) {
        let c = config, s = scratch
        let observe = attentionCapture.flatMap { $0.observer(layer: l, rows: t, start: p) }
        Kernels.causalAttention(q: s.q.pointer, k: cache.keys(layer: l), v: cache.values(layer: l),
                                z: s.z.pointer, rows: t, start: p,                      // z [T, H, dh]
                                nHeads: c.nHeads, nKVHeads: c.nKVHeads, dHead: c.dHead,
                                scale: 1 / Float(c.dHead).squareRoot(),
                                probs: s.probs.pointer, observe: observe)               // probs [T, S]
    }

    /// attnOut = z·Woᵀ; x += attnOut.
    func attentionOutput(_ l: Int, rows t: Int) {
        let c = config, w = model.weights.layers[l], s = scratch
        Kernels.linear(s.z.pointer, rows: t, weight: w.wo, bias: nil, into: s.attnOut.pointer)   // [T, D]
        Kernels.add(s.x.pointer, s.attnOut.pointer, count: t * c.dModel)
    }

    /// xn = RMSNorm(x); mlpOut = (silu(xn·Wgᵀ) * xn·Wuᵀ)·Wdᵀ; x += mlpOut.
    func mlp(_ l: Int, rows t: Int) {
        let c = config, w = model.weights.layers[l], s = scratch
        Kernels.rmsNorm(s.x.pointer, rows: t, width: c.dModel, weight: w.ffnNorm.data, eps: c.rmsNormEps,
                        into: s.xn.pointer)                                     // xn [T, D]
        Kernels.linear(s.xn.pointer, rows: t, weight: w.wGate, bias: nil, into: s.gate.pointer)  // [T, F]
        Kernels.linear(s.xn.pointer, rows: t, weight: w.wUp, bias: nil, into: s.up.pointer)      // [T, F]
        Kernels.swiglu(gate: s.gate.pointer, up: s.up.pointer, count: t * c.dFF)                 // [T, F]
        Kernels.linear(s.gate.pointer, rows: t, weight: w.wDown, bias: nil, into: s.mlpOut.pointer) // [T, D]
        Kernels.add(s.x.pointer, s.mlpOut.pointer, count: t * c.dModel)
    }
}
