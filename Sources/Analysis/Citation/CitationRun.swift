import Foundation
import Inference

// Running citation probes through a model and collecting, per cited statement, the attention
// mass of every head on every passage span.
//
// Which query positions: a statement's tokens t_a ... t_b-1 are *produced* by the forward
// passes at positions a-1 ... b-2 (the logits at position i predict token i+1), so those are the
// queries whose attention is averaged — "the attention while the statement is produced".
// - teacher forcing: prompt + answer in one prefill; the statement is the answer text before
//   its citation marker, so the tokens of "[k]" (and the text after it) are never queries and
//   the first statement token is produced at the last prompt position;
// - generation: greedy decoding; the last prompt position and every decode step are captured,
//   citations are parsed from the output, and each statement's queries are picked afterwards.
// Capture is `attn.hook_pattern` in span-mass form (HookSet): for each selected query row only
// the summed probability on each passage span is kept, so memory is O(layers x heads x queries
// x passages) whatever the context length.

public struct CitationRunOptions: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        /// Teacher-force items with an answer, generate for the others.
        case auto
        /// Teacher-force every item (items without an answer are an error).
        case teacher
        /// Generate for every item (answers are ignored).
        case generate
    }
    public var mode: Mode = .auto
    public var maxNewTokens = 64
    /// Pad prompts with extra distractor passages to at least this many tokens.
    public var padTo: Int?
    /// Wrap the prompt in the model's chat template (needs `chatTemplate`).
    public var chat = true
    public var instruction = CitationPrompt.defaultInstruction
    /// Seed for padding layouts (bootstrap seeds are passed to `summarize`).
    public var seed: UInt64 = 0
    /// Session length; nil: the longest item needs (at most the model's default context).
    public var maxContext: Int?
    /// Consecutive generated items decoded together (`DecodeBatch.trace`: one matrix-matrix
    /// product per step over B KV caches); results do not depend on it, 1 runs one at a time.
    public var decodeBatch = 4

    public init() {}
}

/// One statement of a response, located in the token sequence.
public struct CitationStatementResult: Sendable {
    public var text: String
    /// Citations as written (1-based, possibly out of range when generated).
    public var citations: [Int]
    /// Absolute positions of the statement's tokens.
    public var tokens: Range<Int>
    /// Query positions averaged (tokens shifted by one).
    public var queries: [Int]
    /// The attention observation; nil for uncited statements and ones citing no valid passage.
    public var observation: StatementObservation?
}

public struct CitationItemResult: Sendable {
    /// The item as run (padded, renumbered).
    public var item: CitationItem
    public var mode: CitationRunOptions.Mode
    public var originalPassages: Int
    public var paddedPassages: Int
    /// Tokens before the answer (teacher) / of the prompt (generation).
    public var promptTokens: Int
    /// Answer tokens (teacher) / generated tokens (generation).
    public var answerTokens: Int
    /// The answer text (teacher) / the decoded output (generation).
    public var response: String
    /// Token span of each passage's text.
    public var passageSpans: [Range<Int>]
    public var statements: [CitationStatementResult]
    /// L-CiteEval recall / precision / F1 under the run's judge.
    public var quality: CitationQuality
    /// Generation: the gold answer occurs in the output (normalized); nil when unknown or teacher-forced.
    public var answerCorrect: Bool?
    public var seconds: Double
}

/// A prepared item: text, tokens and spans, before running.
struct CitationPrepared {
    var item: CitationItem
    var mode: CitationRunOptions.Mode
    var originalPassages: Int
    var ids: [Int32]
    var promptTokens: Int
    var passageSpans: [Range<Int>]
    /// Teacher: statements of the answer and their token ranges.
    var statements: [(CitedStatement, Range<Int>)]
}

public final class CitationRunner {
    public let model: Model
    public let tokenizer: Tokenizer
    public let chatTemplate: ChatTemplate?
    public let options: CitationRunOptions
    public let judge: CitationJudge

