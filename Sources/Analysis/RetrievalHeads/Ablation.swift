import Foundation
import Inference
import TraceStore

// Ablation and rescoring of a NIAH suite (Wu et al. 2024, "masking"; methods.md section 1):
// the suite is decoded greedily with no head ablated (baseline), with the chosen heads ablated
// (target, e.g. the top-K retrieval heads), and with N seeded control sets of K heads drawn
// from heads that are *not* retrieval heads (score <= threshold) and not in the target set —
// the original drew unseeded random heads that could include retrieval heads.
//
// Every condition is scored per trial with ROUGE-1 recall x100 (Wu et al.), the NeedleBench v1
// keyword/Levenshtein score and exact needle recovery (x100), summarized per condition with
// percentile-bootstrap 95% CIs, per length x depth cell, and as paired differences (target -
// mean of the controls, target - baseline) with bootstrap CIs. A held-out haystack passage's
// perplexity under each condition shows whether the heads matter for retrieval specifically.

/// One ablation condition.
public struct AblationCondition: Sendable, Equatable {
    /// `single`: one head ablated alone, for the causal head graph (`AblationOptions.causalTargets`).
    public enum Kind: String, Sendable { case baseline, target, control, single }
    public var name: String
    public var kind: Kind
    public var heads: [HeadIndex]

    public init(name: String, kind: Kind, heads: [HeadIndex]) {
        self.name = name
        self.kind = kind
        self.heads = heads
    }

    public var headList: String { heads.map(\.description).joined(separator: ",") }
}

public enum AblationPlan {
    /// `count` control sets of `target.count` heads each, drawn without replacement (within a
    /// set) from the heads with score <= `threshold` that are not in `target`, listed in (layer,
    /// head) order; sets are drawn one after another from `SeededGenerator(seed:)` with
    /// `SeededRandom.sampleIndices`, and each set is returned sorted.
    public static func controlSets(
        scores: RetrievalHeadScores, threshold: Double, target: [HeadIndex],
        count: Int, seed: UInt64
    ) throws -> [[HeadIndex]] {
        let exclude = Set(target)
        let pool = scores.atOrBelow(threshold).filter { !exclude.contains($0) }
        let k = target.count
        guard count == 0 || pool.count >= k else {
            throw RetrievalHeadsError.invalid(
                "only \(pool.count) heads score <= \(threshold) outside the target set; "
                    + "cannot draw control sets of \(k) heads")
        }
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in SeededRandom.sample(pool, count: k, using: &g).sorted() }
    }

    /// Baseline and one single-head condition per source head (the causal head graph).
    public static func causalConditions(sources: [HeadIndex]) -> [AblationCondition] {
        [AblationCondition(name: "baseline", kind: .baseline, heads: [])]
            + sources.map { AblationCondition(name: "ablate_\($0)", kind: .single, heads: [$0]) }
    }

    /// Baseline, target and controls.
    public static func conditions(
        target: [HeadIndex], targetName: String, controls: [[HeadIndex]]
    ) -> [AblationCondition] {
        [
            AblationCondition(name: "baseline", kind: .baseline, heads: []),
            AblationCondition(name: targetName, kind: .target, heads: target)
        ]
            + controls.enumerated().map {
                AblationCondition(name: "control_\($0.offset + 1)", kind: .control, heads: $0.element)
            }
    }
}

/// Options of an ablation run.
public struct AblationOptions: Sendable {
    public var method: AblationMethod = .uniform
    /// `.decode` (Wu et al.: prefill untouched) or `.both`.
    public var phase: InterventionPhase = .decode
    public var seed: UInt64 = 0
    public var bootstrapResamples = Statistics.defaultBootstrapResamples
    public var level = 0.95
    /// Held-out passage length for perplexity (0: skip).
    public var perplexityTokens = 1024
    public var reusePrefix = true
    /// (trial, condition) pairs decoded together (`NeedleDecoder.decodeBatch`); results, record
    /// order and checkpoints do not depend on it.
    public var decodeBatch = RetrievalSweepOptions.defaultDecodeBatch
    public var stopAfter: Int?
    /// Heads whose retrieval score (Wu et al.'s copy rule) is measured under every condition, for
    /// the causal head graph; empty: no attention is captured.
    public var causalTargets: [HeadIndex] = []
    /// Run only these plan items (a shard, `AblationRunner.shardPlan`): trial t is item t (all its
    /// conditions), the held-out perplexity of condition c is item T + c. nil runs everything. A
    /// shard's run finishes without the summary, which `headlight merge` computes from all shards.
    public var shardItems: [Int]?
    public init() {}
}

