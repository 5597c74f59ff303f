import Foundation
import TraceStore

// The `/sparsity_profile` group of a run file (`headlight profile`; docs/run-file.md).
//
//   /sparsity_profile                     @analysis = "sparsity_profile", @analysis_version,
//                                         lengths, ks, sink_sizes, windows, streaming_sinks,
//                                         samples, queries, seed, text, text_tokens, n_layers,
//                                         n_heads, rule
//   /sparsity_profile/topk_share          float64 [length, k, layer, head]
//   /sparsity_profile/entropy             float64 [length, layer, head] (nats)
//   /sparsity_profile/normalized_entropy  float64 [length, layer, head] (entropy / ln(keys))
//   /sparsity_profile/sink_mass           float64 [length, sink, layer, head]
//   /sparsity_profile/streaming_mass      float64 [length, window, layer, head]
//   /sparsity_profile/rows                int64 [length]: rows averaged per head
//   /sparsity_profile/offsets             int64 [length, sample]: token offsets of the windows
//   /sparsity_profile/seconds             float64 [length]
//   (since the CIs) <each of the five above>_lower, _upper: its percentile-bootstrap bounds over the
//   samples (same shape; NaN with one sample); median_head float64 [length, series, 3] (estimate,
//   lower, upper of the median over heads; @series names); @bootstrap_resamples, @level, @ci_rule

public enum SparsityRunFile {
    public static let group = "sparsity_profile"
    public static let analysisVersion = 1
    public static let rule =
        "per head, averaged over the last `queries` positions of `samples` windows of each length cut from the text: "
        + "top-k share = sum of the k largest attention probabilities of the row; entropy = -sum p ln p (nats); "
        + "normalized entropy = entropy / ln(number of keys); sink mass = mass on keys 0..<s; streaming mass = "
        + "mass on keys 0..<streaming_sinks plus the last W keys up to the query (what a window-W policy with "
        + "sinks keeps). Reduced on the fly from hook_pattern rows; no pattern stored"
    public static let ciRule =
        "each statistic is averaged over a sample's rows, then over the samples; *_lower/*_upper: percentile "
        + "bootstrap over the samples (prompts; one set of draws for every head and statistic), NaN with one "
        + "sample; median_head: the median over heads of each resample's per-head means"

    public static func write(to file: H5File, result r: SparsityProfileResult, text: String) throws {
        let g = try file.createGroup(group)
        let o = r.options
        try g.setAttribute("analysis", "sparsity_profile")
        try g.setAttribute("analysis_version", analysisVersion)
        try g.setAttribute("lengths", o.lengths)
        try g.setAttribute("ks", o.ks)
        try g.setAttribute("sink_sizes", o.sinkSizes)
        try g.setAttribute("windows", o.windows)
        try g.setAttribute("streaming_sinks", o.streamingSinks)
        try g.setAttribute("samples", o.samples)
        try g.setAttribute("queries", o.queries)
        try g.setAttribute("seed", Int64(bitPattern: o.seed))
        try g.setAttribute("text", text)
        try g.setAttribute("text_tokens", r.textTokens)
        try g.setAttribute("n_layers", r.layers)
        try g.setAttribute("n_heads", r.heads)
        try g.setAttribute("rule", rule)
        try g.setAttribute("bootstrap_resamples", o.bootstrapResamples)
        try g.setAttribute("level", o.level)
        try g.setAttribute("ci_rule", ciRule)
        let nl = o.lengths.count
        func put(_ name: String, _ v: [Double], _ shape: [Int], _ axes: [String]) throws {
            let ds = try g.createDataset(name, data: v, shape: shape)
            try ds.setAttribute("axes", axes)
        }
        let lh = [r.layers, r.heads]
        let mean = (0..<nl).map {
            SparsityStats(
                topKShare: r.topKShare[$0], entropy: r.entropy[$0], normalizedEntropy: r.normalizedEntropy[$0],
                sinkMass: r.sinkMass[$0], streamingMass: r.streamingMass[$0])
        }
        for (suffix, stats) in [("", mean), ("_lower", r.lower), ("_upper", r.upper)] where stats.count == nl {
            try put(
                "topk_share" + suffix, stats.flatMap { $0.topKShare.flatMap { $0 } }, [nl, o.ks.count] + lh,
                ["length", "k", "layer", "head"])
            try put("entropy" + suffix, stats.flatMap(\.entropy), [nl] + lh, ["length", "layer", "head"])
            try put(
                "normalized_entropy" + suffix, stats.flatMap(\.normalizedEntropy), [nl] + lh,
                ["length", "layer", "head"])
            try put(
                "sink_mass" + suffix, stats.flatMap { $0.sinkMass.flatMap { $0 } }, [nl, o.sinkSizes.count] + lh,
                ["length", "sink", "layer", "head"])
            try put(
                "streaming_mass" + suffix, stats.flatMap { $0.streamingMass.flatMap { $0 } },
                [nl, o.windows.count] + lh, ["length", "window", "layer", "head"])
        }
        if r.medianHead.count == nl {
            let names = o.seriesNames
            let ds = try g.createDataset(
                "median_head", data: r.medianHead.flatMap { $0.flatMap { [$0.estimate, $0.lower, $0.upper] } },
                shape: [nl, names.count, 3])
            try ds.setAttribute("axes", ["length", "series", "estimate_lower_upper"])
            try ds.setAttribute("series", names)
        }
        try g.createDataset("rows", data: r.rows.map(Int64.init), shape: [nl])
        try g.createDataset("offsets", data: r.offsets.flatMap { $0.map(Int64.init) }, shape: [nl, o.samples])
        try g.createDataset("seconds", data: r.seconds, shape: [nl])
    }