    public init(
        model: Model, tokenizer: Tokenizer, chatTemplate: ChatTemplate?, options: CitationRunOptions,
        judge: CitationJudge = ExactMatchJudge()
    ) {
        self.model = model
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.options = options
        self.judge = judge
    }

    var chatWrapper: ((String) throws -> String)? {
        guard options.chat, let t = chatTemplate else { return nil }
        return { try t.apply(messages: [.user($0)], addGenerationPrompt: true) }
    }

    func encode(_ text: String) -> [Int32] {
        if options.chat, let t = chatTemplate { return tokenizer.encodeChat(text, template: t) }
        return tokenizer.encode(text, addSpecial: true, parseSpecial: false)
    }

    func mode(for item: CitationItem) -> CitationRunOptions.Mode {
        switch options.mode {
        case .auto: return item.answer == nil ? .generate : .teacher
        case .teacher, .generate: return options.mode
        }
    }

    /// Renders and tokenizes one item (after padding).
    func prepare(_ item: CitationItem, originalPassages: Int) throws -> CitationPrepared {
        let m = mode(for: item)
        if m == .teacher && item.answer == nil {
            throw CitationError.invalid(
                "item '\(item.id)' (line \(item.line)) has no 'answer' to teacher-force "
                    + "(use --mode auto or --mode generate)")
        }
        let (prompt, ranges) = try CitationPrompt.render(
            passages: item.passages, question: item.question,
            instruction: options.instruction, chat: chatWrapper)
        let answer = m == .teacher ? item.answer! : ""
        let text = prompt + answer
        let ids = encode(text)
        let textBytes = Array(text.utf8)
        guard let off = TokenAlignment.offsets(pieces: ids.map { tokenizer.pieceBytes($0) }, text: textBytes) else {
            throw CitationError.tokenAlignment(id: item.id, detail: "the tokens do not spell the prompt text")
        }
        var spans: [Range<Int>] = []
        for (k, r) in ranges.enumerated() {
            guard let t = TokenAlignment.tokens(covering: r, starts: off.starts, ends: off.ends) else {
                throw CitationError.tokenAlignment(id: item.id, detail: "passage [\(k + 1)] has no tokens")
            }
            if let last = spans.last, last.upperBound > t.lowerBound {
                throw CitationError.tokenAlignment(id: item.id, detail: "passages [\(k)] and [\(k + 1)] share a token")
            }
            spans.append(t)
        }
        let answerStart = prompt.utf8.count
        var promptTokens = ids.count
        var statements: [(CitedStatement, Range<Int>)] = []
        if m == .teacher {
            promptTokens = off.starts.firstIndex { $0 >= answerStart } ?? ids.count
            for s in CitationParser.statements(answer) {
                let r = (s.bytes.lowerBound + answerStart)..<(s.bytes.upperBound + answerStart)
                guard let t = TokenAlignment.tokens(covering: r, starts: off.starts, ends: off.ends) else {
                    throw CitationError.tokenAlignment(id: item.id, detail: "statement \"\(s.text)\" has no tokens")
                }
                statements.append((s, t))
            }
        }
        return CitationPrepared(
            item: item, mode: m, originalPassages: originalPassages, ids: ids,
            promptTokens: promptTokens, passageSpans: spans, statements: statements)
    }

