import Foundation

// Trial construction as Wu et al.'s retrieval_head_detection.py does it
// (methods.md section 1): `encode_and_trim`, `insert_needle`, the prompt,
// and `find_needle_idx`. Each step below names the original function and
// says where, and why, Headlight differs.

/// The haystack with a needle in it, before the template is applied.
public struct NIAHContext: Equatable, Sendable {
    /// `decode(tokens)`: the context text that goes into the template.
    public var text: String
    /// `tokens_new_context`: haystack tokens with the needle tokens spliced in.
    public var tokens: [Int32]
    /// Haystack tokens kept after trimming to `length - buffer - needle tokens`.
    public var haystackTokenCount: Int
    /// Needle tokens (`encode(needle)`).
    public var needleTokenCount: Int
    /// `int(haystackTokenCount * depth / 100)`; `haystackTokenCount` for depth 100.
    public var requestedInsertion: Int
    /// Where the needle went, after moving back to the previous sentence end.
    public var insertionPoint: Int
    /// True when the token before `insertionPoint` is a period token. False
    /// at position 0 (depth 0, or no period before the requested point: the
    /// original then walks back to the very start) and for a depth-100
    /// append that follows a non-period token.
    public var afterPeriod: Bool
}

public enum NIAHTrialError: LocalizedError, Equatable {
    case lengthNotAboveBuffer(length: Int, buffer: Int)
    case depthOutOfRange(Double)
    case needleTooLong(needleTokens: Int, budget: Int)
    case emptyNeedleAnswer
    case chatTemplateMissing

    public var errorDescription: String? {
        switch self {
        case let .lengthNotAboveBuffer(l, b): return "context length \(l) must be greater than the buffer \(b)"
        case let .depthOutOfRange(d): return "depth \(d) is outside 0...100"
        case let .needleTooLong(n, b):
            return "the needle has \(n) tokens but only \(b) fit in length - buffer"
        case .emptyNeedleAnswer: return "real_needle encodes to no tokens"
        case .chatTemplateMissing: return "the suite asks for the chat form but no chat template was given"
        }
    }
}

/// Builds needle-in-haystack contexts for one tokenizer and one haystack.
///
/// Not thread-safe: it caches the haystack's tokens and the trimmed
/// haystack per length (the original re-encodes them every trial; the
/// results are identical because encoding is deterministic).
public final class NIAHContextBuilder {
    public let tokenizer: any TextTokenizer
    public let haystackText: String
    public let buffer: Int
    /// Pass `addSpecial: true` when encoding the haystack and the needle.
    /// Off by default. The original calls Hugging Face `enc.encode(text)`,
    /// which adds BOS for Llama/Mistral tokenizers: the trimmed context then
    /// starts with BOS, the needle carries its own BOS into the middle of
    /// the context, and `decode` turns them into literal "<s>" text that the
    /// final tokenization maps back to BOS. Turn this on (with a tokenizer
    /// whose `decode` renders special tokens as text) to reproduce that.
    public let addSpecialTokens: Bool
    /// Tokens that count as a sentence end. Default: `encode(".")` without
    /// specials, which is the original's rule for tokenizers other than
    /// Llama/Mistral/GLM (for those it hard-codes the ids of "." and "▁.").
    /// With a BPE vocabulary only a bare "." token matches: merged tokens
    /// such as ")." or ".”" do not, so the needle may move back past them
    /// to an earlier plain ".".
    public let periodTokens: Set<Int32>

    private var haystackTokensCache: [Int32]?
    private var trimmedCache: [Int: [Int32]] = [:]

    public init(
        tokenizer: any TextTokenizer, haystackText: String, buffer: Int = NIAHSuite.defaultBuffer,
        addSpecialTokens: Bool = false, periodTokens: Set<Int32>? = nil
    ) {
        self.tokenizer = tokenizer
        self.haystackText = haystackText
        self.buffer = buffer
        self.addSpecialTokens = addSpecialTokens
        self.periodTokens = periodTokens ?? Set(tokenizer.encode(".", addSpecial: false))
    }

    public convenience init(
        tokenizer: any TextTokenizer, probe: NIAHProbe,
        addSpecialTokens: Bool = false, periodTokens: Set<Int32>? = nil
    ) {
        self.init(
            tokenizer: tokenizer, haystackText: probe.haystackText, buffer: probe.suite.buffer,
            addSpecialTokens: addSpecialTokens, periodTokens: periodTokens)
    }

