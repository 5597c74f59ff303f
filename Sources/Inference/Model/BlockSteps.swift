// The steps blocks are built from, shared by every family: RMSNorm, the Q/K/V projections, RoPE,
// grouped-query causal attention, head-output interventions, the output projection and the gated
// MLP. Each works on the session's scratch buffers for one `BlockPass` and does the work of the
// pass's hooks (patches, ablations, captures) at its hook points when `b.hooks` is non-nil;
// without hooks it is the plain computation. A family's block calls them in its order
// (see `llamaBlock` in Llama.swift) and adds what is its own (e.g. extra norms) in between.
//
// Buffers (ForwardScratch): x [T, D] residual stream, xn [T, D] normalized sublayer input,
// q [T, H, dh], z [T, H, dh], attnOut [T, D], gate/up [T, F], mlpOut [T, D]; K/V in the cache
// [S, Hkv, dh] per layer. New K/V rows are computed in the Float32 cache itself, or, with a
// binary16 cache, in newKeys/newValues [T, Hkv, dh] and stored (rounded) once final: V right
// after its projection, K after RoPE, each before its hooks are captured.

extension InferenceSession {
    /// Where the pass computes its new keys [T, Hkv, dh]: the cache rows P..<P+T (Float32 cache)
    /// or the staging rows (binary16 cache; stored by `rotate`).
    func newKeys(_ b: BlockPass) -> UnsafeMutablePointer<Float> {
        scratch.newKeys?.pointer ?? cache.keys(layer: b.layer) + b.start * config.kvWidth
    }

    /// Where the pass computes its new values [T, Hkv, dh] (stored by `projectQKV`), as `newKeys`.
    func newValues(_ b: BlockPass) -> UnsafeMutablePointer<Float> {
        scratch.newValues?.pointer ?? cache.values(layer: b.layer) + b.start * config.kvWidth
    }

    /// Patches and captures of the residual-stream hook point `kind` (resid_pre, resid_post) on x.
    func residual(_ kind: HookKind, _ b: BlockPass) {
        guard let hooks = b.hooks else { return }
        let d = config.dModel
        hooks.patch(kind, b, scratch.x.pointer, stride: d, width: d)
        hooks.emit(kind, b, scratch.x.pointer, width: d)
    }

    /// xn = RMSNorm(x) * weight; captures `hook` (ln1/ln2.hook_normalized: x / rms(x)) when asked.
    func normalize(_ b: BlockPass, weight: WeightMatrix, hook: HookKind? = nil) {
        let c = config, s = scratch
        Kernels.rmsNorm(
            s.x.pointer, rows: b.rows, width: c.dModel, weight: weight.data, eps: c.rmsNormEps,
            into: s.xn.pointer) // xn [T, D]
        if let hook, let hk = b.hooks?.captures, let ci = hk.capture(b.layer, hook) {
            hk.emitNormalized(ci, start: b.start, rows: b.rows, x: s.x.pointer)
        }
    }

    /// QK-norm (Qwen3, Gemma 3): RMSNorm of every query head of q and key head of the new cache
    /// rows over its dh values, weights `attn_q_norm` / `attn_k_norm` [dh] shared by the heads;
    /// hooks q_normed / k_normed.
    func normalizeQK(_ b: BlockPass) {
        let c = config, w = model.weights.layers[b.layer], s = scratch, t = b.rows, p = b.start
        guard let qn = w.qNorm, let kn = w.kNorm else { return }
        let kRows = newKeys(b) // [T, Hkv, dh]
        Kernels.rmsNorm(
            s.q.pointer, rows: t * c.nHeads, width: c.dHead, weight: qn.data, eps: c.rmsNormEps,
            into: s.q.pointer) // q [T, H, dh]
        Kernels.rmsNorm(kRows, rows: t * c.nKVHeads, width: c.dHead, weight: kn.data, eps: c.rmsNormEps, into: kRows)
        if let hk = b.hooks?.captures {
            if let ci = hk.capture(b.layer, .qNormed) {
                hk.emitHeads(ci, start: p, rows: t, src: s.q.pointer, stride: c.qWidth, permuted: true)
            }
            if let ci = hk.capture(b.layer, .kNormed) {
                hk.emitHeads(ci, start: p, rows: t, src: kRows, stride: c.kvWidth, permuted: true)
            }
        }
    }

