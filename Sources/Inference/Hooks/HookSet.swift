import CNative
import Foundation

/// The captures of one run, attached to an `InferenceSession` (`session.hooks`). The forward pass
/// asks it, layer by layer, whether anything is wanted there (a dictionary lookup; nothing else
/// happens when nothing is) and hands it the activations, which it cuts down to the plan's
/// selection and passes to the sink as blocks while the pass runs, so memory stays bounded by one
/// chunk of one layer.
///
/// Conventions of the values (see `HookKind` for shapes):
/// - hook_q / hook_k / hook_rot_q / hook_rot_k of `llama` models: llama.cpp's converter permutes the
///   rows of W_q and W_k within each head (rotate-half -> adjacent pairs); captured values are
///   permuted back, so they equal Hugging Face's / TransformerLens' q and k.
/// - Captures observe the values after the interventions at the same point (an ablated head's
///   hook_z is its ablated output; a `.uniform` head's hook_rot_q is zero and its pattern uniform;
///   a `.bos` head's pattern is one-hot on key 0). hook_attn_scores are the scores computed from the
///   (possibly zeroed) queries, before any `.bos` replacement.
/// - Attention rows span the planned sequence (`TracePlan.sequenceLength` keys); keys after the
///   query are 0 in patterns and -inf in scores.
/// - Positions outside the plan (more tokens than planned) are not captured.
public final class HookSet {
    public let plan: TracePlan
    public let sink: CaptureSink
    let config: ModelConfig
    let perLayer: [[HookKind: Int]]
    let global: [HookKind: Int]
    let queries: [[Int]]
    let headIndex: [[Int: Int]]
    let unpermute: Bool
    let oneHot: FloatBuffer // [N] = e_0
    let ones: FloatBuffer // [D]
    private var stageA = FloatBuffer(count: 0)
    private var stageB = FloatBuffer(count: 0)
    private var stageI: [Int32] = []
    private var error: Error?
    /// Positions processed so far (highest position + 1).
    public private(set) var positions = 0
    public private(set) var isFinished = false

    /// Attention rows are written in groups of this many queries, each over keys 0..<(a multiple of
    /// `keyBlock` covering the group's last query): whole [1, rowBlock, keyBlock] tiles, so tiles
    /// entirely above the diagonal are never written (a chunked HDF5 dataset does not store them).
    public static let rowBlock = 64
    public static let keyBlock = 256

    public init(plan: TracePlan, sink: CaptureSink) throws {
        self.plan = plan
        self.sink = sink
        config = plan.config
        var per = [[HookKind: Int]](repeating: [:], count: config.nLayers)
        var glob: [HookKind: Int] = [:]
        for (i, c) in plan.captures.enumerated() {
            if let l = c.point.layer { per[l][c.point.kind] = i } else { glob[c.point.kind] = i }
        }
        perLayer = per
        global = glob
        queries = plan.captures.map(\.queries)
        headIndex = plan.captures.map { c in
            Dictionary(uniqueKeysWithValues: (c.heads ?? []).enumerated().map { ($1, $0) })
        }
        unpermute = config.ropeStyle == .normal && config.ropeDims == config.dHead
        oneHot = FloatBuffer(count: plan.sequenceLength)
        oneHot.pointer[0] = 1
        ones = FloatBuffer([Float](repeating: 1, count: config.dModel))
        try sink.prepare(plan)
    }

    /// Tells the sink the run is over (shrinking datasets when fewer positions than planned ran).
    public func finish() throws {
        guard !isFinished else { return }
        try check()
        isFinished = true
        try sink.finish(positions: min(positions, plan.sequenceLength))
    }

    // MARK: - lookups used by the forward pass

    @inline(__always) func capture(_ l: Int, _ k: HookKind) -> Int? { perLayer[l][k] }
    @inline(__always) func capture(_ k: HookKind) -> Int? { global[k] }
    @inline(__always) func active(_ l: Int) -> Bool { !perLayer[l].isEmpty }

    /// Rows of capture `ci` whose positions lie in p..<p+t.
    func rows(_ ci: Int, _ p: Int, _ t: Int) -> Range<Int> {
        let q = queries[ci]
        func lowerBound(_ x: Int) -> Int {
            var lo = 0, hi = q.count
            while lo < hi {
                let m = (lo + hi) / 2
                if q[m] < x { lo = m + 1 } else { hi = m }
            }
            return lo
        }
        return lowerBound(p)..<lowerBound(p + t)
    }

