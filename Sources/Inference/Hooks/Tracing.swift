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
    public func trace(prompt: [Int32], requests: [CaptureRequest], into sink: CaptureSink, generate: Int = 0,
                      sampler: Sampler = Sampler(), stopTokens: Set<Int32> = []) throws -> TraceResult {
        guard !prompt.isEmpty else { throw ModelError.emptyInput }
        let plan = try TracePlan(config: config, requests: requests, promptLength: prompt.count, decodeSteps: generate)
        return try trace(prompt: prompt, plan: plan, into: sink, sampler: sampler, stopTokens: stopTokens)
    }

    /// `trace` with a plan resolved beforehand (`plan.decodeSteps` decode steps at most).
    @discardableResult
    public func trace(prompt: [Int32], plan: TracePlan, into sink: CaptureSink, sampler: Sampler = Sampler(),
                      stopTokens: Set<Int32> = []) throws -> TraceResult {
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
        return TraceResult(tokens: out, promptLength: prompt.count, lastLogits: logits, prefillSeconds: prefillSeconds,
                           decodeSeconds: Date().timeIntervalSince(start))
    }

    /// Convenience: `trace` into a new in-memory `CaptureStore`.
    public func trace(prompt: [Int32], requests: [CaptureRequest], generate: Int = 0, sampler: Sampler = Sampler(),
                      stopTokens: Set<Int32> = []) throws -> (CaptureStore, TraceResult) {
        let store = CaptureStore()
        let r = try trace(prompt: prompt, requests: requests, into: store, generate: generate, sampler: sampler,
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
            let plan = try TracePlan(config: config, requests: [CaptureRequest(hooks: ["attn.hook_z"], layers: layers.map { IndexSelection($0) })],
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
        for l in layers where sums[l] == nil { sums[l] = [Double](repeating: 0, count: width); counts[l] = 0 }
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
