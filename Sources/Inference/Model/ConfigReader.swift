import GGUF

/// Reads the `{arch}.*` hyperparameters of a GGUF file for a family's `decodeConfig`; every error
/// names the key. `common` decodes the keys every family shares (llama.cpp `llm_load_hparams`),
/// with llama.cpp's defaults where a key is absent.
struct ConfigReader {
    let file: GGUFFile
    let arch: String

    func key(_ k: String) -> String { "\(arch).\(k)" }

    func has(_ k: String) -> Bool { file.metadata[key(k)] != nil }

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
        guard has(k) else { return nil }
        return try required(k)
    }

    func number(_ k: String) throws -> Double? {
        guard let v = file.metadata[key(k)] else { return nil }
        guard let d = v.doubleValue else {
            throw ModelError.invalidConfig(key: key(k), reason: "expected a number, found \(v.summary)")
        }
        return d
    }

    func string(_ k: String) -> String? { file.metadata[key(k)]?.stringValue }

    /// A soft-capping value (`attn_logit_softcapping`, `final_logit_softcapping`): `fallback` when
    /// absent; must be >= 0 (0 = off).
    func softcap(_ k: String, default fallback: Float) throws -> Float {
        guard let v = try number(k) else { return fallback }
        guard v >= 0, v.isFinite else {
            throw ModelError.invalidConfig(key: key(k), reason: "expected a cap >= 0, found \(v)")
        }
        return Float(v)
    }

    /// The sliding window `attention.sliding_window` (nil when absent).
    func slidingWindow() throws -> Int? { try optional("attention.sliding_window") }

    /// The keys every family shares. Required: block_count, embedding_length, feed_forward_length,
    /// attention.head_count, attention.layer_norm_rms_epsilon, token_embd.weight. Defaults
    /// (llama.cpp): head_count_kv = head_count; key_length = value_length = D / H;
    /// rope.dimension_count = key_length; rope.freq_base 10000; no rope scaling; context 2048.
    func common(ropeStyle: RopeStyle, attentionBias: Bool) throws -> ModelConfig {
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
        let dValue = try optional("attention.value_length") ?? dModel / nHeads
        guard dValue == dHead else {
            throw ModelError.unsupportedHeadDim(
                key: dHead, value: dValue,
                reason: "the KV cache and the attention kernels use one head size for keys and values")
        }
        guard dHead > 0, dHead % 2 == 0 else {
            throw ModelError.unsupportedHeadDim(
                key: dHead, value: dValue, reason: "RoPE rotates pairs of dimensions, so the head size must be even")
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
        let freqScale = try ropeFreqScale()
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
            rmsNormEps: Float(eps), ropeStyle: ropeStyle,
            ropeBase: Float(try number("rope.freq_base") ?? 10_000), ropeDims: ropeDims,
            ropeFreqScale: freqScale,
            attentionBias: attentionBias,
            tiedEmbeddings: file.tensor(named: "output.weight") == nil)
    }

    /// Linear RoPE scaling as llama.cpp reads it: `rope.scaling.type` none (default) or linear,
    /// freq_scale = 1 / `rope.scaling.factor` (default factor 1). Llama 3 scaling has no key: the
    /// converter stores its factors as `rope_freqs.weight` (loaded by `ModelWeights`). YaRN and
    /// LongRoPE change the attention factor as well and are refused by name.
    func ropeFreqScale() throws -> Float {
        guard let scaling = string("rope.scaling.type"), scaling != "none" else { return 1 }
        guard scaling == "linear" else {
            throw ModelError.invalidConfig(
                key: key("rope.scaling.type"),
                reason: "RoPE scaling '\(scaling)' is not supported (only none, linear, and llama 3 "
                    + "factors stored as rope_freqs.weight)")
        }
        if let factor = try number("rope.scaling.factor"), factor > 0 { return Float(1 / factor) }
        return 1
    }
}