    /// Positions in p..<p+t wanted by capture `kind` (global hooks), chunk-relative.
    func chunkRows(_ k: HookKind, _ p: Int, _ t: Int) -> [Int] {
        guard let ci = global[k] else { return [] }
        return rows(ci, p, t).map { queries[ci][$0] - p }
    }

    func noteProcessed(upTo end: Int) { positions = max(positions, end) }

    func record(_ body: () throws -> Void) {
        guard error == nil else { return }
        do { try body() } catch { self.error = error }
    }

    /// Rethrows the first sink error since the last check.
    func check() throws {
        if let e = error {
            error = nil
            throw e
        }
    }

    private func stage(_ b: inout FloatBuffer, _ n: Int) -> UnsafeMutablePointer<Float> {
        if b.count < n { b = FloatBuffer(count: max(n, b.count * 3 / 2)) }
        return b.pointer
    }

    // MARK: - [pos, ...] hooks

    /// `[pos, width]` hooks: position pos's row at src + (pos - p) * stride.
    func emitPositions(_ ci: Int, start p: Int, rows t: Int, src: UnsafePointer<Float>, stride: Int) {
        let rr = rows(ci, p, t)
        guard !rr.isEmpty else { return }
        let q = queries[ci], w = plan.captures[ci].shape[1], lo = rr.lowerBound
        let block = CaptureBlock(start: [lo, 0], count: [rr.count, w]) { i in src + (q[lo + i] - p) * stride }
        record { try sink.write(ci, block) }
    }

    /// `[pos, head, dh]` hooks: head h of position pos at src + (pos - p) * stride + h * dh.
    /// `permuted`: q/k of a llama model, un-permuted to Hugging Face order.
    func emitHeads(_ ci: Int, start p: Int, rows t: Int, src: UnsafePointer<Float>, stride: Int, permuted: Bool) {
        let rr = rows(ci, p, t)
        guard !rr.isEmpty else { return }
        let layout = plan.captures[ci]
        let q = queries[ci], heads = layout.heads!, nh = heads.count, dh = config.dHead, lo = rr.lowerBound
        let count = [rr.count, nh, dh]
        if permuted && unpermute {
            let out = stage(&stageA, rr.count * nh * dh), half = dh / 2
            for i in 0..<rr.count {
                for (hi, h) in heads.enumerated() {
                    let s = src + (q[lo + i] - p) * stride + h * dh, d = out + (i * nh + hi) * dh
                    for j in 0..<half {
                        d[j] = s[2 * j]
                        d[j + half] = s[2 * j + 1]
                    }
                }
            }
            let block = CaptureBlock(start: [lo, 0, 0], count: count) { i in UnsafePointer(out + i * dh) }
            record { try sink.write(ci, block) }
        } else {
            let block = CaptureBlock(start: [lo, 0, 0], count: count) { i in
                src + (q[lo + i / nh] - p) * stride + heads[i % nh] * dh
            }
            record { try sink.write(ci, block) }
        }
    }

