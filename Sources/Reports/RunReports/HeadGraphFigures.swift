import Analysis
import Foundation
import TraceStore

/// Per-head retrieval scores under single-head ablations: the data of the causal head graph,
/// from `/ablation/causal` (read by `AblationRunFile.read`). An edge A -> B means ablating A
/// changes B's retrieval score; its weight is the change, scores[A][B] - baseline[B].
public struct CausalHeadData: Sendable {
    public var sources: [HeadIndex]
    public var targets: [HeadIndex]
    public var baseline: [Double]
    /// [source][target]
    public var scores: [[Double]]
    public var method: String?

    public func effect(_ s: Int, _ t: Int) -> Double { scores[s][t] - baseline[t] }
}

extension CausalHeadData {
    public init(_ c: AblationRunFile.Causal) {
        self.init(
            sources: c.sources, targets: c.targets, baseline: c.baselineScores,
            scores: c.scores, method: c.method)
    }
}

enum HeadGraphFigures {
    static let kindColors: [CompositionScores.Kind: RGB] = [
        .q: RGB(hex: "#3b6fd4")!, .k: RGB(hex: "#c2410c")!, .v: RGB(hex: "#1a7f37")!
    ]

    /// Node fill for a retrieval score (viridis, 0 … 1).
    static func fill(_ score: Double?) -> RGB? {
        guard let s = score, s.isFinite else { return nil }
        return ColorScale.viridis.color(min(max(s, 0), 1) * 0.85 + 0.1)
    }

    // MARK: Composition

    typealias CompositionEdge = (
        from: HeadIndex, to: HeadIndex, kind: CompositionScores.Kind, score: Double, ratio: Double
    )

    /// Every composition pair, strongest first by how far above the random baseline it is.
    static func compositionCandidates(_ s: CompositionScores) -> [CompositionEdge] {
        let base = s.baseline
        var cands: [CompositionEdge] = []
        for p in s.pairs() {
            let b = base[p.kind] ?? .nan
            let ratio = b.isFinite && b > 0 ? p.score / b : p.score
            cands.append((p.from, p.to, p.kind, p.score, ratio))
        }
        cands.sort { $0.ratio > $1.ratio || ($0.ratio == $1.ratio && ($0.from, $0.to) < ($1.from, $1.to)) }
        return cands
    }

    /// The composition graph (its DOT is `graph.dot()`) and the edges it draws: the strongest
    /// pairs at least 1.25x the baseline. Every string in it is made here from head indices and
    /// numbers; nothing read from the run file reaches the DOT text.
    static func compositionGraph(
        _ s: CompositionScores, headScores: [Double]?
    ) -> (graph: DirectedGraph, kept: [CompositionEdge], candidates: [CompositionEdge]) {
        let base = s.baseline
        let cands = compositionCandidates(s)
        let limit = max(6, min(2 * s.heads.count, 20))
        let kept = Array(
            cands.filter { c in
                let b = base[c.kind] ?? .nan
                return !b.isFinite || c.score >= 1.25 * b
            }.prefix(limit))

        var g = DirectedGraph(
            title: "Composition among the top retrieval heads (weights only)", direction: .topToBottom)
        g.id = "composition-graph"
        var layers = Set<Int>()
        for (i, h) in s.heads.enumerated() {
            let score = headScores.flatMap { i < $0.count ? $0[i] : nil }
            g.addNode(
                h.description, label: score.map { "\(h)\nscore \(Num.fixed($0, 2))" } ?? h.description,
                tooltip: "head \(h)" + (score.map { ", retrieval score \(Num.fixed($0, 3))" } ?? ""),
                fill: fill(score), shape: .box, rank: h.layer)
            layers.insert(h.layer)
        }
        for l in layers { g.rankLabels[l] = "layer \(l)" }
        let maxScore = kept.map(\.score).max() ?? 1
        for c in kept {
            let b = base[c.kind] ?? .nan
            g.addEdge(
                from: c.from.description, to: c.to.description, weight: c.score / maxScore,
                label: "\(c.kind.rawValue.uppercased()) \(Num.fixed(c.score, 2))",
                tooltip: "\(c.kind.label) \(c.from) → \(c.to): \(Num.fixed(c.score, 3))"
                    + (b.isFinite ? " (random baseline \(Num.fixed(b, 3)), \(Num.fixed(c.score / b, 1))×)" : ""),
                color: kindColors[c.kind])
        }
        return (g, kept, cands)
    }

