import Foundation
import Inference
import TraceStore

// The head-aware KV-cache experiment (DuoAttention / RazorAttention style, issue 16): keep the full
// KV cache on N heads and give every other head a cheap policy (a window of W recent keys plus S
// sinks, top-K, or drop), applied in prefill and decode as a server would, then rescore a NIAH suite
// (ROUGE-1 recall, NeedleBench v1, exact recovery; per length x depth) and a held-out passage's
// perplexity. The N full heads are (a) the top-N retrieval heads of a detection run, (b) seeded
// random sets of N heads drawn as `ablate` draws its controls (score <= threshold, not in the
// top-N), and (c) none (the cheap policy everywhere); a baseline keeps every head full. Each
// condition's KV memory is computed from `KVPolicy.cacheBytes` at the run's context and at 32k/128k.

/// One KV-policy condition.
public struct KVPolicyCondition: Sendable, Equatable {
    /// baseline: every head full; uniform: `rest` on every head; retrieval: top-N full; random: a
    /// seeded random N full; heads: the given heads full.
    public enum Kind: String, Sendable, CaseIterable { case baseline, uniform, retrieval, random, heads }
    public var name: String
    public var kind: Kind
    public var fullHeads: [HeadIndex]
    public var rest: HeadKVPolicy
    /// 1... for the random control sets, else 0.
    public var control: Int

    public init(name: String, kind: Kind, fullHeads: [HeadIndex], rest: HeadKVPolicy, control: Int = 0) {
        self.name = name
        self.kind = kind
        self.fullHeads = fullHeads
        self.rest = rest
        self.control = control
    }

    public var policy: KVPolicy {
        kind == .baseline ? KVPolicy() : KVPolicy(full: fullHeads.map { ($0.layer, $0.head) }, rest: rest)
    }

    public var headList: String { fullHeads.map(\.description).joined(separator: ",") }
}

public enum KVPolicyPlan {
    /// Baseline, then per `rests` policy: uniform, and per N of `counts`: the top-N heads of `ranked`
    /// and `controls` random sets of N. Random sets are drawn by `AblationPlan.controlSets` from
    /// `scores` (heads <= `threshold`, not in the top N) with seed `seed + N`, and are the same for
    /// every rest policy (so conditions pair across W). `explicit`: one `heads` condition per rest
    /// policy instead of the top-N ones.
    public static func conditions(
        scores: RetrievalHeadScores?, counts: [Int], explicit: [HeadIndex]?, rests: [HeadKVPolicy],
        controls: Int, threshold: Double, seed: UInt64
    ) throws -> [KVPolicyCondition] {
        var out = [KVPolicyCondition(name: "baseline", kind: .baseline, fullHeads: [], rest: .full)]
        var targets: [(String, KVPolicyCondition.Kind, [HeadIndex])] = []
        var randoms: [(Int, [[HeadIndex]])] = []
        if let explicit {
            targets.append(("heads\(explicit.count)", .heads, explicit))
            if controls > 0, let scores {
                let sets = try AblationPlan.controlSets(
                    scores: scores, threshold: threshold, target: explicit, count: controls,
                    seed: seed &+ UInt64(explicit.count))
                randoms.append((explicit.count, sets))
            }
        } else if let scores {
            for n in counts {
                let top = scores.top(n).map(\.head)
                targets.append(("top\(n)", .retrieval, top))
                if controls > 0 {
                    let sets = try AblationPlan.controlSets(
                        scores: scores, threshold: threshold, target: top, count: controls, seed: seed &+ UInt64(n))
                    randoms.append((n, sets))
                }
            }
        }
        for r in rests {
            out.append(KVPolicyCondition(name: "uniform/\(r)", kind: .uniform, fullHeads: [], rest: r))
            for (name, kind, heads) in targets {
                out.append(KVPolicyCondition(name: "\(name)/\(r)", kind: kind, fullHeads: heads.sorted(), rest: r))
                if let sets = randoms.first(where: { $0.0 == heads.count })?.1 {
                    for (i, s) in sets.enumerated() {
                        out.append(
                            KVPolicyCondition(
                                name: "random\(heads.count).\(i + 1)/\(r)", kind: .random, fullHeads: s, rest: r,
                                control: i + 1))
                    }
                }
            }
        }
        return out
    }
}

