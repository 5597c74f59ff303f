import Foundation

/// The figures of a `headlight trace` run file (its `/captures`, read by `TraceCaptureData`):
/// the interactive attention viewer, a layers × heads grid of small pattern maps, one figure per
/// layer with every captured head's pattern and token labels, top-k patterns, attention mass on
/// spans, and residual-stream norms. Long axes are binned (see TraceCaptures.swift) and every
/// binned figure says so in its subtitle and caption.
public enum TraceFigures {
    /// Bins per axis of the detail maps and the viewer (the reader's resolution).
    public static let maxBins = 64
    /// Bins per axis of each small map in the overview grid.
    static func gridBins(heads: Int) -> Int { heads <= 64 ? 24 : 16 }
    /// Cells the per-layer figures may draw in total (keeps the page a few MB at most); more
    /// heads get coarser bins.
    static let detailCellBudget = 120_000

    /// A token label for a bin of positions: "12 ·the" or "12–19 ·the…".
    static func label(_ tokens: [String], _ span: ClosedRange<Int>) -> String {
        let t = span.lowerBound < tokens.count ? AttentionStrip.displayToken(tokens[span.lowerBound]) : "?"
        return span.count == 1 ? "\(span.lowerBound) \(t)" : "\(span.lowerBound)–\(span.upperBound) \(t)…"
    }

    /// "Downsampled: …" / "Full resolution: …" for a pattern's axes.
    static func resolutionNote(_ p: TraceCaptureData.Pattern) -> String {
        if !p.rows.isDownsampled && !p.cols.isDownsampled {
            return "full resolution: every stored query and key"
        }
        return "downsampled: \(p.rows.positions.count) queries in \(p.rows.count) bins, \(p.cols.positions.count) keys "
            + "in \(p.cols.count) bins (up to \(max(p.rows.maxBinSize, p.cols.maxBinSize)) positions per bin); a cell "
            + "is the attention mass on its keys averaged over its queries"
    }

    /// The figures of one input: the file's root, or with `input` its `/inputs/NAME` group (a
    /// batch written by `trace --prompts`; figure names and element ids then carry the name).
    public static func blocks(
        _ d: TraceCaptureData, source file: String, input: String? = nil
    ) -> [ReportDocument.Block] {
        var out: [ReportDocument.Block] = []
        let stem = HTML.safeFileStem((file as NSString).deletingPathExtension + (input.map { "-in-" + $0 } ?? ""))
        let source = input.map { "\(file) /inputs/\($0)" } ?? file
        var summary = "\(source): \(d.tokens.count) tokens"
        if let p = d.promptLength, p <= d.tokens.count {
            summary += " (\(p) prompt + \(d.tokens.count - p) generated)"
        }
        summary += "."
        if !d.notDrawn.isEmpty {
            summary +=
                " Captured but not drawn here (read them with h5py or the Python package): "
                + d.notDrawn.joined(separator: ", ") + "."
        }
        out.append(.paragraph(summary))

        let full = d.patterns.filter { $0.form != "topk" }
        let topk = d.patterns.filter { $0.form == "topk" }
        if !d.patterns.isEmpty {
            var viewer = AttentionViewer(id: "hl-viewer-" + stem, tokens: d.tokens)
            for p in d.patterns { viewer.add(p) }
            out.append(
                .paragraph(
                    "Interactive viewer: choose a head, then hover a token (or a row of the matrix) to see where that "
                        + "query attends; tokens are coloured by the attention they receive from it. It needs "
                        + "JavaScript; the figures below show the same patterns without it."))
            out.append(.widget(viewer.widget()))
        }
        if !full.isEmpty {
            out.append(overview(full, tokens: d.tokens, stem: stem, source: source))
            out += detail(full, tokens: d.tokens, stem: stem, source: source, topk: false)
        }
        if !topk.isEmpty {
            out += detail(topk, tokens: d.tokens, stem: stem + "-topk", source: source, topk: true)
        }
        if !d.spanMass.isEmpty { out.append(spanMass(d.spanMass, stem: stem, source: source)) }
        let kinds = d.norms.map(\.kind).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        for k in kinds {
            out.append(norms(d.norms.filter { $0.kind == k }, kind: k, tokens: d.tokens, stem: stem, source: source))
        }
        return out
    }

    /// Prompts of a batch drawn in full; the others are listed in the table only (a page with
    /// hundreds of viewers and figure sets would be unusable).
    public static let maxBatchPromptsDrawn = 24

