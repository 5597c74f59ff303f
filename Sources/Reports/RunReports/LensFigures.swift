import Analysis
import Foundation

/// Figures of the `/lens` group (`headlight lens`): the logit lens (top-1 probability per lens
/// row and position, tokens in the tooltips and a table), the target's logit difference through
/// the layers, and the direct logit attribution of every head (heat map) with the strongest
/// components listed.
enum LensFigures {
    static func blocks(_ d: LensRunData, source: String) -> [ReportDocument.Block] {
        let lens = d.lens
        let P = lens.positions.count, k = lens.request.top, R = lens.rows
        var out: [ReportDocument.Block] = []
        let posLabels = lens.positions.map(String.init)
        @Sendable func prob(_ r: Int, _ p: Int, _ j: Int) -> Double {
            exp(Double(lens.topLogits[(r * P + p) * k + j]) - lens.logNormalizer[r * P + p])
        }
        // Rows drawn final-first (top), as the residual stream grows upwards.
        let order = Array((0..<R).reversed())
        var hm = Heatmap(
            title: "Logit lens: top-1 next token by layer",
            values: order.map { r in (0..<P).map { prob(r, $0, 0) } },
            rowLabels: order.map { lens.rowLabels[$0] }, colLabels: posLabels,
            rowTitle: "Residual stream before block (final: after the last)", colTitle: "Position",
            valueTitle: "Top-1 probability", unit: "probability", domain: 0...1)
        hm.subtitle = "Hover a cell for its top \(k) tokens (\(source))"
        hm.format = { Num.fixed($0, 2) }
        hm.cellSize = (44, 14)
        let texts = d
        hm.tooltip = { row, col in
            let r = order[row]
            return (0..<k).map { j in
                let id = lens.topIDs[(r * P + col) * k + j]
                return "\(Self.quoted(texts.text(id))) \(Num.fixed(prob(r, col, j), 3))"
            }.joined(separator: "\n")
        }
        hm.id = "lens-top1"
        out.append(
            .figure(
                .init(
                    name: "lens-top1", svg: hm.svg(),
                    caption:
                        "Each cell reads the residual stream at a position, before the block of its row, through "
                        + "the final norm and the unembedding (nostalgebraist's logit lens). Colour: probability of "
                        + "the top token; the final row is the model's own prediction.")))
        var rows: [[String]] = []
        for (pi, pos) in lens.positions.enumerated() {
            for r in order {
                let id = lens.topIDs[(r * P + pi) * k]
                var row = [String(pos), lens.rowLabels[r], Self.quoted(d.text(id)), Num.fixed(prob(r, pi, 0), 3)]
                if lens.request.target != nil {
                    row.append(String(lens.targetRank[r * P + pi]))
                    let diff =
                        lens.targetLogit[r * P + pi]
                        - (lens.request.baseline == nil ? 0 : lens.baselineLogit[r * P + pi])
                    row.append(Num.fixed(diff, 3))
                }
                rows.append(row)
            }
        }
        let target = lens.request.target.map { Self.quoted(d.text($0)) }
        let baseline = lens.request.baseline.map { Self.quoted(d.text($0)) }
        let diffTitle = baseline.map { "logit \(target ?? "") − logit \($0)" } ?? "logit \(target ?? "")"
        var headers = ["position", "row", "top token", "p"]
        if target != nil { headers += ["target rank", diffTitle] }
        out.append(
            .table(.init(headers: headers, rows: rows, caption: "Logit lens, top token per row", alignNumbers: true)))
        guard lens.request.target != nil else { return out }

        var chart = LineChart(
            title: "\(diffTitle) through the layers",
            series: (0..<P).map { pi in
                LineChart.Series(
                    name: "position \(lens.positions[pi])", x: (0..<R).map(Double.init),
                    y: (0..<R).map {
                        lens.targetLogit[$0 * P + pi]
                            - (lens.request.baseline == nil ? 0 : lens.baselineLogit[$0 * P + pi])
                    }, markers: true)
            },
            xTitle: "Lens row (block whose input is read; \(R - 1) = final)", yTitle: "Logit difference")
        chart.id = "lens-logit-diff"
        out.append(
            .figure(
                .init(
                    name: "lens-logit-diff", svg: chart.svg(),
                    caption: "The target's lens logit\(baseline == nil ? "" : " minus the baseline's") at each row.")))

        guard let a = lens.attribution else { return out }
        let L = lens.layers, H = lens.heads
        for (pi, pos) in lens.positions.enumerated() {
            let values = (0..<L).map { l in (0..<H).map { a.heads[(pi * L + l) * H + $0] } }
            let m = max(values.joined().map(abs).max() ?? 0, 1e-9)
            var dla = Heatmap(
                title: "Direct logit attribution of each head at position \(pos)", values: values,
                rowLabels: (0..<L).map(String.init), colLabels: (0..<H).map(String.init), rowTitle: "Layer",
                colTitle: "Head", valueTitle: diffTitle, domain: -m...m, colorScale: .diverging)
            dla.subtitle =
                "Model: \(Num.fixed(a.logitDifference[pi], 3)); sum of all components: \(Num.fixed(a.total[pi], 3))"
            dla.format = { Num.fixed($0, 3) }
            dla.id = "lens-dla-\(pos)"
            out.append(
                .figure(
                    .init(
                        name: "lens-dla-\(pos)", svg: dla.svg(),
                        caption:
                            "Each head's output (hook_result) projected on the unembedding direction of "
                            + "\(diffTitle), through the final norm with its scale frozen at the model's final "
                            + "residual (TransformerLens's logit attribution). Red raises the target, blue the "
                            + "\(baseline == nil ? "alternatives" : "baseline").")))
            var parts: [(String, Double)] = [("embedding", a.embed[pi])]
            for l in 0..<L {
                for h in 0..<H { parts.append(("head \(l).\(h)", a.heads[(pi * L + l) * H + h])) }
                parts.append(("MLP \(l)", a.mlp[pi * L + l]))
            }
            let top = parts.sorted { abs($0.1) > abs($1.1) }.prefix(12).map { [$0.0, Num.fixed($0.1, 3)] }
            out.append(
                .table(
                    .init(
                        headers: ["component", diffTitle], rows: top,
                        caption:
                            "Strongest direct contributions at position \(pos) (the components sum to "
                            + "\(Num.fixed(a.total[pi], 3)); relative residual error \(Num.value(a.residualError)))",
                        alignNumbers: true)))
        }
        return out
    }

    /// Token text shown with its spaces: quoted, newlines and tabs as escapes.
    static func quoted(_ s: String) -> String {
        "“" + s.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\t", with: "\\t") + "”"
    }
}
