import Foundation

// Batched decoding: one decode step of several sessions (independent sequences of the same model,
// each with its own KV cache and position) as one pass whose linear layers are matrix-matrix
// products over the B new tokens, so the weights are streamed once per step instead of B times.
// Everything that depends on a sequence's position or cache (RoPE, attention, the head-output
// interventions and the attention captures) runs per session on that session's own scratch, with
// the steps of BlockSteps.swift; the products go through `Kernels.linearRows`, whose every row is
// bit for bit the one-row product of a single step. So each session gets exactly (bit for bit)
// the logits, cache rows and captures that `step(token:)` / `step(token:hooks:)` would give it.

/// Work buffers of a batched decode step, for up to `maxBatch` sessions.
final class DecodeBatchScratch {
    let maxBatch: Int
    let x: FloatBuffer // [B, D]   residual streams
    let xn: FloatBuffer // [B, D]  normalized sublayer inputs
    let q: FloatBuffer // [B, H, dh]  queries (before RoPE; each session rotates its own)
    let k: FloatBuffer // [B, Hkv, dh]
    let v: FloatBuffer // [B, Hkv, dh]
    let z: FloatBuffer // [B, H, dh]  head outputs gathered from the sessions
    let attnOut: FloatBuffer // [B, D]
    let gate: FloatBuffer // [B, F]
    let up: FloatBuffer // [B, F]
    let mlpOut: FloatBuffer // [B, D]
    let logits: FloatBuffer // [B, V]

    init(config c: ModelConfig, maxBatch b: Int) {
        maxBatch = b
        x = FloatBuffer(count: b * c.dModel)
        xn = FloatBuffer(count: b * c.dModel)
        q = FloatBuffer(count: b * c.qWidth)
        k = FloatBuffer(count: b * c.kvWidth)
        v = FloatBuffer(count: b * c.kvWidth)
        z = FloatBuffer(count: b * c.qWidth)
        attnOut = FloatBuffer(count: b * c.dModel)
        gate = FloatBuffer(count: b * c.dFF)
        up = FloatBuffer(count: b * c.dFF)
        mlpOut = FloatBuffer(count: b * c.dModel)
        logits = FloatBuffer(count: b * c.vocabSize)
    }
}

/// Runs one decode step of several sessions of one model together (see the top of this file).
///
///     let stepper = DecodeBatch(model: model, maxBatch: 4)
///     let logits = try stepper.step([s0, s1, s2], tokens: [a, b, c]) // [3][V]
///
/// Sessions that the batched pass does not cover run their step one after another (same results,
/// no speed-up): families other than Llama (the batched block is the Llama block), captures of
/// hook points other than hook_pattern / hook_attn_scores (the step's hook set, or else the
/// session's own hooks), and activation patches.
public final class DecodeBatch {
    public let model: Model
    public let maxBatch: Int
    let scratch: DecodeBatchScratch

    public init(model: Model, maxBatch: Int) {
        precondition(maxBatch >= 1)
        self.model = model
        self.maxBatch = maxBatch
        scratch = DecodeBatchScratch(config: model.config, maxBatch: maxBatch)
    }