/// Options of a KV-policy run.
public struct KVPolicyOptions: Sendable {
    public var seed: UInt64 = 0
    public var bootstrapResamples = Statistics.defaultBootstrapResamples
    public var level = 0.95
    /// Held-out passage length (0: skip).
    public var perplexityTokens = 2048
    /// Tokens per block of the perplexity bootstrap (blocks of consecutive positions are resampled).
    public var perplexityBlock = 64
    public var reusePrefix = true
    public var stopAfter: Int?
    /// Bytes per cached value in the memory figures (2: an fp16 cache, llama.cpp's default).
    public var bytesPerValue = 2
    /// Contexts the memory is extrapolated to, besides the run's own.
    public var memoryContexts = [32768, 131_072]
    public init() {}
}

/// One condition's summary.
public struct KVPolicyConditionSummary: Sendable {
    public var condition: KVPolicyCondition
    /// Per metric: mean over trials with a bootstrap CI.
    public var means: [ConfidenceInterval]
    /// Per metric: [lengths x depths] means over needles (row-major, lengths outer).
    public var cells: [[Double]]
    /// Mean NLL (nats/token) of the held-out passage; NaN without a passage.
    public var meanNLL: Double
    /// Percentile-bootstrap bounds of the mean NLL, resampling blocks of `perplexityBlock`
    /// consecutive positions (NaN without a passage).
    public var nllLower: Double
    public var nllUpper: Double
    /// KV bytes at the run's context, then at each of `KVPolicyOptions.memoryContexts`.
    public var kvBytes: [Int]
    /// Per metric, paired over trials: this condition - baseline; and, for a retrieval/heads condition,
    /// this condition - the mean of its random sets (nil otherwise).
    public var vsBaseline: [PairedBootstrapResult]
    public var vsRandom: [PairedBootstrapResult]?
}

public struct KVPolicyResult: Sendable {
    public var conditions: [KVPolicyConditionSummary]
    public var lengths: [Int]
    public var depths: [Double]
    public var records: [AblationRecord]
    public var heldOut: HeldOutPassage?
    /// The context the memory figures use first: the longest prompt + max_new_tokens.
    public var contextTokens: Int
    public var finished: Bool
    public var ranNow: Int
    public var seconds: Double
}

/// Runs every condition over the suite and the held-out passage, writing a resumable `/kv_policy` group.
public final class KVPolicyRunner: NIAHConditionRunner {
    public let conditions: [KVPolicyCondition]
    public let options: KVPolicyOptions

    public init(
        probe: NIAHProbe, model: Model, tokenizer: Tokenizer, chatTemplate: ((String) -> String)?,
        conditions: [KVPolicyCondition], options: KVPolicyOptions = KVPolicyOptions()
    ) throws {
        guard !conditions.isEmpty else { throw RetrievalHeadsError.invalid("no KV-policy conditions") }
        self.conditions = conditions
        self.options = options
        try super.init(probe: probe, model: model, tokenizer: tokenizer, chatTemplate: chatTemplate)
    }