    /// A batch file (`trace --prompts`): a table of its prompts (name, tokens, text, linked to
    /// their parts), then each prompt's viewer and figures under its own heading.
    public static func batchBlocks(_ inputs: [TraceInputData], source: String) -> [ReportDocument.Block] {
        var out: [ReportDocument.Block] = []
        let drawn = min(inputs.count, maxBatchPromptsDrawn)
        var intro =
            "\(source) is a batch of \(inputs.count) prompt\(inputs.count == 1 ? "" : "s") (trace --prompts), traced "
            + "one after another with the same hooks; each is stored under /inputs/NAME"
        intro +=
            drawn < inputs.count
            ? ". The first \(drawn) are drawn below, one part per prompt; read the other \(inputs.count - drawn) with "
                + "the Python package (headlight.open(path).input(NAME)) or h5py."
            : ", and each has its own part below with its own viewer."
        out.append(.paragraph(intro))
        let rows = inputs.enumerated().map { i, x -> [String] in
            let text = AttentionStrip.displayToken(x.prompt ?? "")
            let short = text.count > 90 ? String(text.prefix(89)) + "…" : text
            return [
                x.name, String(x.data.tokens.count), x.data.promptLength.map(String.init) ?? "?",
                i < drawn ? "drawn" : "not drawn", short
            ]
        }
        out.append(
            .table(
                .init(
                    headers: ["Prompt", "Tokens", "Prompt tokens", "Figures", "Text"], rows: rows,
                    caption: "Prompts of \(source), in the order of the prompts file.", alignNumbers: true)))
        for x in inputs.prefix(drawn) {
            out.append(.subheading("Prompt \(x.name)"))
            out += blocks(x.data, source: source, input: x.name)
        }
        return out
    }

    /// Layers × heads small multiples of every captured pattern.
    static func overview(
        _ ps: [TraceCaptureData.Pattern], tokens: [String], stem: String, source: String
    ) -> ReportDocument.Block {
        let bins = gridBins(heads: ps.count)
        let small = ps.map { $0.coarsened(maxBins: bins) }
        let headsPerLayer = Dictionary(grouping: ps, by: \.layer).values.map(\.count).max() ?? 1
        let ref = small[0]
        var chart = AttentionPatternChart(
            title: "Attention patterns: \(Set(ps.map(\.layer)).count) layers × up to \(headsPerLayer) heads",
            rowLabels: (0..<ref.rows.count).map { label(tokens, ref.rows.span($0)) },
            colLabels: (0..<ref.cols.count).map { label(tokens, ref.cols.span($0)) },
            panels: small.map {
                .init(
                    label: "\($0.layer).\($0.head)", values: $0.values,
                    tooltip: "layer \($0.layer), head \($0.head)")
            },
            columns: min(headsPerLayer, 12),
            cellSize: max(1, (48 / Double(max(ref.rows.count, ref.cols.count))).rounded(.down)))
        chart.showLabels = false
        chart.subtitle = "One small map per head (rows: queries, columns: keys), " + resolutionNote(ref)
        chart.id = "hl-attn-grid-" + stem
        return .figure(
            .init(
                name: "attention-grid-\(stem)", svg: chart.svg(),
                caption:
                    "Every captured head of \(source) at a glance: layer.head above each map, queries down, keys "
                    + "across, colour = attention (0 to 1, one scale for all). "
                    + (ref.rows.isDownsampled || ref.cols.isDownsampled
                        ? "The maps are downsampled to at most \(bins) × \(bins) cells: a cell is the attention mass "
                            + "on its keys averaged over its queries, so rows still sum to 1. "
                        : "") + "The per-layer figures below have token labels."))
    }

    /// One figure per layer: its heads' patterns with token labels.
    static func detail(
        _ ps: [TraceCaptureData.Pattern], tokens: [String], stem: String, source: String, topk: Bool
    ) -> [ReportDocument.Block] {
        let perHead = Double(detailCellBudget) / Double(max(ps.count, 1))
        let bins = max(8, min(maxBins, Int(perHead.squareRoot())))
        var out: [ReportDocument.Block] = []
        let layers = Array(Set(ps.map(\.layer))).sorted()
        for l in layers {
            let heads = ps.filter { $0.layer == l }.map { $0.coarsened(maxBins: bins) }
            let ref = heads[0]
            let n = max(ref.rows.count, ref.cols.count)
            var chart = AttentionPatternChart(
                title: "Layer \(l): attention pattern"
                    + (heads.count == 1 ? " of head \(ref.head)" : "s of \(heads.count) heads")
                    + (topk ? " (top-\(ref.k ?? 0) keys)" : ""),
                rowLabels: (0..<ref.rows.count).map { label(tokens, ref.rows.span($0)) },
                colLabels: (0..<ref.cols.count).map { label(tokens, ref.cols.span($0)) },
                panels: heads.map {
                    .init(label: "head \($0.head)", values: $0.values, tooltip: "layer \($0.layer), head \($0.head)")
                },
                columns: 3, cellSize: max(3, min(16, (260 / Double(n)).rounded(.down))))
            chart.cellTooltips = chart.drawnCells <= 6000
            if topk {
                chart.missingLabel = "not among the top-\(ref.k ?? 0) keys (not stored)"
            }
            chart.subtitle = (topk ? "Top-\(ref.k ?? 0) keys per query; " : "") + resolutionNote(ref)
            chart.id = "hl-attn-L\(l)-" + stem
            var caption =
                "Layer \(l) of \(source): where each query (row) attends over the keys (columns), one panel per "
                + "captured head, colour = attention from 0 to 1. "
            if ref.rows.isDownsampled || ref.cols.isDownsampled {
                caption +=
                    "Downsampled to \(ref.rows.count) × \(ref.cols.count) cells: a label \"a–b tok…\" is a bin of "
                    + "positions a to b starting with that token; a cell is the attention mass on the bin's keys "
                    + "averaged over the bin's queries. The interactive viewer above has up to \(maxBins) bins per axis. "
            } else {
                caption += "Labels are position and token (· is a space, ↵ a line break). "
            }
            if topk {
                caption +=
                    "Only the \(ref.k ?? 0) largest keys of each query were stored (--top-k); hatched cells hold none "
                    + "of them, and their attention is unknown (at most the smallest stored value of the row). "
            }
            if chart.cellTooltips { caption += "Hover a cell for its value." }
            out.append(.figure(.init(name: "attention-L\(l)-\(stem)", svg: chart.svg(), caption: caption)))
        }
        return out
    }

