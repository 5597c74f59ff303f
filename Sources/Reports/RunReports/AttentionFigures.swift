import Analysis
import Foundation
import TraceStore

/// Attention of a few heads over one NIAH prompt (written by `headlight report attention`;
/// layout and reader: `NeedleAttention`, Sources/Analysis/RetrievalHeads/NeedleAttention.swift).
public struct NeedleAttentionData: Sendable {
    public var heads: [HeadIndex]
    /// [head][key] at the chosen step.
    public var weights: [[Double]]
    public var tokens: [String]
    public var span: Range<Int>?
    public var queryPosition: Int
    public var step: Int
    public var steps: Int
    public var trialIndex: Int?
    public var needleID: String?
    public var length: Int?
    public var depth: Double?
    public var response: String?

}

extension NeedleAttentionData {
    /// The report's view of a `/needle_attention` group (read by `NeedleAttention.read`): the
    /// rows of the chosen step. Nil without heads or keys.
    public init?(_ c: NeedleAttention.Contents) {
        let nq = c.shape[1], n = c.shape[2]
        guard !c.heads.isEmpty, nq > 0, n > 0 else { return nil }
        let step = min(max(c.chosenStep, 0), nq - 1)
        let w = (0..<c.heads.count).map { i in Array(c.weights[((i * nq + step) * n)..<((i * nq + step + 1) * n)]) }
        self.init(
            heads: c.heads, weights: w, tokens: c.tokenStrings, span: c.span,
            queryPosition: step < c.queryPositions.count ? c.queryPositions[step] : n - 1, step: step, steps: nq,
            trialIndex: c.trialIndex, needleID: c.needleID, length: c.length,
            depth: c.depth, response: c.response)
    }
}

enum AttentionFigures {
    /// Tokens shown on either side of the needle.
    static let context = 24

    static func blocks(_ d: NeedleAttentionData, source: String) -> [ReportDocument.Block] {
        let n = min(d.weights.map(\.count).max() ?? 0, max(d.queryPosition + 1, 1))
        guard n > 0 else { return [] }
        let window: Range<Int>
        if let s = d.span {
            window = max(0, s.lowerBound - context)..<min(n, s.upperBound + context)
        } else {
            window = max(0, n - 2 * context)..<n
        }
        let heads = d.heads.enumerated().map { (i, h) -> AttentionStrip.Head in
            let row = d.weights[i]
            let mass = d.span.map { s in s.filter { $0 < row.count }.map { row[$0] }.filter(\.isFinite).reduce(0, +) }
            return AttentionStrip.Head(
                label: "\(h)" + (mass.map { " · \(Int((($0) * 100).rounded()))%" } ?? ""),
                weights: window.map { $0 < row.count ? row[$0] : .nan })
        }
        let toks = window.map { $0 < d.tokens.count ? d.tokens[$0] : "" }
        var strip = AttentionStrip(
            title: "Attention of the top heads around the needle",
            tokens: toks, heads: heads,
            highlight: d.span.map { ($0.lowerBound - window.lowerBound)..<($0.upperBound - window.lowerBound) },
            highlightLabel: "needle")
        let written =
            d.queryPosition + 1 < d.tokens.count ? AttentionStrip.displayToken(d.tokens[d.queryPosition + 1]) : "?"
        var sub =
            "Answer step \(d.step + 1) of \(d.steps) (query position \(d.queryPosition), writing "
            + "“\(written)”)"
        if let id = d.needleID { sub += "; needle '\(id)'" }
        if let l = d.length { sub += ", \(l) tokens" }
        if let dep = d.depth { sub += ", depth \(Num.value(dep))%" }
        strip.subtitle = sub + "; tokens \(window.lowerBound)–\(window.upperBound - 1) shown"
        strip.id = "needle-attention"
        var out: [ReportDocument.Block] = [
            .figure(
                .init(
                    name: "needle-attention", svg: strip.svg(),
                    caption:
                        "Where the top retrieval heads look while the model writes its answer, at the answer step "
                        + "where they attend most to the needle: one row per head, one bar per prompt token (the "
                        + "needle and \(context) tokens on each side; the rest of the \(n)-token prompt is not shown). "
                        + "The shaded span is the needle; the percentage after each head is the share of its attention "
                        + "that falls on the needle. A retrieval head puts most of its attention on the needle token "
                        + "it is about to copy."
                        + (d.trialIndex.map { " Trial \($0) of the detection sweep." } ?? "")))
        ]
        if let r = d.response, !r.isEmpty {
            out.append(.paragraph("The model's answer in this trial: “\(r)”"))
        }
        return out
    }
}
