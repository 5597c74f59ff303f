// One transformer block's pass over a prefill chunk or a decode step, as a family's block function
// sees it (`ModelFamily.block`): which layer and rows, and the hooks (captures, interventions) that
// touch that layer. Blocks are written from the shared steps of BlockSteps.swift; each step takes
// the pass and does its hook work only when `hooks` is non-nil, so there is one code path per
// family with hooks optional.

/// A family's forward pass of one block: transforms the session's residual stream
/// `scratch.x` [T, D] of the chunk in place and writes the layer's K/V rows into the cache.
typealias BlockFunction = @Sendable (InferenceSession, BlockPass) throws -> Void

/// One block over chunk rows 0..<T at absolute positions P..<P+T.
struct BlockPass {
    /// L: the block (0..<nLayers).
    let layer: Int
    /// T: rows of the chunk (1 for a decode step).
    let rows: Int
    /// P: absolute position of row 0.
    let start: Int
    /// The captures and interventions of this layer, or nil when none (the plain path).
    let hooks: BlockHooks?
}

/// What the session's hooks want of one layer in one phase: the captures (if any hook point of
/// the layer is captured) and the interventions. Steps apply interventions first, then capture.
struct BlockHooks {
    /// The session's captures, when this layer has some.
    let captures: HookSet?
    /// Heads whose query is zeroed after RoPE (`.uniform`: uniform attention).
    let uniform: [Int]
    /// Heads whose output z is rewritten (every method but `.uniform`).
    let zHeads: [InterventionTable.Head]
    /// Heads whose attention is sent to key 0 (`.bos`); captured as one-hot patterns.
    let bosHeads: [Int]
    /// Activation patches of this layer and phase, in the session's order.
    let patches: [ActivationPatch]
    /// Heads of this layer under a KV policy other than `full` (prefill and decode alike).
    let policies: [(head: Int, policy: HeadKVPolicy)]

    /// The hooks of layer `l` in `phase`, or nil when neither captures nor interventions touch it.
    init?(captures: HookSet?, interventions table: InterventionTable?, layer l: Int, phase: ForwardPhase) {
        let hk = captures.flatMap { $0.active(l) ? $0 : nil }
        let iv = table.flatMap { $0.any[l] ? $0 : nil }
        guard hk != nil || iv != nil else { return nil }
        self.captures = hk
        uniform = iv?.uniform[l][phase] ?? []
        zHeads = iv?.zHeads[l][phase] ?? []
        bosHeads = zHeads.filter { $0.method == .bos }.map(\.head)
        patches = iv?.patches(l, phase) ?? []
        policies = iv?.policies[l] ?? []
    }

    /// Overwrites rows of `dst` (row r at dst + r * stride, `width` floats) with the patches of
    /// hook point `kind` (a residual-stream hook: resid_pre, attn_out, mlp_out, resid_post).
    func patch(_ kind: HookKind, _ b: BlockPass, _ dst: UnsafeMutablePointer<Float>, stride: Int, width: Int) {
        for pt in patches where pt.target.kind == kind {
            pt.apply(start: b.start, rows: b.rows, to: dst, stride: stride, width: width)
        }
    }

    /// Captures `[pos, D]` hook point `kind` of the pass's layer from `src` (rows `width` apart).
    func emit(_ kind: HookKind, _ b: BlockPass, _ src: UnsafeMutablePointer<Float>, width: Int) {
        if let hk = captures, let ci = hk.capture(b.layer, kind) {
            hk.emitPositions(ci, start: b.start, rows: b.rows, src: src, stride: width)
        }
    }
}
