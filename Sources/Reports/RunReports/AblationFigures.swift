import Analysis
import Foundation
import TraceStore

/// What reports use from an `/ablation` group (written and read by `AblationRunFile`,
/// Sources/Analysis/RetrievalHeads/Ablation.swift; layout in docs/run-file.md).
public struct AblationRunData: Sendable {
    public struct Condition: Sendable {
        public var name: String
        public var label: String
        /// baseline | target | control | single
        public var kind: String
        public var heads: [String]
        public var meanScore: Double
        public var lower: Double
        public var upper: Double
        public var perplexity: Double
        public var perplexityChange: Double
        /// [depth][length] of the first metric (ROUGE-1 recall x100), if stored.
        public var grid: [[Double]]?
        public var isBaseline: Bool { kind == "baseline" || kind == "none" }
    }

    public var conditions: [Condition]
    public var lengths: [Int]
    public var depths: [Double]
    public var metric: String
    public var level: Double
    public var method: String?
    public var phase: String?
    public var note: String?
    /// (estimate, lower, upper, p) of target − mean(controls) and target − baseline, first metric.
    public var targetVsControls: [Double]?
    public var targetVsBaseline: [Double]?

}

extension AblationRunData {
    /// The report's view of an `/ablation` group (read by `AblationRunFile.read`): the first
    /// metric (ROUGE-1 recall x100) of each condition.
    public init(_ a: AblationRunFile.Contents) {
        let C = a.conditionNames.count, M = max(1, a.metrics.count)
        func first(_ m: AblationRunFile.Matrix?) -> [Double]? { m.map { v in (0..<C).map { v.values[$0 * M] } } }
        let mean = first(a.mean), lo = first(a.ciLower), hi = first(a.ciUpper)
        var grids: [[[Double]]]?
        if let cells = a.cells {
            let L = a.lengths.count, D = a.depths.count
            // cells [condition, metric, length, depth] -> per condition [depth][length] of metric 0
            grids = (0..<C).map { c in
                (0..<D).map { d in (0..<L).map { l in cells.values[((c * M + 0) * L + l) * D + d] } }
            }
        }
        var conds: [Condition] = []
        for (i, n) in a.conditionNames.enumerated() {
            let kind = a.conditionKinds[i]
            let hs = a.conditionHeads[i].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
            var label = n
            if kind == "target" {
                label = n.hasPrefix("top") ? "top \(hs.count) retrieval heads" : "\(n) (\(hs.count) heads)"
            } else if kind == "control" {
                label = n.replacingOccurrences(of: "control_", with: "random ")
            } else if kind == "baseline" {
                label = "no ablation"
            } else if kind == "single" {
                label = "\(hs.first ?? n) alone"
            }
            conds.append(
                Condition(
                    name: n, label: label, kind: kind, heads: hs,
                    meanScore: mean?[i] ?? .nan, lower: lo?[i] ?? .nan, upper: hi?[i] ?? .nan,
                    perplexity: a.perplexity?[i] ?? .nan,
                    perplexityChange: a.perplexityDelta?[i] ?? .nan,
                    grid: grids?[i]))
        }
        func diff(_ m: AblationRunFile.Matrix?) -> [Double]? { m.map { Array($0.values[0..<4]) } }
        self.init(
            conditions: conds, lengths: a.lengths, depths: a.depths, metric: a.metrics.first ?? "score",
            level: a.level, method: a.method, phase: a.phase, note: nil,
            targetVsControls: diff(a.targetVsControls), targetVsBaseline: diff(a.targetVsBaseline))
    }
}