    /// What a `/sparsity_profile` group holds.
    public struct Contents: Sendable {
        public var layers: Int
        public var heads: Int
        public var lengths: [Int]
        public var ks: [Int]
        public var sinkSizes: [Int]
        public var windows: [Int]
        public var streamingSinks: Int
        public var samples: Int
        public var queries: Int
        /// [length][k][layer * heads + head]
        public var topKShare: [[[Double]]]
        /// [length][layer * heads + head]
        public var entropy: [[Double]]
        public var normalizedEntropy: [[Double]]
        /// [length][sink][layer * heads + head]
        public var sinkMass: [[[Double]]]
        /// [length][window][layer * heads + head]
        public var streamingMass: [[[Double]]]
        public var seconds: [Double]
        /// Bootstrap bounds per length (nil in files written before the CIs).
        public var lower: [SparsityStats]?
        public var upper: [SparsityStats]?
        /// [length][series]: median over heads (estimate, lower, upper); `seriesNames` names the series.
        public var medianHead: [[(estimate: Double, lower: Double, upper: Double)]]?
        public var seriesNames: [String] = []
        public var level = 0.95
    }

    public static func read(_ f: H5File) throws -> Contents? {
        guard try f.kind(of: group) != nil else { return nil }
        let g = try f.group(group)
        let layers = try g.intAttribute("n_layers"), heads = try g.intAttribute("n_heads")
        let lengths = try g.intsAttribute("lengths"), ks = try g.intsAttribute("ks")
        let sinks = try g.intsAttribute("sink_sizes"), windows = try g.intsAttribute("windows")
        let nh = layers * heads, nl = lengths.count
        func read(_ name: String, _ shape: [Int]) throws -> [Double] {
            let ds = try g.dataset(name)
            guard try ds.shape == shape else {
                throw TraceStoreError.shapeMismatch(
                    file: f.path, object: ds.name, detail: "shape \(try ds.shape), expected \(shape)")
            }
            return try ds.read(Double.self)
        }
        func split3(_ v: [Double], _ m: Int) -> [[[Double]]] {
            (0..<nl).map { l in (0..<m).map { j in Array(v[((l * m + j) * nh)..<((l * m + j + 1) * nh)]) } }
        }
        func split2(_ v: [Double]) -> [[Double]] { (0..<nl).map { Array(v[($0 * nh)..<(($0 + 1) * nh)]) } }
        func stats(_ suffix: String) throws -> [SparsityStats]? {
            guard try g.kind(of: "topk_share" + suffix) != nil else { return nil }
            let tk = split3(try read("topk_share" + suffix, [nl, ks.count, layers, heads]), ks.count)
            let e = split2(try read("entropy" + suffix, [nl, layers, heads]))
            let ne = split2(try read("normalized_entropy" + suffix, [nl, layers, heads]))
            let sm = split3(try read("sink_mass" + suffix, [nl, sinks.count, layers, heads]), sinks.count)
            let st = split3(try read("streaming_mass" + suffix, [nl, windows.count, layers, heads]), windows.count)
            return (0..<nl).map {
                SparsityStats(
                    topKShare: tk[$0], entropy: e[$0], normalizedEntropy: ne[$0], sinkMass: sm[$0],
                    streamingMass: st[$0])
            }
        }
        var median: [[(estimate: Double, lower: Double, upper: Double)]]?
        var names: [String] = []
        if try g.kind(of: "median_head") != nil {
            names = try g.dataset("median_head").stringsAttribute("series")
            let v = try read("median_head", [nl, names.count, 3])
            median = (0..<nl).map { l in
                (0..<names.count).map { s in
                    let i = (l * names.count + s) * 3
                    return (v[i], v[i + 1], v[i + 2])
                }
            }
        }
        var c = Contents(
            layers: layers, heads: heads, lengths: lengths, ks: ks, sinkSizes: sinks, windows: windows,
            streamingSinks: try g.intAttribute("streaming_sinks"), samples: try g.intAttribute("samples"),
            queries: try g.intAttribute("queries"),
            topKShare: split3(try read("topk_share", [nl, ks.count, layers, heads]), ks.count),
            entropy: split2(try read("entropy", [nl, layers, heads])),
            normalizedEntropy: split2(try read("normalized_entropy", [nl, layers, heads])),
            sinkMass: split3(try read("sink_mass", [nl, sinks.count, layers, heads]), sinks.count),
            streamingMass: split3(try read("streaming_mass", [nl, windows.count, layers, heads]), windows.count),
            seconds: try read("seconds", [nl]), lower: try stats("_lower"), upper: try stats("_upper"),
            medianHead: median, seriesNames: names)
        c.level = try g.attributeIfPresent("level")?.doubleValue ?? 0.95
        return c
    }
}