/// The held-out haystack passage: tokens of the haystack (one copy of its files, encoded without
/// special tokens) that no trial reads. Trials read the first max(lengths) tokens; the passage is
/// the last `count` tokens of the haystack, and the `count` tokens before it are the reference
/// text for `.mean` ablation. nil when the haystack is too short for both.
public struct HeldOutPassage: Sendable, Equatable {
    public var tokens: [Int32]
    /// Token offsets in the haystack's token stream.
    public var start: Int
    public var meanReference: [Int32]
    public var meanReferenceStart: Int
    public var haystackTokens: Int

    public static func make(probe: NIAHProbe, tokenizer: Tokenizer, count: Int) throws -> HeldOutPassage? {
        guard count > 1 else { return nil }
        var once = ""
        for f in probe.haystackFiles {
            once += PythonText.universalNewlines(try String(contentsOf: f, encoding: .utf8))
        }
        let ids = tokenizer.encode(once, addSpecial: false)
        let used = probe.suite.lengths.max() ?? 0
        let start = ids.count - count, refStart = start - count
        guard refStart >= used else { return nil }
        return HeldOutPassage(
            tokens: Array(ids[start...]), start: start, meanReference: Array(ids[refStart..<start]),
            meanReferenceStart: refStart, haystackTokens: ids.count)
    }

    public var description: String {
        "haystack tokens [\(start), \(start + tokens.count)) of \(haystackTokens) (the last \(tokens.count); trials "
            + "read only the first max(lengths) tokens)"
    }
}

/// Metrics per trial.
public enum AblationMetric: Int, CaseIterable, Sendable {
    case rouge = 0, needleBench = 1, exact = 2
    public var name: String {
        switch self {
        case .rouge: return "rouge1_recall_x100"
        case .needleBench: return "needlebench_v1"
        case .exact: return "exact_recovery_x100"
        }
    }
}

public struct AblationRecord: Equatable, Sendable {
    public var trialIndex: Int
    public var condition: Int
    public var response: String
    public var generatedTokens: Int
    public var stop: String
    /// [rouge x100, NeedleBench v1, exact x100]; NeedleBench is NaN for a needle without keyword.
    public var metrics: [Double]
    public var prefilledTokens: Int
    public var seconds: Double
    /// With causal targets: each target's trial score (copy rule), and whether the trial counts
    /// (ROUGE-1 recall > 50 and the needle span located).
    public var targetScores: [Double] = []
    public var counted: Bool = false
}

/// Retrieval scores of the causal targets under each condition (mean trial score over the
/// condition's counted trials, as `RetrievalHeadScores.aggregate`).
public struct CausalScores: Sendable {
    public var targets: [HeadIndex]
    /// [condition][target]
    public var scores: [[Double]]
    /// Per condition: of the trials the baseline counts (the ones every mean is over), how many
    /// the condition still answers right.
    public var counted: [Int]
}

/// Per-condition summary.
public struct AblationConditionSummary: Sendable {
    public var condition: AblationCondition
    /// Per metric: mean over trials with a bootstrap CI.
    public var means: [ConfidenceInterval]
    /// Per metric: [lengths x depths] means over needles (row-major, lengths outer).
    public var cells: [[Double]]
    public var perplexity: Double
    public var meanNLL: Double
}

public struct AblationDifference: Sendable {
    public var metric: AblationMetric
    public var result: PairedBootstrapResult
}

public struct AblationResult: Sendable {
    public var conditions: [AblationConditionSummary]
    /// Target minus the mean of the control sets, per metric (paired by trial).
    public var targetVsControls: [AblationDifference]
    /// Target minus baseline, per metric.
    public var targetVsBaseline: [AblationDifference]
    /// Mean of the control sets per trial, summarized like a condition (nil without controls).
    public var controlMean: [ConfidenceInterval]?
    public var lengths: [Int]
    public var depths: [Double]
    public var records: [AblationRecord]
    public var heldOut: HeldOutPassage?
    public var finished: Bool
    public var ranNow: Int
    public var seconds: Double
    /// With causal targets.
    public var causal: CausalScores?
}

