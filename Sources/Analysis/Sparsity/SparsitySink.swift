import Foundation
import Inference

/// A capture reducer for attention-sparsity statistics: from every `hook_pattern` row it receives
/// (rows form, any layers, heads and queries) it adds, per head, the share of the row's mass in
/// its top-k keys for each k, the entropy, the mass on the first keys (sinks), and the mass a
/// StreamingLLM-style policy keeps (the first `streamingSinks` keys plus the last W keys up to the
/// query), then drops the row. Memory: a few doubles per head, whatever the context length; no
/// pattern is stored. Accumulates across runs until `reset()` (each trace calls `prepare`).
///
/// Row i of query position q has keys 0...q. Entropy in nats, -sum p ln p over p > 0;
/// normalized entropy divides by ln(q + 1) (rows with one key count 0 there). Top-k share: the sum
/// of the k largest probabilities (all of them when k > q + 1).
public final class SparsitySink: CaptureSink {
    public let ks: [Int]
    public let sinkSizes: [Int]
    public let windows: [Int]
    public let streamingSinks: Int
    public private(set) var layers = 0
    public private(set) var heads = 0
    /// Rows summed per head [layer * heads + head].
    public private(set) var rows: [Int] = []
    /// [k index][layer * heads + head] sums.
    private var topk: [[Double]] = []
    private var entropy: [Double] = []
    private var normEntropy: [Double] = []
    private var sinks: [[Double]] = []
    private var streaming: [[Double]] = []
    private var layerOf: [Int] = []
    private var headsOf: [[Int]] = []
    private var queriesOf: [[Int]] = []
    private var buffer: [Float] = []

    public init(ks: [Int], sinkSizes: [Int], windows: [Int], streamingSinks: Int) {
        precondition(ks.allSatisfy { $0 >= 1 } && sinkSizes.allSatisfy { $0 >= 1 } && windows.allSatisfy { $0 >= 1 })
        self.ks = ks
        self.sinkSizes = sinkSizes
        self.windows = windows
        self.streamingSinks = streamingSinks
    }

    /// Forgets every row summed so far.
    public func reset() {
        let n = layers * heads
        rows = [Int](repeating: 0, count: n)
        topk = ks.map { _ in [Double](repeating: 0, count: n) }
        entropy = [Double](repeating: 0, count: n)
        normEntropy = entropy
        sinks = sinkSizes.map { _ in [Double](repeating: 0, count: n) }
        streaming = windows.map { _ in [Double](repeating: 0, count: n) }
    }

    public func prepare(_ plan: TracePlan) throws {
        if plan.config.nLayers != layers || plan.config.nHeads != heads || rows.isEmpty {
            layers = plan.config.nLayers
            heads = plan.config.nHeads
            reset()
        }
        layerOf = []
        headsOf = []
        queriesOf = []
        for c in plan.captures {
            guard c.point.kind == .pattern, c.form == .full || c.form == .rows, let l = c.point.layer else {
                throw HookError.formNotApplicable(form: c.form.rawValue, hook: c.name + " (SparsitySink)")
            }
            layerOf.append(l)
            headsOf.append(c.heads ?? [])
            queriesOf.append(c.queries)
        }
    }

    public func write(_ capture: Int, _ block: CaptureBlock) throws {
        // block: [1 head, g queries, w keys]
        let h = layerOf[capture] * heads + headsOf[capture][block.start[0]]
        let kmax = ks.max() ?? 1
        for i in 0..<block.rows {
            let q = queriesOf[capture][block.start[1] + i]
            let n = min(block.valid, q + 1)
            let row = block.row(i)
            var e = 0.0
            for j in 0..<n {
                let p = Double(row[j])
                if p > 0 { e -= p * log(p) }
            }
            entropy[h] += e
            if n > 1 { normEntropy[h] += e / log(Double(n)) }
            for (si, s) in sinkSizes.enumerated() {
                var m = 0.0
                for j in 0..<min(s, n) { m += Double(row[j]) }
                sinks[si][h] += m
            }
            for (wi, w) in windows.enumerated() {
                var m = 0.0
                let lo = max(0, n - w)
                for j in lo..<n { m += Double(row[j]) }
                for j in 0..<min(streamingSinks, lo) { m += Double(row[j]) }
                streaming[wi][h] += m
            }
            // top-k: the kmax largest, descending (a sorted copy of the row)
            if buffer.count < n { buffer = [Float](repeating: 0, count: n) }
            for j in 0..<n { buffer[j] = row[j] }
            buffer[0..<n].sort(by: >)
            var acc = 0.0, taken = 0
            let order = ks.enumerated().sorted { $0.element < $1.element }
            for (ki, k) in order {
                let upto = min(k, n, kmax)
                while taken < upto {
                    acc += Double(buffer[taken])
                    taken += 1
                }
                topk[ki][h] += acc
            }
            rows[h] += 1
        }
    }

    public func writeIndices(_ capture: Int, start: [Int], count: [Int], _ values: UnsafeBufferPointer<Int32>) throws {}
    public func finish(positions: Int) throws {}

    func means(_ v: [Double]) -> [Double] { zip(v, rows).map { $1 > 0 ? $0 / Double($1) : .nan } }
    /// Per k (in `ks` order): mean top-k share per head [layer * heads + head].
    public var topKShare: [[Double]] { topk.map(means) }
    public var meanEntropy: [Double] { means(entropy) }
    public var meanNormalizedEntropy: [Double] { means(normEntropy) }
    /// Per sink size: mean mass on keys 0..<s.
    public var sinkMass: [[Double]] { sinks.map(means) }
    /// Per window W: mean mass on the first `streamingSinks` keys plus the last W keys.
    public var streamingMass: [[Double]] { streaming.map(means) }
}
