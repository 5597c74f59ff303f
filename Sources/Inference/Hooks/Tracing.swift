import Foundation

/// What `InferenceSession.trace` ran.
public struct TraceResult: Sendable {
    /// Prompt followed by the generated tokens (every one of them went through the model).
    public var tokens: [Int32]
    public var promptLength: Int
    /// Generated tokens (tokens.count - promptLength).
    public var generated: Int { tokens.count - promptLength }
    /// Logits after the last token processed.
    public var lastLogits: [Float]
    /// Seconds spent in the prefill and in the decode steps.
    public var prefillSeconds: Double
    public var decodeSeconds: Double
}

extension InferenceSession {
    /// Runs `prompt` from position 0 (the session is reset), then up to `generate` decode steps,
    /// capturing what `requests` ask for into `sink`, and returns what ran.
    ///
    /// Each generated token is fed back through the model (so its activations are captured), and
    /// generation stops after a token in `stopTokens` (which is still fed). `sampler` picks tokens
    /// (greedy by default). Interventions set on the session apply as usual.
    ///
    ///     let store = CaptureStore()
    ///     try session.trace(prompt: ids, requests: [CaptureRequest(hooks: ["blocks.*.attn.hook_pattern"],
    ///                                                                queries: .last(8))], into: store)
    ///     let row = store["blocks.3.attn.hook_pattern"]!.attentionRow(head: 2, query: ids.count - 1)
    @discardableResult
    public func trace(
        prompt: [Int32], requests: [CaptureRequest], into sink: CaptureSink, generate: Int = 0,
        sampler: Sampler = Sampler(), stopTokens: Set<Int32> = []
    ) throws -> TraceResult {
        guard !prompt.isEmpty else { throw ModelError.emptyInput }
        let plan = try TracePlan(config: config, requests: requests, promptLength: prompt.count, decodeSteps: generate)
        return try trace(prompt: prompt, plan: plan, into: sink, sampler: sampler, stopTokens: stopTokens)
    }

    /// `trace` with a plan resolved beforehand (`plan.decodeSteps` decode steps at most).
    @discardableResult
    public func trace(
        prompt: [Int32], plan: TracePlan, into sink: CaptureSink, sampler: Sampler = Sampler(),
        stopTokens: Set<Int32> = []
    ) throws -> TraceResult {
        precondition(plan.promptLength == prompt.count, "the plan is for a prompt of \(plan.promptLength) tokens")
        precondition(plan.config == config, "the plan is for another model")
        guard plan.sequenceLength <= maxContext else {
            throw ModelError.contextFull(position: 0, adding: plan.sequenceLength, maxContext: maxContext)
        }
        reset()
        let hookSet = try HookSet(plan: plan, sink: sink)
        let saved = hooks
        hooks = hookSet
        defer { hooks = saved }
        var sampler = sampler
        var start = Date()
        var logits = try prefill(tokens: prompt)
        let prefillSeconds = Date().timeIntervalSince(start)
        start = Date()
        var out = prompt
        for _ in 0..<plan.decodeSteps {
            let next = sampler.sample(logits)
            out.append(next)
            logits = try step(token: next)
            if stopTokens.contains(next) { break }
        }
        try hookSet.finish()
        return TraceResult(
            tokens: out, promptLength: prompt.count, lastLogits: logits, prefillSeconds: prefillSeconds,
            decodeSeconds: Date().timeIntervalSince(start))
    }

    // MARK: - Captures of one pass, without a reset

    /// Decodes one token capturing what `requests` ask for into `sink`, for this step only. Unlike
    /// `trace`, the session is not reset: the step runs at `position` after the tokens already
    /// cached. Queries resolve as in a trace whose prompt is those `position` tokens followed by
    /// one decode step, so `.decode` (or `.position(position)`) selects the step; a capture of an
    /// earlier position is `HookError.queryAlreadyRun`. Attention rows span keys 0...position.
    /// Layers whose attention is observed run the materializing attention path (as in `trace`),
    /// which rounds slightly differently from the blocked kernels of an unobserved pass.
    ///
    ///     let store = CaptureStore()
    ///     let want = CaptureRequest(hooks: ["blocks.5.attn.hook_pattern"], heads: [2], queries: .decode)
    ///     let logits = try session.step(token: t, capturing: [want], into: store)
    public func step(token: Int32, capturing requests: [CaptureRequest], into sink: CaptureSink) throws -> [Float] {
        let plan = try TracePlan(config: config, requests: requests, promptLength: position, decodeSteps: 1)
        return try step(token: token, hooks: HookSet(plan: plan, sink: sink))
    }