    /// q = xn·Wqᵀ (+bq); k, v likewise, written straight into the KV cache rows P..<P+T (binary16
    /// cache: v stored rounded here, k by `rotate`). Hooks q/k/v (before RoPE; v as stored).
    func projectQKV(_ b: BlockPass) {
        let c = config, w = model.weights.layers[b.layer], s = scratch, t = b.rows, p = b.start
        let kRows = newKeys(b) // [T, Hkv, dh]
        let vRows = newValues(b) // [T, Hkv, dh]
        Kernels.linear(s.xn.pointer, rows: t, weight: w.wq, bias: w.bq, into: s.q.pointer) // q [T, H, dh]
        Kernels.linear(s.xn.pointer, rows: t, weight: w.wk, bias: w.bk, into: kRows)
        Kernels.linear(s.xn.pointer, rows: t, weight: w.wv, bias: w.bv, into: vRows)
        cache.store(values: vRows, layer: b.layer, start: p, rows: t)
        if let hk = b.hooks?.captures {
            let l = b.layer
            if let ci = hk.capture(l, .q) {
                hk.emitHeads(ci, start: p, rows: t, src: s.q.pointer, stride: c.qWidth, permuted: true)
            }
            if let ci = hk.capture(l, .k) {
                hk.emitHeads(ci, start: p, rows: t, src: kRows, stride: c.kvWidth, permuted: true)
            }
            if let ci = hk.capture(l, .v) {
                hk.emitHeads(ci, start: p, rows: t, src: vRows, stride: c.kvWidth, permuted: false)
            }
        }
    }

    /// RoPE on q and on the cache's new k rows (the sliding-window layers' table when they have
    /// their own base; a binary16 cache stores them rounded here); then the `.uniform` heads'
    /// queries are zeroed and hooks rot_q/rot_k captured.
    func rotate(_ b: BlockPass) {
        let c = config, s = scratch, t = b.rows, p = b.start
        let kRows = newKeys(b) // [T, Hkv, dh]
        let rope = c.window(b.layer) > 0 ? ropeSWA : self.rope
        Kernels.rope(
            s.q.pointer, rows: t, heads: c.nHeads, dHead: c.dHead, rowStride: c.qWidth, start: p,
            table: rope, style: c.ropeStyle)
        Kernels.rope(
            kRows, rows: t, heads: c.nKVHeads, dHead: c.dHead, rowStride: c.kvWidth, start: p,
            table: rope, style: c.ropeStyle)
        cache.store(keys: kRows, layer: b.layer, start: p, rows: t)
        guard let hooks = b.hooks else { return }
        for h in hooks.uniform {
            for r in 0..<t { (s.q.pointer + r * c.qWidth + h * c.dHead).update(repeating: 0, count: c.dHead) }
        }
        if let hk = hooks.captures {
            let l = b.layer
            if let ci = hk.capture(l, .rotQ) {
                hk.emitHeads(ci, start: p, rows: t, src: s.q.pointer, stride: c.qWidth, permuted: true)
            }
            if let ci = hk.capture(l, .rotK) {
                hk.emitHeads(ci, start: p, rows: t, src: kRows, stride: c.kvWidth, permuted: true)
            }
        }
    }

    /// z = softmax(q·kᵀ·scale + causal mask)·v per head (grouped-query: H/Hkv query heads per KV
    /// head; the layer's sliding window and the model's soft-cap applied); hands probabilities to hook_pattern captures (`.bos` heads are reported one-hot on
    /// key 0: their z is replaced afterwards by `headOutputs`), then captures hook_attn_scores.
    ///
    /// Observing probabilities needs the materializing attention path; rows before the first
    /// observed query of the chunk run through the fast path (observer nil) in a separate call,
    /// so capturing the last few queries costs only those rows.
    func attend(_ b: BlockPass) {
        let l = b.layer, t = b.rows, p = b.start
        let hk = b.hooks?.captures, bos = b.hooks?.bosHeads ?? [], pol = b.hooks?.policies ?? []
        let first = hk?.firstPatternRow(layer: l, rows: t, start: p) ?? t
        if first > 0 && first < t {
            attention(l, rows: first, start: p, offset: 0, observe: nil, policies: pol)
            attention(
                l, rows: t - first, start: p + first, offset: first,
                observe: hk?.patternObserver(layer: l, rows: t - first, start: p + first, bosHeads: bos),
                policies: pol)
        } else {
            attention(
                l, rows: t, start: p, offset: 0,
                observe: first == t ? nil : hk?.patternObserver(layer: l, rows: t, start: p, bosHeads: bos),
                policies: pol)
        }
        if let hk, hk.capture(l, .attnScores) != nil {
            hk.emitScores(
                layer: l, rows: t, start: p, q: scratch.q.pointer, keys: cache.floatKeys(layer: l, rows: p + t))
        }
    }

