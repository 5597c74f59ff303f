import Analysis
import Foundation
import TraceStore

/// What reports use from a `/retrieval_heads` group (written and read by `RetrievalRunFile`,
/// Sources/Analysis/RetrievalHeads/RetrievalSweep.swift; layout in docs/run-file.md).
public struct RetrievalRunData: Sendable {
    public struct Trial: Sendable {
        public var trialIndex: Int
        public var needleID: String
        public var length: Int
        public var depth: Double
        public var rouge: Double
        public var success: Bool
        public var counted: Bool
        public var spanStart: Int
        public var spanEnd: Int
        public var promptTokens: Int
        public var response: String
    }

    public var layers: Int
    public var heads: Int
    /// Row-major [layers, heads]; from `scores`, or averaged from the per-trial records of an
    /// unfinished run (`fromTrials` true).
    public var scores: [Double]
    public var fromTrials: Bool
    public var threshold: Double
    public var suiteName: String?
    public var countedTrials: Int?
    public var trials: [Trial]
    /// Per trial (same order as `trials`), the trial score of every head, if stored.
    public var trialHeadScores: [[Double]]?

    public func score(_ h: HeadIndex) -> Double {
        let k = h.layer * heads + h.head
        return k >= 0 && k < scores.count ? scores[k] : .nan
    }

    /// Heads by score, highest first (ties by layer, head).
    public var ranked: [(head: HeadIndex, score: Double)] {
        var out: [(head: HeadIndex, score: Double)] = []
        for l in 0..<layers {
            for h in 0..<heads where l * heads + h < scores.count {
                out.append((HeadIndex(layer: l, head: h), scores[l * heads + h]))
            }
        }
        out.sort {
            ($0.score.isNaN ? -1 : $0.score) > ($1.score.isNaN ? -1 : $1.score)
                || ($0.score == $1.score && $0.head < $1.head)
        }
        return out
    }

}

extension RetrievalRunData {
    /// The report's view of a `/retrieval_heads` group (read by `RetrievalRunFile.read`); nil for
    /// a sweep that stopped before its first trial. An unfinished sweep's scores are the mean
    /// over the trials counted so far (NaN if none is).
    public init?(_ r: RetrievalRunFile.Contents) {
        if !r.finished && r.records.isEmpty { return nil }
        let trials = r.records.map {
            Trial(
                trialIndex: $0.trialIndex, needleID: $0.needleID, length: $0.length, depth: $0.depth, rouge: $0.rouge,
                success: $0.success, counted: $0.counted, spanStart: $0.spanStart, spanEnd: $0.spanEnd,
                promptTokens: $0.promptTokens, response: $0.response)
        }
        let scores =
            !r.finished && r.scores.countedTrials == 0
            ? [Double](repeating: .nan, count: r.layers * r.heads) : r.scores.scores
        self.init(
            layers: r.layers, heads: r.heads, scores: scores, fromTrials: !r.finished, threshold: r.threshold,
            suiteName: r.suiteName, countedTrials: r.scores.countedTrials, trials: trials,
            trialHeadScores: r.records.map(\.headScores))
    }
}

/// Needle-plot cells from trial records: mean ROUGE-1 recall ×100 per (depth, length).
struct NeedleCells {
    var lengths: [Int]
    var depths: [Double]
    /// [depth][length]
    var scores: [[Double]]
    var needles: [String]
    var trials: Int

    init(_ records: [(length: Int, depth: Double, rouge: Double, needle: String)]) {
        lengths = Array(Set(records.map(\.length))).sorted()
        depths = Array(Set(records.map(\.depth).filter(\.isFinite))).sorted()
        needles = Array(Set(records.map(\.needle))).sorted()
        trials = records.count
        var sum = [[Double]](repeating: [Double](repeating: 0, count: lengths.count), count: depths.count)
        var n = sum
        for r in records where r.rouge.isFinite {
            guard let c = lengths.firstIndex(of: r.length), let d = depths.firstIndex(of: r.depth) else { continue }
            sum[d][c] += r.rouge
            n[d][c] += 1
        }
        var grid: [[Double]] = []
        for d in 0..<depths.count {
            var row: [Double] = []
            for c in 0..<lengths.count {
                let k: Double = n[d][c]
                row.append(k > 0 ? sum[d][c] / k : Double.nan)
            }
            grid.append(row)
        }
        scores = grid
    }

    var isEmpty: Bool { lengths.isEmpty || depths.isEmpty }

    func grid(title: String, subtitle: String? = nil, id: String? = nil) -> NeedleGrid {
        var g = NeedleGrid(title: title, contextLengths: lengths, depths: depths, scores: scores, subtitle: subtitle)
        g.id = id
        return g
    }

