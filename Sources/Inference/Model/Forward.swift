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

/// Attention probabilities to keep: for `layer`, the rows of `queries` (absolute positions) of
/// `heads` (nil: every head).
public struct AttentionRequest: Sendable, Hashable {
    public var layer: Int
    public var queries: [Int]
    public var heads: [Int]?

    public init(layer: Int, queries: [Int], heads: [Int]? = nil) {
        self.layer = layer; self.queries = queries; self.heads = heads
    }
}

/// Collects attention-probability rows during forward passes ("ask, then observe": only the
/// requested (layer, head, query) rows are copied). Set it on a session before `prefill`/`step`.
public final class AttentionCapture {
    public struct Key: Hashable, Sendable, Comparable {
        public var layer: Int, head: Int, query: Int
        public init(layer: Int, head: Int, query: Int) { self.layer = layer; self.head = head; self.query = query }
        public static func < (a: Key, b: Key) -> Bool { (a.layer, a.head, a.query) < (b.layer, b.head, b.query) }
    }

    /// layer -> [(queries, heads)]
    private let byLayer: [Int: [(queries: Set<Int>, heads: Set<Int>?)]]
    /// Captured rows: probabilities over keys 0...query (length query + 1).
    public private(set) var rows: [Key: [Float]] = [:]

    public init(_ requests: [AttentionRequest]) {
        var m: [Int: [(queries: Set<Int>, heads: Set<Int>?)]] = [:]
        for r in requests { m[r.layer, default: []].append((Set(r.queries), r.heads.map(Set.init))) }
        byLayer = m
    }

    public func row(layer: Int, head: Int, query: Int) -> [Float]? {
        rows[Key(layer: layer, head: head, query: query)]
    }

    public func removeAll() { rows.removeAll() }

    /// The per-head callback for `Kernels.causalAttention` on layer `layer` for queries P..<P+T,
    /// or nil when nothing is wanted there.
    func observer(layer: Int, rows t: Int, start p: Int) -> ((Int, UnsafePointer<Float>) -> Void)? {
        guard let wants = byLayer[layer] else { return nil }
        let chunk = p..<(p + t)
        guard wants.contains(where: { w in w.queries.contains { chunk.contains($0) } }) else { return nil }
        let s = p + t
        return { [self] head, probs in                                        // probs [T, S]
            for w in wants where w.heads?.contains(head) ?? true {
                for q in w.queries where chunk.contains(q) {
                    let row = probs + (q - p) * s
                    rows[Key(layer: layer, head: head, query: q)] = Array(UnsafeBufferPointer(start: row, count: q + 1))
                }
            }
        }
    }
}

/// Per-chunk work buffers, sized for `maxChunk` rows (T <= maxChunk).
final class ForwardScratch {
    let x: FloatBuffer        // [T, D]     residual stream
    let xn: FloatBuffer       // [T, D]     normalized input of the current sublayer
    let q: FloatBuffer        // [T, H, dh] queries (after RoPE)
    let z: FloatBuffer        // [T, H, dh] per-head attention outputs
    let attnOut: FloatBuffer  // [T, D]
    let gate: FloatBuffer     // [T, F]     gate projection, then silu(gate) * up
    let up: FloatBuffer       // [T, F]
    let mlpOut: FloatBuffer   // [T, D]
    let probs: FloatBuffer    // [max(T, G), C] one head's attention probabilities ([T, S] used; decoding: [G, S])
    let headIn: FloatBuffer   // [R, D]     normalized rows for the output head
    let logits: FloatBuffer   // [R, V]

    /// Rows per output-head product: each product streams the whole [V, D] matrix once, so not too few.
    static let headRows = 128  // R