    /// Decodes `tokens[b]` in `sessions[b]` (distinct sessions of `model`), with `hooks[b]` (if
    /// any) attached for this step only, as `step(token:hooks:)` does; returns the logits [V] of
    /// every session, each bit for bit what its own `step` would return.
    public func step(
        _ sessions: [InferenceSession], tokens: [Int32], hooks: [HookSet?]? = nil
    ) throws -> [[Float]] {
        let n = sessions.count
        precondition(tokens.count == n && (hooks?.count ?? n) == n, "one token (and hook set) per session")
        precondition(n <= maxBatch, "\(n) sessions for a batch of at most \(maxBatch)")
        precondition(
            Set(sessions.map { ObjectIdentifier($0) }).count == n && sessions.allSatisfy { $0.model === model },
            "distinct sessions of this batch's model")
        let hookSets = hooks ?? [HookSet?](repeating: nil, count: n)
        if n == 1 || !batchable(sessions, hookSets) {
            return try zip(sessions.indices, sessions).map { b, s in
                if let h = hookSets[b] { return try s.step(token: tokens[b], hooks: h) }
                return try s.step(token: tokens[b])
            }
        }
        for (b, s) in sessions.enumerated() { try s.checkDecode(tokens[b]) }
        // Attach the hook sets (as `step(token:hooks:)`), run, detach, finish. A session without
        // one keeps its own hooks (e.g. a trace's).
        let saved = sessions.map(\.hooks)
        for (b, s) in sessions.enumerated() {
            if let h = hookSets[b] {
                try s.prepareAttach(h)
                s.hooks = h
            }
        }
        defer { for (b, s) in sessions.enumerated() { s.hooks = saved[b] } }
        let logits = try forward(sessions, tokens: tokens)
        for h in hookSets { try h?.finish() }
        return logits
    }

    /// Whether the batched pass covers these sessions (else they step one by one).
    func batchable(_ sessions: [InferenceSession], _ hooks: [HookSet?]) -> Bool {
        guard model.family.name == LlamaFamily.family.name else { return false }
        let allowed: Set<HookKind> = [.pattern, .attnScores]
        for (s, h) in zip(sessions, hooks) {
            if !s.patches.isEmpty { return false }
            if let h = h ?? s.hooks,
                h.plan.captures.contains(where: { $0.point.layer == nil || !allowed.contains($0.point.kind) })
            {
                return false
            }
        }
        return true
    }

    /// `InferenceSession.trace(prompt:plan:into:sampler:stopTokens:)` of several sessions (as many
    /// as `maxBatch` at most), their decode steps batched: each session is reset, prefilled with
    /// its prompt (hooks attached), then decoded greedily (`Sampler()`) up to its plan's
    /// `decodeSteps`, stopping after feeding a token of `stopTokens`; sessions that stop leave the
    /// batch. Each result (and capture) is bit for bit what the session's own `trace` gives.
    public func trace(
        _ sessions: [InferenceSession], prompts: [[Int32]], plans: [TracePlan], sinks: [CaptureSink],
        stopTokens: Set<Int32> = []
    ) throws -> [TraceResult] {
        let n = sessions.count
        precondition(prompts.count == n && plans.count == n && sinks.count == n, "one prompt, plan, sink per session")
        precondition(n <= maxBatch, "\(n) sessions for a batch of at most \(maxBatch)")
        var hookSets: [HookSet] = []
        var logits: [[Float]] = []
        var out: [[Int32]] = []
        var prefillSeconds: [Double] = []
        let saved = sessions.map(\.hooks)
        defer { for (b, s) in sessions.enumerated() { s.hooks = saved[b] } }
        for b in 0..<n {
            let s = sessions[b], plan = plans[b]
            guard !prompts[b].isEmpty else { throw ModelError.emptyInput }
            precondition(
                plan.promptLength == prompts[b].count, "the plan is for a prompt of \(plan.promptLength) tokens")
            precondition(plan.config == s.config, "the plan is for another model")
            guard plan.sequenceLength <= s.maxContext else {
                throw ModelError.contextFull(position: 0, adding: plan.sequenceLength, maxContext: s.maxContext)
            }
            s.reset()
            let h = try HookSet(plan: plan, sink: sinks[b])
            hookSets.append(h)
            s.hooks = h
            let start = Date()
            logits.append(try s.prefill(tokens: prompts[b]))
            prefillSeconds.append(Date().timeIntervalSince(start))
            out.append(prompts[b])
        }
        var decodeSeconds = [Double](repeating: 0, count: n)
        var active = (0..<n).filter { plans[$0].decodeSteps > 0 }
        var steps = [Int](repeating: 0, count: n)
        let start = Date()
        var samplers = [Sampler](repeating: Sampler(), count: n) // greedy, as `trace`'s default
        while !active.isEmpty {
            let next = active.map { samplers[$0].sample(logits[$0]) }
            for (a, b) in active.enumerated() { out[b].append(next[a]) }
            let got = try step(active.map { sessions[$0] }, tokens: next)
            var still: [Int] = []
            for (a, b) in active.enumerated() {
                logits[b] = got[a]
                steps[b] += 1
                if steps[b] < plans[b].decodeSteps && !stopTokens.contains(next[a]) {
                    still.append(b)
                } else {
                    decodeSeconds[b] = Date().timeIntervalSince(start)
                }
            }
            active = still
        }
        for h in hookSets { try h.finish() }
        return (0..<n).map { b in
            TraceResult(
                tokens: out[b], promptLength: prompts[b].count, lastLogits: logits[b],
                prefillSeconds: prefillSeconds[b], decodeSeconds: decodeSeconds[b])
        }
    }