    /// A needle grid's SVG with cells enlarged for small grids, so the axis titles and the
    /// title fit (a 2 × 3 grid is otherwise shorter than its rotated row title).
    static func svg(_ g: NeedleGrid) -> String {
        var h = g.heatmap()
        let rows = Double(max(g.depths.count, 1)), cols = Double(max(g.contextLengths.count, 1))
        h.cellSize = (max(44, (300 / cols).rounded(.up)), max(26, (200 / rows).rounded(.up)))
        return h.svg()
    }
}

/// Per-layer attention of the run's model (root attributes `layer_attention`, `sliding_window`),
/// when some layer uses a sliding window (Gemma 2/3, Mistral-style): the report marks local
/// (sliding-window) and global (full-attention) layers.
struct LayerAttentionKinds: Sendable {
    /// True for a sliding-window layer. [L]
    var local: [Bool]
    var window: Int

    init?(_ p: RunFileProvenance) {
        guard let kinds = p.layerAttention, let w = p.slidingWindow, w > 0, kinds.contains("sliding") else {
            return nil
        }
        local = kinds.map { $0 == "sliding" }
        window = w
    }

    func isLocal(_ layer: Int) -> Bool { layer >= 0 && layer < local.count && local[layer] }
    func label(_ layer: Int) -> String { isLocal(layer) ? "local (\(window))" : "global" }
}

/// Figures of a retrieval-head detection run.
enum RetrievalFigures {
    static func blocks(
        _ d: RetrievalRunData, source: String, attention kinds: LayerAttentionKinds? = nil
    ) -> [ReportDocument.Block] {
        var out: [ReportDocument.Block] = []
        let counted = d.countedTrials ?? 0
        let nHeads = d.layers * d.heads
        let above = d.ranked.filter { $0.score > d.threshold }
        out.append(
            .paragraph(
                "Detection sweep \(d.suiteName.map { "'\($0)' " } ?? "")in \(source): \(d.trials.count) trials, "
                    + "\(d.trials.filter(\.success).count) answered correctly, \(counted) counted in the head scores. "
                    + "\(above.count) of \(nHeads) heads score above \(Num.value(d.threshold))."))
        if d.fromTrials {
            out.append(
                .note(
                    "This run did not finish: the scores are averaged from the \(d.trials.count) trial records stored "
                        + "so far."
                ))
        }
        if counted == 0 && !d.trials.isEmpty {
            out.append(
                .note(
                    "No trial counted (none answered correctly with the needle located), so every head scores 0. "
                        + "Longer contexts or an easier needle may help; a small model often fails long prompts."))
        }

        if let kinds {
            out += localGlobalBlocks(d, kinds: kinds, above: above.map(\.head))
        }

        // Heat map.
        let rows = (0..<d.layers).map { l in (0..<d.heads).map { h in d.scores[l * d.heads + h] } }
        let hi = max(d.scores.filter(\.isFinite).max() ?? 0, d.threshold * 2, 0.2)
        var hm = Heatmap(
            title: "Retrieval score per head", values: rows,
            rowLabels: (0..<d.layers).map { l in kinds.map { "\(l) " + ($0.isLocal(l) ? "L" : "G") } ?? String(l) },
            colLabels: (0..<d.heads).map(String.init),
            rowTitle: "Layer", colTitle: "Head (query head)", valueTitle: "Retrieval score",
            unit: "fraction of needle tokens copied", domain: 0...min(1, (hi * 10).rounded(.up) / 10))
        hm.subtitle = "Mean over \(counted) counted trials; outlined: score > \(Num.value(d.threshold))"
        hm.mark(label: "retrieval head (score > \(Num.value(d.threshold)))") { $0 > d.threshold }
        hm.format = { Num.fixed($0, 3) }
        if let kinds {
            hm.tooltip = { r, _ in
                kinds.isLocal(r)
                    ? "local layer: sliding window of \(kinds.window) tokens" : "global layer: full attention"
            }
            hm.subtitle = (hm.subtitle ?? "") + "; L = local (sliding window \(kinds.window)), G = global layer"
        }
        hm.id = "retrieval-heatmap"
        out.append(
            .figure(
                .init(
                    name: "retrieval-heatmap", svg: hm.svg(),
                    caption:
                        "Retrieval score of every attention head (rows: layers, bottom = later; columns: query heads). "
                        + "A head's score is the fraction of the needle's tokens it copied by attending to them while "
                        + "the model wrote the answer (Wu et al. 2024), averaged over the trials answered correctly. "
                        + "Outlined cells are retrieval heads (score > \(Num.value(d.threshold)))."
                        + (kinds.map {
                            " Row labels mark local layers (L: attention limited to the last \($0.window) tokens) and "
                                + "global layers (G: full causal attention)."
                        } ?? "")
                )))

        // Top heads table.
        let top = Array(d.ranked.prefix(max(10, min(above.count, 30))))
        var tableRows: [[String]] = []
        for (i, x) in top.enumerated() {
            var active = ""
            if let per = d.trialHeadScores {
                let k = x.head.layer * d.heads + x.head.head
                let countedIdx = d.trials.indices.filter { d.trials[$0].counted }
                if !countedIdx.isEmpty {
                    let n = countedIdx.filter { per[$0][k] > 0 }.count
                    active = "\(n)/\(countedIdx.count)"
                }
            }
            var row = [
                String(i + 1), x.head.description, String(x.head.layer), String(x.head.head),
                Num.fixed(x.score, 4), x.score > d.threshold ? "yes" : "", active
            ]
            if let kinds { row.insert(kinds.label(x.head.layer), at: 3) }
            tableRows.append(row)
        }
        out.append(
            .table(
                .init(
                    headers: ["rank", "head", "layer"] + (kinds == nil ? [] : ["layer attention"])
                        + ["head index", "score", "> threshold", "copied in trials"],
                    rows: tableRows, caption: "Top heads by retrieval score", alignNumbers: true)))

        // Needle plot of the plain model.
        let cells = NeedleCells(d.trials.map { ($0.length, $0.depth, $0.rouge, $0.needleID) })
        if !cells.isEmpty {
            let g = cells.grid(
                title: "Needle retrieval, plain model",
                subtitle:
                    "ROUGE-1 recall ×100, mean over \(cells.needles.count) "
                    + "needle\(cells.needles.count == 1 ? "" : "s"), \(cells.trials) trials",
                id: "needle-plain")
            out.append(
                .figure(
                    .init(
                        name: "needle-plain", svg: NeedleCells.svg(g),
                        caption:
                            "The classic needle-in-a-haystack plot: each cell is one context length (columns) and "
                            + "needle position (rows, 0% = start of the context). Green means the model repeated the "
                            + "hidden fact, red that it did not."
                    )))
        }
        // Responses of failed trials, for a look at what went wrong.
        let failed = d.trials.filter { !$0.success }.prefix(8)
        if !failed.isEmpty {
            out.append(
                .table(
                    .init(
                        headers: ["trial", "needle", "length", "depth %", "ROUGE-1 ×100", "response"],
                        rows: failed.map {
                            [
                                String($0.trialIndex), $0.needleID, String($0.length), Num.value($0.depth),
                                Num.fixed($0.rouge, 1), String($0.response.prefix(160))
                            ]
                        },
                        caption: "Trials answered wrongly (first \(failed.count))", alignNumbers: true)))
        }
        return out
    }