    /// Prefills `tokens` capturing what `requests` ask for into `sink`, for this call only (no reset,
    /// unlike `trace`). Queries resolve as in a trace whose prompt is the cached tokens followed by
    /// `tokens` (absolute positions; `.last(n)` = the last n of `tokens`); only positions of
    /// `tokens` can be captured (`HookError.queryAlreadyRun` otherwise). `body` as in
    /// `prefill(tokens:logits:_:)`.
    public func prefill(
        tokens: [Int32], logits request: LogitsRequest = .none, capturing requests: [CaptureRequest],
        into sink: CaptureSink, _ body: (Int, UnsafeBufferPointer<Float>) throws -> Void = { _, _ in }
    )
        throws
    {
        guard !tokens.isEmpty else { throw ModelError.emptyInput }
        let plan = try TracePlan(config: config, requests: requests, promptLength: position + tokens.count)
        try prefill(tokens: tokens, logits: request, hooks: HookSet(plan: plan, sink: sink), body)
    }

    /// Decodes one token with `hookSet` attached for this step only, then finishes it (see
    /// `step(token:capturing:into:)`). Its plan's positions are absolute.
    public func step(token: Int32, hooks hookSet: HookSet) throws -> [Float] {
        try attaching(hookSet, passStart: position) { try step(token: token) }
    }

    /// Prefills `tokens` with `hookSet` attached for this call (all its chunks) only, then
    /// finishes it (see `prefill(tokens:logits:capturing:into:_:)`).
    public func prefill(
        tokens: [Int32], logits request: LogitsRequest, hooks hookSet: HookSet,
        _ body: (Int, UnsafeBufferPointer<Float>) throws -> Void
    ) throws {
        try attaching(hookSet, passStart: position) { try prefill(tokens: tokens, logits: request, body) }
    }

    /// Runs `body` with `hookSet` as the session's hooks (restoring the previous ones after), then
    /// finishes it. Every capture must ask for positions at or after `passStart` only.
    private func attaching<R>(_ hookSet: HookSet, passStart p: Int, _ body: () throws -> R) throws -> R {
        precondition(hookSet.plan.config == config, "the hook set is for another model")
        precondition(!hookSet.isFinished, "the hook set has finished (a HookSet serves one pass)")
        if let early = hookSet.plan.captures.compactMap({ $0.queries.first }).filter({ $0 < p }).min() {
            throw HookError.queryAlreadyRun(early, position: p)
        }
        let saved = hooks
        hooks = hookSet
        defer { hooks = saved }
        let result = try body()
        try hookSet.finish()
        return result
    }

    /// Convenience: `trace` into a new in-memory `CaptureStore`.
    public func trace(
        prompt: [Int32], requests: [CaptureRequest], generate: Int = 0, sampler: Sampler = Sampler(),
        stopTokens: Set<Int32> = []
    ) throws -> (CaptureStore, TraceResult) {
        let store = CaptureStore()
        let r = try trace(
            prompt: prompt, requests: requests, into: store, generate: generate, sampler: sampler,
            stopTokens: stopTokens)
        return (store, r)
    }
}

extension Model {
    /// Mean output z of every head over every position of `sequences` (reference runs for
    /// `.mean` ablation): layer -> [H * dh]. Layers default to all. Runs with the interventions
    /// and captures of no session (a fresh one).
    public func meanHeadOutputs(_ sequences: [[Int32]], layers: [Int]? = nil) throws -> [Int: [Float]] {
        let longest = sequences.map(\.count).max() ?? 0
        guard longest > 0 else { throw ModelError.emptyInput }
        let session = InferenceSession(model: self, maxContext: longest)
        let sink = MeanSink(width: config.qWidth)
        for seq in sequences where !seq.isEmpty {
            let plan = try TracePlan(
                config: config,
                requests: [CaptureRequest(hooks: ["attn.hook_z"], layers: layers.map { IndexSelection($0) })],
                promptLength: seq.count)
            try session.trace(prompt: seq, plan: plan, into: sink)
        }
        return sink.means()
    }
}

/// Sums `[pos, head, dh]` blocks of hook_z captures per layer.
final class MeanSink: CaptureSink {
    let width: Int
    var sums: [Int: [Double]] = [:]
    var counts: [Int: Int] = [:]
    var layers: [Int] = []

    init(width: Int) { self.width = width }

    func prepare(_ plan: TracePlan) throws {
        layers = plan.captures.map { $0.point.layer ?? -1 }
        for l in layers where sums[l] == nil {
            sums[l] = [Double](repeating: 0, count: width)
            counts[l] = 0
        }
    }

    func write(_ capture: Int, _ block: CaptureBlock) throws {
        let l = layers[capture], nh = block.count[1], dh = block.width
        precondition(nh * dh == width, "MeanSink expects every head")
        sums[l]!.withUnsafeMutableBufferPointer { s in
            for i in 0..<block.rows {
                let row = block.row(i), h = i % nh
                for j in 0..<dh { s[h * dh + j] += Double(row[j]) }
            }
        }
        counts[l]! += block.count[0]
    }

    func writeIndices(_ capture: Int, start: [Int], count: [Int], _ values: UnsafeBufferPointer<Int32>) throws {}
    func finish(positions: Int) throws {}

    func means() -> [Int: [Float]] {
        sums.mapValues { _ in [] }.reduce(into: [:]) { out, kv in
            let n = Double(max(counts[kv.key] ?? 1, 1))
            out[kv.key] = sums[kv.key]!.map { Float($0 / n) }
        }
    }
}