    public func run(file: H5File, progress: ((SweepProgress) -> Void)? = nil) throws -> KVPolicyResult {
        let start = Date()
        let trials = try probe.cells.map { try builder.trial($0) }
        let held = try HeldOutPassage.make(probe: probe, tokenizer: tokenizer, count: options.perplexityTokens)
        let maxPrompt = trials.map(\.promptTokens.count).max() ?? 1
        let context = maxPrompt + probe.suite.maxNewTokens
        try model.checkContext(
            context + 1, for: "a trial prompt of \(maxPrompt) tokens + max_new_tokens \(probe.suite.maxNewTokens) + 1")
        try model.checkContext(held?.tokens.count ?? 0, for: "the held-out perplexity passage")
        let minPrompt = trials.map(\.promptTokens.count).min() ?? 1
        for c in conditions { try c.policy.validate(config: model.config, context: minPrompt) }
        let store = try KVPolicyRunFile.open(
            file, runner: self, trials: trials.count, heldOut: held, contextTokens: context)
        let C = conditions.count
        let (done, pplDone) = try Self.stored( // trial * C + condition; conditions
            records: store.records.group, perplexity: store.perplexity.group, conditions: C)
        let session = model.makeSession(maxContext: max(context + 1, held?.tokens.count ?? 0))
        let decoder = NeedleDecoder(session: session, tokenizer: tokenizer, reusePrefix: options.reusePrefix)
        let scorer = RougeScorer()
        let order = Self.trialOrder(trials, reusePrefix: options.reusePrefix)
        // Condition-major: a policy changes the prefill, so trials share prefixes only within a condition.
        var plan: [(Int, Int)] = []
        for c in 0..<C { for t in order where !done.contains(t * C + c) { plan.append((t, c)) } }
        let pplTodo = held == nil ? [] : (0..<C).filter { !pplDone.contains($0) }
        let unit = { (t: Int) in Double(trials[t].promptTokens.count) / 10 + Double(self.probe.suite.maxNewTokens) * 10
        }
        let workTotal =
            plan.reduce(0.0) { $0 + unit($1.0) } + Double(pplTodo.count) * Double(held?.tokens.count ?? 0) / 2
        var workDone = 0.0
        let totalUnits = trials.count * C + (held == nil ? 0 : C)
        var doneUnits = done.count + pplDone.count
        var ran = 0
        var current = -1
        func stopNow() -> Bool { options.stopAfter.map { ran >= $0 } ?? false }
        progress?(
            SweepProgress(done: doneUnits, total: totalUnits, workDone: 0, workTotal: workTotal, label: "starting"))
        for (ti, ci) in plan {
            if stopNow() { break }
            let t = trials[ti], cond = conditions[ci]
            if ci != current {
                session.kvPolicy = cond.policy
                decoder.invalidateCache()
                current = ci
            }
            let t0 = Date()
            let out = try decoder.run(
                prompt: t.promptTokens, maxNewTokens: probe.suite.maxNewTokens, span: nil, scoreHeads: false)
            try store.append(
                AblationRecord(
                    trialIndex: ti, condition: ci, response: out.response, generatedTokens: out.generated.count,
                    stop: out.stop.rawValue, metrics: Self.metrics(t, response: out.response, scorer: scorer),
                    prefilledTokens: out.prefilledTokens, seconds: Date().timeIntervalSince(t0)))
            try file.flush()
            ran += 1
            doneUnits += 1
            workDone += unit(ti)
            progress?(
                SweepProgress(
                    done: doneUnits, total: totalUnits, workDone: workDone, workTotal: workTotal,
                    label: Self.label(cond.name, t)))
        }
        if let held {
            for ci in pplTodo {
                if stopNow() { break }
                let nll = try tokenNLL(session: session, tokens: held.tokens, policy: conditions[ci].policy)
                try store.appendPerplexity(condition: ci, nll: nll, block: options.perplexityBlock)
                try file.flush()
                ran += 1
                doneUnits += 1
                workDone += Double(held.tokens.count) / 2
                progress?(
                    SweepProgress(
                        done: doneUnits, total: totalUnits, workDone: workDone, workTotal: workTotal,
                        label: "perplexity, \(conditions[ci].name)"))
            }
        }
        session.kvPolicy = nil
        decoder.invalidateCache()
        let records = try store.readRecords()
        let ppl = try store.readPerplexity()
        let finished = records.count == trials.count * C && (held == nil || ppl.count == C)
        var result = KVPolicyResult(
            conditions: [], lengths: probe.suite.lengths, depths: probe.suite.depths, records: records,
            heldOut: held, contextTokens: context, finished: finished, ranNow: ran,
            seconds: Date().timeIntervalSince(start))
        guard finished else { return result }
        result.conditions = summarize(records: records, trials: trials, perplexity: ppl, context: context)
        try store.writeSummary(result)
        return result
    }