    /// hook_result `[pos, head, D]`: z_h · W_O[:, h]ᵀ for the selected heads.
    func emitResult(_ ci: Int, start p: Int, rows t: Int, z: UnsafePointer<Float>, wo: WeightMatrix) {
        let rr = rows(ci, p, t)
        guard !rr.isEmpty else { return }
        let c = config, q = queries[ci], heads = plan.captures[ci].heads!, nh = heads.count, n = rr.count
        let dh = c.dHead, d = c.dModel, qw = c.qWidth, lo = rr.lowerBound
        let zs = stage(&stageB, n * qw)
        for i in 0..<n { (zs + i * qw).update(from: z + (q[lo + i] - p) * qw, count: qw) }
        let out = stage(&stageA, n * nh * d)
        for (hi, h) in heads.enumerated() {
            // out[n, hi, D] = zs[n, h*dh ..< h*dh+dh] · Wo[D, h*dh ..< ...]ᵀ
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, blasint(n), blasint(d), blasint(dh), 1,
                zs + h * dh, blasint(qw), wo.data + h * dh, blasint(qw), 0, out + hi * d, blasint(nh * d))
        }
        let block = CaptureBlock(start: [lo, 0, 0], count: [n, nh, d]) { i in UnsafePointer(out + i * d) }
        record { try sink.write(ci, block) }
    }

    /// ln_final.hook_normalized: x / rms(x) of the selected positions.
    func emitLnFinal(start p: Int, rows t: Int, x: UnsafePointer<Float>) {
        guard let ci = global[.lnFinal] else { return }
        emitNormalized(ci, start: p, rows: t, x: x)
    }

    /// A `[pos, D]` hook_normalized capture (ln1, ln2, ln_final): x / rms(x) of the selected
    /// positions of x [T, D], without the norm's weight (TransformerLens folds it).
    func emitNormalized(_ ci: Int, start p: Int, rows t: Int, x: UnsafePointer<Float>) {
        let rr = rows(ci, p, t)
        guard !rr.isEmpty else { return }
        let d = config.dModel, q = queries[ci], lo = rr.lowerBound, n = rr.count
        let out = stage(&stageA, n * d)
        for i in 0..<n { (out + i * d).update(from: x + (q[lo + i] - p) * d, count: d) }
        Kernels.rmsNorm(out, rows: n, width: d, weight: ones.pointer, eps: config.rmsNormEps, into: out)
        let block = CaptureBlock(start: [lo, 0], count: [n, d]) { i in UnsafePointer(out + i * d) }
        record { try sink.write(ci, block) }
    }

    /// One logits row at absolute position `pos`.
    func emitLogits(position pos: Int, row: UnsafePointer<Float>) {
        guard let ci = global[.logits] else { return }
        let rr = rows(ci, pos, 1)
        guard !rr.isEmpty else { return }
        let block = CaptureBlock(start: [rr.lowerBound, 0], count: [1, config.vocabSize]) { _ in row }
        record { try sink.write(ci, block) }
    }

    // MARK: - attention

    /// Chunk row of the first hook_pattern query of layer `l` among positions p..<p+t, if any.
    func firstPatternRow(layer l: Int, rows t: Int, start p: Int) -> Int? {
        guard let ci = perLayer[l][.pattern] else { return nil }
        let rr = rows(ci, p, t)
        return rr.isEmpty ? nil : queries[ci][rr.lowerBound] - p
    }

    /// The per-head callback for `Kernels.causalAttention` capturing hook_pattern of layer `l`, or
    /// nil when no pattern row of this chunk is wanted. `bosHeads` report a one-hot pattern.
    func patternObserver(
        layer l: Int, rows t: Int, start p: Int, bosHeads: [Int]
    ) -> ((Int, UnsafePointer<Float>) -> Void)? {
        guard let ci = perLayer[l][.pattern] else { return nil }
        let rr = rows(ci, p, t)
        guard !rr.isEmpty else { return nil }
        let s = p + t, q = queries[ci]
        return { [self] h, probs in
            guard let hi = headIndex[ci][h] else { return }
            if bosHeads.contains(h) {
                let e0 = UnsafePointer(oneHot.pointer)
                emitAttention(ci, head: hi, rows: rr, keys: s, pad: 0) { _ in e0 }
            } else {
                emitAttention(ci, head: hi, rows: rr, keys: s, pad: 0) { r in probs + (q[r] - p) * s }
            }
        }
    }

    /// hook_attn_scores of layer `l`: scale * q · kᵀ (soft-capped when the model caps) for the selected
    /// rows and heads, -inf after the query and before a sliding window.
    func emitScores(layer l: Int, rows t: Int, start p: Int, q qBuf: UnsafePointer<Float>, keys: UnsafePointer<Float>) {
        guard let ci = perLayer[l][.attnScores] else { return }
        let rr = rows(ci, p, t)
        guard !rr.isEmpty else { return }
        let c = config, layout = plan.captures[ci], qs = queries[ci], s = p + t, n = layout.sequenceLength
        let dh = c.dHead, scale = c.attentionScale, window = c.window(l), cap = c.attnLogitSoftcap
        let rowsForm = layout.form == .full || layout.form == .rows
        for (hi, h) in layout.heads!.enumerated() {
            let kh = keys + (h / c.groupSize) * dh
            var g0 = rr.lowerBound
            while g0 < rr.upperBound {
                let g1 = min(rr.upperBound, (g0 / Self.rowBlock + 1) * Self.rowBlock), g = g1 - g0
                let w = rowsForm ? min(n, roundUp(qs[g1 - 1] + 1, Self.keyBlock)) : s
                let cols = min(s, w)
                let qst = stage(&stageB, g * dh)
                for r in 0..<g { (qst + r * dh).update(from: qBuf + (qs[g0 + r] - p) * c.qWidth + h * dh, count: dh) }
                let out = stage(&stageA, g * w)
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, blasint(g), blasint(cols), blasint(dh), scale,
                    qst, blasint(dh), kh, blasint(c.kvWidth), 0, out, blasint(w))
                for r in 0..<g {
                    let valid = qs[g0 + r] + 1
                    let lo = window > 0 ? max(0, valid - window) : 0 // keys lo..<valid are visible
                    if cap != 0 { Kernels.softcap(out + r * w + lo, count: min(valid, cols) - lo, cap: cap) }
                    if lo > 0 { (out + r * w).update(repeating: -.infinity, count: min(lo, w)) }
                    if valid < w { (out + r * w + valid).update(repeating: -.infinity, count: w - valid) }
                }
                emitAttention(ci, head: hi, rows: g0..<g1, keys: w, pad: -.infinity) { r in
                    UnsafePointer(out + (r - g0) * w)
                }
                g0 = g1
            }
        }
    }

    /// Writes attention rows `rr` (dataset rows) of head index `hi` in the capture's form. `row(r)`
    /// points at the row of dataset row r, with `keys` entries in memory (entries after the query
    /// are 0 / -inf).
    func emitAttention(
        _ ci: Int, head hi: Int, rows rr: Range<Int>, keys s: Int, pad: Float,
        row: (Int) -> UnsafePointer<Float>
    ) {
        let layout = plan.captures[ci], qs = queries[ci], n = layout.sequenceLength
        switch layout.form {
        case .full, .rows:
            var g0 = rr.lowerBound
            while g0 < rr.upperBound {
                let g1 = min(rr.upperBound, (g0 / Self.rowBlock + 1) * Self.rowBlock)
                let w = min(n, roundUp(qs[g1 - 1] + 1, Self.keyBlock))
                let rowsOut = (g0..<g1).map { row($0) }
                let block = CaptureBlock(start: [hi, g0, 0], count: [1, g1 - g0, w], valid: min(s, w)) { rowsOut[$0] }
                if pad != 0 && s < w {
                    // -inf padding (scores): materialize
                    let out = stage(&stageB, (g1 - g0) * w)
                    block.copy(into: out)
                    for r in 0..<(g1 - g0) { (out + r * w + s).update(repeating: pad, count: w - s) }
                    let b2 = CaptureBlock(start: [hi, g0, 0], count: [1, g1 - g0, w]) { UnsafePointer(out + $0 * w) }
                    record { try sink.write(ci, b2) }
                } else {
                    record { try sink.write(ci, block) }
                }
                g0 = g1
            }
        case .topk:
            let k = layout.k!, m = rr.count
            if stageI.count < m * k { stageI = [Int32](repeating: 0, count: m * k) }
            let vals = stage(&stageB, m * k)
            stageI.withUnsafeMutableBufferPointer { idx in
                for (i, r) in rr.enumerated() {
                    Self.topK(
                        row(r), count: qs[r] + 1, k: k, values: vals + i * k, indices: idx.baseAddress! + i * k,
                        pad: pad)
                }
            }
            let block = CaptureBlock(start: [hi, rr.lowerBound, 0], count: [1, m, k]) { UnsafePointer(vals + $0 * k) }
            record {
                try sink.write(ci, block)
                try stageI.withUnsafeBufferPointer {
                    try sink.writeIndices(
                        ci, start: [hi, rr.lowerBound, 0], count: [1, m, k],
                        UnsafeBufferPointer(rebasing: $0[0..<(m * k)]))
                }
            }
        case .spanMass:
            let spans = layout.spans!, ns = spans.count, m = rr.count
            let out = stage(&stageB, m * ns)
            for (i, r) in rr.enumerated() {
                let src = row(r), last = qs[r]
                for (j, sp) in spans.enumerated() {
                    var acc: Float = 0
                    let hi = min(sp.end, last + 1)
                    if sp.start < hi { for key in sp.start..<hi { acc += src[key] } }
                    out[i * ns + j] = acc
                }
            }
            let block = CaptureBlock(start: [hi, rr.lowerBound, 0], count: [1, m, ns]) { UnsafePointer(out + $0 * ns) }
            record { try sink.write(ci, block) }
        }
    }

    /// The k largest of row[0..<m], descending (ties: lower index first); missing entries are index -1, value `pad`.
    static func topK(
        _ row: UnsafePointer<Float>, count m: Int, k: Int, values: UnsafeMutablePointer<Float>,
        indices: UnsafeMutablePointer<Int32>, pad: Float
    ) {
        var n = 0
        for j in 0..<m {
            let x = row[j]
            if n == k && !(x > values[k - 1]) { continue }
            var i = n < k ? n : k - 1
            while i > 0 && values[i - 1] < x {
                values[i] = values[i - 1]
                indices[i] = indices[i - 1]
                i -= 1
            }
            values[i] = x
            indices[i] = Int32(j)
            if n < k { n += 1 }
        }
        for i in n..<k {
            values[i] = pad
            indices[i] = -1
        }
    }
}

@inline(__always) func roundUp(_ x: Int, _ m: Int) -> Int { (x + m - 1) / m * m }
