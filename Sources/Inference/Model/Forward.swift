import Foundation

/// Which positions of a forward pass produce logits. Positions are absolute (0 = the first
/// token of the session); the logits at position i predict token i + 1.
public enum LogitsRequest: Sendable, Equatable {
    case none
    /// Only the last position of the call.
    case last
    /// Every position of the call (costs T x V floats of compute; delivered row by row).
    case all
    case positions(Set<Int>)
}

/// Per-chunk work buffers, sized for `maxChunk` rows (T <= maxChunk).
final class ForwardScratch {
    let x: FloatBuffer // [T, D]     residual stream
    let xn: FloatBuffer // [T, D]     normalized input of the current sublayer
    let q: FloatBuffer // [T, H, dh] queries (after RoPE)
    let z: FloatBuffer // [T, H, dh] per-head attention outputs
    let attnOut: FloatBuffer // [T, D]
    let gate: FloatBuffer // [T, F]     gate projection, then silu(gate) * up
    let up: FloatBuffer // [T, F]
    let mlpOut: FloatBuffer // [T, D]
    let probs: FloatBuffer // [max(T, G), C] one head's attention probabilities ([T, S] used; decoding: [G, S])
    let headIn: FloatBuffer // [R, D]     normalized rows for the output head
    let logits: FloatBuffer // [R, V]
    /// binary16 KV cache only: the chunk's new keys and values in Float32 before they are stored
    /// (`KVCache.store`); a Float32 cache is written in place and has none.
    let newKeys: FloatBuffer? // [T, Hkv, dh]
    let newValues: FloatBuffer? // [T, Hkv, dh]

    /// Rows per output-head product: each product streams the whole [V, D] matrix once, so not too few.
    static let headRows = 128 // R

    init(config c: ModelConfig, maxChunk t: Int, maxContext: Int, kv: KVStorage) {
        x = FloatBuffer(count: t * c.dModel)
        xn = FloatBuffer(count: t * c.dModel)
        q = FloatBuffer(count: t * c.qWidth)
        z = FloatBuffer(count: t * c.qWidth)
        attnOut = FloatBuffer(count: t * c.dModel)
        gate = FloatBuffer(count: t * c.dFF)
        up = FloatBuffer(count: t * c.dFF)
        mlpOut = FloatBuffer(count: t * c.dModel)
        probs = FloatBuffer(count: max(t, c.groupSize) * maxContext)
        headIn = FloatBuffer(count: Self.headRows * c.dModel)
        logits = FloatBuffer(count: Self.headRows * c.vocabSize)
        newKeys = kv == .f16 ? FloatBuffer(count: t * c.kvWidth) : nil
        newValues = kv == .f16 ? FloatBuffer(count: t * c.kvWidth) : nil
    }
}

/// One sequence being run through a model: the KV cache, the current position and work buffers.
/// Prefill runs in chunks of up to `maxChunk` tokens (matrix-matrix products); `step` decodes one
/// token (matrix-vector products). Not thread-safe; use one session per thread.
public final class InferenceSession {
    public let model: Model
    public let cache: KVCache
    /// Tokens per prefill chunk: bounds the work buffers (the attention scratch is maxChunk x maxContext).
    public let maxChunk: Int
    /// Captures of the following passes (nil: none); see `HookSet`, `trace(prompt:...)` and, for one
    /// pass without a reset, `step(token:capturing:into:)` / `prefill(tokens:logits:capturing:into:_:)`.
    public var hooks: HookSet?
    /// Head ablations, applied from the next `prefill`/`step` on (see `AblationMethod`).
    public var interventions: [HeadIntervention] = [] { didSet { interventionTable = nil } }
    /// For `.mean` ablations: layer -> [H * dh] mean head outputs z from a reference run
    /// (`Model.meanHeadOutputs`). If nil, `.mean` uses the running mean of the head's own output
    /// over the current sequence (positions 0...q for query q), which the session keeps per
    /// ablated head (dh doubles per position) and rewinds with `truncate`/`reset`.
    public var headMeans: [Int: [Float]]? { didSet { interventionTable = nil } }
    /// Activations replaced with values from another run, from the next `prefill`/`step` on.
    public var patches: [ActivationPatch] = [] { didSet { interventionTable = nil } }
    /// Per-head KV-cache policies (window + sinks, top-k, drop; see `KVPolicy`), applied to the
    /// attention of prefill and decode alike from the next `prefill`/`step` on; nil: full attention.
    /// Checked against the model and `maxContext` at the next pass.
    public var kvPolicy: KVPolicy? { didSet { interventionTable = nil } }
    /// Called after each prefill chunk with (tokens done, tokens in this `prefill` call).
    public var progress: ((_ done: Int, _ total: Int) -> Void)?
    /// Every token in the cache, in order.
    public internal(set) var tokens: [Int32] = []

