import Analysis
import Foundation
import TraceStore

/// Figures of a `/sparsity_profile` group (read by `SparsityRunFile.read`, the group's one
/// reader): heat maps (layers x heads) of the top-k share and the first-token sink mass at the
/// longest length, and head-median curves of top-k share, entropy, sink and streaming mass
/// against context length.
enum SparsityFigures {
    static func median(_ v: [Double]) -> Double {
        let f = v.filter(\.isFinite)
        return f.isEmpty ? .nan : Statistics.median(f)
    }

    static func grid(_ v: [Double], _ d: SparsityRunFile.Contents) -> [[Double]] {
        (0..<d.layers).map { l in Array(v[(l * d.heads)..<((l + 1) * d.heads)]) }
    }

    static func heatmap(
        _ d: SparsityRunFile.Contents, values: [Double], title: String, valueTitle: String, id: String,
        subtitle: String
    ) -> Heatmap {
        var hm = Heatmap(
            title: title, values: grid(values, d), rowLabels: (0..<d.layers).map(String.init),
            colLabels: (0..<d.heads).map(String.init), rowTitle: "Layer", colTitle: "Head", valueTitle: valueTitle,
            unit: "fraction of attention", domain: 0...1)
        hm.subtitle = subtitle
        hm.format = { Num.fixed($0, 3) }
        hm.id = id
        return hm
    }

    static func blocks(_ d: SparsityRunFile.Contents, source: String) -> [ReportDocument.Block] {
        var out: [ReportDocument.Block] = []
        guard let last = d.lengths.indices.last, d.layers > 0, d.heads > 0 else { return out }
        let lengthsText = d.lengths.map(String.init).joined(separator: ", ")
        out.append(
            .paragraph(
                "Attention-sparsity profile (\(source)): all \(d.layers * d.heads) heads at context lengths "
                    + "\(lengthsText) tokens, \(d.samples) window(s) x the last \(d.queries) query positions each. "
                    + "How much of each head's attention the k most-attended keys hold, how spread it is (entropy), "
                    + "and how much the first tokens (attention sinks) take: the premise of window-plus-sinks and "
                    + "top-k KV-cache policies."))
        let ki = d.ks.firstIndex(of: 16) ?? d.ks.count / 2
        let k = d.ks[ki], tLast = d.lengths[last]
        out.append(
            .figure(
                .init(
                    name: "sparsity-topk-heatmap",
                    svg: heatmap(
                        d, values: d.topKShare[last][ki], title: "Top-\(k) share per head at \(tLast) tokens",
                        valueTitle: "Top-\(k) share", id: "sparsity-topk",
                        subtitle: "Mass in the \(k) most-attended keys, mean over queries"
                    ).svg(),
                    caption:
                        "Share of each head's attention held by its \(k) most-attended keys (of about \(tLast)) at the "
                        + "longest length. Bright heads could keep only a handful of keys.")))
        if let si = d.sinkSizes.indices.first {
            out.append(
                .figure(
                    .init(
                        name: "sparsity-sink-heatmap",
                        svg: heatmap(
                            d, values: d.sinkMass[last][si],
                            title: "Mass on the first \(d.sinkSizes[si]) token(s) at \(tLast) tokens",
                            valueTitle: "Sink mass", id: "sparsity-sink",
                            subtitle: "Attention sink: mass on keys 0..<\(d.sinkSizes[si])"
                        ).svg(),
                        caption: "How much attention each head sends to the first token(s) of the context.")))
        }
        let xs = d.lengths.map(Double.init)
        var topk = LineChart(
            title: "Top-k share vs context length (median over heads)",
            series: d.ks.indices.map { i in
                .init(name: "top-\(d.ks[i])", x: xs, y: d.topKShare.map { median($0[i]) }, markers: true)
            }, xTitle: "Context length", yTitle: "Share of attention", xUnit: "tokens", yDomain: 0...1)
        topk.id = "sparsity-topk-curve"
        out.append(
            .figure(
                .init(
                    name: "sparsity-topk-curve", svg: topk.svg(),
                    caption: "Median over all heads of the share of attention in the top-k keys, per k.")))
        var series: [LineChart.Series] = [
            .init(name: "normalized entropy", x: xs, y: d.normalizedEntropy.map(median), markers: true)
        ]
        for (i, s) in d.sinkSizes.enumerated() {
            series.append(
                .init(name: "sink mass (first \(s))", x: xs, y: d.sinkMass.map { median($0[i]) }, markers: true))
        }
        for (i, w) in d.windows.enumerated() {
            series.append(
                .init(
                    name: "kept by \(d.streamingSinks) sinks + window \(w)", x: xs,
                    y: d.streamingMass.map { median($0[i]) }, dashed: true, markers: true))
        }
        var other = LineChart(
            title: "Entropy, sink mass and window coverage vs context length (median over heads)", series: series,
            xTitle: "Context length", yTitle: "Fraction", xUnit: "tokens", yDomain: 0...1)
        other.id = "sparsity-curves"
        out.append(
            .figure(
                .init(
                    name: "sparsity-curves", svg: other.svg(),
                    caption:
                        "Normalized entropy = entropy / ln(keys) (1: uniform attention). Sink mass: attention on the "
                        + "first token(s). Dashed: the attention mass a StreamingLLM-style policy (first tokens + the "
                        + "last W keys) keeps.")))
        var rows: [[String]] = []
        for (li, t) in d.lengths.enumerated() {
            var r = [String(t)]
            for i in d.ks.indices {
                let n = d.topKShare[li][i].filter { $0 >= 0.9 }.count
                r.append("\(Num.fixed(median(d.topKShare[li][i]), 3)) (\(n))")
            }
            r.append(Num.fixed(median(d.normalizedEntropy[li]), 3))
            for i in d.sinkSizes.indices { r.append(Num.fixed(median(d.sinkMass[li][i]), 3)) }
            for i in d.windows.indices { r.append(Num.fixed(median(d.streamingMass[li][i]), 3)) }
            rows.append(r)
        }
        out.append(
            .table(
                .init(
                    headers: ["length"] + d.ks.map { "top-\($0)" } + ["norm. entropy"]
                        + d.sinkSizes.map { "sink \($0)" } + d.windows.map { "\(d.streamingSinks) sinks + \($0)" },
                    rows: rows,
                    caption:
                        "Medians over all heads; in parentheses, heads whose top-k share is at least 0.9",
                    alignNumbers: true)))
        if let med = d.medianHead, med.count == d.lengths.count, d.samples >= 2 {
            let names = d.seriesNames
            out.append(
                .table(
                    .init(
                        headers: ["length"] + names,
                        rows: d.lengths.indices.map { li in
                            [String(d.lengths[li])]
                                + med[li].map {
                                    "\(Num.fixed($0.estimate, 3)) [\(Num.fixed($0.lower, 3)), \(Num.fixed($0.upper, 3))]"
                                }
                        },
                        caption:
                            "Medians over heads with \(Int((d.level * 100).rounded()))% bootstrap CIs over the "
                            + "\(d.samples) windows (prompts) per length: each resample of the windows gives every "
                            + "head's mean, then their median. Per-head bounds are in the run file (*_lower, *_upper).",
                        alignNumbers: true)))
        } else {
            out.append(
                .paragraph(
                    "One window per length: no confidence intervals (profile with --samples 2 or more for "
                        + "bootstrap CIs over windows)."))
        }
        return out
    }
}
