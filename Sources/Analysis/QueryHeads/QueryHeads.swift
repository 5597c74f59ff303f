import Foundation
import Inference

// Query-focused retrieval heads (QRHead; Zhang et al. 2025, "Query-Focused Retrieval Heads
// Improve Long-Context Reasoning and Re-ranking"; code princeton-pli/QRHead,
// src/qrretriever/attn_retriever.py and exp_scripts/detection/detect_qrhead_lme.py). Reproduced:
//
// - Prompt: " Here are some paragraphs:" then, per passage, "\n\n[i] <text>", then
//   "\n\nPlease find information that are relevant to the following query in the paragraphs
//   above.\n\nQuery: <question>", as one user turn of the chat template followed by the
//   assistant header (the original wraps the same text in Llama 3's user / assistant headers).
// - Query span: from "Please find ..." through the end of the prompt (the template's suffix
//   included); passage span: the tokens of "[i] <text>".
// - Per-token score of a head: its attention from every query-span token to each key, averaged
//   over the query tokens (captured on the fly by `QueryAttentionSink`, never a full pattern).
// - Calibration: the same for the null query "N/A" (the prompt up to the query span is shared and
//   run once), subtracted key by key.
// - Per passage: the calibrated per-token scores over its span, tokens at or below mean - 2 std
//   (std with Bessel's correction, torch's default) zeroed, summed. For a single head this is the
//   per-head detection score (`score_docs_per_head_for_detection`); for a head set the per-token
//   scores are summed over the set's heads first and then masked and summed (`score_docs`).
// - QRScore of a head: the mean over the detection questions of its score on the gold passage.
// Headlight's deviations, stated: the detection and the re-ranking evaluation use disjoint halves
// of one labelled set (the paper detects on NQ / LongMemEval samples and evaluates elsewhere);
// a passage span of a single token is not masked (torch's std of one value is NaN, which would
// zero it). SmolLM2's chat template is ChatML, so "prefix" and "suffix" are its own markers.

public struct QueryHeadsOptions: Sendable {
    /// Wrap the prompt in the model's chat template.
    public var chat = true
    /// The calibration query (QRHead: "N/A").
    public var nullQuery = "N/A"
    /// The first `detectItems` items detect heads; the rest evaluate re-rankers. nil: half.
    public var detectItems: Int?
    /// Heads in the QRHead (and Wu) re-ranking sets.
    public var topHeads = 16
    /// Also score each passage by the model's likelihood of the gold answer given that passage.
    public var likelihood = true

    public init() {}
}

public enum QRPrompt {
    public static let lead = " Here are some paragraphs:"
    public static let separator = "\n\n"
    public static let lateInstruction =
        "Please find information that are relevant to the following query in the paragraphs above."

    /// The user text, the byte range of each "[i] <text>" and the byte offset of the query part.
    public static func userText(passages: [String], query: String) -> (text: String, passages: [Range<Int>], query: Int)
    {
        var out = Array(lead.utf8)
        var ranges: [Range<Int>] = []
        for (i, p) in passages.enumerated() {
            out += Array(separator.utf8)
            let start = out.count
            out += Array("[\(i + 1)] \(p)".utf8)
            ranges.append(start..<out.count)
        }
        out += Array(separator.utf8)
        let q = out.count
        out += Array("\(lateInstruction)\(separator)Query: \(query)".utf8)
        return (String(decoding: out, as: UTF8.self), ranges, q)
    }
}

/// One item's prompt in tokens.
struct QRPrepared {
    var ids: [Int32]
    var passageSpans: [Range<Int>]
    /// First token of the query span (the span runs to the end of `ids`).
    var queryStart: Int
}

public struct QueryHeadsItemResult: Sendable {
    public var item: CitationItem
    /// 0-based gold passage.
    public var gold: Int
    public var detect: Bool
    public var promptTokens: Int
    public var queryTokens: Int
    public var nullQueryTokens: Int
    public var passageSpans: [Range<Int>]
    /// [passage, layer, head]: calibrated, outlier-masked per-head score (QRHead detection score).
    public var headScores: [Float]
    /// [passage, layer, head]: uncalibrated attention mass of the query tokens on the passage span.
    public var headMass: [Float]
    /// Per passage: log-probability of the gold answer given that passage alone (nil when not run).
    public var answerLogProb: [Double]?
    /// [layer * head][passage token]: calibrated per-token scores over each passage span,
    /// concatenated in passage order (kept in memory for head-set re-ranking; not written).
    var calibrated: [[Float]]
    public var seconds: Double
}

public final class QueryHeadsRunner {
    public let model: Model
    public let tokenizer: Tokenizer
    public let chatTemplate: ChatTemplate?
    public let options: QueryHeadsOptions

    public init(model: Model, tokenizer: Tokenizer, chatTemplate: ChatTemplate?, options: QueryHeadsOptions) {
        self.model = model
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.options = options
    }