    /// Pads `item` with passages of `pool` until its prompt has at least `target` tokens.
    func padded(_ item: CitationItem, pool: [String], target: Int, index: Int) throws -> CitationPrepared {
        var base = try prepare(item, originalPassages: item.passages.count)
        guard base.promptTokens < target else { return base }
        var g = SeededGenerator(seed: options.seed &+ 0x9E37_79B9 &* UInt64(index + 1))
        let cands = SeededRandom.shuffled(CitationPadding.candidates(for: item, pool: pool), using: &g)
        var used = 0, estimate = base.promptTokens
        func tokens(_ p: String) -> Int { tokenizer.encode(p, addSpecial: false, parseSpecial: false).count + 4 }
        while true {
            while estimate < target {
                guard used < cands.count else {
                    throw CitationError.invalid(
                        "item '\(item.id)': not enough distinct passages in the probe file to pad "
                            + "to \(target) tokens (reached \(estimate))")
                }
                let c = tokens(cands[used])
                estimate += c
                used += 1
            }
            let p = CitationPadding.insert(Array(cands[0..<used]), into: item, seed: options.seed &+ UInt64(index))
            base = try prepare(p, originalPassages: item.passages.count)
            if base.promptTokens >= target { return base }
            estimate = base.promptTokens
        }
    }

    /// Every item rendered, padded and tokenized, in order (padding is seeded by the item's index,
    /// so a shard prepares its items exactly as a whole run does).
    func prepareAll(_ items: [CitationItem], pool: [String]?) throws -> [CitationPrepared] {
        let padPool = pool ?? items.flatMap(\.passages)
        return try items.enumerated().map { i, item in
            if let t = options.padTo { return try padded(item, pool: padPool, target: t, index: i) }
            return try prepare(item, originalPassages: item.passages.count)
        }
    }

    /// Token cost of every item (`ShardPlan.trialCost`: prompt tokens, and --max-new-tokens
    /// decode steps for generated answers), for `cite --shard`.
    public func tokenCosts(_ items: [CitationItem], pool: [String]? = nil) throws -> [Int] {
        try prepareAll(items, pool: pool).map {
            ShardPlan.trialCost(
                promptTokens: $0.ids.count, decodeSteps: $0.mode == .generate ? options.maxNewTokens : 0)
        }
    }

    /// Runs every item (or, with `only`, those item indices, in that order: a shard, or what a
    /// resumed run has left); `record(result)` then `progress(done, total, id)` after each.
    public func run(
        _ items: [CitationItem], pool: [String]? = nil, only: [Int]? = nil,
        record: (CitationItemResult) throws -> Void = { _ in },
        progress: (Int, Int, String) -> Void = { _, _, _ in }
    ) throws -> [CitationItemResult] {
        let c = model.config
        var prepared = try prepareAll(items, pool: pool)
        let need = prepared.map { $0.ids.count + ($0.mode == .generate ? options.maxNewTokens : 0) }.max() ?? 1
        let limit = options.maxContext ?? model.defaultMaxContext
        if let bad = prepared.first(where: { $0.ids.count + ($0.mode == .generate ? options.maxNewTokens : 0) > limit })
        {
            throw CitationError.tooLong(
                id: bad.item.id, tokens: bad.ids.count + (bad.mode == .generate ? options.maxNewTokens : 0),
                maxContext: limit)
        }
        // Sized for every item, so a shard's session is the whole run's; B sessions for batched
        // generation.
        let batch = max(options.decodeBatch, 1)
        let sessions = (0..<batch).map { _ in InferenceSession(model: model, maxContext: max(need, 1)) }
        let session = sessions[0]
        let stepper = DecodeBatch(model: model, maxBatch: batch)
        if let only { prepared = only.map { prepared[$0] } }
        var out: [CitationItemResult] = []
        var i = 0
        while i < prepared.count {
            let start = Date()
            // Teacher-forced items run alone; up to B consecutive generated items run together.
            var results: [CitationItemResult]
            if prepared[i].mode == .teacher {
                results = [try runTeacher(prepared[i], session: session, layers: c.nLayers, heads: c.nHeads)]
            } else {
                var group = [prepared[i]]
                while group.count < batch && i + group.count < prepared.count
                    && prepared[i + group.count].mode == .generate
                {
                    group.append(prepared[i + group.count])
                }
                results = try runGenerate(
                    group, sessions: Array(sessions.prefix(group.count)), stepper: stepper, layers: c.nLayers,
                    heads: c.nHeads)
            }
            // Each item's `seconds` is its share of the group's wall time.
            let seconds = Date().timeIntervalSince(start) / Double(results.count)
            for var res in results {
                res.seconds = seconds
                out.append(res)
                try record(res)
                i += 1
                progress(i, prepared.count, res.item.id)
            }
        }
        return out
    }