/// Runs the conditions over the suite, writing a resumable `/ablation` group.
public final class AblationRunner: NIAHConditionRunner {
    public let conditions: [AblationCondition]
    /// Mutable so that a shard's `shardItems` can be set once the trials (and their costs) are built.
    public var options: AblationOptions

    public init(
        probe: NIAHProbe, model: Model, tokenizer: Tokenizer, chatTemplate: ((String) -> String)?,
        conditions: [AblationCondition], options: AblationOptions = AblationOptions()
    ) throws {
        guard options.phase == .decode || options.phase == .both else {
            throw RetrievalHeadsError.invalid("ablation phase must be decode or both (all)")
        }
        self.conditions = conditions
        self.options = options
        try super.init(probe: probe, model: model, tokenizer: tokenizer, chatTemplate: chatTemplate)
    }

    /// What the summary is computed from (`AblationAnalysis`).
    public var analysis: AblationAnalysis {
        let cells = probe.cells
        return AblationAnalysis(
            conditions: conditions, cells: cells.map { ($0.length, $0.depth) }, lengths: probe.suite.lengths,
            depths: probe.suite.depths, seed: options.seed, bootstrapResamples: options.bootstrapResamples,
            level: options.level, causalTargets: options.causalTargets, method: options.method.description,
            phase: options.phase.rawValue)
    }

    /// The order in which a run executes the trials: shared-prefix order, or grid order without
    /// `reusePrefix`.
    func trialOrder(_ trials: [NIAHTrial]) -> [Int] { Self.trialOrder(trials, reusePrefix: options.reusePrefix) }

    /// The plan items of a run for `--shard` (`AblationOptions.shardItems`) in single-run order
    /// (the trials in execution order, then one perplexity item per condition when a held-out
    /// passage is measured), and each item's token cost (`ShardPlan.trialCost`): a trial's
    /// conditions share one prefill with decode-phase ablation, else each prefills again.
    public func shardPlan(_ trials: [NIAHTrial]) throws -> (order: [Int], costs: [Int]) {
        let held = try HeldOutPassage.make(probe: probe, tokenizer: tokenizer, count: options.perplexityTokens)
        let C = conditions.count, d = probe.suite.maxNewTokens
        var costs = trials.map { t -> Int in
            let p = t.promptTokens.count
            return options.phase == .decode
                ? ShardPlan.trialCost(promptTokens: p, decodeSteps: C * d)
                : C * ShardPlan.trialCost(promptTokens: p, decodeSteps: d)
        }
        var order = trialOrder(trials)
        if let held {
            costs += [Int](repeating: ShardPlan.trialCost(promptTokens: held.tokens.count, decodeSteps: 0), count: C)
            order += (0..<C).map { trials.count + $0 }
        }
        return (order, costs)
    }

    func interventions(_ c: AblationCondition, phase: InterventionPhase) -> [HeadIntervention] {
        c.heads.map { HeadIntervention(layer: $0.layer, head: $0.head, method: options.method, phase: phase) }
    }