    func wrap(_ user: String) throws -> String {
        guard options.chat, let t = chatTemplate else { return user }
        return try t.apply(messages: [.user(user)], addGenerationPrompt: true)
    }

    func encode(_ text: String) -> [Int32] {
        if options.chat, let t = chatTemplate { return tokenizer.encodeChat(text, template: t) }
        return tokenizer.encode(text, addSpecial: true, parseSpecial: false)
    }

    func prepare(_ item: CitationItem, query: String) throws -> QRPrepared {
        let (user, ranges, q) = QRPrompt.userText(passages: item.passages, query: query)
        let text = try wrap(user)
        let bytes = Array(text.utf8)
        guard let at = TokenAlignment.find(Array(user.utf8), in: bytes) else {
            throw CitationError.tokenAlignment(id: item.id, detail: "the chat template changed the user message")
        }
        let ids = encode(text)
        guard let off = TokenAlignment.offsets(pieces: ids.map { tokenizer.pieceBytes($0) }, text: bytes) else {
            throw CitationError.tokenAlignment(id: item.id, detail: "the tokens do not spell the prompt text")
        }
        var spans: [Range<Int>] = []
        for (k, r) in ranges.enumerated() {
            let shifted = (r.lowerBound + at)..<(r.upperBound + at)
            guard let t = TokenAlignment.tokens(covering: shifted, starts: off.starts, ends: off.ends) else {
                throw CitationError.tokenAlignment(id: item.id, detail: "passage [\(k + 1)] has no tokens")
            }
            spans.append(t)
        }
        let qByte = (q + at)..<bytes.count
        guard let qt = TokenAlignment.tokens(covering: qByte, starts: off.starts, ends: off.ends) else {
            throw CitationError.tokenAlignment(id: item.id, detail: "the query has no tokens")
        }
        guard let last = spans.last, last.upperBound <= qt.lowerBound else {
            throw CitationError.tokenAlignment(id: item.id, detail: "the last passage and the query share a token")
        }
        return QRPrepared(ids: ids, passageSpans: spans, queryStart: qt.lowerBound)
    }

    /// QRHead's outlier mask and sum over one passage's per-token scores.
    public static func maskedSum(_ x: ArraySlice<Float>) -> Double {
        let n = x.count
        guard n > 0 else { return 0 }
        var mean = 0.0
        for v in x { mean += Double(v) }
        mean /= Double(n)
        guard n > 1 else { return mean }
        var ss = 0.0
        for v in x { ss += (Double(v) - mean) * (Double(v) - mean) }
        let threshold = mean - 2 * (ss / Double(n - 1)).squareRoot()
        var sum = 0.0
        for v in x where Double(v) > threshold { sum += Double(v) }
        return sum
    }

    /// Scores of a head set on every passage of an item: per-token calibrated scores summed over
    /// `heads` (flat layer * nHeads + head), then masked and summed per passage.
    public static func setScores(_ r: QueryHeadsItemResult, heads: [Int]) -> [Double] {
        let width = r.calibrated.first?.count ?? 0
        var summed = [Float](repeating: 0, count: width)
        for h in heads { for i in 0..<width { summed[i] += r.calibrated[h][i] } }
        var out: [Double] = []
        var off = 0
        for s in r.passageSpans {
            out.append(maskedSum(summed[off..<(off + s.count)]))
            off += s.count
        }
        return out
    }

