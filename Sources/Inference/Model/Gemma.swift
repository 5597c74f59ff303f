import Foundation
import GGUF

// Gemma 2 and Gemma 3 (`gemma2`, `gemma3`; llama.cpp LLM_ARCH_GEMMA2 / LLM_ARCH_GEMMA3). One block,
// pre- and post-norms around attention and MLP:
//
//   x     = token_embd[tokens] · √D                              embedding scale (f32)
//   xn    = RMSNorm(x) * attn_norm
//   q,k,v = xn·Wqᵀ, xn·Wkᵀ, xn·Wvᵀ                                 dh = key_length (Gemma 3 270M: 256 ≠ D/H)
//   q,k   = RMSNorm_dh(q) * attn_q_norm, RMSNorm_dh(k) * attn_k_norm   Gemma 3 only (QK-norm)
//   q,k   = RoPE(q), RoPE(k)                                     NEOX; Gemma 3 local layers: base 10000
//   s     = q·kᵀ · scale  (Gemma 2: s = cap·tanh(s/cap))         scale 1/√key_length (27B: 1/√(D/H))
//   z     = softmax(s + causal mask [+ sliding window])·v
//   x    += RMSNorm(z·Woᵀ) * post_attention_norm
//   xn    = RMSNorm(x) * ffn_norm
//   x    += RMSNorm((gelu_tanh(xn·Wgᵀ) * xn·Wuᵀ)·Wdᵀ) * post_ffw_norm
//   logits = (RMSNorm(x) * output_norm)·token_embdᵀ  (Gemma 2: cap·tanh(logits/cap))
//
// Every Gemma norm weight is stored as (1 + w): convert_hf_to_gguf.py adds Hugging Face's 1, so
// they are plain RMSNorm weights here. Sliding windows (llama.cpp `set_swa_pattern`): Gemma 2 on
// even layers (pattern 2), Gemma 3 on layers with i % 6 < 5 (pattern 6). The spec with every
// default is Tests/Fixtures/families/README.md ("gemma2", "gemma3").

/// The Gemma family (Gemma 2, Gemma 3): config decoding and its block.
public enum GemmaFamily {
    public static let family = ModelFamily(
        name: "Gemma", architectures: ["gemma2", "gemma3"],
        decodeConfig: { file, arch in try config(file, architecture: arch) },
        block: { session, pass in try session.gemmaBlock(pass) })

    /// `ConfigReader.common` (NEOX RoPE, no biases) plus Gemma's keys, llama.cpp's defaults where absent:
    ///
    /// - gemma2: `attention.sliding_window` (default 4096) on even layers; `attn_logit_softcapping`
    ///   (default 50) and `final_logit_softcapping` (default 30).
    /// - gemma3: `attention.sliding_window` on layers i % 6 < 5 (absent: no sliding window, as newer
    ///   llama.cpp); local layers use RoPE base 10000 and no scaling (llama.cpp's hard-coded
    ///   `rope_freq_base_train_swa` / `rope_freq_scale_train_swa`), global layers `rope.freq_base`
    ///   with linear scaling; QK-norm; `final_logit_softcapping` default 0 (off) and no attention
    ///   soft-cap unless `attn_logit_softcapping` is present.
    /// - both: embedding × √D, tanh-GELU, post-norms, attention scale 1/√key_length except the 27B
    ///   models (gemma2 46 layers, gemma3 62 layers: 1/√(D/H), llama.cpp's LLM_TYPE_27B rule).
    public static func config(_ file: GGUFFile, architecture arch: String) throws -> ModelConfig {
        let r = ConfigReader(file: file, arch: arch)
        var c = try r.common(ropeStyle: .neox, attentionBias: false)
        c.postNorms = true
        c.activation = .geluTanh
        c.embeddingScale = Float(Double(c.dModel).squareRoot())
        let is27B = (arch == "gemma2" && c.nLayers == 46) || (arch == "gemma3" && c.nLayers == 62)
        c.attentionScale = 1 / Float(is27B ? c.dModel / c.nHeads : c.dHead).squareRoot()
        if arch == "gemma2" {
            let window = try r.slidingWindow() ?? 4096
            c.layerWindow = (0..<c.nLayers).map { $0 % 2 < 1 ? window : 0 }
            c.attnLogitSoftcap = try r.softcap("attn_logit_softcapping", default: 50)
            c.finalLogitSoftcap = try r.softcap("final_logit_softcapping", default: 30)
        } else {
            c.qkNorm = true
            if let window = try r.slidingWindow() {
                c.layerWindow = (0..<c.nLayers).map { $0 % 6 < 5 ? window : 0 }
            }
            c.ropeBaseSWA = 10_000
            c.ropeFreqScaleSWA = 1
            c.attnLogitSoftcap = try r.softcap("attn_logit_softcapping", default: 0)
            c.finalLogitSoftcap = try r.softcap("final_logit_softcapping", default: 0)
        }
        return c
    }
}

extension InferenceSession {
    /// One Gemma block (QK-norm only when the config has it, i.e. Gemma 3).
    func gemmaBlock(_ b: BlockPass) throws {
        let w = model.weights.layers[b.layer]
        residual(.residPre, b)
        normalize(b, weight: w.attnNorm, hook: .ln1Normalized) // xn = RMSNorm(x) * attn_norm
        projectQKV(b) // q, k, v (hooks q, k, v)
        if config.qkNorm { normalizeQK(b) } // per-head RMSNorm of q and k (Gemma 3)
        rotate(b) // RoPE(q), RoPE(k): local or global table
        attend(b) // z = softmax(cap(q·kᵀ·scale) + mask [+ window])·v
        headOutputs(b) // ablations and patches of z
        attentionOutput(b, postNorm: w.postAttnNorm) // x += RMSNorm(z·Woᵀ) * post_attention_norm
        normalize(b, weight: w.ffnNorm, hook: .ln2Normalized) // xn = RMSNorm(x) * ffn_norm
        gatedMLP(b, postNorm: w.postFFNNorm) // x += RMSNorm(geglu MLP) * post_ffw_norm
        residual(.residPost, b)
        try b.hooks?.captures?.check()
    }
}