    public func run(file: H5File, progress: ((SweepProgress) -> Void)? = nil) throws -> AblationResult {
        let start = Date()
        let trials = try probe.cells.map { try builder.trial($0) }
        let held = try HeldOutPassage.make(probe: probe, tokenizer: tokenizer, count: options.perplexityTokens)
        let store = try AblationRunFile.open(file, runner: self, trials: trials.count, heldOut: held)
        let (done, pplDone) = try Self.stored( // trial * C + condition; conditions
            records: store.records.group, perplexity: store.perplexity.group, conditions: conditions.count)

        let maxPrompt = trials.map(\.promptTokens.count).max() ?? 1
        try model.checkContext(
            maxPrompt + probe.suite.maxNewTokens + 1,
            for: "a trial prompt of \(maxPrompt) tokens + max_new_tokens \(probe.suite.maxNewTokens) + 1")
        try model.checkContext(held?.tokens.count ?? 0, for: "the held-out perplexity passage")
        let session = model.makeSession(
            maxContext: max(maxPrompt + probe.suite.maxNewTokens + 1, held?.tokens.count ?? 0))
        if options.method == .mean {
            // Reference means of every head's output over held-out text (else the running mean of
            // the head's own output, which a decode-only ablation cannot see for the prompt).
            let ref = held?.meanReference ?? Array(trials[0].promptTokens)
            session.headMeans = try model.meanHeadOutputs([ref])
        }
        let decoder = NeedleDecoder(
            session: session, tokenizer: tokenizer, reusePrefix: options.reusePrefix,
            decodeBatch: options.decodeBatch)
        let scorer = RougeScorer()
        let shard = options.shardItems.map(Set.init)
        let order = trialOrder(trials).filter { shard?.contains($0) != false }
        let C = conditions.count
        // (trial, condition) pairs to run: decode-only ablation leaves the prefill alone, so all
        // conditions of a trial share one prefill (trial-major); otherwise condition-major.
        var plan: [(Int, Int)] = []
        if options.phase == .decode {
            for t in order { for c in 0..<C where !done.contains(t * C + c) { plan.append((t, c)) } }
        } else {
            for c in 0..<C { for t in order where !done.contains(t * C + c) { plan.append((t, c)) } }
        }
        let pplTodo =
            held == nil ? [] : (0..<C).filter { !pplDone.contains($0) && shard?.contains(trials.count + $0) != false }
        let unit = { (t: Int) in Double(trials[t].promptTokens.count) / 10 + Double(self.probe.suite.maxNewTokens) * 10
        }
        let workTotal =
            plan.reduce(0.0) { $0 + unit($1.0) } + Double(pplTodo.count) * Double(held?.tokens.count ?? 0) / 2
        var workDone = 0.0
        let shardPPL = held == nil ? 0 : (0..<C).filter { shard?.contains(trials.count + $0) != false }.count
        let totalUnits = order.count * C + shardPPL
        var doneUnits = done.count + pplDone.count
        var ran = 0
        var currentCondition = -1
        progress?(
            SweepProgress(done: doneUnits, total: totalUnits, workDone: 0, workTotal: workTotal, label: "starting"))

        func stopNow() -> Bool { options.stopAfter.map { ran >= $0 } ?? false }

        // The pairs of this invocation, each under its condition's interventions; with interventions
        // in the prefill, a new condition starts from an empty cache.
        let runPlan = options.stopAfter.map { Array(plan.prefix(max($0, 0))) } ?? plan
        var inputs: [NeedleTrialInput] = []
        let causal = !options.causalTargets.isEmpty
        for (ti, ci) in runPlan {
            let t = trials[ti]
            inputs.append(
                NeedleTrialInput(
                    prompt: t.promptTokens, span: causal ? t.needleSpan : nil,
                    interventions: interventions(conditions[ci], phase: options.phase),
                    freshPrefill: ci != currentCondition && options.phase != .decode))
            currentCondition = ci
        }
        // Each record's `seconds` is the wall time since the previous record (or the start): with
        // batched decoding a batch's time is spread over its records as they complete.
        var t0 = Date()
        try decoder.runTrials(
            inputs, maxNewTokens: probe.suite.maxNewTokens, scoreHeads: causal,
            onlyHeads: causal ? options.causalTargets : nil
        ) { k, out in
            let (ti, ci) = runPlan[k]
            let t = trials[ti], cond = conditions[ci]
            let metrics = Self.metrics(t, response: out.response, scorer: scorer)
            try store.append(
                AblationRecord(
                    trialIndex: ti, condition: ci, response: out.response,
                    generatedTokens: out.generated.count, stop: out.stop.rawValue,
                    metrics: metrics, prefilledTokens: out.prefilledTokens,
                    seconds: Date().timeIntervalSince(t0),
                    targetScores: causalTargetScores(out.headScores),
                    counted: causal && NeedleRetrievalScore.succeeded(metrics[0]) && t.needleSpan != nil))
            try file.flush()
            t0 = Date()
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
                let nll = try perplexityNLL(session: session, tokens: held.tokens, condition: conditions[ci])
                try store.appendPerplexity(condition: ci, meanNLL: nll, tokens: held.tokens.count - 1)
                try file.flush()
                ran += 1
                doneUnits += 1
                workDone += Double(held.tokens.count) / 2
                progress?(
                    SweepProgress(
                        done: doneUnits, total: totalUnits, workDone: workDone, workTotal: workTotal,
                        label: "perplexity, \(conditions[ci].name)"))
            }
            decoder.invalidateCache()
        }
        let records = try store.readRecords()
        let pplRows = try RecordTable.read(group: store.perplexity.group, columns: AblationRunFile.perplexityColumns)
        let pplConditions = Set(pplRows.ints("condition"))
        let finished = records.count == order.count * C && pplConditions.count == shardPPL
        var result = AblationResult(
            conditions: [], targetVsControls: [], targetVsBaseline: [], controlMean: nil,
            lengths: probe.suite.lengths, depths: probe.suite.depths, records: records,
            heldOut: held, finished: finished, ranNow: ran, seconds: Date().timeIntervalSince(start))
        guard finished, shard == nil else { return result }
        let ppl = Dictionary(
            zip(pplRows.ints("condition"), pplRows.doubles("mean_nll")),
            uniquingKeysWith: { a, _ in a })
        let analysis = self.analysis
        analysis.summarize(&result, perplexityNLL: ppl)
        result.causal = analysis.causalScores(records)
        try analysis.writeSummary(result, into: store.root, perplexity: held != nil)
        return result
    }

    /// The causal targets' entries of a trial's per-head scores (zeros when nothing was scored).
    func causalTargetScores(_ headScores: [Double]?) -> [Double] {
        let n = model.config.nHeads
        return options.causalTargets.map { h in headScores.map { $0[h.flat(heads: n)] } ?? 0 }
    }

    /// Mean NLL (nats) of `tokens[1...]` given the preceding tokens, with the condition's heads
    /// ablated at every position (phase both: a teacher-forced passage has no decode phase).
    func perplexityNLL(session: InferenceSession, tokens: [Int32], condition: AblationCondition) throws -> Double {
        session.interventions = interventions(condition, phase: .both)
        defer { session.interventions = [] }
        return Statistics.mean(try Self.tokenNLL(session: session, tokens: tokens))
    }

}

