import Analysis
import Foundation
import TraceStore

/// Figures of a `/query_heads` group (read by `QueryHeadsRunFile.read`, the group's one reader):
/// QRScore heat map (Wu's top heads outlined), top-N overlap with Wu et al.'s heads against
/// chance, the re-rankers' recall@k curves and a recall / nDCG / MRR table.
enum QueryHeadsFigures {
    static let labels: [String: String] = [
        "qrhead": "QRHead heads", "wu_heads": "Wu et al. heads", "all_heads": "all heads", "bm25": "BM25",
        "answer_likelihood": "answer likelihood"
    ]

    static func label(_ m: String) -> String { labels[m] ?? m }

    static func blocks(_ d: QueryHeadsRunFile.Contents, source: String) -> [ReportDocument.Block] {
        var out: [ReportDocument.Block] = []
        out.append(
            .paragraph(
                "Query-focused retrieval heads (\(source)): \(d.items) questions, each with its passages and one gold "
                    + "passage; the first \(d.detect) detect heads (QRScore: attention mass of the question tokens on "
                    + "the gold passage, calibrated against the null query \"N/A\", outlier tokens removed; Zhang "
                    + "et al. 2025), the other \(d.eval) evaluate the top \(d.topHeads.count) heads as a passage "
                    + "re-ranker against BM25 and the model's likelihood of the answer."))
        let finite = d.qrScores.filter(\.isFinite)
        var hm = Heatmap(
            title: "QRScore per head",
            values: (0..<d.layers).map { l in
                Array(d.qrScores[(l * d.heads)..<((l + 1) * d.heads)])
            }, rowLabels: (0..<d.layers).map(String.init), colLabels: (0..<d.heads).map(String.init),
            rowTitle: "Layer", colTitle: "Head", valueTitle: "QRScore", unit: "calibrated attention mass",
            domain: finite.isEmpty ? nil : (min(0, finite.min()!))...max(finite.max()!, 1e-9))
        for h in d.wuHeads where h.layer < d.layers && h.head < d.heads {
            hm.marked.insert(Heatmap.Cell(row: h.layer, col: h.head))
        }
        if !d.wuHeads.isEmpty { hm.markLabel = "Wu et al. top-\(d.wuHeads.count) retrieval head" }
        hm.format = { Num.fixed($0, 3) }
        hm.id = "qrhead-scores"
        out.append(
            .figure(
                .init(
                    name: "qrhead-scores", svg: hm.svg(),
                    caption:
                        "Mean calibrated attention mass of the question tokens on the gold passage, per head, over "
                        + "the \(d.detect) detection questions. Outlined: the copy-based retrieval heads of Wu et al. "
                        + "from the retrieval-heads run file, if one was given.")))
        if let w = d.wuScores, !d.overlaps.isEmpty {
            let nh = Double(d.layers * d.heads)
            let ns = Array(1...min(60, d.layers * d.heads))
            let ov = ns.map { Double(Statistics.topOverlap(d.qrScores, w, n: $0)) }
            var chart = LineChart(
                title: "Top-N overlap: QRHead vs Wu et al. retrieval heads",
                series: [
                    .init(name: "heads in both top-N sets", x: ns.map(Double.init), y: ov),
                    .init(
                        name: "random sets (N²/heads)", x: ns.map(Double.init), y: ns.map { Double($0 * $0) / nh },
                        dashed: true)
                ], xTitle: "N (top heads of each ranking)", yTitle: "Heads in common")
            func ci(_ v: [Double]?) -> String {
                guard let v, v.count == 2, v[0].isFinite else { return "" }
                return " [\(Num.fixed(v[0], 2)), \(Num.fixed(v[1], 2))]"
            }
            chart.subtitle =
                "Spearman ρ \(d.spearman.map { Num.fixed($0, 3) } ?? "n/a")\(ci(d.spearmanCI)), Kendall τ-b "
                + "\(d.kendall.map { Num.fixed($0, 3) } ?? "n/a")\(ci(d.kendallCI)) over all \(d.layers * d.heads) heads"
            chart.id = "qrhead-overlap"
            out.append(
                .figure(
                    .init(
                        name: "qrhead-overlap", svg: chart.svg(),
                        caption:
                            "How many heads the N best by QRScore and the N best by Wu et al.'s retrieval score share, "
                            + "against the overlap two random N-sets would have. Rank correlations use every head; "
                            + "brackets: 95% bootstrap CIs over the detection questions.")))
            out.append(
                .table(
                    .init(
                        headers: ["N", "in both top-N", "95% CI", "random expectation"],
                        rows: d.overlaps.map {
                            [
                                String($0.n), String($0.overlap),
                                $0.lower.isFinite ? "\(Num.fixed($0.lower, 0))–\(Num.fixed($0.upper, 0))" : "n/a",
                                Num.fixed($0.expected, 1)
                            ]
                        },
                        caption:
                            "Top-N overlap with Wu et al.'s retrieval heads; the CI resamples the detection questions "
                            + "(QRScores recomputed per resample, Wu's scores fixed)", alignNumbers: true)))
        }
        if !d.methods.isEmpty, let k = d.recall.first?.count, k > 0 {
            let ks = (1...k).map(Double.init)
            var series = d.methods.enumerated().map { i, m in
                LineChart.Series(name: label(m), x: ks, y: d.recall[i], markers: true)
            }
            series.append(.init(name: "chance", x: ks, y: ks.map { $0 / Double(k) }, dashed: true))
            var chart = LineChart(
                title: "Re-ranking: recall@k on the evaluation questions", series: series, xTitle: "k",
                yTitle: "Recall@k", yDomain: 0...1)
            chart.legend = .insideBottomRight
            chart.id = "qrhead-recall"
            out.append(
                .figure(
                    .init(
                        name: "qrhead-recall", svg: chart.svg(),
                        caption:
                            "Fraction of evaluation questions whose gold passage is among the k best-scored passages "
                            + "(ties counted in expectation). Chance: k / passages.")))
            func at(_ v: [Double], _ k: Int) -> String { k <= v.count ? Num.fixed(v[k - 1], 3) : "—" }
            out.append(
                .table(
                    .init(
                        headers: ["re-ranker", "recall@1 [95% CI]", "recall@3", "recall@5", "nDCG@3", "nDCG@5", "MRR"],
                        rows: d.methods.enumerated().map { i, m in
                            let ci = d.recallAt1CI[i]
                            return [
                                label(m), "\(at(d.recall[i], 1)) [\(Num.fixed(ci.0, 3)), \(Num.fixed(ci.1, 3))]",
                                at(d.recall[i], 3), at(d.recall[i], 5), at(d.ndcg[i], 3), at(d.ndcg[i], 5),
                                Num.fixed(d.mrr[i], 3)
                            ]
                        },
                        caption: "Re-rankers on the \(d.eval) evaluation questions: "
                            + zip(d.methods, d.methodDescriptions).map { "\(label($0)) = \($1)" }.joined(
                                separator: "; "),
                        alignNumbers: true)))
        }
        if !d.kinds.isEmpty {
            out.append(
                .table(
                    .init(
                        headers: ["item kind", "items"] + d.methods.map { "recall@1: \(label($0))" },
                        rows: d.kinds.indices.map { i in
                            [d.kinds[i], String(d.kindCounts[i])] + d.recallAt1ByKind[i].map { Num.fixed($0, 3) }
                        },
                        caption:
                            "Recall@1 by item kind (evaluation items). In the default set, 'paraphrase' items word "
                            + "the gold passage differently from the question while distractors reuse its words.",
                        alignNumbers: true)))
        }
        return out
    }
}
