import Foundation
import Inference
import TraceStore

public enum NeedleAttentionError: LocalizedError, Equatable {
    case trialNotInFile(trial: Int, file: String, trials: Int)
    case noTrials(file: String)
    case trialOutsideSuite(trial: Int, cells: Int)
    case promptMismatch(trial: Int, rebuilt: Int, stored: Int)
    case noAttention(head: String)

    public var errorDescription: String? {
        switch self {
        case let .trialNotInFile(t, f, n): return "trial \(t) is not in \(f) (it has \(n) trials)"
        case let .noTrials(f): return "\(f) has no trial records"
        case let .trialOutsideSuite(t, n): return "trial \(t) is outside this suite's \(n) cells"
        case let .promptMismatch(t, r, s):
            return "the rebuilt trial \(t) has \(r) prompt tokens, the run file says \(s)"
        case let .noAttention(h): return "no attention captured for head \(h)"
        }
    }

    public var recoverySuggestion: String? {
        switch self {
        case .trialOutsideSuite:
            return "pass the same suite options (--probes, --lengths, --depths, --needle-ids, ...) as the "
                + "retrieval-heads run"
        case .promptMismatch: return "pass the same suite options as the retrieval-heads run"
        default: return nil
        }
    }
}

/// One detection trial rerun with the attention of a few heads stored at every answer step
/// (`headlight report attention`), and its `/needle_attention` group:
///
/// ```
/// /tokens            int32 [pos]   prompt followed by the answer tokens; @prompt_length, @generated
/// /token_strings     str   [pos]   each token's text (special tokens rendered)
/// /needle_attention  @analysis = "needle_attention", @analysis_version = 1, @trial_index, @needle_id,
///                    @length, @depth, @span_start, @span_end (-1: not located), @query_positions int[]
///                    (P - 1 + t produces answer token t), @chosen_step (most attention on the needle),
///                    @heads str[] ("L.H", the head axis), @heads_source, @response
///   weights  float32 [head, query, key] = [heads, G, P + max_steps]; keys after the query are 0
/// ```
public enum NeedleAttention {
    public static let group = "needle_attention"
    public static let analysisVersion = 1

    /// The trial to rerun: `requested` if given, else a counted trial (a located one if none
    /// counts) with the longest context and the needle nearest 50% depth, ties by index.
    public static func chooseTrial(
        _ records: [RetrievalTrialRecord], requested: Int?,
        file: String
    ) throws -> RetrievalTrialRecord {
        if let t = requested {
            guard let r = records.first(where: { $0.trialIndex == t }) else {
                throw NeedleAttentionError.trialNotInFile(trial: t, file: file, trials: records.count)
            }
            return r
        }
        let counted = records.filter(\.counted)
        let pool = counted.isEmpty ? records.filter { $0.spanStart >= 0 } : counted
        guard
            let r = pool.min(by: { a, b in
                (-a.length, abs(a.depth - 50), a.trialIndex) < (-b.length, abs(b.depth - 50), b.trialIndex)
            }) ?? records.first
        else { throw NeedleAttentionError.noTrials(file: file) }
        return r
    }

    /// What one rerun produced.
    public struct Result: Sendable {
        public var trialIndex: Int
        public var needleID: String
        public var length: Int
        public var depth: Double
        /// Needle span in the prompt, if located.
        public var span: Range<Int>?
        public var heads: [HeadIndex]
        /// Prompt followed by the answer tokens.
        public var tokens: [Int32]
        public var tokenStrings: [String]
        public var promptLength: Int
        public var generated: [Int32]
        public var response: String
        /// Query position of each answer step: P - 1 + t.
        public var queryPositions: [Int]
        /// The step with the most attention on the needle, summed over the heads (0 without a span).
        public var chosenStep: Int
        /// Keys per row: P + max steps.
        public var keys: Int
        /// [heads, max(queryPositions.count, 1), keys]
        public var weights: [Float]

        /// Attention mass of head `i` on the needle at the chosen step.
        public func needleMass(head i: Int) -> Double? {
            guard let span, !queryPositions.isEmpty else { return nil }
            return span.reduce(0.0) { $0 + Double(weights[(i * queryPositions.count + chosenStep) * keys + $1]) }
        }
    }