/// The `/ablation` group of a run file.
///
/// ```
/// /ablation                  @analysis "ablation", @analysis_version 1, @suite, @needles, @method, @phase,
///                            @condition_names (str[]: baseline, top_K | heads, control_1...), @condition_kinds
///                            (str[]: baseline | target | control | single), @condition_heads
///                            (str[] "L.H,L.H,..."), @trials, @metrics (str[]), @seed, @bootstrap_resamples, @level,
///                            @perplexity_tokens, @perplexity_passage (text), @perplexity_passage_start,
///                            @perplexity_phase, @mean_reference (method mean), @scores_file, @threshold, @target,
///                            @controls, @seconds
///   condition_head_ids  int64 [condition, head, 2]   (layer, head), padded with -1
///   records/            one row per (trial, condition) run, execution order, checkpointed:
///     trial_index, condition int64; response str; generated_tokens int64; stop str;
///     rouge1_recall_x100, needlebench_v1 (NaN: needle without keyword), exact_recovery_x100 float64;
///     prefilled_tokens int64; seconds float64
///     with @causal_targets (str[] "L.H"; `ablate --causal N`) also: target_scores float64 [record, target]
///     (each causal target's trial score, Wu et al.'s copy rule), counted int8 (ROUGE-1 recall > 50 and
///     the needle span located)
///   perplexity_records/ condition int64, mean_nll float64 (nats/token), tokens int64
///   when finished:
///   trial_scores        float64 [condition, trial, metric]   trial = grid index
///   mean, ci_lower, ci_upper  float64 [condition, metric]     percentile bootstrap of the mean over trials
///   cells               float64 [condition, metric, length, depth]  mean over needles (@lengths, @depths)
///   control_mean        float64 [metric, 3]                  mean of the control sets per trial:
///                                                            estimate, lower, upper
///   difference_target_vs_controls, difference_target_vs_baseline
///                       float64 [metric, 4]                  paired bootstrap: estimate, lower, upper, p
///   perplexity, mean_nll, perplexity_delta  float64 [condition]  held-out passage; delta vs baseline
///   causal/             with @causal_targets (read by the report's causal head graph):
///     sources str [source] ("L.H" ablated alone), targets str [target], baseline_scores float64 [target],
///     scores float64 [source, target] (target's retrieval score with the source ablated),
///     counted_trials int64 [source], @baseline_counted_trials, @method, @note. Every score is the mean
///     over the trials the baseline counts, so sources are compared on the same trials.
/// ```
public final class AblationRunFile {
    public static let group = "ablation"
    public static let analysisVersion = 1

