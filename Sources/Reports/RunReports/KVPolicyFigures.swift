import Analysis
import Foundation

/// What reports use from a `/kv_policy` group (written and read by `KVPolicyRunFile`,
/// Sources/Analysis/KVPolicy/KVPolicyRunFile.swift; layout in docs/run-file.md).
public struct KVPolicyRunData: Sendable {
    public struct Condition: Sendable {
        public var name: String
        /// baseline | uniform | retrieval | random | heads
        public var kind: String
        public var rest: String
        public var n: Int
        public var control: Int
        /// ROUGE-1 recall x100: mean and CI.
        public var rouge: (Double, Double, Double)
        public var exact: Double
        public var needleBench: Double
        public var perplexity: (Double, Double, Double)
        /// KV bytes at `contexts`.
        public var kvBytes: [Int]
        /// [depth][length] ROUGE-1 recall.
        public var grid: [[Double]]
        /// (estimate, lower, upper, p) of this condition minus its random sets (ROUGE), if any.
        public var vsRandom: [Double]?
    }

    public var conditions: [Condition]
    public var lengths: [Int]
    public var depths: [Double]
    public var contexts: [Int]
    public var memoryFormula: String
    public var level: Double
    public var finished: Bool
    public var recordCount: Int

    public init(_ a: KVPolicyRunFile.Contents) {
        let C = a.conditionNames.count, M = max(1, a.metrics.count), L = a.lengths.count, D = a.depths.count
        func at(_ m: KVPolicyRunFile.Matrix?, _ c: Int, _ k: Int) -> Double { m.map { $0.values[c * M + k] } ?? .nan }
        conditions = (0..<C).map { c in
            let grid: [[Double]] =
                a.cells.map { cells in
                    (0..<D).map { d in (0..<L).map { l in cells.values[((c * M + 0) * L + l) * D + d] } }
                } ?? []
            let vr = a.vsRandom.map { Array($0.values[(c * M * 4)..<(c * M * 4 + 4)]) }
            return Condition(
                name: a.conditionNames[c], kind: a.conditionKinds[c], rest: a.conditionRest[c], n: a.conditionN[c],
                control: a.conditionControl[c],
                rouge: (at(a.mean, c, 0), at(a.ciLower, c, 0), at(a.ciUpper, c, 0)),
                exact: M > 2 ? at(a.mean, c, 2) : .nan, needleBench: M > 1 ? at(a.mean, c, 1) : .nan,
                perplexity: (a.perplexity?[c] ?? .nan, a.perplexityLower?[c] ?? .nan, a.perplexityUpper?[c] ?? .nan),
                kvBytes: a.kvBytes?[c] ?? [], grid: grid,
                vsRandom: vr.flatMap { $0[0].isFinite ? $0 : nil })
        }
        lengths = a.lengths
        depths = a.depths
        contexts = a.memoryContexts
        memoryFormula = a.memoryFormula
        level = a.level
        finished = a.finished
        recordCount = a.records.count
    }
}

enum KVPolicyFigures {
    static func mib(_ b: Int) -> Double { Double(b) / 1_048_576 }

