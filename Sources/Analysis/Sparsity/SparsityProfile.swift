import Foundation
import Inference

// Attention-sparsity profile: for every head, how concentrated its attention is as the context
// grows. For each context length T, `samples` windows of T tokens are cut from a text at seeded
// offsets (the model's BOS first when its tokenizer adds one), run once each, and the last
// `queries` positions of every layer and head are reduced on the fly by `SparsitySink` (top-k
// share, entropy, sink mass, StreamingLLM-style kept mass): the statistics at length T are those
// of queries that see about T keys. Memory is bounded by the forward pass (KV cache and one
// chunk of one head's attention); no pattern is stored. Each statistic is averaged per sample,
// then over samples; its percentile-bootstrap CI resamples the samples (the prompts), per head and
// for the median over heads (NaN bounds with a single sample).

public struct SparsityProfileOptions: Sendable {
    public var lengths = [1024, 2048, 4096, 8192]
    public var samples = 2
    public var queries = 32
    public var ks = [1, 4, 16, 64, 256]
    public var sinkSizes = [1, 4]
    public var windows = [128, 512]
    public var streamingSinks = 4
    public var seed: UInt64 = 0
    public var bootstrapResamples = Statistics.defaultBootstrapResamples
    public var level = 0.95

    public init() {}

    /// Names of `SparsityStats.series`, in order.
    public var seriesNames: [String] {
        ks.map { "top-\($0) share" } + ["entropy", "normalized entropy"] + sinkSizes.map { "sink mass \($0)" }
            + windows.map { "streaming mass \($0)" }
    }
}

/// Per-head sparsity statistics (every vector [layer * heads + head]).
public struct SparsityStats: Sendable, Equatable {
    /// [k][head]
    public var topKShare: [[Double]]
    public var entropy: [Double]
    public var normalizedEntropy: [Double]
    /// [sink size][head]
    public var sinkMass: [[Double]]
    /// [window][head]
    public var streamingMass: [[Double]]

    public init(
        topKShare: [[Double]], entropy: [Double], normalizedEntropy: [Double], sinkMass: [[Double]],
        streamingMass: [[Double]]
    ) {
        self.topKShare = topKShare
        self.entropy = entropy
        self.normalizedEntropy = normalizedEntropy
        self.sinkMass = sinkMass
        self.streamingMass = streamingMass
    }

    /// Rebuilds the statistics from `series` (the order of `series`).
    public init(series v: [[Double]], ks: Int, sinks: Int, windows: Int) {
        precondition(v.count == ks + 2 + sinks + windows, "SparsityStats: wrong number of series")
        topKShare = Array(v[0..<ks])
        entropy = v[ks]
        normalizedEntropy = v[ks + 1]
        sinkMass = Array(v[(ks + 2)..<(ks + 2 + sinks)])
        streamingMass = Array(v[(ks + 2 + sinks)...])
    }

    /// Every per-head vector: the top-k shares (in `ks` order), entropy, normalized entropy, the
    /// sink masses, the streaming masses.
    public var series: [[Double]] { topKShare + [entropy, normalizedEntropy] + sinkMass + streamingMass }

