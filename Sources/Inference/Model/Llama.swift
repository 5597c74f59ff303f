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
    /// Without captures or interventions in this layer it is the four plain steps; otherwise the
    /// same steps with the hook points of `HookKind` in between (interventions first, then captures).
    func llamaBlock(_ l: Int, rows t: Int, start p: Int, phase: ForwardPhase = .prefill,
                    interventions table: InterventionTable? = nil) throws {
        let hk = hooks.flatMap { $0.active(l) ? $0 : nil }
        let iv = table.flatMap { $0.any[l] ? $0 : nil }
        guard hk != nil || iv != nil else {
            attentionInput(l, rows: t, start: p)
            attend(l, rows: t, start: p)
            attentionOutput(l, rows: t)
            mlp(l, rows: t)
            return
        }
        let c = config, s = scratch, d = c.dModel, dh = c.dHead
        let patches = iv?.patches(l, phase) ?? []
        func patch(_ matches: (ActivationPatch.Target) -> Bool, _ dst: UnsafeMutablePointer<Float>, stride: Int, width: Int) {
            for pt in patches where matches(pt.target) { pt.apply(start: p, rows: t, to: dst, stride: stride, width: width) }
        }
        func emit(_ kind: HookKind, _ src: UnsafeMutablePointer<Float>) {
            if let hk, let ci = hk.capture(l, kind) { hk.emitPositions(ci, start: p, rows: t, src: src, stride: d) }
        }

        patch({ if case .residPre = $0 { return true }; return false }, s.x.pointer, stride: d, width: d)
        emit(.residPre, s.x.pointer)

        attentionInput(l, rows: t, start: p, hooks: hk, uniform: iv?.uniform[l][phase] ?? [])
        let zHeads = iv?.zHeads[l][phase] ?? []
        attend(l, rows: t, start: p, hooks: hk, bosHeads: zHeads.filter { $0.method == .bos }.map(\.head))
        hk?.emitScores(layer: l, rows: t, start: p, q: s.q.pointer, keys: cache.keys(layer: l))
        if !zHeads.isEmpty { ablate(l, rows: t, start: p, heads: zHeads) }
        for pt in patches {
            if case .headOutput(_, let h) = pt.target {
                pt.apply(start: p, rows: t, to: s.z.pointer + h * dh, stride: c.qWidth, width: dh)
            }
        }
        if let hk {
            if let ci = hk.capture(l, .z) {
                hk.emitHeads(ci, start: p, rows: t, src: s.z.pointer, stride: c.qWidth, permuted: false)
            }
            if let ci = hk.capture(l, .result) {
                hk.emitResult(ci, start: p, rows: t, z: s.z.pointer, wo: model.weights.layers[l].wo)
            }
        }

        Kernels.linear(s.z.pointer, rows: t, weight: model.weights.layers[l].wo, bias: nil, into: s.attnOut.pointer)
        patch({ if case .attnOut = $0 { return true }; return false }, s.attnOut.pointer, stride: d, width: d)
        emit(.attnOut, s.attnOut.pointer)
        Kernels.add(s.x.pointer, s.attnOut.pointer, count: t * d)

        mlpCompute(l, rows: t)
        patch({ if case .mlpOut = $0 { return true }; return false }, s.mlpOut.pointer, stride: d, width: d)
        emit(.mlpOut, s.mlpOut.pointer)
        Kernels.add(s.x.pointer, s.mlpOut.pointer, count: t * d)

        patch({ if case .residPost = $0 { return true }; return false }, s.x.pointer, stride: d, width: d)
        emit(.residPost, s.x.pointer)
        try hk?.check()
    }

    /// xn = RMSNorm(x); q = xn·Wqᵀ (+bq), k, v likewise, written straight into the KV cache
    /// rows P..<P+T; RoPE on q and k. Hooks q/k/v before RoPE, `uniform` heads' queries zeroed
    /// after it, then hooks rot_q/rot_k.
    func attentionInput(_ l: Int, rows t: Int, start p: Int, hooks hk: HookSet? = nil, uniform: [Int] = []) {
        let c = config, w = model.weights.layers[l], s = scratch
        Kernels.rmsNorm(s.x.pointer, rows: t, width: c.dModel, weight: w.attnNorm.data, eps: c.rmsNormEps,
                        into: s.xn.pointer)                                     // xn [T, D]
        let kRows = cache.keys(layer: l) + p * c.kvWidth                        // [T, Hkv, dh]
        let vRows = cache.values(layer: l) + p * c.kvWidth                      // [T, Hkv, dh]
        Kernels.linear(s.xn.pointer, rows: t, weight: w.wq, bias: w.bq, into: s.q.pointer)   // q [T, H, dh]
        Kernels.linear(s.xn.pointer, rows: t, weight: w.wk, bias: w.bk, into: kRows)
        Kernels.linear(s.xn.pointer, rows: t, weight: w.wv, bias: w.bv, into: vRows)
        if let hk {
            if let ci = hk.capture(l, .q) { hk.emitHeads(ci, start: p, rows: t, src: s.q.pointer, stride: c.qWidth, permuted: true) }
            if let ci = hk.capture(l, .k) { hk.emitHeads(ci, start: p, rows: t, src: kRows, stride: c.kvWidth, permuted: true) }
            if let ci = hk.capture(l, .v) { hk.emitHeads(ci, start: p, rows: t, src: vRows, stride: c.kvWidth, permuted: false) }
        }
        Kernels.rope(s.q.pointer, rows: t, heads: c.nHeads, dHead: c.dHead, rowStride: c.qWidth, start: p,
                     table: rope, style: c.ropeStyle)
        Kernels.rope(kRows, rows: t, heads: c.nKVHeads, dHead: c.dHead, rowStride: c.kvWidth, start: p,
                     table: rope, style: c.ropeStyle)
        for h in uniform {
            for r in 0..<t { (s.q.pointer + r * c.qWidth + h * c.dHead).update(repeating: 0, count: c.dHead) }
        }
        if let hk {
            if let ci = hk.capture(l, .rotQ) { hk.emitHeads(ci, start: p, rows: t, src: s.q.pointer, stride: c.qWidth, permuted: true) }
            if let ci = hk.capture(l, .rotK) { hk.emitHeads(ci, start: p, rows: t, src: kRows, stride: c.kvWidth, permuted: true) }
        }
    }

    /// z = softmax(q·kᵀ/√dh + causal mask)·v per head; hands probabilities to the captures
    /// (`bosHeads` are reported one-hot on key 0: their z is replaced afterwards by `ablate`).
    ///
    /// Observing probabilities needs the materializing attention path; rows before the first
    /// observed query of the chunk run through the fast path (observer nil) in a separate call,
    /// so capturing the last few queries costs only those rows.
    func attend(_ l: Int, rows t: Int, start p: Int, hooks hk: HookSet? = nil, bosHeads: [Int] = []) {
        let first = min(attentionCapture?.firstRow(layer: l, rows: t, start: p) ?? t,
                        hk?.firstPatternRow(layer: l, rows: t, start: p) ?? t)
        if first > 0 && first < t {
            attention(l, rows: first, start: p, offset: 0, observe: nil)
            attention(l, rows: t - first, start: p + first, offset: first,
                      observe: observer(l, rows: t - first, start: p + first, hooks: hk, bosHeads: bosHeads))
        } else {
            attention(l, rows: t, start: p, offset: 0,
                      observe: first == t ? nil : observer(l, rows: t, start: p, hooks: hk, bosHeads: bosHeads))
        }
    }

    /// `Kernels.causalAttention` for chunk rows offset..<offset+t (positions p..<p+t).
    private func attention(_ l: Int, rows t: Int, start p: Int, offset: Int,
                           observe: ((Int, UnsafePointer<Float>) -> Void)?) {
        let c = config, s = scratch
        Kernels.causalAttention(q: s.q.pointer + offset * c.qWidth, k: cache.keys(layer: l), v: cache.values(layer: l),
                                z: s.z.pointer + offset * c.qWidth, rows: t, start: p,         // z [T, H, dh]
                                nHeads: c.nHeads, nKVHeads: c.nKVHeads, dHead: c.dHead,
                                scale: 1 / Float(c.dHead).squareRoot(),
                                probs: s.probs.pointer, observe: observe)               // probs [T, S]
    }

    /// The per-head observer for rows p..<p+t: legacy `AttentionCapture` and hook_pattern captures.
    private func observer(_ l: Int, rows t: Int, start p: Int, hooks hk: HookSet?,
                          bosHeads: [Int]) -> ((Int, UnsafePointer<Float>) -> Void)? {
        let legacy = attentionCapture.flatMap { $0.observer(layer: l, rows: t, start: p) }
        let pattern = hk?.patternObserver(layer: l, rows: t, start: p, bosHeads: bosHeads)
        if pattern == nil && bosHeads.isEmpty { return legacy }
        if legacy == nil && pattern == nil { return nil }
        var oneHot: FloatBuffer?
        let keys = p + t
        return { h, probs in
            if let legacy {
                if bosHeads.contains(h) {
                    if oneHot == nil {
                        let b = FloatBuffer(count: t * keys)
                        for r in 0..<t { b.pointer[r * keys] = 1 }
                        oneHot = b
                    }
                    legacy(h, oneHot!.pointer)
                } else {
                    legacy(h, probs)
                }
            }
            pattern?(h, probs)
        }
    }

    /// Rewrites the outputs z of ablated heads (every method but `.uniform`, which acts on q).
    func ablate(_ l: Int, rows t: Int, start p: Int, heads: [InterventionTable.Head]) {
        let c = config, dh = c.dHead, qw = c.qWidth
        for hd in heads {
            let zh = scratch.z.pointer + hd.head * dh                          // rows qw apart
            switch hd.method {
            case .zero:
                for r in 0..<t { (zh + r * qw).update(repeating: 0, count: dh) }
            case .scale(let f):
                for r in 0..<t { for j in 0..<dh { zh[r * qw + j] *= f } }
            case .bos:
                let v0 = cache.values(layer: l) + (hd.head / c.groupSize) * dh   // v of key 0
                for r in 0..<t { (zh + r * qw).update(from: v0, count: dh) }
            case .mean:
                if let m = headMeans?[l] {
                    m.withUnsafeBufferPointer { mp in
                        for r in 0..<t { (zh + r * qw).update(from: mp.baseAddress! + hd.head * dh, count: dh) }
                    }
                } else {
                    let key = l * c.nHeads + hd.head
                    var rm = runningMeans.removeValue(forKey: key) ?? RunningMean(start: p)
                    if rm.start + rm.rows(dh) != p { rm = RunningMean(start: p) }   // history broken: restart
                    var acc = rm.prefix.isEmpty ? [Double](repeating: 0, count: dh) : Array(rm.prefix.suffix(dh))
                    rm.prefix.reserveCapacity(rm.prefix.count + t * dh)
                    for r in 0..<t {
                        let row = zh + r * qw
                        for j in 0..<dh { acc[j] += Double(row[j]) }
                        rm.prefix.append(contentsOf: acc)
                        let n = Double(p + r - rm.start + 1)
                        for j in 0..<dh { row[j] = Float(acc[j] / n) }
                    }
                    runningMeans[key] = rm
                }
            case .uniform:
                break
            }
        }
    }

    /// attnOut = z·Woᵀ; x += attnOut.
    func attentionOutput(_ l: Int, rows t: Int) {
        let c = config, w = model.weights.layers[l], s = scratch
        Kernels.linear(s.z.pointer, rows: t, weight: w.wo, bias: nil, into: s.attnOut.pointer)   // [T, D]
        Kernels.add(s.x.pointer, s.attnOut.pointer, count: t * c.dModel)
    }

    /// mlpOut = MLP(x); x += mlpOut.
    func mlp(_ l: Int, rows t: Int) {
        mlpCompute(l, rows: t)
        Kernels.add(scratch.x.pointer, scratch.mlpOut.pointer, count: t * config.dModel)
    }

    /// xn = RMSNorm(x); mlpOut = (silu(xn·Wgᵀ) * xn·Wuᵀ)·Wdᵀ.
    func mlpCompute(_ l: Int, rows t: Int) {
        let c = config, w = model.weights.layers[l], s = scratch
        Kernels.rmsNorm(s.x.pointer, rows: t, width: c.dModel, weight: w.ffnNorm.data, eps: c.rmsNormEps,
                        into: s.xn.pointer)                                     // xn [T, D]
        Kernels.linear(s.xn.pointer, rows: t, weight: w.wGate, bias: nil, into: s.gate.pointer)  // [T, F]
        Kernels.linear(s.xn.pointer, rows: t, weight: w.wUp, bias: nil, into: s.up.pointer)      // [T, F]
        Kernels.swiglu(gate: s.gate.pointer, up: s.up.pointer, count: t * c.dFF)                 // [T, F]
        Kernels.linear(s.gate.pointer, rows: t, weight: w.wDown, bias: nil, into: s.mlpOut.pointer) // [T, D]
    }
}