    /// NLL (nats) of `tokens[i + 1]` given tokens 0...i under `policy`, for every i.
    func tokenNLL(session: InferenceSession, tokens: [Int32], policy: KVPolicy) throws -> [Double] {
        session.kvPolicy = policy
        return try Self.tokenNLL(session: session, tokens: tokens)
    }

    func summarize(
        records: [AblationRecord], trials: [NIAHTrial], perplexity: [Int: KVPolicyRunFile.Perplexity], context: Int
    ) -> [KVPolicyConditionSummary] {
        let C = conditions.count, T = trials.count, M = AblationMetric.allCases.count
        var v = [[[Double]]](repeating: [[Double]](repeating: [Double](repeating: .nan, count: M), count: T), count: C)
        for r in records { v[r.condition][r.trialIndex] = r.metrics }
        func seed(_ a: Int, _ b: Int) -> UInt64 { options.seed &+ UInt64(1000 + a * 16 + b) }
        func column(_ c: Int, _ m: Int) -> [Double] { (0..<T).map { v[c][$0][m] } }
        func paired(_ a: [Double], _ b: [Double], seed: UInt64) -> PairedBootstrapResult {
            let keep = (0..<T).filter { a[$0].isFinite && b[$0].isFinite }
            return Statistics.pairedBootstrapMeanDifference(
                keep.map { a[$0] }, keep.map { b[$0] }, resamples: options.bootstrapResamples, level: options.level,
                seed: seed)
        }
        let baseline = conditions.firstIndex { $0.kind == .baseline }
        let c0 = model.config
        var out: [KVPolicyConditionSummary] = []
        for c in 0..<C {
            let cond = conditions[c]
            var means: [ConfidenceInterval] = [], cells: [[Double]] = []
            for m in 0..<M {
                means.append(
                    Statistics.bootstrapMean(
                        column(c, m).filter(\.isFinite), resamples: options.bootstrapResamples, level: options.level,
                        seed: seed(c, m)))
                var grid: [Double] = []
                for l in probe.suite.lengths {
                    for d in probe.suite.depths {
                        let xs = (0..<T).filter { trials[$0].cell.length == l && trials[$0].cell.depth == d }
                            .map { v[c][$0][m] }.filter(\.isFinite)
                        grid.append(Statistics.mean(xs))
                    }
                }
                cells.append(grid)
            }
            let ppl = perplexity[c]
            let ci =
                (ppl?.blocks ?? []).isEmpty
                ? nil
                : Statistics.bootstrapMean(
                    ppl!.blocks, resamples: options.bootstrapResamples, level: options.level, seed: seed(c, 15))
            let policy = cond.policy
            let bytes = ([context] + options.memoryContexts).map {
                policy.cacheBytes(config: c0, tokens: $0, bytesPerValue: options.bytesPerValue)
            }
            let vsBase = baseline.map { b in (0..<M).map { paired(column(c, $0), column(b, $0), seed: seed(c, 8 + $0)) }
            }
            var vsRandom: [PairedBootstrapResult]?
            if cond.kind == .retrieval || cond.kind == .heads {
                let rs = conditions.indices.filter {
                    conditions[$0].kind == .random && conditions[$0].rest == cond.rest
                        && conditions[$0].fullHeads.count == cond.fullHeads.count
                }
                if !rs.isEmpty {
                    vsRandom = (0..<M).map { m in
                        let mean = (0..<T).map { t in Statistics.mean(rs.map { v[$0][t][m] }) }
                        return paired(column(c, m), mean, seed: seed(c, 12 + m))
                    }
                }
            }
            out.append(
                KVPolicyConditionSummary(
                    condition: cond, means: means, cells: cells, meanNLL: ppl?.meanNLL ?? .nan,
                    nllLower: ci?.lower ?? .nan, nllUpper: ci?.upper ?? .nan, kvBytes: bytes,
                    vsBaseline: vsBase ?? [], vsRandom: vsRandom))
        }
        return out
    }
}