    init(config c: ModelConfig, maxChunk t: Int, maxContext: Int) {
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
    /// Attention rows to record during the following passes (nil: none).
    public var attentionCapture: AttentionCapture?
    /// Every token in the cache, in order.
    public private(set) var tokens: [Int32] = []

    let rope: RopeTable
    let scratch: ForwardScratch

    public static let defaultMaxChunk = 512

    public init(model: Model, maxContext: Int, maxChunk: Int = InferenceSession.defaultMaxChunk) {
        precondition(maxContext > 0 && maxChunk > 0)
        self.model = model
        self.maxChunk = min(maxChunk, maxContext)
        cache = KVCache(config: model.config, maxContext: maxContext)
        rope = RopeTable(config: model.config, positions: maxContext, freqFactors: model.weights.ropeFreqFactors)
        scratch = ForwardScratch(config: model.config, maxChunk: self.maxChunk, maxContext: maxContext)
    }

    public var config: ModelConfig { model.config }
    public var maxContext: Int { cache.maxContext }
    /// Number of tokens processed (the position of the next token).
    public var position: Int { cache.count }

    /// Empties the KV cache; the next token is at position 0.
    public func reset() {
        cache.clear()
        tokens.removeAll(keepingCapacity: true)
    }

    /// Rewinds to the first `n` tokens (keeps their cache entries).
    public func truncate(to n: Int) {
        cache.truncate(to: n)
        tokens.removeLast(tokens.count - n)
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
    public func prefill(tokens new: [Int32], logits request: LogitsRequest,
                        _ body: (Int, UnsafeBufferPointer<Float>) throws -> Void) throws {
        guard !new.isEmpty else { throw ModelError.emptyInput }
        try check(new)
        let last = position + new.count - 1
        var start = 0
        while start < new.count {
            let end = min(start + maxChunk, new.count)
            try forward(new[start..<end], logits: request, last: last, body)
            start = end
        }
    }

    /// Decodes one token; returns the logits [V] predicting the next.
    public func step(token: Int32) throws -> [Float] {
        try check([token])
        var result: [Float] = []
        try forward([token][...], logits: .last, last: position) { _, row in result = Array(row) }
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
    private func forward(_ chunk: ArraySlice<Int32>, logits request: LogitsRequest, last: Int,
                         _ body: (Int, UnsafeBufferPointer<Float>) throws -> Void) throws {
        let t = chunk.count, p = position
        embed(chunk)
        for l in 0..<config.nLayers { llamaBlock(l, rows: t, start: p) }
        cache.count = p + t
        tokens.append(contentsOf: chunk)
        let wanted: [Int]
        switch request {
        case .none: wanted = []
        case .last: wanted = (p..<(p + t)).contains(last) ? [last - p] : []
        case .all: wanted = Array(0..<t)
        case .positions(let set): wanted = (0..<t).filter { set.contains(p + $0) }
        }
        try outputHead(rows: wanted, start: p, body)
    }

    /// x[T, D] = token_embd rows of the chunk's tokens.
    func embed(_ chunk: ArraySlice<Int32>) {
        let d = config.dModel, e = model.weights.tokenEmbedding.data, x = scratch.x.pointer
        for (r, tok) in chunk.enumerated() {
            (x + r * d).update(from: e + Int(tok) * d, count: d)
        }
    }

    /// logits = RMSNorm(x[r]) * output_norm · Woutᵀ for the chunk rows `rows`, R at a time.
    func outputHead(rows: [Int], start p: Int, _ body: (Int, UnsafeBufferPointer<Float>) throws -> Void) throws {
        let c = config, s = scratch, d = c.dModel, v = c.vocabSize
        var i = 0
        while i < rows.count {
            let batch = rows[i..<min(i + ForwardScratch.headRows, rows.count)]
            for (j, r) in batch.enumerated() {
                (s.headIn.pointer + j * d).update(from: s.x.pointer + r * d, count: d)
            }
            Kernels.rmsNorm(s.headIn.pointer, rows: batch.count, width: d, weight: model.weights.outputNorm.data,
                            eps: c.rmsNormEps, into: s.headIn.pointer)                     // [R, D]
            Kernels.linear(s.headIn.pointer, rows: batch.count, weight: model.weights.output, bias: nil,
                           into: s.logits.pointer)                                          // [R, V]
            for (j, r) in batch.enumerated() {
                try body(p + r, UnsafeBufferPointer(start: s.logits.pointer + j * v, count: v))
            }
            i += batch.count
        }
    }
}