    static func compositionBlocks(
        _ s: CompositionScores, headScores: [Double]?, note: String?,
        source: String
    ) throws -> [ReportDocument.Block] {
        guard s.heads.count >= 2 else {
            return [.note("Composition (\(source)): fewer than two heads, nothing to draw.")]
        }
        var out: [ReportDocument.Block] = []
        let base = s.baseline
        let (g, kept, cands) = compositionGraph(s, headScores: headScores)
        let svg = try g.svg()
        let baseText = CompositionScores.Kind.allCases.compactMap { k -> String? in
            guard let b = base[k], b.isFinite else { return nil }
            return "\(k.rawValue.uppercased()) \(Num.fixed(b, 3))"
        }.joined(separator: ", ")
        out.append(
            .figure(
                .init(
                    name: "composition-graph", svg: svg,
                    caption:
                        "Weight-based composition between the top heads (Elhage et al. 2021): an arrow A → B means "
                        + "head B, in a later layer, reads what head A writes — through its queries (Q, blue), keys "
                        + "(K, orange) or values (V, green). Labels give the composition score; only the \(kept.count) "
                        + "strongest pairs at least 1.25× the random-matrix baseline"
                        + (baseText.isEmpty ? "" : " (\(baseText))")
                        + " are drawn. Node colour: retrieval score. Approximate: see the note below.")))
        out.append(.note(note ?? CompositionScores.approximationNote))
        let rows = cands.prefix(15).map { c -> [String] in
            let b = base[c.kind] ?? .nan
            return [
                c.from.description, c.to.description, c.kind.label, Num.fixed(c.score, 3),
                b.isFinite ? Num.fixed(c.score / b, 2) : "—"
            ]
        }
        out.append(
            .table(
                .init(
                    headers: ["writer", "reader", "kind", "score", "× baseline"], rows: rows,
                    caption: "Strongest composition pairs among the top heads", alignNumbers: true)))
        return out
    }

    // MARK: Causal graph

    /// The causal graph (its DOT is `graph.dot()`) and how many edges it draws. Strings in it are
    /// made here from head indices and numbers, except the title, which names the run file's
    /// ablation method (escaped by `DirectedGraph`).
    static func causalGraph(
        _ c: CausalHeadData, retrievalScores: [HeadIndex: Double]
    ) -> (graph: DirectedGraph, edges: Int) {
        var edges: [(a: HeadIndex, b: HeadIndex, effect: Double)] = []
        for (i, a) in c.sources.enumerated() {
            for (j, b) in c.targets.enumerated() where a != b {
                let e = c.effect(i, j)
                if e.isFinite { edges.append((a, b, e)) }
            }
        }
        edges.sort { abs($0.effect) > abs($1.effect) }
        let maxAbs = edges.first.map { abs($0.effect) } ?? 0
        let kept = edges.filter { abs($0.effect) >= max(0.01, 0.1 * maxAbs) }.prefix(40)
        var g = DirectedGraph(
            title: "Causal graph: ablating A changes B's retrieval score" + (c.method.map { " (\($0))" } ?? ""),
            direction: .topToBottom)
        g.id = "causal-graph"
        var layers = Set<Int>()
        var nodes = Set<HeadIndex>(c.sources)
        nodes.formUnion(c.targets)
        for h in nodes.sorted() {
            let ti = c.targets.firstIndex(of: h)
            let score = ti.map { c.baseline[$0] } ?? retrievalScores[h]
            g.addNode(
                h.description, label: score.map { "\(h)\nscore \(Num.fixed($0, 2))" } ?? h.description,
                tooltip: "head \(h)" + (score.map { ", retrieval score \(Num.fixed($0, 3)) without ablation" } ?? ""),
                fill: fill(score), rank: h.layer)
            layers.insert(h.layer)
        }
        for l in layers { g.rankLabels[l] = "layer \(l)" }
        for e in kept {
            g.addEdge(
                from: e.a.description, to: e.b.description, weight: e.effect,
                label: (e.effect > 0 ? "+" : "") + Num.fixed(e.effect, 2),
                tooltip: "ablating \(e.a) changes \(e.b)'s retrieval score by \(Num.fixed(e.effect, 3))")
        }
        return (g, kept.count)
    }

    static func causalBlocks(
        _ c: CausalHeadData, retrievalScores: [HeadIndex: Double], source: String
    ) throws -> [ReportDocument.Block] {
        let (g, keptCount) = causalGraph(c, retrievalScores: retrievalScores)
        if keptCount == 0 {
            return [
                .note(
                    "Causal graph (\(source)): no single-head ablation changed another head's retrieval score by 0.01 "
                        + "or more."
                )
            ]
        }
        return [
            .figure(
                .init(
                    name: "causal-graph", svg: try g.svg(),
                    caption:
                        "Causal graph among the top retrieval heads, from single-head "
                        + "ablations\(c.method.map { " (\($0))" } ?? ""): an arrow A → B means that ablating A "
                        + "changed B's retrieval score, by the amount on the label. Red dashed arrows: B copies less "
                        + "without A (A helps B); blue: B copies more (B compensates). Line width: size of the change. "
                        + "Only changes ≥ 0.01 and ≥ 10% of the largest are drawn."))
        ]
    }
}
