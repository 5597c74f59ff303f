import Foundation
import Inference

/// Why greedy decoding of a trial stopped.
public enum DecodeStop: String, Codable, Sendable {
    /// The generated token's text contains a line break (Wu et al. stop at "<0x0A>").
    case newline
    /// An end-of-generation token (EOS / end of turn).
    case endOfGeneration = "end_of_generation"
    /// `maxNewTokens` tokens were generated.
    case maxTokens = "max_tokens"
    /// The KV cache is full.
    case contextFull = "context_full"
}

/// What one greedy decode of a NIAH prompt produced.
public struct NeedleDecodeResult: Sendable, Equatable {
    /// Generated token ids, the stopping token included (as Wu et al.'s `output`).
    public var generated: [Int32]
    /// `decode(generated, skip special tokens).strip()` (Python `str.strip`).
    public var response: String
    public var stop: DecodeStop
    /// Per-head trial score (row-major [layers, heads]) when the copy rule was applied, else nil.
    public var headScores: [Double]?
    /// Prompt tokens actually run through `prefill` for this trial (fewer than the prompt when a
    /// prefix was reused from the previous trial's KV cache).
    public var prefilledTokens: Int
}

/// Runs NIAH prompts through a session the way Wu et al. do: prefill `prompt[:-1]` with no
/// capture, then greedy decoding from the last prompt token for at most `maxNewTokens` steps,
/// stopping after a token whose text contains a line break or an end-of-generation token
/// (the stopping token is generated, scored and kept, as in the original).
///
/// With `scoreHeads`, each step captures exactly one attention row per (layer, query head) —
/// the fed token's — and applies the copy rule (`RetrievalCopyRule`).
///
/// Prefix reuse: the session keeps its KV cache between calls; a new prompt reuses the longest
/// common prefix with the tokens already cached and prefills only the rest (consecutive
/// trials of a grid share the chat-template prefix and the haystack up to the earlier
/// insertion point). Results are the same as with a fresh session (the tests check it, bit for
/// bit on the head scores and tokens); `reusePrefix = false` turns it off. Call
/// `invalidateCache()` when anything that changes prefill results (e.g. prefill-phase
/// interventions) changes.
public final class NeedleDecoder {
    public let session: InferenceSession
    public let tokenizer: Tokenizer
    public var reusePrefix: Bool
    /// Line-break tokens, by id.
    private let newlineTable: [Bool]

    public init(session: InferenceSession, tokenizer: Tokenizer, reusePrefix: Bool = true) {
        self.session = session
        self.tokenizer = tokenizer
        self.reusePrefix = reusePrefix
        newlineTable = NeedleStopRule.newlineTable(tokenizer: tokenizer, vocabSize: session.config.vocabSize)
    }

    /// Whether the text of `id` contains a line feed (special tokens count as no text).
    public func isNewline(_ id: Int32) -> Bool { id >= 0 && Int(id) < newlineTable.count && newlineTable[Int(id)] }

    /// Forget the cached prefix: the next prompt is prefilled from position 0.
    public func invalidateCache() { session.reset() }

    /// Prefills `prompt[:-1]` (reusing a cached prefix when allowed) and returns how many
    /// tokens were run.
    @discardableResult
    public func prefillAllButLast(_ prompt: [Int32]) throws -> Int {
        precondition(prompt.count >= 1, "empty prompt")
        let head = prompt.dropLast()
        var keep = 0
        if reusePrefix {
            let cached = session.tokens
            let limit = min(cached.count, head.count)
            while keep < limit && cached[keep] == head[head.startIndex + keep] { keep += 1 }
        }
        if keep < session.position { session.truncate(to: keep) }
        let rest = Array(head.dropFirst(keep))
        if !rest.isEmpty { try session.prefill(tokens: rest, logits: .none) { _, _ in } }
        return rest.count
    }