    /// The Llama block of `llamaBlock` with the products over all sessions' rows.
    private func forward(_ sessions: [InferenceSession], tokens: [Int32]) throws -> [[Float]] {
        let c = model.config, s = scratch, w = model.weights, nb = sessions.count
        let d = c.dModel, qw = c.qWidth, kvw = c.kvWidth, f = c.dFF, vocab = c.vocabSize
        let positions = sessions.map(\.position)
        let tables = try sessions.map { try $0.currentInterventions() }
        // x [B, D] = embeddings
        for (b, tok) in tokens.enumerated() {
            w.tokenEmbedding.copyRow(Int(tok), into: s.x.pointer + b * d)
        }
        if c.embeddingScale != 1 {
            for i in 0..<(nb * d) { s.x.pointer[i] *= c.embeddingScale }
        }
        for l in 0..<c.nLayers {
            let lw = w.layers[l]
            Kernels.rmsNorm(
                s.x.pointer, rows: nb, width: d, weight: lw.attnNorm.data, eps: c.rmsNormEps,
                into: s.xn.pointer) // xn [B, D]
            Kernels.linearRows(s.xn.pointer, rows: nb, weight: lw.wq, bias: lw.bq, into: s.q.pointer) // [B, H, dh]
            Kernels.linearRows(s.xn.pointer, rows: nb, weight: lw.wk, bias: lw.bk, into: s.k.pointer) // [B, Hkv, dh]
            Kernels.linearRows(s.xn.pointer, rows: nb, weight: lw.wv, bias: lw.bv, into: s.v.pointer) // [B, Hkv, dh]
            for (b, se) in sessions.enumerated() {
                let pass = BlockPass(
                    layer: l, rows: 1, start: positions[b],
                    hooks: BlockHooks(captures: se.hooks, interventions: tables[b], layer: l, phase: .decode))
                se.scratch.q.pointer.update(from: s.q.pointer + b * qw, count: qw)
                se.newKeys(pass).update(from: s.k.pointer + b * kvw, count: kvw)
                let vRow = se.newValues(pass)
                vRow.update(from: s.v.pointer + b * kvw, count: kvw)
                se.cache.store(values: vRow, layer: l, start: positions[b], rows: 1)
                se.rotate(pass) // RoPE(q), RoPE(k) at the session's position
                se.attend(pass) // over the session's cache
                se.headOutputs(pass) // ablations of z
                (s.z.pointer + b * qw).update(from: se.scratch.z.pointer, count: qw)
                try pass.hooks?.captures?.check()
            }
            Kernels.linearRows(s.z.pointer, rows: nb, weight: lw.wo, bias: nil, into: s.attnOut.pointer) // [B, D]
            Kernels.add(s.x.pointer, s.attnOut.pointer, count: nb * d)
            Kernels.rmsNorm(
                s.x.pointer, rows: nb, width: d, weight: lw.ffnNorm.data, eps: c.rmsNormEps,
                into: s.xn.pointer) // xn [B, D]
            Kernels.linearRows(s.xn.pointer, rows: nb, weight: lw.wGate, bias: nil, into: s.gate.pointer) // [B, F]
            Kernels.linearRows(s.xn.pointer, rows: nb, weight: lw.wUp, bias: nil, into: s.up.pointer) // [B, F]
            for b in 0..<nb {
                // Row by row: the vector kernel's tail (count % 16) would differ from a step's split.
                switch c.activation {
                case .silu: Kernels.swiglu(gate: s.gate.pointer + b * f, up: s.up.pointer + b * f, count: f)
                case .geluTanh: Kernels.gegluTanh(gate: s.gate.pointer + b * f, up: s.up.pointer + b * f, count: f)
                }
            }
            Kernels.linearRows(s.gate.pointer, rows: nb, weight: lw.wDown, bias: nil, into: s.mlpOut.pointer) // [B, D]
            Kernels.add(s.x.pointer, s.mlpOut.pointer, count: nb * d)
        }
        for (b, se) in sessions.enumerated() {
            se.cache.count = positions[b] + 1
            se.tokens.append(tokens[b])
        }
        // Output head: logits [B, V] of RMSNorm(x) * output_norm.
        Kernels.rmsNorm(
            s.x.pointer, rows: nb, width: d, weight: w.outputNorm.data, eps: c.rmsNormEps, into: s.xn.pointer)
        Kernels.linearRows(s.xn.pointer, rows: nb, weight: w.output, bias: nil, into: s.logits.pointer) // [B, V]
        if c.finalLogitSoftcap != 0 {
            Kernels.softcap(s.logits.pointer, count: nb * vocab, cap: c.finalLogitSoftcap)
        }
        for (b, se) in sessions.enumerated() {
            if let hk = se.hooks {
                hk.noteProcessed(upTo: positions[b] + 1)
                try hk.check()
            }
        }
        return (0..<nb).map { b in Array(UnsafeBufferPointer(start: s.logits.pointer + b * vocab, count: vocab)) }
    }
}