    static func blocks(_ d: KVPolicyRunData, source: String) -> [ReportDocument.Block] {
        var out: [ReportDocument.Block] = []
        out.append(
            .paragraph(
                "KV-cache policies (\(source)): every head keeps its full KV cache or gets a cheaper policy (a "
                    + "window of recent keys plus attention sinks, top-K keys, or nothing), applied in prefill and decode as a "
                    + "server that evicts keys would. If a few retrieval heads do the long-range copying, keeping the "
                    + "full cache only for them should keep needle retrieval at a fraction of the memory, and do "
                    + "better than keeping it for as many random heads."))
        guard d.finished else {
            out.append(.note("This run did not finish (\(d.recordCount) trial runs stored); rerun it to resume."))
            return out
        }
        let memIndex = d.contexts.count > 1 ? 1 : 0 // 32k when stored
        let memLabel = d.contexts.isEmpty ? "" : "\(d.contexts[memIndex]) tokens"
        let rests = Array(Set(d.conditions.filter { $0.kind != "baseline" }.map(\.rest))).sorted {
            (restWidth($0), $0) < (restWidth($1), $1)
        }
        for (metric, title, yTitle) in [
            ("rouge", "Needle retrieval vs KV memory", "Mean ROUGE-1 recall ×100"),
            ("ppl", "Held-out perplexity vs KV memory", "Perplexity")
        ] {
            func y(_ c: KVPolicyRunData.Condition) -> Double { metric == "rouge" ? c.rouge.0 : c.perplexity.0 }
            var series: [LineChart.Series] = []
            for r in rests {
                let cs = d.conditions.filter { $0.rest == r }
                for (kind, label) in [("retrieval", "top-N retrieval heads full"), ("heads", "chosen heads full")] {
                    let pts = cs.filter { $0.kind == kind }.sorted { $0.n < $1.n }
                    if !pts.isEmpty {
                        series.append(
                            .init(
                                name: "\(label), rest \(r)", x: pts.map { mib($0.kvBytes[memIndex]) },
                                y: pts.map(y), markers: true))
                    }
                }
                let rnd = Dictionary(grouping: cs.filter { $0.kind == "random" }, by: \.n).sorted { $0.key < $1.key }
                if !rnd.isEmpty {
                    series.append(
                        .init(
                            name: "random N heads full (mean of sets), rest \(r)",
                            x: rnd.map { g in Statistics.mean(g.value.map { mib($0.kvBytes[memIndex]) }) },
                            y: rnd.map { g in Statistics.mean(g.value.map(y)) }, dashed: true, markers: true))
                }
                if let u = cs.first(where: { $0.kind == "uniform" }) {
                    series.append(.init(name: "uniform \(r)", x: [mib(u.kvBytes[memIndex])], y: [y(u)], markers: true))
                }
            }
            if let b = d.conditions.first(where: { $0.kind == "baseline" }) {
                series.append(
                    .init(name: "full KV (baseline)", x: [mib(b.kvBytes[memIndex])], y: [y(b)], markers: true))
            }
            let finite = series.filter { $0.y.contains(where: \.isFinite) }
            guard !finite.isEmpty else { continue }
            var chart = LineChart(
                title: title, series: finite, xTitle: "KV cache at \(memLabel)", yTitle: yTitle, xUnit: "MiB",
                yDomain: metric == "rouge" ? 0...100 : nil)
            chart.subtitle = "Upper left is better for retrieval, lower left for perplexity; CIs in the table below"
            chart.id = "kv-policy-\(metric)"
            out.append(
                .figure(
                    .init(
                        name: "kv-policy-\(metric)-pareto", svg: chart.svg(),
                        caption:
                            "\(yTitle) against the KV-cache memory each policy needs at \(memLabel) (fp16 cache). "
                            + "Solid: full KV on the top-N retrieval heads, the rest under the named policy, one "
                            + "point per N; dashed: as many random heads (mean over the seeded sets); single points: "
                            + "the policy on every head, and the full cache. Points on the upper-left (retrieval) "
                            + "frontier give the most accuracy per byte.")))
        }

        // Needle grids: baseline, uniform, top-N and the first random set of each N.
        var grids: [String] = [], names: [String] = []
        for c in d.conditions where (c.kind != "random" || c.control == 1) && !c.grid.isEmpty {
            var g = NeedleGrid(title: c.name, contextLengths: d.lengths, depths: d.depths, scores: c.grid)
            g.id = "kv-grid-\(HTML.safeFileStem(c.name))"
            grids.append(NeedleCells.svg(g))
            names.append(c.name)
        }
        if !grids.isEmpty {
            out.append(
                .figure(
                    .init(
                        name: "kv-policy-needle-grids",
                        svg: SVGPanels.combine(
                            grids, title: "Needle retrieval per KV policy",
                            subtitle: "ROUGE-1 recall ×100 by context length (columns) and needle depth (rows)",
                            columns: 4, id: "kv-policy-needle-grids"),
                        caption:
                            "The needle grid of each policy (\(names.count) shown: the baseline, each uniform policy, "
                            + "each top-N policy and the first random set of each N). A window shorter than the "
                            + "context turns the cells red where the needle has been evicted.")))
        }

        let lvl = Int((d.level * 100).rounded())
        func ci(_ v: (Double, Double, Double), _ digits: Int) -> String {
            v.0.isFinite
                ? "\(Num.fixed(v.0, digits)) [\(Num.fixed(v.1, digits)), \(Num.fixed(v.2, digits))]" : "—"
        }
        let rows = d.conditions.map { c -> [String] in
            var r = [c.name, c.kind, c.rest, "\(c.n)", ci(c.rouge, 1)]
            r.append(c.exact.isFinite ? Num.fixed(c.exact, 1) : "—")
            r.append(c.needleBench.isFinite ? Num.fixed(c.needleBench, 1) : "—")
            r.append(ci(c.perplexity, 2))
            r += c.kvBytes.map { Num.fixed(mib($0), 2) }
            r.append(c.vsRandom.map { ci(($0[0], $0[1], $0[2]), 1) + " p=\(Num.value($0[3]))" } ?? "")
            return r
        }
        out.append(
            .table(
                .init(
                    headers: [
                        "condition", "kind", "rest policy", "N full", "ROUGE-1 ×100 [\(lvl)% CI]", "exact ×100",
                        "NeedleBench", "perplexity [\(lvl)% CI]"
                    ] + d.contexts.map { "KV MiB @\($0)" } + ["top-N − random (ROUGE)"],
                    rows: rows,
                    caption:
                        "Every condition. CIs: percentile bootstrap over trials (needle scores) and over blocks of "
                        + "consecutive positions (perplexity); the last column is the paired bootstrap of the "
                        + "condition minus the mean of its random sets, trial by trial.",
                    alignNumbers: true)))
        out.append(.note("KV memory: \(d.memoryFormula)."))
        return out
    }

    /// Sort key of a rest policy: its window or K, so window:128 comes before window:512.
    static func restWidth(_ r: String) -> Int {
        let digits = r.drop { !$0.isNumber }.prefix { $0.isNumber }
        return Int(digits) ?? Int.max
    }
}
