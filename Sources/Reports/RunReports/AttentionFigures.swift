import Analysis
import Foundation
import TraceStore

/// Attention of a few heads over one NIAH prompt (written by `headlight report attention`).
///
/// ```
/// /needle_attention  @analysis = "needle_attention", @analysis_version = 1
///                    @trial_index @needle_id @length @depth @span_start @span_end
///                    @heads  str[]            "L.H" per row
///                    @query_positions int[]   query position of each answer step (P-1+t writes token t)
///                    @chosen_step             the step shown (most attention on the needle)
///                    @heads_source, @response
///   weights  float32 [head, query, key]       (or [head, key] for a single query)
/// /tokens, /token_strings                     prompt and answer tokens
/// ```
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

    public static func read(_ f: H5File) -> NeedleAttentionData? {
        guard let g = RR.group(f, "needle_attention"),
              let heads = RR.stringList(g, "heads")?.compactMap(HeadIndex.init), !heads.isEmpty,
              let shape = RR.shape(g, "weights"), shape.count == 2 || shape.count == 3, shape[0] == heads.count,
              let flat = RR.doubles(g, "weights") else { return nil }
        let nq = shape.count == 3 ? shape[1] : 1, n = shape.last!
        guard nq > 0, n > 0, flat.count == heads.count * nq * n else { return nil }
        let queries = RR.intList(g, "query_positions") ?? [RR.int(g, "query_position") ?? n - 1]
        let step = min(max(RR.int(g, "chosen_step") ?? 0, 0), nq - 1)
        let w = (0..<heads.count).map { i in Array(flat[((i * nq + step) * n)..<((i * nq + step + 1) * n)]) }
        let tokens = RR.strings(f, "token_strings") ?? []
        var span: Range<Int>?
        if let s = RR.int(g, "span_start"), let e = RR.int(g, "span_end"), s >= 0, e > s { span = s..<e }
        return NeedleAttentionData(heads: heads, weights: w, tokens: tokens, span: span,
                                   queryPosition: step < queries.count ? queries[step] : n - 1, step: step, steps: nq,
                                   trialIndex: RR.int(g, "trial_index"), needleID: RR.string(g, "needle_id"),
                                   length: RR.int(g, "length"), depth: RR.double(g, "depth"),
                                   response: RR.string(g, "response"))
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
            return AttentionStrip.Head(label: "\(h)" + (mass.map { " · \(Int((($0) * 100).rounded()))%" } ?? ""),
                                       weights: window.map { $0 < row.count ? row[$0] : .nan })
        }
        let toks = window.map { $0 < d.tokens.count ? d.tokens[$0] : "" }
        var strip = AttentionStrip(title: "Attention of the top heads around the needle",
                                   tokens: toks, heads: heads,
                                   highlight: d.span.map { ($0.lowerBound - window.lowerBound)..<($0.upperBound - window.lowerBound) },
                                   highlightLabel: "needle")
        let written = d.queryPosition + 1 < d.tokens.count ? AttentionStrip.displayToken(d.tokens[d.queryPosition + 1]) : "?"
        var sub = "Answer step \(d.step + 1) of \(d.steps) (query position \(d.queryPosition), writing “\(written)”)"
        if let id = d.needleID { sub += "; needle '\(id)'" }
        if let l = d.length { sub += ", \(l) tokens" }
        if let dep = d.depth { sub += ", depth \(Num.value(dep))%" }
        strip.subtitle = sub + "; tokens \(window.lowerBound)–\(window.upperBound - 1) shown"
        strip.id = "needle-attention"
        var out: [ReportDocument.Block] = [.figure(.init(name: "needle-attention", svg: strip.svg(), caption:
            "Where the top retrieval heads look while the model writes its answer, at the answer step where they attend most "
            + "to the needle: one row per head, one bar per prompt token "
            + "(the needle and \(context) tokens on each side; the rest of the \(n)-token prompt is not shown). The shaded span is the "
            + "needle; the percentage after each head is the share of its attention that falls on the needle. A retrieval head puts most of its attention on the needle token it is about to copy."
            + (d.trialIndex.map { " Trial \($0) of the detection sweep." } ?? ""))), ]
        if let r = d.response, !r.isEmpty {
            out.append(.paragraph("The model's answer in this trial: “\(r)”"))
        }
        return out
    }
}
