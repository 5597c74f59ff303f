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

/// One trial for `NeedleDecoder.runTrials`: the prompt and the needle span of the copy rule, and
/// optionally the head interventions to run it under and whether its prefill starts from an empty
/// cache.
public struct NeedleTrialInput: Sendable {
    public var prompt: [Int32]
    public var span: Range<Int>?
    /// Set on the trial's session before its prefill (nil: the primary session's).
    public var interventions: [HeadIntervention]?
    /// Prefill from position 0, as after `invalidateCache()` (e.g. prefill-phase interventions
    /// changed since the previous trial).
    public var freshPrefill: Bool
    public init(
        prompt: [Int32], span: Range<Int>?, interventions: [HeadIntervention]? = nil, freshPrefill: Bool = false
    ) {
        self.prompt = prompt
        self.span = span
        self.interventions = interventions
        self.freshPrefill = freshPrefill
    }
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
///
/// Batched decoding (`decodeBatch` B > 1, `runTrials`): up to B consecutive trials are prefilled
/// into B sessions (slots), then decoded together, one `DecodeBatch` step (matrix-matrix
/// products over the B new tokens) per generated token; a trial that stops leaves the batch and
/// the others go on. Every trial gets bit for bit the tokens, stop and head scores of decoding it
/// alone: the batched step equals B single steps, and prefix reuse copies the shared prefix's
/// K/V rows from the slot that ran the previous trial, so each trial starts from exactly the
/// cache a one-session run would have reused (a batch ends before a trial that would reuse rows
/// its predecessor has not decoded yet). The slots copy the primary session's interventions,
/// head means, patches and KV policy at every call; a trial's own `interventions` then apply to
/// its slot, so one batch can decode several ablation conditions.
public final class NeedleDecoder {
    public let session: InferenceSession
    public let tokenizer: Tokenizer
    public var reusePrefix: Bool
    /// Trials decoded together (1: one at a time, the original behaviour).
    public let decodeBatch: Int
    /// The sessions trials run in: `session` first, then B - 1 more with the same shape.
    public let sessions: [InferenceSession]
    /// Line-break tokens, by id.
    private let newlineTable: [Bool]
    /// Wall time spent prefilling (and copying prefixes) and decoding, over every call.
    public private(set) var prefillSeconds = 0.0
    public private(set) var decodeSeconds = 0.0
    /// The slot that ran the most recent trial (the source of the next trial's prefix).
    private var lastSlot = 0
    private lazy var stepper = DecodeBatch(model: session.model, maxBatch: decodeBatch)

    public init(session: InferenceSession, tokenizer: Tokenizer, reusePrefix: Bool = true, decodeBatch: Int = 1) {
        precondition(decodeBatch >= 1)
        self.session = session
        self.tokenizer = tokenizer
        self.reusePrefix = reusePrefix
        self.decodeBatch = decodeBatch
        sessions =
            [session]
            + (1..<decodeBatch).map { _ in
                InferenceSession(
                    model: session.model, maxContext: session.maxContext, maxChunk: session.maxChunk,
                    kv: session.kvStorage)
            }
        newlineTable = NeedleStopRule.newlineTable(tokenizer: tokenizer, vocabSize: session.config.vocabSize)
    }

    /// Whether the text of `id` contains a line feed (special tokens count as no text).
    public func isNewline(_ id: Int32) -> Bool { id >= 0 && Int(id) < newlineTable.count && newlineTable[Int(id)] }

    /// Forget the cached prefix: the next prompt is prefilled from position 0.
    public func invalidateCache() {
        for s in sessions { s.reset() }
    }

    /// Prefills `prompt[:-1]` (reusing a cached prefix when allowed) and returns how many
    /// tokens were run.
    @discardableResult
    public func prefillAllButLast(_ prompt: [Int32]) throws -> Int {
        try prefill(prompt, slot: 0, source: 0)
    }

