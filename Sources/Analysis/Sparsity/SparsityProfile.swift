import Foundation
import Inference

// Attention-sparsity profile: for every head, how concentrated its attention is as the context
// grows. For each context length T, `samples` windows of T tokens are cut from a text at seeded
// offsets (the model's BOS first when its tokenizer adds one), run once each, and the last
// `queries` positions of every layer and head are reduced on the fly by `SparsitySink` (top-k
// share, entropy, sink mass, StreamingLLM-style kept mass): the statistics at length T are those
// of queries that see about T keys. Memory is bounded by the forward pass (KV cache and one
// chunk of one head's attention); no pattern is stored.

public struct SparsityProfileOptions: Sendable {
    public var lengths = [1024, 2048, 4096, 8192]
    public var samples = 2
    public var queries = 32
    public var ks = [1, 4, 16, 64, 256]
    public var sinkSizes = [1, 4]
    public var windows = [128, 512]
    public var streamingSinks = 4
    public var seed: UInt64 = 0

    public init() {}
}

public struct SparsityProfileResult: Sendable {
    public var layers: Int
    public var heads: Int
    public var options: SparsityProfileOptions
    /// [length][k][layer * heads + head]
    public var topKShare: [[[Double]]]
    /// [length][layer * heads + head]
    public var entropy: [[Double]]
    public var normalizedEntropy: [[Double]]
    /// [length][sink size][layer * heads + head]
    public var sinkMass: [[[Double]]]
    /// [length][window][layer * heads + head]
    public var streamingMass: [[[Double]]]
    /// Rows averaged per head, per length.
    public var rows: [Int]
    /// Token offset of each sample window in the text, per length.
    public var offsets: [[Int]]
    public var seconds: [Double]
    public var textTokens: Int
}

public enum SparsityError: LocalizedError, Equatable {
    case textTooShort(tokens: Int, needed: Int)
    case tooLong(length: Int, maxContext: Int)
    case invalid(String)

    public var errorDescription: String? {
        switch self {
        case .textTooShort(let t, let n):
            return "the text has \(t) tokens; the longest length needs \(n)"
        case .tooLong(let l, let m):
            return "length \(l) exceeds the model's context of \(m) tokens"
        case .invalid(let s): return s
        }
    }
}

public final class SparsityProfiler {
    public let model: Model
    public let tokenizer: Tokenizer
    public let options: SparsityProfileOptions

    public init(model: Model, tokenizer: Tokenizer, options: SparsityProfileOptions) {
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
    }

    /// Profiles windows of `text`; `progress(done, total, length)` after each forward pass.
    public func run(text: String, progress: (Int, Int, Int) -> Void = { _, _, _ in }) throws -> SparsityProfileResult {
        let o = options
        guard !o.lengths.isEmpty, o.lengths.allSatisfy({ $0 >= 2 }) else {
            throw SparsityError.invalid("lengths must be at least 2 tokens")
        }
        guard o.samples >= 1, o.queries >= 1 else { throw SparsityError.invalid("samples and queries must be >= 1") }
        let maxLen = o.lengths.max()!
        let limit = model.defaultMaxContext
        if maxLen > limit { throw SparsityError.tooLong(length: maxLen, maxContext: limit) }
        let bos: [Int32] = tokenizer.addBOS ? tokenizer.bos.map { [$0] } ?? [] : []
        let tokens = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
        let body = maxLen - bos.count
        guard tokens.count >= body else { throw SparsityError.textTooShort(tokens: tokens.count, needed: body) }
        let c = model.config
        let session = InferenceSession(model: model, maxContext: maxLen)
        let sink = SparsitySink(
            ks: o.ks, sinkSizes: o.sinkSizes, windows: o.windows, streamingSinks: o.streamingSinks)
        var g = SeededGenerator(seed: o.seed)
        var result = SparsityProfileResult(
            layers: c.nLayers, heads: c.nHeads, options: o, topKShare: [], entropy: [], normalizedEntropy: [],
            sinkMass: [], streamingMass: [], rows: [], offsets: [], seconds: [], textTokens: tokens.count)
        let total = o.lengths.count * o.samples
        var done = 0
        for t in o.lengths {
            let start = Date()
            sink.reset()
            var offs: [Int] = []
            let n = t - bos.count
            for _ in 0..<o.samples {
                let off = Int(g.next() % UInt64(tokens.count - n + 1))
                offs.append(off)
                let ids = bos + Array(tokens[off..<(off + n)])
                let req = CaptureRequest(hooks: ["attn.hook_pattern"], queries: .last(min(o.queries, t)))
                try session.trace(prompt: ids, requests: [req], into: sink)
                done += 1
                progress(done, total, t)
            }
            result.topKShare.append(sink.topKShare)
            result.entropy.append(sink.meanEntropy)
            result.normalizedEntropy.append(sink.meanNormalizedEntropy)
            result.sinkMass.append(sink.sinkMass)
            result.streamingMass.append(sink.streamingMass)
            result.rows.append(sink.rows.first ?? 0)
            result.offsets.append(offs)
            result.seconds.append(Date().timeIntervalSince(start))
        }
        return result
    }
}