    /// RoPE angles of the full-attention layers (all layers of most families).
    let rope: RopeTable
    /// RoPE angles of the sliding-window layers: `rope` unless they have their own base (Gemma 3).
    let ropeSWA: RopeTable
    let scratch: ForwardScratch
    /// Built from `interventions`/`patches`/`headMeans` at the next pass (nil: rebuild).
    var interventionTable: InterventionTable?
    /// (layer * H + head) -> running sums of the head's original z for `.mean` without `headMeans`.
    var runningMeans: [Int: RunningMean] = [:]

    public static let defaultMaxChunk = 512

    /// - kv: how the KV cache stores keys and values (nil: `KVStorage.default`, Float32 unless
    ///   `HEADLIGHT_KV` or the CLI's `--kv` say otherwise).
    public init(
        model: Model, maxContext: Int, maxChunk: Int = InferenceSession.defaultMaxChunk, kv: KVStorage? = nil
    ) {
        precondition(maxContext > 0 && maxChunk > 0)
        self.model = model
        self.maxChunk = min(maxChunk, maxContext)
        let kv = kv ?? KVStorage.default
        cache = KVCache(config: model.config, maxContext: maxContext, storage: kv)
        let c = model.config
        rope = RopeTable(config: c, positions: maxContext, freqFactors: model.weights.ropeFreqFactors)
        ropeSWA =
            c.separateSWARope
            ? RopeTable(
                config: c, positions: maxContext, freqFactors: model.weights.ropeFreqFactors, base: c.ropeBaseSWA,
                freqScale: c.ropeFreqScaleSWA)
            : rope
        scratch = ForwardScratch(config: model.config, maxChunk: self.maxChunk, maxContext: maxContext, kv: kv)
    }

    public var config: ModelConfig { model.config }
    public var maxContext: Int { cache.maxContext }
    /// How the KV cache stores keys and values.
    public var kvStorage: KVStorage { cache.storage }
    /// Number of tokens processed (the position of the next token).
    public var position: Int { cache.count }

    /// Empties the KV cache; the next token is at position 0.
    public func reset() {
        cache.clear()
        tokens.removeAll(keepingCapacity: true)
        runningMeans.removeAll()
    }

    /// Rewinds to the first `n` tokens (keeps their cache entries).
    public func truncate(to n: Int) {
        cache.truncate(to: n)
        tokens.removeLast(tokens.count - n)
        for key in Array(runningMeans.keys) {
            if !runningMeans[key]!.truncate(to: n, dHead: config.dHead) { runningMeans[key] = nil }
        }
    }

    /// Runs `tokens` and returns the logits [V] of the last one.
    @discardableResult
    public func prefill(tokens: [Int32]) throws -> [Float] {
        var result: [Float] = []
        try prefill(tokens: tokens, logits: .last) { _, row in result = Array(row) }
        return result
    }

    /// Runs `tokens`, returning the logits [T, V] of every position (T x V floats: mind the memory).
    public func prefillAllLogits(tokens: [Int32]) throws -> [[Float]] {
        var result: [[Float]] = []
        result.reserveCapacity(tokens.count)
        try prefill(tokens: tokens, logits: .all) { _, row in result.append(Array(row)) }
        return result
    }

    /// Runs `tokens` in chunks of `maxChunk`, calling `body(position, logits[V])` for each
    /// requested position in increasing order. The buffer is valid only during the call.
    public func prefill(
        tokens new: [Int32], logits request: LogitsRequest,
        _ body: (Int, UnsafeBufferPointer<Float>) throws -> Void
    ) throws {
        guard !new.isEmpty else { throw ModelError.emptyInput }
        try check(new)
        let last = position + new.count - 1
        var start = 0
        while start < new.count {
            let end = min(start + maxChunk, new.count)
            try forward(new[start..<end], logits: request, last: last, phase: .prefill, body)
            start = end
            progress?(end, new.count)
        }
    }

    /// Decodes one token; returns the logits [V] predicting the next.
    public func step(token: Int32) throws -> [Float] {
        try check([token])
        var result: [Float] = []
        try forward([token][...], logits: .last, last: position, phase: .decode) { _, row in result = Array(row) }
        return result
    }

