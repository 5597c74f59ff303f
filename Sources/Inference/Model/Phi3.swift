import GGUF

// Phi-3 (`phi3`, llama.cpp LLM_ARCH_PHI3): the Llama block with fused tensors and NEOX RoPE.
//
//   attn_qkv [H·dh + 2·Hkv·dh, D]: Q rows, then K, then V       split at load into Wq, Wk, Wv
//   ffn_up   [2F, D]: gate rows, then up rows (LLM_FFN_SWIGLU)   split at load into Wgate, Wup
//
// so the block is exactly the Llama one (the split matrices keep their quantized blocks).
// `phi3.attention.sliding_window` is ignored as llama.cpp does (it disables Phi-3 SWA: full
// attention, with a warning). Long-context Phi-3 (LongRoPE: rope_factors_long/short.weight) is
// refused by name. Reference: Tests/Fixtures/families/README.md ("phi3").

/// The Phi-3 family: config decoding (the block is `llamaBlock`).
public enum Phi3Family {
    public static let family = ModelFamily(
        name: "Phi-3", architectures: ["phi3"],
        decodeConfig: { file, arch in try config(file, architecture: arch) },
        block: { session, pass in try session.llamaBlock(pass) })

    /// `ConfigReader.common` with NEOX RoPE, no biases and the fused tensor layout.
    public static func config(_ file: GGUFFile, architecture arch: String) throws -> ModelConfig {
        for name in ["rope_factors_long.weight", "rope_factors_short.weight"] where file.tensor(named: name) != nil {
            throw ModelError.invalidConfig(
                key: name, reason: "LongRoPE (Phi-3 128k) is not supported; use a 4k-context Phi-3 file")
        }
        var c = try ConfigReader(file: file, arch: arch).common(ropeStyle: .neox, attentionBias: false)
        c.tensorLayout = .fusedQKVGateUp
        return c
    }
}