    /// Runs every item; items before `detectCount` are flagged as detection items.
    public func run(
        _ items: [CitationItem], detectCount: Int, progress: (Int, Int, String) -> Void = { _, _, _ in }
    ) throws -> [QueryHeadsItemResult] {
        let c = model.config
        var prepared: [(QRPrepared, QRPrepared)] = []
        for item in items {
            guard let s = item.source, s >= 0, s < item.passages.count else {
                throw CitationError.invalid(
                    "item '\(item.id)' (line \(item.line)) has no valid 'source' (the gold passage, 1-based)")
            }
            let real = try prepare(item, query: item.question)
            let null = try prepare(item, query: options.nullQuery)
            guard real.queryStart == null.queryStart, real.ids[..<real.queryStart] == null.ids[..<null.queryStart]
            else {
                throw CitationError.tokenAlignment(
                    id: item.id, detail: "the prompt before the query tokenizes differently with the null query")
            }
            prepared.append((real, null))
        }
        let need = prepared.map { max($0.0.ids.count, $0.1.ids.count) }.max() ?? 1
        let limit = model.defaultMaxContext
        if let i = prepared.firstIndex(where: { max($0.0.ids.count, $0.1.ids.count) > limit }) {
            throw CitationError.tooLong(id: items[i].id, tokens: prepared[i].0.ids.count, maxContext: limit)
        }
        let session = InferenceSession(model: model, maxContext: need)
        // Sized for the longest single-passage prompt seen so far (grown when needed).
        var lhSession: InferenceSession?
        var out: [QueryHeadsItemResult] = []
        let nh = c.nLayers * c.nHeads
        for (i, (real, null)) in prepared.enumerated() {
            let start = Date()
            let item = items[i]
            let shared = real.queryStart
            session.reset()
            try session.prefill(tokens: Array(real.ids[..<shared]), logits: .none) { _, _ in }
            func capture(_ p: QRPrepared) throws -> QueryAttentionSink {
                let sink = QueryAttentionSink()
                let req = CaptureRequest(hooks: ["attn.hook_pattern"], queries: QuerySelection([.range(shared, nil)]))
                try session.prefill(tokens: Array(p.ids[shared...]), logits: .none, capturing: [req], into: sink)
                session.truncate(to: shared)
                return sink
            }
            let realSink = try capture(real), nullSink = try capture(null)
            let spans = real.passageSpans, np = spans.count
            var headScores = [Float](repeating: 0, count: np * nh)
            var headMass = [Float](repeating: 0, count: np * nh)
            var calibrated = [[Float]](repeating: [], count: nh)
            let realRows = realSink.meanRows, nullRows = nullSink.meanRows
            let kr = realSink.keys, kn = nullSink.keys
            for h in 0..<nh {
                var cal: [Float] = []
                cal.reserveCapacity(spans.reduce(0) { $0 + $1.count })
                for (j, s) in spans.enumerated() {
                    var mass = 0.0
                    let from = cal.count
                    for k in s {
                        let a = realRows[h * kr + k], b = nullRows[h * kn + k]
                        mass += a
                        cal.append(Float(a - b))
                    }
                    headMass[j * nh + h] = Float(mass)
                    headScores[j * nh + h] = Float(Self.maskedSum(cal[from...]))
                }
                calibrated[h] = cal
            }
            var lp: [Double]?
            if options.likelihood, let answer = item.gold {
                lp = try item.passages.map { p in
                    let ids = likelihoodTokens(passage: p, question: item.question, answer: answer)
                    guard ids.all.count <= limit else {
                        throw CitationError.tooLong(id: item.id, tokens: ids.all.count, maxContext: limit)
                    }
                    if lhSession == nil || lhSession!.maxContext < ids.all.count {
                        lhSession = InferenceSession(model: model, maxContext: max(ids.all.count, 512))
                    }
                    return try answerLogProb(ids, lhSession!)
                }
            }
            out.append(
                QueryHeadsItemResult(
                    item: item, gold: item.source!, detect: i < detectCount, promptTokens: real.ids.count,
                    queryTokens: real.ids.count - shared, nullQueryTokens: null.ids.count - shared,
                    passageSpans: spans, headScores: headScores, headMass: headMass, answerLogProb: lp,
                    calibrated: calibrated, seconds: Date().timeIntervalSince(start)))
            progress(i + 1, items.count, item.id)
        }
        return out
    }

    public static let likelihoodRule =
        "log P(gold answer | one passage, question): the user turn '<passage>\\n\\nQuestion: <question>' (chat "
        + "template, generation prompt) followed by the answer's tokens; without chat, "
        + "'<passage>\\n\\nQuestion: <question>\\nAnswer:' followed by ' <answer>'. Sum of the answer tokens' log-probs."

    /// The tokens of `likelihoodRule` for one passage: the prompt, then the answer.
    func likelihoodTokens(passage: String, question: String, answer: String) -> (all: [Int32], prompt: Int) {
        let user = "\(passage)\n\nQuestion: \(question)"
        if options.chat, chatTemplate != nil, let text = try? wrap(user) {
            let prompt = encode(text)
            return (prompt + tokenizer.encode(answer, addSpecial: false, parseSpecial: false), prompt.count)
        }
        let prompt = encode(user + "\nAnswer:")
        return (prompt + tokenizer.encode(" " + answer, addSpecial: false, parseSpecial: false), prompt.count)
    }

    /// Sum of the log-probabilities of the answer tokens (`likelihoodTokens`); NaN without any.
    func answerLogProb(_ t: (all: [Int32], prompt: Int), _ s: InferenceSession) throws -> Double {
        let ids = t.all
        guard ids.count > t.prompt, t.prompt > 0 else { return .nan }
        s.reset()
        var total = 0.0
        let wanted = Set((t.prompt - 1)..<(ids.count - 1))
        try s.prefill(tokens: ids, logits: .positions(wanted)) { pos, row in
            var m = -Float.infinity
            for v in row { m = max(m, v) }
            var z = 0.0
            for v in row { z += exp(Double(v - m)) }
            total += Double(row[Int(ids[pos + 1])] - m) - log(z)
        }
        return total
    }
}