    private func check(_ new: [Int32]) throws {
        guard position + new.count <= maxContext else {
            throw ModelError.contextFull(position: position, adding: new.count, maxContext: maxContext)
        }
        let v = config.vocabSize
        if let bad = new.first(where: { $0 < 0 || Int($0) >= v }) {
            throw ModelError.tokenOutOfRange(bad, vocabSize: v)
        }
    }

    /// One chunk: embedding, every block, then the output head for the requested positions.
    private func forward(
        _ chunk: ArraySlice<Int32>, logits request: LogitsRequest, last: Int, phase: ForwardPhase,
        _ body: (Int, UnsafeBufferPointer<Float>) throws -> Void
    ) throws {
        let t = chunk.count, p = position
        let table = try currentInterventions()
        let hk = hooks
        embed(chunk)
        if let hk, let ci = hk.capture(.embed) {
            hk.emitPositions(ci, start: p, rows: t, src: scratch.x.pointer, stride: config.dModel)
            try hk.check()
        }
        let block = model.family.block
        for l in 0..<config.nLayers {
            try block(
                self,
                BlockPass(
                    layer: l, rows: t, start: p,
                    hooks: BlockHooks(captures: hk, interventions: table, layer: l, phase: phase)))
        }
        cache.count = p + t
        tokens.append(contentsOf: chunk)
        var wanted: [Int]
        switch request {
        case .none: wanted = []
        case .last: wanted = (p..<(p + t)).contains(last) ? [last - p] : []
        case .all: wanted = Array(0..<t)
        case .positions(let set): wanted = (0..<t).filter { set.contains(p + $0) }
        }
        guard let hk else {
            try outputHead(rows: wanted, start: p, body)
            return
        }
        hk.emitLnFinal(start: p, rows: t, x: scratch.x.pointer)
        let captured = hk.chunkRows(.logits, p, t)
        if captured.isEmpty {
            try outputHead(rows: wanted, start: p, body)
        } else {
            let user = Set(wanted), cap = Set(captured)
            try outputHead(rows: user.union(cap).sorted(), start: p) { pos, row in
                if cap.contains(pos - p) { hk.emitLogits(position: pos, row: row.baseAddress!) }
                if user.contains(pos - p) { try body(pos, row) }
            }
        }
        hk.noteProcessed(upTo: p + t)
        try hk.check()
    }

    /// The intervention table for the next pass (nil when there are none); validates them.
    func currentInterventions() throws -> InterventionTable? {
        if interventions.isEmpty && patches.isEmpty && (kvPolicy?.isFull ?? true) { return nil }
        if let t = interventionTable { return t }
        let t = try InterventionTable(
            config: config, interventions: interventions, patches: patches, means: headMeans, kvPolicy: kvPolicy,
            maxContext: maxContext)
        interventionTable = t
        return t
    }

    /// x[T, D] = token_embd rows of the chunk's tokens (times `embeddingScale`, Gemma's √D).
    func embed(_ chunk: ArraySlice<Int32>) {
        let d = config.dModel, e = model.weights.tokenEmbedding, x = scratch.x.pointer
        for (r, tok) in chunk.enumerated() {
            e.copyRow(Int(tok), into: x + r * d)
        }
        let scale = config.embeddingScale
        if scale != 1 {
            for i in 0..<(chunk.count * d) { x[i] *= scale }
        }
    }

    /// logits = RMSNorm(x[r]) * output_norm · Woutᵀ for the chunk rows `rows`, R at a time
    /// (soft-capped, cap · tanh(logits / cap), when the model has a final soft-cap).
    func outputHead(rows: [Int], start p: Int, _ body: (Int, UnsafeBufferPointer<Float>) throws -> Void) throws {
        let c = config, s = scratch, d = c.dModel, v = c.vocabSize
        var i = 0
        while i < rows.count {
            let batch = rows[i..<min(i + ForwardScratch.headRows, rows.count)]
            for (j, r) in batch.enumerated() {
                (s.headIn.pointer + j * d).update(from: s.x.pointer + r * d, count: d)
            }
            Kernels.rmsNorm(
                s.headIn.pointer, rows: batch.count, width: d, weight: model.weights.outputNorm.data,
                eps: c.rmsNormEps, into: s.headIn.pointer) // [R, D]
            Kernels.linear(
                s.headIn.pointer, rows: batch.count, weight: model.weights.output, bias: nil,
                into: s.logits.pointer) // [R, V]
            if c.finalLogitSoftcap != 0 {
                Kernels.softcap(s.logits.pointer, count: batch.count * v, cap: c.finalLogitSoftcap)
            }
            for (j, r) in batch.enumerated() {
                try body(p + r, UnsafeBufferPointer(start: s.logits.pointer + j * v, count: v))
            }
            i += batch.count
        }
    }
}