    /// Prefills `prompt[:-1]` into slot `slot`, reusing the longest common prefix with the tokens
    /// of slot `source` (its K/V rows copied when it is another slot); returns the tokens run.
    private func prefill(_ prompt: [Int32], slot: Int, source: Int, fresh: Bool = false) throws -> Int {
        precondition(prompt.count >= 1, "empty prompt")
        let target = sessions[slot], from = sessions[source]
        let head = prompt.dropLast()
        let keep = reusePrefix && !fresh ? Self.commonPrefix(from.tokens, head) : 0
        if target === from {
            if keep < target.position { target.truncate(to: keep) }
        } else {
            target.copyPrefix(from: from, count: keep)
        }
        let rest = Array(head.dropFirst(keep))
        if !rest.isEmpty { try target.prefill(tokens: rest, logits: .none) { _, _ in } }
        return rest.count
    }

    private static func commonPrefix(_ a: [Int32], _ b: ArraySlice<Int32>) -> Int {
        let limit = min(a.count, b.count)
        var k = 0
        while k < limit && a[k] == b[b.startIndex + k] { k += 1 }
        return k
    }

    /// One trial: prefill, then greedy decoding. `span` and `scoreHeads` select the copy rule
    /// (no span: nothing can score, and no attention is captured). `onlyHeads` restricts the
    /// capture and the rule to those heads (the others keep score 0); nil: every head.
    public func run(
        prompt: [Int32], maxNewTokens: Int, span: Range<Int>?, scoreHeads: Bool,
        onlyHeads: [HeadIndex]? = nil, onStep: ((Int) -> Void)? = nil
    ) throws -> NeedleDecodeResult {
        var result: NeedleDecodeResult?
        try runTrials(
            [NeedleTrialInput(prompt: prompt, span: span)], maxNewTokens: maxNewTokens, scoreHeads: scoreHeads,
            onlyHeads: onlyHeads, onStep: onStep
        ) { _, r in result = r }
        return result!
    }

    /// Runs `trials` in order, `decodeBatch` at a time (see the class comment), and hands each
    /// result to `onResult(index in trials, result)` in the order of `trials`, as soon as it and
    /// every trial before it are done. `onStep(step)` is called after each decode step of a
    /// batch.
    public func runTrials(
        _ trials: [NeedleTrialInput], maxNewTokens: Int, scoreHeads: Bool, onlyHeads: [HeadIndex]? = nil,
        onStep: ((Int) -> Void)? = nil, onResult: (Int, NeedleDecodeResult) throws -> Void
    ) throws {
        precondition(maxNewTokens >= 1)
        let c = session.config
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
        // hook_pattern of the fed token (the step's query) for the observed heads only.
        let requests =
            onlyHeads == nil
            ? [CaptureRequest(hooks: [HookKind.pattern.rawValue], queries: .decode)]
            : observed.map {
                CaptureRequest(
                    hooks: [HookKind.pattern.name(layer: $0.layer)], heads: IndexSelection($0.heads),
                    queries: .decode)
            }
        syncSlots()
        var next = 0
        while next < trials.count {
            // The batch: up to B trials, ending before one that would reuse rows its predecessor
            // (in this batch, not decoded yet) gets only from decoding.
            var batch = [next]
            while batch.count < decodeBatch && next + batch.count < trials.count {
                let j = next + batch.count
                if reusePrefix && !trials[j].freshPrefill && Self.extends(trials[j - 1].prompt, trials[j].prompt) {
                    break
                }
                batch.append(j)
            }
            var live: [LiveTrial] = []
            var clock = Date()
            for (k, i) in batch.enumerated() {
                if let iv = trials[i].interventions, sessions[k].interventions != iv { sessions[k].interventions = iv }
                let prefilled = try prefill(
                    trials[i].prompt, slot: k, source: k == 0 ? lastSlot : k - 1, fresh: trials[i].freshPrefill)
                live.append(
                    LiveTrial(
                        index: i, slot: k, input: trials[i], prefilled: prefilled, config: c,
                        scoreHeads: scoreHeads, capture: scoreHeads && trials[i].span != nil && !observed.isEmpty))
            }
            lastSlot = batch.count - 1
            prefillSeconds += Date().timeIntervalSince(clock)
            clock = Date()
            try decode(&live, maxNewTokens: maxNewTokens, observed: observed, requests: requests, onStep: onStep)
            decodeSeconds += Date().timeIntervalSince(clock)
            for t in live {
                let text = tokenizer.decode(t.generated, skipSpecial: true)
                try onResult(
                    t.index,
                    NeedleDecodeResult(
                        generated: t.generated, response: PythonStrip.strip(text), stop: t.stop ?? .maxTokens,
                        headScores: t.scores, prefilledTokens: t.prefilled))
            }
            next += batch.count
        }
    }

