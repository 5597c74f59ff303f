import GGUF

// Qwen3 (`qwen3`, llama.cpp LLM_ARCH_QWEN3): the Llama block without Q/K/V biases, with QK-norm and
// NEOX RoPE:
//
//   xn    = RMSNorm(x) * attn_norm
//   q,k,v = xn·Wqᵀ, xn·Wkᵀ, xn·Wvᵀ                       Q has H·dh rows, dh = key_length (≠ D/H)
//   q,k   = RMSNorm_dh(q) * attn_q_norm, RMSNorm_dh(k) * attn_k_norm   per head, weights [dh]
//   q,k   = RoPE(q), RoPE(k)                              NEOX halves, rope.freq_base
//   z     = softmax(q·kᵀ/√dh + causal mask)·v             grouped-query
//   x    += z·Woᵀ
//   x    += (silu(RMSNorm(x)*ffn_norm·Wgᵀ) * ...·Wuᵀ)·Wdᵀ
//
// Reference: Tests/Fixtures/families/README.md ("qwen3").

/// The Qwen3 family: config decoding and its block.
public enum Qwen3Family {
    public static let family = ModelFamily(
        name: "Qwen3", architectures: ["qwen3"],
        decodeConfig: { file, arch in try config(file, architecture: arch) },
        block: { session, pass in try session.qwen3Block(pass) })

    /// `ConfigReader.common` with NEOX RoPE, no biases and QK-norm (attn_q_norm / attn_k_norm required).
    public static func config(_ file: GGUFFile, architecture arch: String) throws -> ModelConfig {
        var c = try ConfigReader(file: file, arch: arch).common(ropeStyle: .neox, attentionBias: false)
        c.qkNorm = true
        return c
    }
}

extension InferenceSession {
    /// One Qwen3 block (the Llama block with QK-norm between the projections and RoPE).
    func qwen3Block(_ b: BlockPass) throws {
        let w = model.weights.layers[b.layer]
        residual(.residPre, b)
        normalize(b, weight: w.attnNorm, hook: .ln1Normalized) // xn = RMSNorm(x) * attn_norm
        projectQKV(b) // q, k, v (hooks q, k, v)
        normalizeQK(b) // per-head RMSNorm of q and k (hooks q_normed, k_normed)
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