    let root: H5Group
    let records: RecordTable
    let perplexity: RecordTable
    let runner: AblationRunner
    let trials: Int

    /// Columns of `records/` (with `causalTargets`, also `target_scores` and `counted`).
    public static func recordColumns(causalTargets: Int) -> [RecordTable.Column] {
        var c = baseRecordColumns
        if causalTargets > 0 {
            c.append(.init("target_scores", .float64Block([causalTargets]), axes: ["record", "target"]))
            c.append(.init("counted", .int8))
        }
        return c
    }

    static let baseRecordColumns: [RecordTable.Column] = [
        .init("trial_index", .int64), .init("condition", .int64), .init("response", .string),
        .init("generated_tokens", .int64), .init("stop", .string), .init("rouge1_recall_x100", .float64),
        .init("needlebench_v1", .float64), .init("exact_recovery_x100", .float64),
        .init("prefilled_tokens", .int64), .init("seconds", .float64)
    ]
    /// Columns of `perplexity_records/`.
    public static let perplexityColumns: [RecordTable.Column] = [
        .init("condition", .int64), .init("mean_nll", .float64), .init("tokens", .int64)
    ]

    private init(root: H5Group, records: RecordTable, perplexity: RecordTable, runner: AblationRunner, trials: Int) {
        self.root = root
        self.records = records
        self.perplexity = perplexity
        self.runner = runner
        self.trials = trials
    }

    static func open(
        _ file: H5File, runner: AblationRunner, trials: Int, heldOut: HeldOutPassage?
    ) throws -> AblationRunFile {
        let o = runner.options
        var attrs: [String: H5AttributeValue] = [
            "suite": .string(try RetrievalRunFile.suiteJSON(runner.probe.suite)),
            "needles": .string(try RetrievalRunFile.needlesJSONL(runner.probe.needles)),
            "method": .string(o.method.description), "phase": .string(o.phase.rawValue),
            "condition_names": .strings(runner.conditions.map(\.name)),
            "condition_heads": .strings(runner.conditions.map(\.headList)),
            "trials": .int(Int64(trials)),
            "perplexity_tokens": .int(Int64(heldOut?.tokens.count ?? 0))
        ]
        if !o.causalTargets.isEmpty { attrs["causal_targets"] = .strings(o.causalTargets.map(\.description)) }
        for (k, v) in runner.attributes { attrs[k] = v }
        let (g, created) = try SweepGroup.openOrCreate(
            file, group, analysis: "ablation", version: analysisVersion, attributes: attrs)
        if created {
            try g.setAttribute("metrics", AblationMetric.allCases.map(\.name))
            try g.setAttribute("seed", Int64(bitPattern: o.seed))
            try g.setAttribute("bootstrap_resamples", o.bootstrapResamples)
            try g.setAttribute("level", o.level)
            if let h = heldOut {
                try g.setAttribute("perplexity_passage", h.description)
                try g.setAttribute("perplexity_passage_start", h.start)
                try g.setAttribute("perplexity_phase", "both (every position of the passage)")
                if o.method == .mean {
                    try g.setAttribute("mean_reference", "haystack tokens [\(h.meanReferenceStart), \(h.start))")
                }
            }
            let heads = runner.conditions.map(\.heads)
            let k = heads.map(\.count).max() ?? 0
            var ids = [Int64](repeating: -1, count: heads.count * max(k, 1) * 2)
            for (c, hs) in heads.enumerated() {
                for (j, h) in hs.enumerated() {
                    ids[(c * max(k, 1) + j) * 2] = Int64(h.layer)
                    ids[(c * max(k, 1) + j) * 2 + 1] = Int64(h.head)
                }
            }
            let ds = try g.createDataset("condition_head_ids", data: ids, shape: [heads.count, max(k, 1), 2])
            try ds.setAttribute("axes", ["condition", "head", "layer_head"])
            try ds.setAttribute("padding", -1)
        }
        // Does not change results: rewritten by each invocation, not checked on resume.
        try g.setAttribute("decode_batch", o.decodeBatch)
        try g.setAttribute("condition_kinds", runner.conditions.map(\.kind.rawValue))
        let columns = recordColumns(causalTargets: o.causalTargets.count)
        let rec = try RecordTable(group: try g.requireGroup("records"), columns: columns)
        let ppl = try RecordTable(group: try g.requireGroup("perplexity_records"), columns: perplexityColumns)
        return AblationRunFile(root: g, records: rec, perplexity: ppl, runner: runner, trials: trials)
    }

