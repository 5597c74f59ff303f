import Foundation
import Inference

/// A capture reducer: the mean attention row of every head over the captured query positions,
/// `[layer, head, key]`, summed on the fly from `hook_pattern` rows as the forward pass delivers
/// them (one head's rows of one chunk at a time), so no pattern is ever held: memory is
/// layers x heads x keys doubles. QRHead's per-token score (Zhang et al. 2025,
/// `score_per_token_attention_to_query`: attention of the query tokens, averaged over them).
///
/// Plan: `hook_pattern` of any layers and heads in the rows form (`AttentionForm.rows`); other
/// captures are errors.
public final class QueryAttentionSink: CaptureSink {
    public private(set) var layers = 0
    public private(set) var heads = 0
    /// Keys per row (the plan's sequence length).
    public private(set) var keys = 0
    /// [layer, head, key] sums over queries (zero for heads and layers not captured).
    private var sums: [Double] = []
    private var layerOf: [Int] = []
    private var headsOf: [[Int]] = []
    /// Query rows each capture holds.
    private var queryCount: [Int] = []
    /// Queries per layer (the same for every captured head).
    private var rowsPerLayer: [Int: Int] = [:]

    public init() {}

    public func prepare(_ plan: TracePlan) throws {
        layers = plan.config.nLayers
        heads = plan.config.nHeads
        keys = plan.sequenceLength
        sums = [Double](repeating: 0, count: layers * heads * keys)
        layerOf = []
        headsOf = []
        queryCount = []
        rowsPerLayer = [:]
        for c in plan.captures {
            guard c.point.kind == .pattern, c.form == .full || c.form == .rows, let l = c.point.layer else {
                throw HookError.formNotApplicable(form: c.form.rawValue, hook: c.name + " (QueryAttentionSink)")
            }
            layerOf.append(l)
            headsOf.append(c.heads ?? [])
            queryCount.append(c.queries.count)
            rowsPerLayer[l] = c.queries.count
        }
    }

    public func write(_ capture: Int, _ block: CaptureBlock) throws {
        // block: [1 head, g queries, w keys], rows of `valid` floats then zeros
        let l = layerOf[capture], h = headsOf[capture][block.start[0]]
        let base = (l * heads + h) * keys, n = min(block.valid, keys)
        sums.withUnsafeMutableBufferPointer { s in
            for i in 0..<block.rows {
                let row = block.row(i)
                for k in 0..<n { s[base + k] += Double(row[k]) }
            }
        }
    }

    public func writeIndices(_ capture: Int, start: [Int], count: [Int], _ values: UnsafeBufferPointer<Int32>) throws {}
    public func finish(positions: Int) throws {}

    /// Mean row of (layer, head) over the captured queries, `keys` entries (zeros when the layer
    /// was not captured).
    public func meanRow(layer l: Int, head h: Int) -> [Double] {
        let n = Double(max(rowsPerLayer[l] ?? 0, 1)), base = (l * heads + h) * keys
        return sums[base..<(base + keys)].map { $0 / n }
    }

    /// Every head's mean row, `[layer, head, key]` flattened.
    public var meanRows: [Double] {
        var out = sums
        for l in 0..<layers {
            let n = Double(max(rowsPerLayer[l] ?? 0, 1)), base = l * heads * keys
            for i in base..<(base + heads * keys) { out[i] /= n }
        }
        return out
    }
}
