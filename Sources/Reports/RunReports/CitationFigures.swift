import Analysis
import Foundation
import TraceStore

/// What reports use from a `/citation` group (read by `CitationRunFile.read`, the group's one reader).
public struct CitationRunData: Sendable {
    public struct Readout: Sendable {
        /// Attribute suffix: all_heads, retrieval_heads, best_head, all_heads_per_token.
        public var key: String
        public var label: String
        /// name -> (estimate, lower, upper): agreement, mean_spearman, mean_point_biserial,
        /// wrong_follows_citation, wrong_follows_true_source.
        public var values: [String: (Double, Double, Double)]
    }

    public struct WrongCase: Sendable {
        public var itemID: String
        public var text: String
        public var cited: String
        public var trueSource: Int?
        public var argmaxAll: Int?
        public var argmaxRetrieval: Int?
        public var argmaxBest: Int?
    }

    public var layers: Int
    public var heads: Int
    public var readouts: [Readout]
    public var chanceAgreement: Double?
    public var statements: Int?
    public var wrongCitations: Int?
    public var items: Int?
    public var quality: [(String, Double)]
    public var headAgreement: [Double]?
    public var headSpearman: [Double]?
    public var ranking: [HeadIndex]
    public var retrievalHeads: [HeadIndex]
    public var bestHead: String?
    public var wrongCases: [WrongCase]
    public var mode: String?

    static let readoutLabels: [(String, String)] = [
        ("all_heads", "all heads"), ("retrieval_heads", "retrieval heads"), ("best_head", "best head"),
        ("all_heads_per_token", "all heads, per token")
    ]
    static let metricNames = CitationRunFile.readoutStatistics

    /// The report's view of a `/citation` group (read by `CitationRunFile.read`).
    public init(_ c: CitationRunFile.Contents) {
        let labels = Dictionary(uniqueKeysWithValues: Self.readoutLabels)
        let readouts = c.readouts.map { r in
            Readout(
                key: r.name, label: labels[r.name] ?? r.name,
                values: r.values.mapValues { ($0.estimate, $0.lower, $0.upper) })
        }
        var quality: [(String, Double)] = [
            ("citation recall", c.citationRecall),
            ("citation precision", c.citationPrecision),
            ("citation F1", c.citationF1)
        ]
        if let a = c.answerAccuracy { quality.append(("answer accuracy", a)) }
        let s = c.statementRows, itemTable = c.itemRows
        let flag = s.ints("wrong"), itemRow = s.ints("item"), text = s.strings("text"), cites = s.strings("citations")
        let ids = itemTable.strings("id"), src = itemTable.ints("source")
        func column(_ r: String) -> [Int]? { c.statementReadouts.contains(r) ? s.ints("argmax_\(r)") : nil }
        let aAll = column("all_heads"), aRH = column("retrieval_heads"), aBest = column("best_head")
        func opt(_ a: [Int]?, _ i: Int) -> Int? { a.flatMap { i < $0.count && $0[i] > 0 ? $0[i] : nil } }
        var wrong: [WrongCase] = []
        for i in 0..<s.count where flag[i] != 0 {
            let it = itemRow[i]
            wrong.append(
                WrongCase(
                    itemID: it >= 0 && it < ids.count ? ids[it] : "?", text: text[i], cited: cites[i],
                    trueSource: it >= 0 && it < src.count && src[it] > 0 ? src[it] : nil,
                    argmaxAll: opt(aAll, i), argmaxRetrieval: opt(aRH, i), argmaxBest: opt(aBest, i)))
        }
        layers = c.layers
        heads = c.heads
        self.readouts = readouts
        chanceAgreement = c.chanceAgreement
        statements = c.statements
        wrongCitations = c.wrongCitations
        self.items = c.items
        self.quality = quality
        headAgreement = c.headAgreement
        headSpearman = c.headMeanSpearman
        ranking = c.ranking
        retrievalHeads = c.retrievalHeads
        bestHead = c.bestHead
        wrongCases = wrong
        mode = c.mode
    }
}

enum CitationFigures {
    static func bar(_ r: CitationRunData.Readout, _ m: String) -> GroupedBarChart.Bar {
        guard let v = r.values[m] else { return GroupedBarChart.Bar(.nan) }
        return GroupedBarChart.Bar(v.0, lower: v.1.isFinite ? v.1 : nil, upper: v.2.isFinite ? v.2 : nil)
    }