    func append(_ r: AblationRecord) throws {
        try records.append(Self.row(r, causal: !runner.options.causalTargets.isEmpty))
    }

    /// The `records/` row of `r` (with `causal`, also `target_scores` and `counted`).
    static func row(_ r: AblationRecord, causal: Bool) -> [String: RecordTable.Value] {
        var row: [String: RecordTable.Value] = [
            "trial_index": .int(r.trialIndex), "condition": .int(r.condition), "response": .string(r.response),
            "generated_tokens": .int(r.generatedTokens), "stop": .string(r.stop),
            "rouge1_recall_x100": .double(r.metrics[0]), "needlebench_v1": .double(r.metrics[1]),
            "exact_recovery_x100": .double(r.metrics[2]), "prefilled_tokens": .int(r.prefilledTokens),
            "seconds": .double(r.seconds)
        ]
        if causal {
            row["target_scores"] = .doubles(r.targetScores)
            row["counted"] = .int(r.counted ? 1 : 0)
        }
        return row
    }

    func appendPerplexity(condition: Int, meanNLL: Double, tokens: Int) throws {
        try perplexity.append(["condition": .int(condition), "mean_nll": .double(meanNLL), "tokens": .int(tokens)])
    }

    /// Records sorted by (condition, trial).
    func readRecords() throws -> [AblationRecord] {
        try Self.readRecords(records.group, causalTargets: runner.options.causalTargets.count, allowIncomplete: false)
    }

    static func readRecords(_ group: H5Group, causalTargets: Int, allowIncomplete: Bool) throws -> [AblationRecord] {
        let t = try RecordTable.read(
            group: group, columns: recordColumns(causalTargets: causalTargets),
            allowIncomplete: allowIncomplete)
        let trial = t.ints("trial_index"), c = t.ints("condition"), resp = t.strings("response")
        let g = t.ints("generated_tokens"), s = t.strings("stop")
        let r = t.doubles("rouge1_recall_x100"), nb = t.doubles("needlebench_v1"), ex = t.doubles("exact_recovery_x100")
        let pre = t.ints("prefilled_tokens"), sec = t.doubles("seconds")
        let causal = causalTargets > 0
        let ts = causal ? t.blocks("target_scores") : [], counted = causal ? t.ints("counted") : []
        return (0..<t.count).map { i in
            AblationRecord(
                trialIndex: trial[i], condition: c[i], response: resp[i], generatedTokens: g[i], stop: s[i],
                metrics: [r[i], nb[i], ex[i]], prefilledTokens: pre[i], seconds: sec[i],
                targetScores: causal ? ts[i] : [], counted: causal && counted[i] != 0)
        }.sorted { ($0.condition, $0.trialIndex) < ($1.condition, $1.trialIndex) }
    }

    // MARK: Reading

    /// `/ablation/causal`, as stored.
    public struct Causal: Sendable {
        public var sources: [HeadIndex]
        public var targets: [HeadIndex]
        public var baselineScores: [Double]
        /// [source][target]
        public var scores: [[Double]]
        public var countedTrials: [Int]
        public var baselineCountedTrials: Int
        public var method: String
    }

    /// A `[first, second]` float64 summary dataset, flattened row-major.
    public typealias Matrix = SweepMatrix

    /// Everything an `/ablation` group holds (the one reader of the group).
    public struct Contents: Sendable {
        public var conditionNames: [String]
        /// baseline | target | control | single, per condition.
        public var conditionKinds: [String]
        /// "L.H,L.H,..." per condition ("" for the baseline).
        public var conditionHeads: [String]
        public var method: String
        public var phase: String
        public var metrics: [String]
        public var level: Double
        public var trials: Int
        public var perplexityTokens: Int
        public var causalTargets: [String]
        /// Sorted by (condition, trial).
        public var records: [AblationRecord]
        /// The run finished: the summary below was stored.
        public var finished: Bool
        /// [condition, metric]
        public var mean: Matrix?
        public var ciLower: Matrix?
        public var ciUpper: Matrix?
        /// [condition, metric, length, depth], with the grid's lengths and depths.
        public var cells: Matrix?
        public var lengths: [Int]
        public var depths: [Double]
        /// [condition] with a held-out passage.
        public var perplexity: [Double]?
        public var perplexityDelta: [Double]?
        public var meanNLL: [Double]?
        /// [metric, 4]: estimate, lower, upper, p.
        public var targetVsControls: Matrix?
        public var targetVsBaseline: Matrix?
        /// [metric, 3]: estimate, lower, upper.
        public var controlMean: Matrix?
        public var causal: Causal?
    }

