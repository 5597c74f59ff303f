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
        session.attentionCapture = nil
        let rest = Array(head.dropFirst(keep))
        if !rest.isEmpty { try session.prefill(tokens: rest, logits: .none) { _, _ in } }
        return rest.count
    }

    /// One trial: prefill, then greedy decoding. `span` and `scoreHeads` select the copy rule
    /// (no span: nothing can score, and no attention is captured). `onlyHeads` restricts the
    /// capture and the rule to those heads (the others keep score 0); nil: every head.
    public func run(prompt: [Int32], maxNewTokens: Int, span: Range<Int>?, scoreHeads: Bool,
                    onlyHeads: [HeadIndex]? = nil, onStep: ((Int) -> Void)? = nil) throws -> NeedleDecodeResult {
        precondition(maxNewTokens >= 1)
        let c = session.config
        let prefilled = try prefillAllButLast(prompt)
        let capture = scoreHeads && span != nil
        var scores: [Double]? = scoreHeads ? [Double](repeating: 0, count: c.nLayers * c.nHeads) : nil
        var top = [Int](repeating: -1, count: c.nLayers * c.nHeads)
        // The (layer, heads) to observe: every head of every layer, or only the asked-for ones.
        let observed: [(layer: Int, heads: [Int])] = onlyHeads.map { hs in
            Dictionary(grouping: hs, by: \.layer).sorted { $0.key < $1.key }.map { ($0.key, $0.value.map(\.head).sorted()) }
        } ?? (0..<c.nLayers).map { ($0, Array(0..<c.nHeads)) }
        var fed = prompt[prompt.count - 1]
        var generated: [Int32] = []
        var stop = DecodeStop.maxTokens
        for step in 0..<maxNewTokens {
            guard session.position < session.maxContext else { stop = .contextFull; break }
            let pos = session.position
            var cap: AttentionCapture?
            if capture {
                cap = AttentionCapture(observed.map {
                    AttentionRequest(layer: $0.layer, queries: [pos], heads: onlyHeads == nil ? nil : $0.heads)
                })
            }
            session.attentionCapture = cap
            let logits = try session.step(token: fed)
            session.attentionCapture = nil
            let next = Int32(Sampler.argmax(logits))
            generated.append(next)
            if let cap, let span {
                for (l, heads) in observed {
                    for h in heads {
                        guard let row = cap.row(layer: l, head: h, query: pos) else {
                            throw RetrievalHeadsError.missingAttention(layer: l, head: h, query: pos)
                        }
                        top[l * c.nHeads + h] = RetrievalCopyRule.topAttended(row)
                    }
                }
                RetrievalCopyRule.accumulate(scores: &scores!, top: top, generated: next, prompt: prompt, span: span)
            }
            onStep?(step)
            if isNewline(next) { stop = .newline; break }
            if tokenizer.isEndOfGeneration(next) { stop = .endOfGeneration; break }
            fed = next
        }
        let text = tokenizer.decode(generated, skipSpecial: true)
        return NeedleDecodeResult(generated: generated, response: PythonStrip.strip(text), stop: stop,
                                  headScores: scores, prefilledTokens: prefilled)
    }
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