extension InferenceSession {
    /// Makes this session's cache hold the first `count` positions of `source`'s (same model and
    /// KV storage): its K/V rows copied, its tokens and running means (`.mean` ablation) taken
    /// over. The next pass continues exactly as `source` truncated to `count` would.
    public func copyPrefix(from source: InferenceSession, count n: Int) {
        precondition(source !== self && source.model === model, "copyPrefix from another session of this model")
        precondition(n >= 0 && n <= source.position && n <= maxContext, "copyPrefix of \(n) positions")
        cache.copyRows(from: source.cache, count: n)
        tokens = Array(source.tokens.prefix(n))
        runningMeans = source.runningMeans
        for key in Array(runningMeans.keys) {
            if !runningMeans[key]!.truncate(to: n, dHead: config.dHead) { runningMeans[key] = nil }
        }
    }

    /// The checks of `step(token:)`: room in the cache, token in the vocabulary.
    func checkDecode(_ token: Int32) throws {
        guard position + 1 <= maxContext else {
            throw ModelError.contextFull(position: position, adding: 1, maxContext: maxContext)
        }
        guard token >= 0 && Int(token) < config.vocabSize else {
            throw ModelError.tokenOutOfRange(token, vocabSize: config.vocabSize)
        }
    }

    /// The checks `step(token:hooks:)` makes before attaching `hookSet`.
    func prepareAttach(_ hookSet: HookSet) throws {
        precondition(hookSet.plan.config == config, "the hook set is for another model")
        precondition(!hookSet.isFinished, "the hook set has finished (a HookSet serves one pass)")
        if let early = hookSet.plan.captures.compactMap({ $0.queries.first }).filter({ $0 < position }).min() {
            throw HookError.queryAlreadyRun(early, position: position)
        }
    }
}