    /// Per series and head, the mean over the samples, and its percentile-bootstrap bounds over the
    /// samples (`samples[i]` is sample i's `series`); per series, the median over heads with its CI
    /// (every resample's per-head means, then their median over the finite heads). NaN bounds with
    /// fewer than two samples. One set of draws (`seed`) serves every series and head.
    public static func bootstrap(
        samples: [[[Double]]], resamples: Int, level: Double, seed: UInt64
    ) -> (mean: [[Double]], lower: [[Double]], upper: [[Double]], median: [ConfidenceInterval]) {
        let n = samples.count
        guard let first = samples.first else { return ([], [], [], []) }
        let nSeries = first.count, nh = first.first?.count ?? 0
        func meanOf(_ idx: [Int], _ s: Int, _ h: Int) -> Double {
            var acc = 0.0
            for i in idx { acc += samples[i][s][h] }
            return acc / Double(idx.count)
        }
        func median(_ v: [Double]) -> Double {
            let f = v.filter(\.isFinite)
            return f.isEmpty ? .nan : Statistics.median(f)
        }
        let all = Array(0..<n)
        let mean = (0..<nSeries).map { s in (0..<nh).map { meanOf(all, s, $0) } }
        let none = mean.map { $0.map { _ in Double.nan } }
        guard n >= 2, resamples >= 1 else {
            let med = mean.map {
                ConfidenceInterval(
                    estimate: median($0), lower: .nan, upper: .nan, level: level, resamples: 0, skipped: 0)
            }
            return (mean, none, none, med)
        }
        var rng = SeededGenerator(seed: seed)
        let draws = (0..<resamples).map { _ in SeededRandom.bootstrapIndices(n, using: &rng) }
        var lower = none, upper = none
        var medians = [[Double]](repeating: [], count: nSeries) // [series][resample]
        var perHead = [[Double]](repeating: [], count: nh) // [head][resample], one series at a time
        for s in 0..<nSeries {
            for h in 0..<nh { perHead[h] = draws.map { meanOf($0, s, h) } }
            for h in 0..<nh where mean[s][h].isFinite {
                let q = Statistics.quantiles(perHead[h], [(1 - level) / 2, (1 + level) / 2])
                lower[s][h] = q[0]
                upper[s][h] = q[1]
            }
            medians[s] = (0..<resamples).map { r in median((0..<nh).map { perHead[$0][r] }) }
        }
        let med = (0..<nSeries).map { s in
            Statistics.interval(estimate: median(mean[s]), values: medians[s].filter { !$0.isNaN }, level: level)
        }
        return (mean, lower, upper, med)
    }
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
    /// Per length: percentile-bootstrap bounds over the samples of every statistic above (NaN with
    /// one sample), and per series (`SparsityProfileOptions.seriesNames`) the median over heads
    /// with its CI.
    public var lower: [SparsityStats] = []
    public var upper: [SparsityStats] = []
    public var medianHead: [[ConfidenceInterval]] = []
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
        for (li, t) in o.lengths.enumerated() {
            let start = Date()
            var offs: [Int] = []
            var perSample: [[[Double]]] = [] // [sample][series][head]
            var rows = 0
            let n = t - bos.count
            for _ in 0..<o.samples {
                let off = Int(g.next() % UInt64(tokens.count - n + 1))
                offs.append(off)
                let ids = bos + Array(tokens[off..<(off + n)])
                let req = CaptureRequest(hooks: ["attn.hook_pattern"], queries: .last(min(o.queries, t)))
                sink.reset()
                try session.trace(prompt: ids, requests: [req], into: sink)
                perSample.append(
                    SparsityStats(
                        topKShare: sink.topKShare, entropy: sink.meanEntropy,
                        normalizedEntropy: sink.meanNormalizedEntropy, sinkMass: sink.sinkMass,
                        streamingMass: sink.streamingMass
                    ).series)
                rows += sink.rows.first ?? 0
                done += 1
                progress(done, total, t)
            }
            let b = SparsityStats.bootstrap(
                samples: perSample, resamples: o.bootstrapResamples, level: o.level,
                seed: o.seed &+ UInt64(1 + li))
            let (nk, ns, nw) = (o.ks.count, o.sinkSizes.count, o.windows.count)
            let mean = SparsityStats(series: b.mean, ks: nk, sinks: ns, windows: nw)
            result.topKShare.append(mean.topKShare)
            result.entropy.append(mean.entropy)
            result.normalizedEntropy.append(mean.normalizedEntropy)
            result.sinkMass.append(mean.sinkMass)
            result.streamingMass.append(mean.streamingMass)
            result.lower.append(SparsityStats(series: b.lower, ks: nk, sinks: ns, windows: nw))
            result.upper.append(SparsityStats(series: b.upper, ks: nk, sinks: ns, windows: nw))
            result.medianHead.append(b.median)
            result.rows.append(rows)
            result.offsets.append(offs)
            result.seconds.append(Date().timeIntervalSince(start))
        }
        return result
    }
}