    static func blocks(_ d: CitationRunData, source: String) -> [ReportDocument.Block] {
        var out: [ReportDocument.Block] = []
        var intro =
            "Citation attention (\(source)): "
            + "\(d.items.map { "\($0) items, " } ?? "")"
            + "\(d.statements.map { "\($0) scored statements" } ?? "statements")"
        if let w = d.wrongCitations { intro += ", \(w) citing a wrong passage" }
        intro +=
            ". For every statement the model cites, Headlight measures how much attention each head puts on each "
            + "passage while the statement is written, and asks whether the most-attended passage is the cited one "
            + "(agreement) and how attention and citation rank passages alike (correlations)."
        out.append(.paragraph(intro))
        if !d.quality.isEmpty {
            out.append(.keyValues(title: "Citation quality", pairs: d.quality.map { ($0.0, Num.fixed($0.1, 3)) }))
        }
        let ro = d.readouts
        if !ro.isEmpty, ro.contains(where: { $0.values["agreement"] != nil }) {
            var groups = ro.map(\.label)
            var bars = ro.map { [bar($0, "agreement")] }
            if let c = d.chanceAgreement {
                groups.append("chance")
                bars.append([GroupedBarChart.Bar(c)])
            }
            var chart = GroupedBarChart(
                title: "Attention–citation agreement", groups: groups, series: ["agreement"], bars: bars,
                xTitle: "Attention readout", yTitle: "Agreement", unit: "fraction of statements", yDomain: 0...1)
            chart.subtitle = "Most-attended passage = cited passage; error bars: 95% bootstrap CI"
            chart.id = "citation-agreement"
            out.append(
                .figure(
                    .init(
                        name: "citation-agreement", svg: chart.svg(),
                        caption:
                            "How often the passage that receives the most attention while a statement is written is "
                            + "the passage the statement cites, for the attention of all heads, of the retrieval heads "
                            + "only, and of the single best head (chosen on these data, so optimistic). 'chance' is "
                            + "the agreement of a random pick among the passages."
                    )))
            var corr = GroupedBarChart(
                title: "Attention–citation correlation", groups: ro.map(\.label),
                series: ["mean Spearman ρ", "mean point-biserial r"],
                bars: ro.map { [bar($0, "mean_spearman"), bar($0, "mean_point_biserial")] },
                xTitle: "Attention readout", yTitle: "Correlation", yDomain: -1...1)
            corr.subtitle = "Per statement, across passages; mean over statements, 95% bootstrap CI"
            corr.id = "citation-correlation"
            out.append(
                .figure(
                    .init(
                        name: "citation-correlation", svg: corr.svg(),
                        caption:
                            "Per statement, the correlation between each passage's attention mass and whether it is "
                            + "cited (point-biserial) or its citation rank (Spearman), averaged over statements. 0 "
                            + "means attention says nothing about citation."
                    )))
        }
        // Per-head ranking.
        if let agr = d.headAgreement, d.layers > 0, d.heads > 0 {
            var hm = Heatmap(
                title: "Per-head agreement with the cited passage",
                values: (0..<d.layers).map { l in Array(agr[(l * d.heads)..<((l + 1) * d.heads)]) },
                rowLabels: (0..<d.layers).map(String.init), colLabels: (0..<d.heads).map(String.init),
                rowTitle: "Layer", colTitle: "Head", valueTitle: "Agreement", unit: "fraction", domain: 0...1)
            for h in d.retrievalHeads where h.layer < d.layers && h.head < d.heads {
                hm.marked.insert(Heatmap.Cell(row: h.layer, col: h.head))
            }
            if !d.retrievalHeads.isEmpty { hm.markLabel = "retrieval head" }
            hm.subtitle = d.chanceAgreement.map { "Chance level \(Num.fixed($0, 2))" }
            hm.format = { Num.fixed($0, 2) }
            hm.id = "citation-head-agreement"
            out.append(
                .figure(
                    .init(
                        name: "citation-head-agreement", svg: hm.svg(),
                        caption:
                            "For each head alone: the fraction of statements where its most-attended passage is the "
                            + "cited one. Outlined: the retrieval heads used in this run.")))
        }
        if !d.ranking.isEmpty {
            let rows = d.ranking.prefix(10).enumerated().map { (i, h) -> [String] in
                let k = h.layer * d.heads + h.head
                let a = d.headAgreement.flatMap { k < $0.count ? $0[k] : nil }
                let r = d.headSpearman.flatMap { k < $0.count ? $0[k] : nil }
                return [
                    String(i + 1), h.description, a.map { Num.fixed($0, 3) } ?? "—",
                    r.map { Num.fixed($0, 3) } ?? "—",
                    d.retrievalHeads.contains(h) ? "yes" : ""
                ]
            }
            out.append(
                .table(
                    .init(
                        headers: ["rank", "head", "agreement", "mean Spearman ρ", "retrieval head"], rows: rows,
                        caption: "Heads ranked by agreement (ties: mean point-biserial)", alignNumbers: true)))
        }
        // Wrong citations.
        if ro.contains(where: { $0.values["wrong_follows_citation"] != nil })
            && (d.wrongCitations ?? d.wrongCases.count) > 0
        {
            var chart = GroupedBarChart(
                title: "Wrong citations: does attention follow the citation or the truth?",
                groups: ro.map(\.label), series: ["follows the (wrong) citation", "follows the true source"],
                bars: ro.map { [bar($0, "wrong_follows_citation"), bar($0, "wrong_follows_true_source")] },
                xTitle: "Attention readout", yTitle: "Fraction of wrong-citation statements", yDomain: 0...1)
            chart.id = "citation-wrong"
            out.append(
                .figure(
                    .init(
                        name: "citation-wrong", svg: chart.svg(),
                        caption:
                            "Statements whose citation points to a passage that does not hold the fact: is the "
                            + "most-attended passage the cited one or the one that really holds the answer? Error "
                            + "bars: 95% bootstrap CI.")))
        }
        if !d.wrongCases.isEmpty {
            func p(_ x: Int?) -> String { x.map { "[\($0)]" } ?? "—" }
            out.append(
                .table(
                    .init(
                        headers: [
                            "item", "statement", "cited", "true source", "attention: all heads", "retrieval heads",
                            "best head"
                        ],
                        rows: d.wrongCases.prefix(12).map {
                            [
                                $0.itemID, String($0.text.prefix(140)), $0.cited.isEmpty ? "—" : "[\($0.cited)]",
                                p($0.trueSource),
                                p($0.argmaxAll), p($0.argmaxRetrieval), p($0.argmaxBest)
                            ]
                        },
                        caption:
                            "Wrong-citation cases (first \(min(12, d.wrongCases.count)) of \(d.wrongCases.count)): "
                            + "most-attended passage per readout",
                        alignNumbers: false)))
        }
        return out
    }
}