    func spanRequest(_ p: CitationPrepared, queries: QuerySelection) -> CaptureRequest {
        CaptureRequest(
            hooks: ["attn.hook_pattern"], queries: queries,
            form: .spanMass(
                p.passageSpans.enumerated().map {
                    TokenSpan(
                        "p\($0.offset + 1)", $0.element.lowerBound,
                        $0.element.upperBound)
                }))
    }

    /// Mean span mass over `queries`, [layers, heads, S].
    static func meanMass(_ store: CaptureStore, queries: [Int], layers: Int, heads: Int, spans s: Int) -> [Float] {
        var out = [Double](repeating: 0, count: layers * heads * s)
        for l in 0..<layers {
            guard let t = store[HookPoint(.pattern, layer: l)] else { continue }
            let qIndex = Dictionary(uniqueKeysWithValues: t.layout.queries.enumerated().map { ($1, $0) })
            let nq = t.shape[1], hs = t.layout.heads ?? Array(0..<heads)
            for (hi, h) in hs.enumerated() {
                let dst = (l * heads + h) * s
                for q in queries {
                    guard let qi = qIndex[q] else { continue }
                    let base = (hi * nq + qi) * s
                    for j in 0..<s { out[dst + j] += Double(t.values[base + j]) }
                }
            }
        }
        let n = Double(max(queries.count, 1))
        return out.map { Float($0 / n) }
    }

    func observation(_ p: CitationPrepared, citations: [Int], mass: [Float]) -> StatementObservation? {
        var seen = Set<Int>()
        let valid = citations.filter { $0 >= 1 && $0 <= p.item.passages.count }.map { $0 - 1 }.filter {
            seen.insert($0).inserted
        }
        guard !valid.isEmpty else { return nil }
        return StatementObservation(
            passages: p.item.passages.count, cited: valid, trueSource: p.item.source, mass: mass,
            spanTokens: p.passageSpans.map(\.count))
    }

    func runTeacher(
        _ p: CitationPrepared, session: InferenceSession, layers: Int, heads: Int
    ) throws -> CitationItemResult {
        let perStatement = p.statements.map { (_, t) in
            Array((t.lowerBound - 1)..<(t.upperBound - 1)).filter { $0 >= 0 }
        }
        let cited = p.statements.indices.filter { !p.statements[$0].0.citations.isEmpty }
        let queries = Array(Set(cited.flatMap { perStatement[$0] })).sorted()
        let store = CaptureStore()
        if !queries.isEmpty {
            try session.trace(prompt: p.ids, requests: [spanRequest(p, queries: .positions(queries))], into: store)
        }
        var statements: [CitationStatementResult] = []
        for (k, (s, t)) in p.statements.enumerated() {
            var obs: StatementObservation?
            if !s.citations.isEmpty {
                obs = observation(
                    p, citations: s.citations,
                    mass: Self.meanMass(
                        store, queries: perStatement[k], layers: layers, heads: heads,
                        spans: p.passageSpans.count))
            }
            statements.append(
                CitationStatementResult(
                    text: s.text, citations: s.citations, tokens: t,
                    queries: perStatement[k], observation: obs))
        }
        let answer = p.item.answer ?? ""
        let quality = CitationMetrics.citationQuality(
            CitationResponse(
                passages: p.item.passages,
                statements: p.statements.map { .init(text: $0.0.text, citations: $0.0.citations) },
                gold: p.item.gold), judge: judge)
        return CitationItemResult(
            item: p.item, mode: .teacher, originalPassages: p.originalPassages,
            paddedPassages: p.item.passages.count - p.originalPassages, promptTokens: p.promptTokens,
            answerTokens: p.ids.count - p.promptTokens, response: answer, passageSpans: p.passageSpans,
            statements: statements, quality: quality, answerCorrect: nil, seconds: 0)
    }