    /// Attention mass on the labelled spans: rows layer.head, columns spans.
    static func spanMass(_ ms: [TraceCaptureData.SpanMass], stem: String, source: String) -> ReportDocument.Block {
        let labels = ms[0].labels
        let spans = ms[0].spans
        var rows: [[Double]] = [], rowLabels: [String] = []
        for m in ms.sorted(by: { $0.layer < $1.layer }) {
            for (i, h) in m.heads.enumerated() {
                rowLabels.append("\(m.layer).\(h)")
                rows.append(m.labels == labels ? m.values[i] : [Double](repeating: .nan, count: labels.count))
            }
        }
        let nq = ms[0].queries.count
        var h = Heatmap(
            title: "Attention mass on spans", values: rows, rowLabels: rowLabels,
            colLabels: zip(labels, spans).map { "\($0) [\($1.lowerBound):\($1.upperBound))" },
            rowTitle: "Layer.head", colTitle: "Span (tokens, half-open)", valueTitle: "Attention mass",
            domain: 0...1)
        h.subtitle =
            nq == 1
            ? "Query at position \(ms[0].queries[0])"
            : "Mean over \(nq) queries (positions \(queryText(ms[0].queries)))"
        h.showValues = true
        h.format = { Num.fixed($0, 2) }
        h.id = "hl-span-mass-" + stem
        return .figure(
            .init(
                name: "span-mass-\(stem)", svg: h.svg(),
                caption:
                    "How much of each head's attention falls on each labelled span (--spans), from \(source): the "
                    + "sum of the attention weights on the span's tokens"
                    + (nq == 1 ? " for the one captured query." : ", averaged over the \(nq) captured queries.")
                    + " A row need not sum to 1: keys outside every span are not counted."))
    }

    static func queryText(_ q: [Int]) -> String {
        guard let a = q.first, let b = q.last else { return "none" }
        return q.count == b - a + 1
            ? "\(a)–\(b)"
            : q.prefix(8).map(String.init).joined(separator: ", ")
                + (q.count > 8 ? ", …" : "")
    }

    /// Norms of one hook kind: rows = layers, columns = positions.
    static func norms(
        _ ns: [TraceCaptureData.Norms], kind: String, tokens: [String], stem: String, source: String
    ) -> ReportDocument.Block {
        let sorted = ns.sorted { ($0.layer ?? -1) < ($1.layer ?? -1) }
        let ref = sorted.max { $0.bins.count < $1.bins.count }!
        let values = sorted.map { n in n.bins == ref.bins ? n.values : [Double](repeating: .nan, count: ref.bins.count)
        }
        var h = Heatmap(
            title: "Norm of \(kind) per position", values: values,
            rowLabels: sorted.map { $0.layer.map { "layer \($0)" } ?? kind },
            colLabels: (0..<ref.bins.count).map { label(tokens, ref.bins.span($0)) },
            rowTitle: sorted.contains { $0.layer != nil } ? "Layer" : "", colTitle: "Position",
            valueTitle: "L2 norm")
        h.subtitle =
            ref.bins.isDownsampled
            ? "Downsampled: \(ref.bins.positions.count) positions in \(ref.bins.count) bins (mean norm per bin)"
            : "Every captured position"
        h.id = "hl-norm-\(HTML.safeFileStem(kind))-" + stem
        h.cellSize = (14, 16)
        h.maxPlotSize = (820, 520)
        return .figure(
            .init(
                name: "norm-\(HTML.safeFileStem(kind))-\(stem)", svg: h.svg(),
                caption:
                    "The L2 norm of the \(kind) vector at each position, from \(source)"
                    + (sorted.count > 1 ? ", one row per captured layer" : "") + ". "
                    + (ref.bins.isDownsampled
                        ? "Positions are binned (labels \"a–b tok…\"); a cell is the mean norm over the bin. " : "")
                    + "Large norms at the first token are the usual attention-sink signature; hover a cell for its "
                    + "value."))
    }
}
