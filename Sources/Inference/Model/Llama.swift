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

/// The Llama family: config decoding and its block.
public enum LlamaFamily {
    public static let family = ModelFamily(
        name: "Llama", architectures: ["llama", "qwen2"],
        decodeConfig: { file, arch in try config(file, architecture: arch) },
        block: { session, pass in try session.llamaBlock(pass) })

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
            throw ModelError.invalidConfig(
                key: key("attention.head_count_kv"),
                reason: "\(nKVHeads) does not divide head_count \(nHeads)")
        }
        let dHead = try optional("attention.key_length") ?? dModel / nHeads
        if let dv = try optional("attention.value_length"), dv != dHead {
            throw ModelError.invalidConfig(
                key: key("attention.value_length"),
                reason: "\(dv) differs from key_length \(dHead) (unsupported)")
        }
        let ropeDims = try optional("rope.dimension_count") ?? dHead
        guard ropeDims <= dHead, ropeDims % 2 == 0 else {
            throw ModelError.invalidConfig(
                key: key("rope.dimension_count"),
                reason: "\(ropeDims) must be even and at most the head size \(dHead)")
        }
        guard let eps = try number("attention.layer_norm_rms_epsilon") else {
            throw ModelError.invalidConfig(key: key("attention.layer_norm_rms_epsilon"), reason: "missing")
        }
        var freqScale: Float = 1
        if let scaling = file.metadata[key("rope.scaling.type")]?.stringValue, scaling != "none" {
            guard scaling == "linear" else {
                throw ModelError.invalidConfig(
                    key: key("rope.scaling.type"),
                    reason: "RoPE scaling '\(scaling)' is not supported (only none, linear)")
            }
            if let factor = try number("rope.scaling.factor"), factor > 0 { freqScale = Float(1 / factor) }
        }
        guard let embd = file.tensor(named: "token_embd.weight") else {
            throw ModelError.missingTensor("token_embd.weight")
        }
        guard embd.dims.count == 2, embd.dims[0] == dModel else {
            throw ModelError.tensorShape(
                "token_embd.weight", expected: [dModel, try optional("vocab_size") ?? -1],
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

// MARK: - The block

extension InferenceSession {
    /// One Llama block on the chunk's residual stream x [T, D] (the steps of BlockSteps.swift; with
    /// `b.hooks` nil they are the plain computation, otherwise the same computation with the hook
    /// points of `HookKind` in between, interventions first, then captures).
    func llamaBlock(_ b: BlockPass) throws {
        let w = model.weights.layers[b.layer]
        residual(.residPre, b)
        normalize(b, weight: w.attnNorm) // xn = RMSNorm(x) * attn_norm
        projectQKV(b) // q, k, v (+ biases for qwen2)
        rotate(b) // RoPE(q), RoPE(k)
        attend(b) // z = softmax(q·kᵀ/√dh + mask)·v
        headOutputs(b) // ablations and patches of z
        attentionOutput(b) // x += z·Woᵀ
        normalize(b, weight: w.ffnNorm) // xn = RMSNorm(x) * ffn_norm
        gatedMLP(b) // x += (silu(xn·Wgᵀ) * xn·Wuᵀ)·Wdᵀ
        residual(.residPost, b)
        try b.hooks?.captures?.check()
    }
}