    /// Generates the answers of `group` (one session each), their decode steps batched
    /// (`DecodeBatch.trace`, bit for bit each session's own `trace`).
    func runGenerate(
        _ group: [CitationPrepared], sessions: [InferenceSession], stepper: DecodeBatch, layers: Int, heads: Int
    ) throws -> [CitationItemResult] {
        let stores = group.map { _ in CaptureStore() }
        let plans = try group.map { p in
            try TracePlan(
                config: model.config, requests: [spanRequest(p, queries: QuerySelection([.last(1), .decode]))],
                promptLength: p.ids.count, decodeSteps: options.maxNewTokens)
        }
        let traced = try stepper.trace(
            sessions, prompts: group.map(\.ids), plans: plans, sinks: stores, stopTokens: tokenizer.endOfGeneration)
        return try zip(group, zip(traced, stores)).map { p, rs in
            try finishGenerate(p, result: rs.0, store: rs.1, layers: layers, heads: heads)
        }
    }

    /// The item's result from its trace and the attention mass it captured.
    func finishGenerate(
        _ p: CitationPrepared, result: TraceResult, store: CaptureStore, layers: Int, heads: Int
    ) throws -> CitationItemResult {
        let P = p.ids.count
        var gen = Array(result.tokens[P...])
        while let last = gen.last, tokenizer.isEndOfGeneration(last) { gen.removeLast() }
        // Text and token offsets in the decoded string's UTF-8 (invalid sequences become U+FFFD).
        var raw: [UInt8] = [], rawStarts: [Int] = [], rawEnds: [Int] = []
        for t in gen {
            rawStarts.append(raw.count)
            raw += tokenizer.pieceBytes(t, special: false)
            rawEnds.append(raw.count)
        }
        let text = String(decoding: raw, as: UTF8.self)
        func fix(_ b: Int) -> Int { String(decoding: raw[0..<b], as: UTF8.self).utf8.count }
        let exact = text.utf8.count == raw.count
        let starts = exact ? rawStarts : rawStarts.map(fix), ends = exact ? rawEnds : rawEnds.map(fix)
        var statements: [CitationStatementResult] = []
        let parsed = CitationParser.statements(text)
        for s in parsed {
            guard let t = TokenAlignment.tokens(covering: s.bytes, starts: starts, ends: ends) else { continue }
            let tokens = (P + t.lowerBound)..<(P + t.upperBound)
            let queries = Array((tokens.lowerBound - 1)..<(tokens.upperBound - 1))
            var obs: StatementObservation?
            if !s.citations.isEmpty {
                obs = observation(
                    p, citations: s.citations,
                    mass: Self.meanMass(
                        store, queries: queries, layers: layers, heads: heads,
                        spans: p.passageSpans.count))
            }
            statements.append(
                CitationStatementResult(
                    text: s.text, citations: s.citations, tokens: tokens, queries: queries,
                    observation: obs))
        }
        let quality = CitationMetrics.citationQuality(
            CitationResponse(
                passages: p.item.passages, statements: parsed.map { .init(text: $0.text, citations: $0.citations) },
                gold: p.item.gold), judge: judge)
        let correct = p.item.gold.map { CitationText.normalize(text).contains(CitationText.normalize($0)) }
        return CitationItemResult(
            item: p.item, mode: .generate, originalPassages: p.originalPassages,
            paddedPassages: p.item.passages.count - p.originalPassages, promptTokens: P,
            answerTokens: gen.count, response: text, passageSpans: p.passageSpans,
            statements: statements, quality: quality, answerCorrect: correct, seconds: 0)
    }
}

extension CitationItemResult {
    /// Observations of every cited statement, in order.
    public var observations: [StatementObservation] { statements.compactMap(\.observation) }
}