    /// `Kernels.causalAttention` for chunk rows offset..<offset+t (positions p..<p+t); then the
    /// heads under a KV policy are recomputed with their mask (`Kernels.policyAttention`; on the
    /// kernel pool when nothing observes), and only they report their probabilities to `observe`
    /// (the first pass's rows for them are discarded; KV groups entirely under a policy are skipped
    /// by the first pass).
    private func attention(
        _ l: Int, rows t: Int, start p: Int, offset: Int,
        observe: ((Int, UnsafePointer<Float>) -> Void)?, policies: [(head: Int, policy: HeadKVPolicy)] = []
    ) {
        let c = config, s = scratch
        var first = observe
        if let observe, !policies.isEmpty {
            let skip = Set(policies.map(\.head))
            first = { h, probs in if !skip.contains(h) { observe(h, probs) } }
        }
        // KV groups whose every query head is under a policy: the causal pass would be overwritten.
        var skip = [UInt8](repeating: 0, count: c.nKVHeads) // [Hkv]
        var underPolicy = [Int](repeating: 0, count: c.nKVHeads)
        for (h, _) in policies { underPolicy[h / c.groupSize] += 1 }
        for g in 0..<c.nKVHeads where underPolicy[g] == c.groupSize { skip[g] = 1 }
        if cache.storage == .f16 && first == nil && c.attnLogitSoftcap == 0 && (t == 1 || Kernels.blockedAttention) {
            Kernels.causalAttentionF16(
                q: s.q.pointer + offset * c.qWidth, k: cache.halfKeys(layer: l), v: cache.halfValues(layer: l),
                z: s.z.pointer + offset * c.qWidth, rows: t, start: p, // z [T, H, dh]
                nHeads: c.nHeads, nKVHeads: c.nKVHeads, dHead: c.dHead, scale: c.attentionScale, window: c.window(l))
        } else {
            skip.withUnsafeBufferPointer { all in
                let sp = policies.isEmpty ? nil : all.baseAddress
                Kernels.causalAttention(
                    q: s.q.pointer + offset * c.qWidth, k: cache.floatKeys(layer: l, rows: p + t),
                    v: cache.floatValues(layer: l, rows: p + t),
                    z: s.z.pointer + offset * c.qWidth, rows: t, start: p, // z [T, H, dh]
                    nHeads: c.nHeads, nKVHeads: c.nKVHeads, dHead: c.dHead,
                    scale: c.attentionScale, window: c.window(l), softcap: c.attnLogitSoftcap,
                    probs: s.probs.pointer, probsCount: s.probs.count, observe: first, skipGroups: sp) // probs [T, S]
            }
        }
        guard !policies.isEmpty else { return }
        let q = s.q.pointer + offset * c.qWidth, z = s.z.pointer + offset * c.qWidth // [T, H, dh]
        let k = cache.floatKeys(layer: l, rows: p + t), v = cache.floatValues(layer: l, rows: p + t)
        func run(_ i: Int, scores: UnsafeMutablePointer<Float>) {
            Kernels.policyAttention(
                q: q, k: k, v: v, z: z, rows: t, start: p, head: policies[i].head,
                nHeads: c.nHeads, nKVHeads: c.nKVHeads, dHead: c.dHead, scale: c.attentionScale,
                layerWindow: c.window(l), softcap: c.attnLogitSoftcap, policy: policies[i].policy,
                scores: scores, observe: observe) // scores [min(T, 32), S]
        }
        if observe != nil || policies.count < 2 {
            for i in policies.indices { run(i, scores: s.probs.pointer) }
            return
        }
        // Heads write disjoint columns of z, so they run on the kernel pool, each thread with its own
        // scores [min(T, 32), S]; every head gets the same bits as when run one after another.
        let perThread = min(t, Kernels.tileRows) * (p + t), threads = Kernels.poolThreads
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: threads * perThread) // [threads, 32, S]
        defer { scratch.deallocate() }
        Kernels.parallel(policies.count) { i, thread in run(i, scores: scratch + thread * perThread) }
    }

    /// The interventions on the head outputs z (ablations, then hook_z patches), then hooks z and
    /// result. Nothing without hooks.
    func headOutputs(_ b: BlockPass) {
        guard let hooks = b.hooks else { return }
        let c = config, s = scratch, t = b.rows, p = b.start, l = b.layer
        if !hooks.zHeads.isEmpty { ablate(l, rows: t, start: p, heads: hooks.zHeads) }
        for pt in hooks.patches {
            if case .headOutput(_, let h) = pt.target {
                pt.apply(start: p, rows: t, to: s.z.pointer + h * c.dHead, stride: c.qWidth, width: c.dHead)
            }
        }
        if let hk = hooks.captures {
            if let ci = hk.capture(l, .z) {
                hk.emitHeads(ci, start: p, rows: t, src: s.z.pointer, stride: c.qWidth, permuted: false)
            }
            if let ci = hk.capture(l, .result) {
                hk.emitResult(ci, start: p, rows: t, z: s.z.pointer, wo: model.weights.layers[l].wo)
            }
        }
    }

    /// Rewrites the outputs z of ablated heads (every method but `.uniform`, which acts on q).
    func ablate(_ l: Int, rows t: Int, start p: Int, heads: [InterventionTable.Head]) {
        let c = config, dh = c.dHead, qw = c.qWidth
        for hd in heads {
            let zh = scratch.z.pointer + hd.head * dh // rows qw apart
            switch hd.method {
            case .zero:
                for r in 0..<t { (zh + r * qw).update(repeating: 0, count: dh) }
            case .scale(let f):
                for r in 0..<t { for j in 0..<dh { zh[r * qw + j] *= f } }
            case .bos:
                let v0 = cache.floatValues(layer: l, rows: 1) + (hd.head / c.groupSize) * dh // v of key 0
                for r in 0..<t { (zh + r * qw).update(from: v0, count: dh) }
            case .mean:
                if let m = headMeans?[l] {
                    m.withUnsafeBufferPointer { mp in
                        for r in 0..<t { (zh + r * qw).update(from: mp.baseAddress! + hd.head * dh, count: dh) }
                    }
                } else {
                    let key = l * c.nHeads + hd.head
                    var rm = runningMeans.removeValue(forKey: key) ?? RunningMean(start: p)
                    if rm.start + rm.rows(dh) != p { rm = RunningMean(start: p) } // history broken: restart
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

    /// attnOut = z·Woᵀ, RMSNorm'd by `postNorm` when given (Gemma's post_attention_norm); patches
    /// and captures of hook_attn_out; x += attnOut; hook_resid_mid.
    func attentionOutput(_ b: BlockPass, postNorm: WeightMatrix? = nil) {
        let c = config, w = model.weights.layers[b.layer], s = scratch, d = c.dModel
        Kernels.linear(s.z.pointer, rows: b.rows, weight: w.wo, bias: nil, into: s.attnOut.pointer) // [T, D]
        if let postNorm {
            Kernels.rmsNorm(
                s.attnOut.pointer, rows: b.rows, width: d, weight: postNorm.data, eps: c.rmsNormEps,
                into: s.attnOut.pointer)
        }
        if let hooks = b.hooks {
            hooks.patch(.attnOut, b, s.attnOut.pointer, stride: d, width: d)
            hooks.emit(.attnOut, b, s.attnOut.pointer, width: d)
        }
        Kernels.add(s.x.pointer, s.attnOut.pointer, count: b.rows * d)
        b.hooks?.emit(.residMid, b, s.x.pointer, width: d)
    }

    /// mlpOut = (act(xn·Wgᵀ) * xn·Wuᵀ)·Wdᵀ of the normalized input xn (act: the model's SiLU or
    /// tanh-GELU; hooks mlp.hook_pre / hook_post), RMSNorm'd by `postNorm` when given (Gemma's
    /// post_ffw_norm); patches and captures of hook_mlp_out; x += mlpOut.
    func gatedMLP(_ b: BlockPass, postNorm: WeightMatrix? = nil) {
        let c = config, w = model.weights.layers[b.layer], s = scratch, t = b.rows, d = c.dModel
        Kernels.linear(s.xn.pointer, rows: t, weight: w.wGate, bias: nil, into: s.gate.pointer) // [T, F]
        Kernels.linear(s.xn.pointer, rows: t, weight: w.wUp, bias: nil, into: s.up.pointer) // [T, F]
        b.hooks?.emit(.mlpPre, b, s.gate.pointer, width: c.dFF)
        switch c.activation {
        case .silu: Kernels.swiglu(gate: s.gate.pointer, up: s.up.pointer, count: t * c.dFF) // [T, F]
        case .geluTanh: Kernels.gegluTanh(gate: s.gate.pointer, up: s.up.pointer, count: t * c.dFF) // [T, F]
        }
        b.hooks?.emit(.mlpPost, b, s.gate.pointer, width: c.dFF)
        Kernels.linear(s.gate.pointer, rows: t, weight: w.wDown, bias: nil, into: s.mlpOut.pointer) // [T, D]
        if let postNorm {
            Kernels.rmsNorm(
                s.mlpOut.pointer, rows: t, width: d, weight: postNorm.data, eps: c.rmsNormEps, into: s.mlpOut.pointer)
        }
        if let hooks = b.hooks {
            hooks.patch(.mlpOut, b, s.mlpOut.pointer, stride: d, width: d)
            hooks.emit(.mlpOut, b, s.mlpOut.pointer, width: d)
        }
        Kernels.add(s.x.pointer, s.mlpOut.pointer, count: t * d)
    }
}