    /// One trial: prefill, then greedy decoding. `span` and `scoreHeads` select the copy rule
    /// (no span: nothing can score, and no attention is captured). `onlyHeads` restricts the
    /// capture and the rule to those heads (the others keep score 0); nil: every head.
    public func run(
        prompt: [Int32], maxNewTokens: Int, span: Range<Int>?, scoreHeads: Bool,
        onlyHeads: [HeadIndex]? = nil, onStep: ((Int) -> Void)? = nil
    ) throws -> NeedleDecodeResult {
        precondition(maxNewTokens >= 1)
        let c = session.config
        let prefilled = try prefillAllButLast(prompt)
        var scores: [Double]? = scoreHeads ? [Double](repeating: 0, count: c.nLayers * c.nHeads) : nil
        var top = [Int](repeating: -1, count: c.nLayers * c.nHeads)
        // The (layer, heads) to observe: every head of every layer, or only the asked-for ones.
        let observed: [(layer: Int, heads: [Int])] =
            onlyHeads.map { hs in
                Dictionary(grouping: hs, by: \.layer).sorted { $0.key < $1.key }
                    .map { ($0.key, Array(Set($0.value.map(\.head))).sorted()) }
            } ?? (0..<c.nLayers).map { ($0, Array(0..<c.nHeads)) }
        if let bad = observed.first(where: { o in
            !(0..<c.nLayers).contains(o.layer) || o.heads.contains { !(0..<c.nHeads).contains($0) }
        }) {
            throw RetrievalHeadsError.invalid(
                "onlyHeads: layer \(bad.layer) heads \(bad.heads) are outside "
                    + "the model's \(c.nLayers) layers x \(c.nHeads) heads")
        }
        let capture = scoreHeads && span != nil && !observed.isEmpty
        // hook_pattern of the fed token (the step's query) for the observed heads only.
        let requests =
            onlyHeads == nil
            ? [CaptureRequest(hooks: [HookKind.pattern.rawValue], queries: .decode)]
            : observed.map {
                CaptureRequest(
                    hooks: [HookKind.pattern.name(layer: $0.layer)], heads: IndexSelection($0.heads),
                    queries: .decode)
            }
        let sink = TopKeySink(config: c)
        var fed = prompt[prompt.count - 1]
        var generated: [Int32] = []
        var stop = DecodeStop.maxTokens
        for step in 0..<maxNewTokens {
            guard session.position < session.maxContext else {
                stop = .contextFull
                break
            }
            let pos = session.position
            let logits =
                try capture
                ? session.step(token: fed, capturing: requests, into: sink)
                : session.step(token: fed)
            let next = Int32(Sampler.argmax(logits))
            generated.append(next)
            if capture, let span {
                for (l, heads) in observed {
                    for h in heads {
                        let k = l * c.nHeads + h
                        guard sink.top[k] >= 0 else {
                            throw RetrievalHeadsError.missingAttention(layer: l, head: h, query: pos)
                        }
                        top[k] = sink.top[k]
                    }
                }
                RetrievalCopyRule.accumulate(scores: &scores!, top: top, generated: next, prompt: prompt, span: span)
            }
            onStep?(step)
            if isNewline(next) {
                stop = .newline
                break
            }
            if tokenizer.isEndOfGeneration(next) {
                stop = .endOfGeneration
                break
            }
            fed = next
        }
        let text = tokenizer.decode(generated, skipSpecial: true)
        return NeedleDecodeResult(
            generated: generated, response: PythonStrip.strip(text), stop: stop,
            headScores: scores, prefilledTokens: prefilled)
    }
}

/// Keeps only the most attended key (`RetrievalCopyRule.topAttended`) of each hook_pattern row
/// of a one-query capture (a decode step): `top[layer * H + head]`, -1 for heads not captured.
/// No attention row is stored.
final class TopKeySink: CaptureSink {
    let nHeads: Int
    private(set) var top: [Int]
    private var layouts: [CaptureLayout] = []

    init(config c: ModelConfig) {
        nHeads = c.nHeads
        top = [Int](repeating: -1, count: c.nLayers * c.nHeads)
    }

    func prepare(_ plan: TracePlan) throws {
        layouts = plan.captures
        for i in top.indices { top[i] = -1 }
    }

    func write(_ capture: Int, _ block: CaptureBlock) throws {
        let layout = layouts[capture]
        guard layout.point.kind == .pattern, layout.form == .full || layout.form == .rows,
            let layer = layout.point.layer, let heads = layout.heads
        else {
            throw RetrievalHeadsError.invalid("TopKeySink takes hook_pattern rows, not \(layout.name) (\(layout.form))")
        }
        let head = heads[block.start[0]]
        for i in 0..<block.rows {
            let query = layout.queries[block.start[1] + i]
            let row = UnsafeBufferPointer(start: block.row(i), count: min(block.valid, query + 1)) // keys 0...query
            top[layer * nHeads + head] = RetrievalCopyRule.topAttended(row)
        }
    }

    func writeIndices(_ capture: Int, start: [Int], count: [Int], _ values: UnsafeBufferPointer<Int32>) throws {}
    func finish(positions: Int) throws {}
}

/// Python's `str.strip()` with no argument: strips Unicode whitespace (`str.isspace`) at both ends.
public enum PythonStrip {
    public static func strip(_ s: String) -> String {
        let u = s.unicodeScalars
        guard let a = u.firstIndex(where: { !PythonText.isSpace($0) }) else { return "" }
        let b = u.lastIndex(where: { !PythonText.isSpace($0) })!
        return String(u[a...b])
    }
}

public enum RetrievalHeadsError: LocalizedError, Equatable {
    case missingAttention(layer: Int, head: Int, query: Int)
    case partialMismatch(file: String, detail: String)
    case badScoresFile(file: String, detail: String)
    case invalid(String)

    public var errorDescription: String? {
        switch self {
        case let .missingAttention(l, h, q): return "no attention row captured for layer \(l) head \(h) query \(q)"
        case let .partialMismatch(f, d): return "\(f): cannot resume: \(d)"
        case let .badScoresFile(f, d): return "\(f): \(d)"
        case let .invalid(s): return s
        }
    }
}