    /// Where the retrieval heads sit when the model mixes local and global layers, and the check
    /// the window implies: in a trial whose needle ends at least `window` tokens before the answer,
    /// no local head can see the needle, so only global heads can copy from it.
    static func localGlobalBlocks(
        _ d: RetrievalRunData, kinds: LayerAttentionKinds, above: [HeadIndex]
    ) -> [ReportDocument.Block] {
        let localLayers = (0..<d.layers).filter(kinds.isLocal)
        let globalLayers = (0..<d.layers).filter { !kinds.isLocal($0) }
        let aboveLocal = above.filter { kinds.isLocal($0.layer) }
        var text =
            "The model has \(localLayers.count) local layers (sliding window of \(kinds.window) tokens) and "
            + "\(globalLayers.count) global layers (\(globalLayers.map(String.init).joined(separator: ", "))). "
            + "Of the \(above.count) retrieval heads, \(above.count - aboveLocal.count) are in global layers and "
            + "\(aboveLocal.count) in local layers."
        let massGlobal = (0..<d.layers).filter { !kinds.isLocal($0) }
            .flatMap { l in (0..<d.heads).map { d.score(HeadIndex(layer: l, head: $0)) } }
            .filter(\.isFinite).reduce(0, +)
        let massAll = d.scores.filter(\.isFinite).reduce(0, +)
        if massAll > 0 {
            text += " Global layers hold \(Num.fixed(100 * massGlobal / massAll, 1))% of the total retrieval score."
        }
        var out: [ReportDocument.Block] = [.paragraph(text)]
        guard let per = d.trialHeadScores else { return out }
        let far = d.trials.indices.filter {
            d.trials[$0].counted && d.trials[$0].spanEnd > 0
                && d.trials[$0].promptTokens - d.trials[$0].spanEnd >= kinds.window
        }
        guard !far.isEmpty else { return out }
        var copying = Set<HeadIndex>()
        for t in far {
            for k in per[t].indices where per[t][k] > 0 {
                copying.insert(HeadIndex(layer: k / d.heads, head: k % d.heads))
            }
        }
        let localCopying = copying.filter { kinds.isLocal($0.layer) }.sorted()
        let names = copying.sorted().map(\.description).joined(separator: ", ")
        out.append(
            .paragraph(
                "In \(far.count) counted trial\(far.count == 1 ? "" : "s") the needle ended \(kinds.window) or more "
                    + "tokens before the answer, out of reach of every local head. The heads that copied needle "
                    + "tokens there: \(copying.isEmpty ? "none" : names) — "
                    + (localCopying.isEmpty
                        ? "all in global layers, as the window requires."
                        : "\(localCopying.count) in local layers, which the window should make impossible.")))
        return out
    }
}