    /// Whether `next[:-1]` extends `prev[:-1]` (a proper extension): a one-session run would then
    /// reuse rows that `prev`'s decoding wrote.
    private static func extends(_ prev: [Int32], _ next: [Int32]) -> Bool {
        let a = prev.dropLast(), b = next.dropLast()
        return b.count > a.count && b.prefix(a.count).elementsEqual(a)
    }

    /// The slots take the primary session's interventions, means, patches and KV policy.
    private func syncSlots() {
        for s in sessions.dropFirst() {
            s.interventions = session.interventions
            s.headMeans = session.headMeans
            s.patches = session.patches
            s.kvPolicy = session.kvPolicy
        }
    }

    /// Greedy decoding of the batch's trials together until each stops.
    private func decode(
        _ live: inout [LiveTrial], maxNewTokens: Int, observed: [(layer: Int, heads: [Int])],
        requests: [CaptureRequest], onStep: ((Int) -> Void)?
    ) throws {
        let c = session.config
        for step in 0..<maxNewTokens {
            var active: [Int] = []
            for k in live.indices where live[k].stop == nil {
                let s = sessions[live[k].slot]
                if s.position < s.maxContext {
                    active.append(k)
                } else {
                    live[k].stop = .contextFull
                }
            }
            if active.isEmpty { break }
            let stepSessions = active.map { sessions[live[$0].slot] }
            let hooks: [HookSet?] = try active.map { k in
                guard live[k].capture else { return nil }
                let s = sessions[live[k].slot]
                let plan = try TracePlan(config: c, requests: requests, promptLength: s.position, decodeSteps: 1)
                return try HookSet(plan: plan, sink: live[k].sink)
            }
            let positions = stepSessions.map(\.position)
            let logits = try stepper.step(stepSessions, tokens: active.map { live[$0].fed }, hooks: hooks)
            for (a, k) in active.enumerated() {
                let next = Int32(Sampler.argmax(logits[a]))
                live[k].generated.append(next)
                if live[k].capture, let span = live[k].input.span {
                    for (l, heads) in observed {
                        for h in heads {
                            let i = l * c.nHeads + h
                            guard live[k].sink.top[i] >= 0 else {
                                throw RetrievalHeadsError.missingAttention(layer: l, head: h, query: positions[a])
                            }
                            live[k].top[i] = live[k].sink.top[i]
                        }
                    }
                    RetrievalCopyRule.accumulate(
                        scores: &live[k].scores!, top: live[k].top, generated: next, prompt: live[k].input.prompt,
                        span: span)
                }
                if isNewline(next) {
                    live[k].stop = .newline
                } else if tokenizer.isEndOfGeneration(next) {
                    live[k].stop = .endOfGeneration
                } else {
                    live[k].fed = next
                }
            }
            onStep?(step)
        }
    }
}

/// The decoding state of one trial of a batch (`NeedleDecoder.runTrials`).
private struct LiveTrial {
    let index: Int
    let slot: Int
    let input: NeedleTrialInput
    let prefilled: Int
    let capture: Bool
    let sink: TopKeySink
    var fed: Int32
    var generated: [Int32] = []
    /// nil while decoding; a trial that never stops ends with `.maxTokens`.
    var stop: DecodeStop?
    var scores: [Double]?
    var top: [Int]

    init(
        index: Int, slot: Int, input: NeedleTrialInput, prefilled: Int, config c: ModelConfig, scoreHeads: Bool,
        capture: Bool
    ) {
        self.index = index
        self.slot = slot
        self.input = input
        self.prefilled = prefilled
        self.capture = capture
        sink = TopKeySink(config: c)
        fed = input.prompt[input.prompt.count - 1]
        scores = scoreHeads ? [Double](repeating: 0, count: c.nLayers * c.nHeads) : nil
        top = [Int](repeating: -1, count: c.nLayers * c.nHeads)
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
