import GGUF

// The Llama family: `llama` (Llama 1-3, Mistral, SmolLM, ... as llama.cpp converts them) and
// `qwen2`. The Mistral-style sliding window and Llama 3 RoPE scaling are this family too (see
// `config`). One pre-norm block per layer:
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

    /// Decodes `{arch}.*` hyperparameters (`ConfigReader.common`). `llama` models with the key
    /// `llama.attention.sliding_window` (Mistral as transformers runs it) attend within that window on
    /// every layer; without it attention is full (llama.cpp's `llama` ignores the key, and
    /// convert_hf_to_gguf.py does not write it, see Tests/Fixtures/families/README.md). Llama 3 RoPE
    /// scaling comes from `rope_freqs.weight` (ModelWeights).
    public static func config(_ file: GGUFFile, architecture arch: String) throws -> ModelConfig {
        let r = ConfigReader(file: file, arch: arch)
        var c = try r.common(ropeStyle: ropeStyle(for: arch), attentionBias: arch == "qwen2")
        if arch == "llama", let w = try r.slidingWindow() {
            c.layerWindow = [Int](repeating: w, count: c.nLayers)
        }
        return c
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
        normalize(b, weight: w.attnNorm, hook: .ln1Normalized) // xn = RMSNorm(x) * attn_norm
        projectQKV(b) // q, k, v (+ biases for qwen2)
        rotate(b) // RoPE(q), RoPE(k)
        attend(b) // z = softmax(q·kᵀ/√dh + mask)·v
        headOutputs(b) // ablations and patches of z
        attentionOutput(b) // x += z·Woᵀ (hook_resid_mid)
        normalize(b, weight: w.ffnNorm, hook: .ln2Normalized) // xn = RMSNorm(x) * ffn_norm
        gatedMLP(b) // x += (silu(xn·Wgᵀ) * xn·Wuᵀ)·Wdᵀ
        residual(.residPost, b)
        try b.hooks?.captures?.check()
    }
}