    /// Tokens of the whole haystack text.
    public var haystackTokens: [Int32] {
        if let t = haystackTokensCache { return t }
        let t = tokenizer.encode(haystackText, addSpecial: addSpecialTokens)
        haystackTokensCache = t
        return t
    }

    /// `encode_and_trim` followed by `insert_needle`'s `encode(context)`:
    /// the haystack cut to `length` tokens, decoded, and encoded again.
    /// (A haystack already shorter than `length` is used whole.)
    public func trimmedHaystackTokens(length: Int) -> [Int32] {
        if let t = trimmedCache[length] { return t }
        let all = haystackTokens
        let text = all.count > length ? tokenizer.decode(Array(all[..<length])) : haystackText
        let t = tokenizer.encode(text, addSpecial: addSpecialTokens)
        trimmedCache[length] = t
        return t
    }

    /// `generate_context` = `encode_and_trim` + `insert_needle`.
    ///
    /// - The trimmed haystack is cut further to `length - buffer - needle`
    ///   tokens when haystack + needle exceed `length - buffer`.
    /// - Depth 100 appends the needle. Otherwise the insertion point is
    ///   `int(n * (depth / 100))` and moves back one token at a time until
    ///   the token before it is a period token; if there is none, it stops
    ///   at 0 and the needle opens the context.
    /// - Throws `needleTooLong` where the original would slice with a
    ///   negative index (needle longer than `length - buffer`).
    public func context(needle: String, length: Int, depth: Double) throws -> NIAHContext {
        guard length > buffer else { throw NIAHTrialError.lengthNotAboveBuffer(length: length, buffer: buffer) }
        guard depth >= 0 && depth <= 100 else { throw NIAHTrialError.depthOutOfRange(depth) }
        let needleTokens = tokenizer.encode(needle, addSpecial: addSpecialTokens)
        var haystack = trimmedHaystackTokens(length: length)
        let budget = length - buffer
        if haystack.count + needleTokens.count > budget {
            guard budget >= needleTokens.count else {
                throw NIAHTrialError.needleTooLong(needleTokens: needleTokens.count, budget: budget)
            }
            haystack = Array(haystack[..<(budget - needleTokens.count)])
        }
        let requested: Int
        var point: Int
        let tokens: [Int32]
        if depth == 100 {
            requested = haystack.count
            point = haystack.count
            tokens = haystack + needleTokens
        } else {
            requested = Int(Double(haystack.count) * (depth / 100)) // Python int(): toward zero
            point = requested
            while point > 0 && !periodTokens.contains(haystack[point - 1]) { point -= 1 }
            tokens = Array(haystack[..<point]) + needleTokens + Array(haystack[point...])
        }
        return NIAHContext(
            text: tokenizer.decode(tokens), tokens: tokens,
            haystackTokenCount: haystack.count, needleTokenCount: needleTokens.count,
            requestedInsertion: requested, insertionPoint: point,
            afterPeriod: point > 0 && periodTokens.contains(haystack[point - 1]))
    }
}

/// Prompt text from a template.
public enum NIAHPrompt {
    /// Replaces `{context}` and `{question}` in one left-to-right pass, so a
    /// placeholder-like string inside the haystack or question is left alone.
    public static func render(_ template: String, context: String, question: String) -> String {
        var out = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            let tail = rest[open...]
            if tail.hasPrefix("{context}") {
                out += context
                rest = tail.dropFirst("{context}".count)
            } else if tail.hasPrefix("{question}") {
                out += question
                rest = tail.dropFirst("{question}".count)
            } else {
                out += "{"
                rest = tail.dropFirst()
            }
        }
        out += rest
        return out
    }
}