    /// Reruns `trial` (greedy, stopping by `NeedleStopRule`, at most `maxSteps` answer tokens),
    /// capturing the attention rows of `heads` at every answer step.
    public static func run(
        model: Model, tokenizer: Tokenizer, trial t: NIAHTrial, trialIndex: Int, heads: [HeadIndex],
        maxSteps: Int
    ) throws -> Result {
        let prompt = t.promptTokens
        var requests: [CaptureRequest] = []
        for l in Set(heads.map(\.layer)).sorted() {
            requests.append(
                CaptureRequest(
                    hooks: ["blocks.\(l).attn.hook_pattern"], layers: IndexSelection([l]),
                    heads: IndexSelection(heads.filter { $0.layer == l }.map(\.head)),
                    queries: QuerySelection([.last(1), .decode])))
        }
        try model.checkContext(
            prompt.count + maxSteps + 1, for: "the trial prompt (\(prompt.count) tokens) + \(maxSteps) steps + 1")
        let session = model.makeSession(maxContext: prompt.count + maxSteps + 1)
        let stop = NeedleStopRule.stopTokens(tokenizer: tokenizer, vocabSize: model.config.vocabSize)
        let (store, result) = try session.trace(
            prompt: prompt, requests: requests, generate: maxSteps,
            stopTokens: stop)
        let generated = Array(result.tokens[prompt.count...])
        // Rows: query q = P-1+t produces answer token t (t = 0..<generated.count).
        let P = prompt.count, n = P + maxSteps
        let queries = (0..<generated.count).map { P - 1 + $0 }
        var weights = [Float](repeating: 0, count: heads.count * max(queries.count, 1) * n) // [head, query, key]
        for (i, h) in heads.enumerated() {
            guard let cap = store["blocks.\(h.layer).attn.hook_pattern"] else {
                throw NeedleAttentionError.noAttention(head: h.description)
            }
            for (k, q) in queries.enumerated() {
                guard let row = cap.attentionRow(head: h.head, query: q) else { continue }
                for (j, v) in row.prefix(n).enumerated() { weights[(i * queries.count + k) * n + j] = v }
            }
        }
        // The answer step at which the heads put the most attention on the needle.
        var chosen = 0
        if let span = t.needleSpan, !queries.isEmpty {
            var best = -1.0
            for k in queries.indices {
                var m = 0.0
                for i in heads.indices { for j in span { m += Double(weights[(i * queries.count + k) * n + j]) } }
                if m > best {
                    best = m
                    chosen = k
                }
            }
        }
        let all = result.tokens
        return Result(
            trialIndex: trialIndex, needleID: t.needle.id, length: t.cell.length, depth: t.cell.depth,
            span: t.needleSpan, heads: heads, tokens: all,
            tokenStrings: all.map {
                String(decoding: tokenizer.pieceBytes($0, special: true), as: UTF8.self)
                    .replacingOccurrences(of: "\0", with: "")
            },
            promptLength: P, generated: generated, response: tokenizer.decode(generated, skipSpecial: true),
            queryPositions: queries, chosenStep: chosen, keys: n, weights: weights)
    }

    /// Writes `/tokens`, `/token_strings` and `/needle_attention` into a new run file.
    public static func write(_ r: Result, headsSource: String, to file: H5File) throws {
        let tokensDS = try file.createDataset(RunFile.tokens, data: r.tokens)
        try tokensDS.setAttribute("prompt_length", r.promptLength)
        try tokensDS.setAttribute("generated", r.generated.count)
        try file.createDataset(RunFile.tokenStrings, strings: r.tokenStrings)
        let g = try file.createGroup(group)
        try g.setAttribute("analysis", "needle_attention")
        try g.setAttribute("analysis_version", analysisVersion)
        try g.setAttribute("trial_index", r.trialIndex)
        try g.setAttribute("needle_id", r.needleID)
        try g.setAttribute("length", r.length)
        try g.setAttribute("depth", r.depth)
        try g.setAttribute("span_start", r.span?.lowerBound ?? -1)
        try g.setAttribute("span_end", r.span?.upperBound ?? -1)
        try g.setAttribute("query_positions", r.queryPositions)
        try g.setAttribute("chosen_step", r.chosenStep)
        try g.setAttribute("heads", r.heads.map(\.description))
        try g.setAttribute("heads_source", headsSource)
        try g.setAttribute("response", r.response)
        let ds = try g.createDataset(
            "weights", data: r.weights,
            shape: [r.heads.count, max(r.queryPositions.count, 1), r.keys])
        try ds.setAttribute("axes", ["head", "query", "key"])
    }

    /// A `/needle_attention` group as stored.
    public struct Contents: Sendable {
        public var heads: [HeadIndex]
        /// [head, query, key] flattened; `shape` = [heads, steps, keys].
        public var weights: [Double]
        public var shape: [Int]
        public var queryPositions: [Int]
        public var chosenStep: Int
        public var span: Range<Int>?
        public var tokenStrings: [String]
        public var trialIndex: Int
        public var needleID: String
        public var length: Int
        public var depth: Double
        public var response: String
        public var headsSource: String
    }

    /// Reads `/needle_attention` (and `/token_strings`) of an open run file; nil if it has none.
    /// Everything the writer stores must be present with its type and shape.
    public static func read(_ f: H5File) throws -> Contents? {
        guard try f.kind(of: group) != nil else { return nil }
        let g = try f.group(group)
        let names = try g.stringsAttribute("heads")
        let heads = try names.map { t -> HeadIndex in
            guard let h = HeadIndex(t) else {
                throw TraceStoreError.invalidArgument(
                    file: f.path, object: "\(g.name) @heads",
                    detail: "\"\(t)\" is not a head L.H")
            }
            return h
        }
        let ds = try g.dataset("weights")
        let shape = try ds.shape
        let queries = try g.intsAttribute("query_positions")
        guard shape.count == 3, shape[0] == heads.count, shape[1] == max(queries.count, 1) else {
            throw TraceStoreError.shapeMismatch(
                file: f.path, object: ds.name,
                detail: "shape \(shape), expected "
                    + "[\(heads.count), \(max(queries.count, 1)), keys]")
        }
        let s = try g.intAttribute("span_start"), e = try g.intAttribute("span_end")
        let strings = try f.dataset(RunFile.tokenStrings)
        return Contents(
            heads: heads, weights: try ds.count == 0 ? [] : try ds.read(Double.self), shape: shape,
            queryPositions: queries, chosenStep: try g.intAttribute("chosen_step"),
            span: s >= 0 && e > s ? s..<e : nil,
            tokenStrings: try strings.count == 0 ? [] : try strings.readStrings(),
            trialIndex: try g.intAttribute("trial_index"), needleID: try g.stringAttribute("needle_id"),
            length: try g.intAttribute("length"), depth: try g.doubleAttribute("depth"),
            response: try g.stringAttribute("response"), headsSource: try g.stringAttribute("heads_source"))
    }
}