enum AblationFigures {
    static func blocks(_ d: AblationRunData, plain: RetrievalRunData?, source: String) -> [ReportDocument.Block] {
        var out: [ReportDocument.Block] = []
        var intro = "Ablation (\(source)): the model is rerun on the needle grid with heads switched off"
        if let m = d.method { intro += " (method: \(m)\(d.phase.map { ", during \($0)" } ?? ""))" }
        intro +=
            ". If the retrieval heads really do the copying, removing the top-K of them should hurt needle retrieval "
            + "much more than removing K random heads, while leaving ordinary language modelling (perplexity) nearly "
            + "unchanged."
        out.append(.paragraph(intro))
        if let n = d.note, !n.isEmpty { out.append(.note(n)) }

        // Needle plots side by side: the plain model first, then each condition.
        var grids: [String] = []
        var names: [String] = []
        func add(_ title: String, _ cells: [[Double]], id: String, lengths: [Int]? = nil, depths: [Double]? = nil) {
            var g = NeedleGrid(
                title: title, contextLengths: lengths ?? d.lengths, depths: depths ?? d.depths, scores: cells)
            g.id = id
            grids.append(NeedleCells.svg(g))
            names.append(title)
        }
        if !d.lengths.isEmpty && !d.depths.isEmpty {
            if !d.conditions.contains(where: \.isBaseline), let plain {
                let c = NeedleCells(
                    plain.trials.map { (length: $0.length, depth: $0.depth, rouge: $0.rouge, needle: $0.needleID) })
                if !c.isEmpty {
                    add(
                        "plain model (detection run)", c.scores, id: "abl-grid-plain", lengths: c.lengths,
                        depths: c.depths)
                }
            }
            for cond in d.conditions {
                guard let cells = cond.grid else { continue }
                add(cond.label, cells, id: "abl-grid-\(HTML.safeFileStem(cond.name))")
            }
        }
        if !grids.isEmpty {
            let svg = SVGPanels.combine(
                grids, title: "Needle retrieval with heads ablated",
                subtitle: "ROUGE-1 recall ×100 by context length (columns) and needle depth (rows), mean over needles",
                columns: 3, id: "ablation-needle-grids")
            out.append(
                .figure(
                    .init(
                        name: "ablation-needle-grids", svg: svg,
                        caption:
                            "The needle plot for the plain model and for each ablation "
                            + "(\(names.joined(separator: ", "))), side by side. Compare the colours: a condition that "
                            + "turns the grid red has destroyed the model's ability to find the needle."
                    )))
        }

        // Bars: mean score with 95% CI per condition.
        let scored = d.conditions.filter { $0.meanScore.isFinite }
        if !scored.isEmpty {
            var chart = GroupedBarChart(
                title: "Needle score by ablation condition", groups: scored.map(\.label), series: ["mean score"],
                bars: scored.map {
                    [
                        GroupedBarChart.Bar(
                            $0.meanScore, lower: $0.lower.isFinite ? $0.lower : nil,
                            upper: $0.upper.isFinite ? $0.upper : nil,
                            note: $0.heads.isEmpty ? nil : "heads: " + $0.heads.joined(separator: ", "))
                    ]
                },
                xTitle: "Condition", yTitle: "Mean ROUGE-1 recall", unit: "×100", yDomain: 0...100)
            chart.subtitle = "Error bars: 95% confidence interval over trials"
            chart.id = "ablation-scores"
            let singles = scored.contains { $0.kind == "single" }
            out.append(
                .figure(
                    .init(
                        name: "ablation-scores", svg: chart.svg(),
                        caption: singles
                            ? "Mean needle score per condition: nothing ablated, and each of the top retrieval heads "
                                + "ablated alone (the runs behind the causal graph). Error bars are 95% confidence "
                                + "intervals; a head whose bar drops far below 'no ablation' matters for finding the "
                                + "needle on its own."
                            : "Mean needle score per condition: nothing ablated, the top-K retrieval heads ablated, "
                                + "and K random non-retrieval heads ablated (several random draws as controls). Error "
                                + "bars are 95% confidence intervals; if the top-K bar sits well below every random "
                                + "control, the retrieval heads matter for finding the needle."
                    )))
        }
        let ppl = d.conditions.filter { $0.perplexityChange.isFinite || $0.perplexity.isFinite }
        if !ppl.isEmpty {
            let useChange = ppl.contains { $0.perplexityChange.isFinite }
            let shown = useChange ? ppl.filter { !$0.isBaseline } : ppl
            var chart = GroupedBarChart(
                title: useChange ? "Perplexity change under ablation" : "Perplexity under ablation",
                groups: shown.map(\.label), series: [useChange ? "change" : "perplexity"],
                bars: shown.map { c in
                    [GroupedBarChart.Bar(useChange ? c.perplexityChange : c.perplexity)]
                },
                xTitle: "Condition", yTitle: useChange ? "Perplexity change" : "Perplexity",
                unit: useChange ? "vs. no ablation" : nil)
            chart.id = "ablation-perplexity"
            out.append(
                .figure(
                    .init(
                        name: "ablation-perplexity", svg: chart.svg(),
                        caption:
                            "Perplexity of ordinary text with the same heads ablated (lower is better). A small change "
                            + "here together with a large drop in the needle score means the heads are specialised for "
                            + "retrieval rather than generally important."
                    )))
        }
        var diffs: [(key: String, value: String)] = []
        func fmt(_ v: [Double]) -> String {
            let p = v[3].isFinite ? (v[3] <= 0.001 ? "p ≤ 0.001" : "p = \(Num.value(v[3]))") : "p n/a"
            return
                "\(Num.fixed(v[0], 1)) [\(Int((d.level * 100).rounded()))% CI \(Num.fixed(v[1], 1)) to "
                + "\(Num.fixed(v[2], 1))], \(p)"
        }
        if let v = d.targetVsControls { diffs.append(("top-K minus random controls", fmt(v))) }
        if let v = d.targetVsBaseline { diffs.append(("top-K minus no ablation", fmt(v))) }
        if !diffs.isEmpty {
            out.append(
                .keyValues(
                    title: "Paired differences in the needle score (\(d.metric), bootstrap over trials)", pairs: diffs))
        }
        let rows = d.conditions.map { c -> [String] in
            [
                c.label, c.kind, c.heads.prefix(12).joined(separator: ", ") + (c.heads.count > 12 ? ", …" : ""),
                c.meanScore.isFinite ? Num.fixed(c.meanScore, 1) : "—",
                c.lower.isFinite && c.upper.isFinite ? "\(Num.fixed(c.lower, 1))–\(Num.fixed(c.upper, 1))" : "—",
                c.perplexity.isFinite ? Num.fixed(c.perplexity, 2) : "—",
                c.perplexityChange.isFinite ? Num.fixed(c.perplexityChange, 3) : "—"
            ]
        }
        out.append(
            .table(
                .init(
                    headers: [
                        "condition", "kind", "heads ablated", "mean score", "95% CI", "perplexity", "Δ perplexity"
                    ],
                    rows: rows, caption: "Ablation conditions", alignNumbers: true)))
        return out
    }
}