/// `find_needle_idx`: the first window [s, s+n) of `prompt`, n = number of
/// needle tokens, whose distinct tokens cover more than `threshold` of the
/// needle's distinct tokens; the span is s..<s+n whatever the window held.
/// Windows near the end are cut short (Python slicing), but the full window
/// ending at the end is tried before them, so the upper bound can exceed
/// `prompt.count` only when the prompt is shorter than the needle. nil when
/// no window qualifies (the original returns (-1, -1)) or `needle` is empty.
///
/// Consequences of the set rule, kept from the original: for a needle of n
/// distinct tokens, a window starting k tokens early already qualifies when
/// k < n/10, so for n > 10 the span can begin before the needle and miss
/// its last token(s); and a needle whose first token differs in context
/// (BPE " take" inside the text vs "take" encoded alone) is still found.
public func locateNeedleSpan(needle: [Int32], in prompt: [Int32], threshold: Double = 0.9) -> Range<Int>? {
    let target = Set(needle)
    guard !target.isEmpty else { return nil }
    let n = needle.count
    let denom = Double(target.count)
    var seen = Set<Int32>()
    for s in 0..<prompt.count {
        seen.removeAll(keepingCapacity: true)
        for t in prompt[s..<min(s + n, prompt.count)] where target.contains(t) { seen.insert(t) }
        if Double(seen.count) / denom > threshold { return s..<(s + n) }
    }
    return nil
}

/// One built trial: the prompt and where its needle is.
public struct NIAHTrial: Sendable {
    public var cell: NIAHCell
    public var needle: NIAHNeedle
    public var context: NIAHContext
    /// The rendered template, wrapped by the chat template when the suite has `chat`.
    public var promptText: String
    public var promptTokens: [Int32]
    /// `encode(real_needle)` without special tokens.
    public var answerTokens: [Int32]
    /// Needle span in `promptTokens` (`locateNeedle`: Wu et al.'s token-set
    /// rule, else the tokens carrying `real_needle`'s text); nil when not
    /// found: such a trial cannot score heads (the original would compare
    /// against -1..-1 and score nothing) and callers must record it as
    /// unlocated.
    public var needleSpan: Range<Int>?
    /// The rule that found `needleSpan` (`.notFound` when it is nil).
    public var needleSpanRule: NeedleSpanRule
}

/// Builds the trials of a probe.
public final class NIAHTrialBuilder {
    public let probe: NIAHProbe
    public let contexts: NIAHContextBuilder
    /// Renders one user message as the model's chat prompt, ending with the
    /// generation prompt (Hugging Face `apply_chat_template(...,
    /// add_generation_prompt=True)`). Required when the suite has `chat`.
    public let chatTemplate: ((String) -> String)?

    public init(
        probe: NIAHProbe, tokenizer: any TextTokenizer, chatTemplate: ((String) -> String)? = nil,
        addSpecialTokens: Bool = false, periodTokens: Set<Int32>? = nil
    ) {
        self.probe = probe
        self.contexts = NIAHContextBuilder(
            tokenizer: tokenizer, probe: probe,
            addSpecialTokens: addSpecialTokens, periodTokens: periodTokens)
        self.chatTemplate = chatTemplate
    }

    /// The prompt for one cell. Chat: the chat-templated text is encoded
    /// without adding specials (the template carries them, as
    /// `apply_chat_template(tokenize=True)`); plain: encoded with specials,
    /// as the original's `enc(input_context)`.
    public func trial(_ cell: NIAHCell) throws -> NIAHTrial {
        let suite = probe.suite
        let needle = probe.needles[cell.needleIndex]
        let tok = contexts.tokenizer
        let ctx = try contexts.context(needle: needle.needle, length: cell.length, depth: cell.depth)
        let body = NIAHPrompt.render(suite.effectiveTemplate, context: ctx.text, question: needle.question)
        let text: String
        let ids: [Int32]
        if suite.chat {
            guard let wrap = chatTemplate else { throw NIAHTrialError.chatTemplateMissing }
            text = wrap(body)
            ids = tok.encode(text, addSpecial: false)
        } else {
            text = body
            ids = tok.encode(text, addSpecial: true)
        }
        let answer = tok.encode(needle.realNeedle, addSpecial: false)
        guard !answer.isEmpty else { throw NIAHTrialError.emptyNeedleAnswer }
        let located = locateNeedle(answerTokens: answer, answerText: needle.realNeedle, in: ids, tokenizer: tok)
        return NIAHTrial(
            cell: cell, needle: needle, context: ctx, promptText: text, promptTokens: ids,
            answerTokens: answer, needleSpan: located.span, needleSpanRule: located.rule)
    }
}