    /// Reads the `/ablation` group of an open run file; nil if it has none. What the writer
    /// always stores must be present with its type and shape (else a `TraceStoreError` or
    /// `RecordTableError` naming the object); `allowIncomplete` reads a run that did not finish
    /// (no summary; record columns cut to the shortest).
    public static func read(_ f: H5File, allowIncomplete: Bool = false) throws -> Contents? {
        guard try f.kind(of: group) != nil else { return nil }
        let g = try f.group(group)
        let reader = try ConditionSweepDatasets.Reader(f, g)
        let names = reader.names
        let C = names.count
        let metrics = try g.stringsAttribute("metrics")
        let M = metrics.count
        let causalTargets = try g.attributeIfPresent("causal_targets")?.stringsValue ?? []
        let records = try readRecords(
            try g.group("records"), causalTargets: causalTargets.count,
            allowIncomplete: allowIncomplete)
        func matrix(_ name: String, _ shape: [Int], required: Bool) throws -> Matrix? {
            try reader.matrix(name, shape, required: required)
        }
        let finished = try g.kind(of: "mean") != nil || !allowIncomplete
        var c = Contents(
            conditionNames: names, conditionKinds: try reader.strings("condition_kinds"),
            conditionHeads: try reader.strings("condition_heads"), method: try g.stringAttribute("method"),
            phase: try g.stringAttribute("phase"), metrics: metrics, level: try g.doubleAttribute("level"),
            trials: try g.intAttribute("trials"), perplexityTokens: try g.intAttribute("perplexity_tokens"),
            causalTargets: causalTargets, records: records, finished: finished, lengths: [], depths: [])
        guard finished else { return c }
        try reader.readScores(into: &c, metrics: M)
        let passage = c.perplexityTokens > 0
        c.perplexity = try matrix("perplexity", [C], required: passage)?.values
        c.perplexityDelta = try matrix("perplexity_delta", [C], required: passage)?.values
        c.meanNLL = try matrix("mean_nll", [C], required: passage)?.values
        c.targetVsControls = try matrix("difference_target_vs_controls", [M, 4], required: false)
        c.targetVsBaseline = try matrix("difference_target_vs_baseline", [M, 4], required: false)
        c.controlMean = try matrix("control_mean", [M, 3], required: false)
        let hasCausal = try g.kind(of: "causal") != nil
        if !causalTargets.isEmpty || hasCausal {
            let cg = try g.group("causal")
            func heads(_ name: String) throws -> [HeadIndex] {
                let ds = try cg.dataset(name)
                let text = try ds.shape[0] == 0 ? [] : try ds.readStrings()
                return try text.map { t in
                    guard let h = HeadIndex(t) else {
                        throw TraceStoreError.invalidArgument(
                            file: f.path, object: ds.name,
                            detail: "\"\(t)\" is not a head L.H")
                    }
                    return h
                }
            }
            let sources = try heads("sources"), targets = try heads("targets")
            let S = sources.count, T = targets.count
            func vector(_ name: String, _ n: Int) throws -> [Double] {
                let ds = try cg.dataset(name)
                try ds.requireShape([n])
                return n == 0 ? [] : try ds.read(Double.self)
            }
            func counted() throws -> [Int] {
                let ds = try cg.dataset("counted_trials")
                try ds.requireShape([S])
                return try S == 0 ? [] : ds.read(Int64.self).map(Int.init)
            }
            let sds = try cg.dataset("scores")
            try sds.requireShape([S, T])
            let flat = S * T == 0 ? [] : try sds.read(Double.self)
            c.causal = Causal(
                sources: sources, targets: targets, baselineScores: try vector("baseline_scores", T),
                scores: (0..<S).map { Array(flat[($0 * T)..<(($0 + 1) * T)]) },
                countedTrials: try counted(),
                baselineCountedTrials: try cg.intAttribute("baseline_counted_trials"),
                method: try cg.stringAttribute("method"))
        }
        return c
    }
}
