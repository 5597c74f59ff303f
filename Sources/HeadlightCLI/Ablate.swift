import Analysis
import ArgumentParser
import Foundation
import GGUF
import Inference
import TraceStore

/// `headlight ablate`: rescore a NIAH suite with heads ablated (Wu et al.'s masking experiment).
struct Ablate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rescore a NIAH suite with retrieval heads (or chosen heads) ablated, against random controls.",
        discussion: """
            Conditions: baseline (nothing ablated); the target heads (--top K from the retrieval-heads \
            run file given by --scores, or --heads L.H,...); and --controls N sets of as many heads, \
            drawn with --seed from the heads that are not retrieval heads (score <= the threshold) \
            and not targets. Each condition decodes every trial greedily (as retrieval-heads does) \
            and scores it: ROUGE-1 recall x100 (Wu et al.), NeedleBench v1, exact needle recovery \
            x100; reported per condition with bootstrap 95% CIs, per length x depth cell, and as \
            paired differences target - controls and target - baseline. The perplexity of a held-out \
            haystack passage (the haystack's last --ppl-tokens tokens, which no trial reads) under \
            each condition shows whether the heads matter for retrieval specifically.

            --ablate-method uniform (default) is Wu et al.'s rule: the head's query is zeroed after RoPE, \
            so its attention is uniform. zero sets the head's output to 0, mean to its mean output over \
            held-out haystack text, bos puts all its attention on the first token, scale=F multiplies its \
            output by F. --ablate-phase both (default) ablates every position; decode leaves the prefill \
            untouched (the trials' conditions then share one prefill, which is faster). These are the \
            options, values and defaults of `headlight trace`; the old --method and --phase (and the \
            value all) still work with a warning. The run file is checkpointed after every trial and \
            resumed if interrupted.

            --causal N builds the causal head graph among the top N retrieval heads instead: the \
            conditions are the baseline and each of the N heads ablated alone, and every condition \
            also measures the N heads' retrieval scores (Wu et al.'s copy rule). An edge A -> B of \
            the graph is B's score with A ablated minus B's baseline score (group /ablation/causal).
            """)

    @OptionGroup var suite: NIAHSuiteOptions

    @Option(help: "Run file of `headlight retrieval-heads` with the head scores.")
    var scores: String

    @Option(help: "Ablate the K highest-scoring heads.")
    var top: Int?

    @Option(help: "Ablate these heads instead: comma-separated LAYER.HEAD.")
    var heads: String?

    @OptionGroup(title: "Ablation (same options as `headlight trace`)") var ablation: AblationVocabulary

    @Option(help: .hidden)
    var method: String?

    @Option(help: "Build the causal graph among the top N heads (single-head ablations; see above).")
    var causal: Int?

    @Option(help: "Random control sets of as many heads (default 3; none with --causal).")
    var controls: Int?

    @OptionGroup var seedBootstrap: SeedBootstrapOptions
    var seed: UInt64 { seedBootstrap.seed }
    var bootstrap: Int { seedBootstrap.bootstrap }

    @Option(help: .hidden)
    var phase: String?

    @Option(help: "Retrieval-head threshold for the control pool (default: the one in --scores).")
    var threshold: Double?


    @Option(
        name: .customLong("ppl-tokens"),
        help: ArgumentHelp(
            "Tokens of the held-out perplexity passage (default 1024, skipped with a note if the haystack is "
                + "too short; 0: skip)."))
    var pplTokens: Int?

    @Option(name: [.customShort("o"), .long], help: "Run file to write.")
    var output = "ablation.h5"

    @OptionGroup var sweepRun: SweepRunOptions

    @OptionGroup var sharding: ShardOptions

    @Option(
        name: .customLong("decode-batch"),
        help: ArgumentHelp(
            "Decode B consecutive (trial, condition) pairs together (one matrix-matrix product per step).",
            discussion: "Results are identical for every B; 1 decodes one pair at a time. Default: "
                + "\(RetrievalSweepOptions.defaultDecodeBatch)."))
    var decodeBatch = RetrievalSweepOptions.defaultDecodeBatch

    @OptionGroup var kvCache: KVCacheOption

    func validate() throws {
        try suite.validate()
        guard (1...64).contains(decodeBatch) else { throw ValidationError("--decode-batch must be in 1...64") }
        try sweepRun.validate()
        try sharding.validate()
        guard [top != nil, heads != nil, causal != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --top K, --heads L.H,... or --causal N")
        }
        if let k = top, k < 1 { throw ValidationError("--top must be at least 1") }
        if let n = causal {
            guard n >= 2 else { throw ValidationError("--causal must be at least 2 (a graph needs two heads)") }
            guard controls == nil || controls == 0 else {
                throw ValidationError("--controls is not used with --causal")
            }
        }
        try ablationChoice(warn: { _ in })
        guard (controls ?? 0) >= 0 else { throw ValidationError("--controls must be >= 0") }
        try seedBootstrap.validate()
        if let n = pplTokens, n != 0 && n < 2 { throw ValidationError("--ppl-tokens must be 0 or at least 2") }
        if let h = heads {
            guard !h.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ValidationError("--heads is empty: give at least one LAYER.HEAD, e.g. --heads 14.3,15.2")
            }
            for item in h.split(separator: ",", omittingEmptySubsequences: false) where HeadIndex(String(item)) == nil {
                throw ValidationError("--heads: \"\(item)\" is not LAYER.HEAD")
            }
        }
        try CommandChecks.outputFile(output)
    }

    func run() throws {
        try RunFileIsolation.check(scores) // --scores may come from anyone (docs/security.md)
        let json = sweepRun.json
        sharding.applyThreads()
        try kvCache.apply()
        let env = try LoadedModel.load(suite.model, hashInBackground: true)
        let contents = try RetrievalScoresInput.read(
            scores, option: "--scores", for: env, modelHint: "ablate with the model the scores come from")
        let c = env.model.config
        let thr = threshold ?? contents.threshold
        let target: [HeadIndex]
        let targetName: String
        let nControls = causal != nil ? 0 : (controls ?? 3)
        if let n = causal {
            guard n <= c.nLayers * c.nHeads else {
                throw CLIError("--causal \(n) exceeds the model's \(c.nLayers * c.nHeads) heads")
            }
            target = contents.scores.top(n).map(\.head)
            targetName = "causal_\(n)"
        } else if let k = top {
            guard k <= c.nLayers * c.nHeads else {
                throw CLIError("--top \(k) exceeds the model's \(c.nLayers * c.nHeads) heads")
            }
            target = contents.scores.top(k).map(\.head)
            targetName = "top_\(k)"
        } else {
            target = heads!.split(separator: ",").map { HeadIndex(String($0))! }
            for h in target where h.layer >= c.nLayers || h.head >= c.nHeads {
                throw CLIError("--heads: \(h) is outside the model (\(c.nLayers) layers x \(c.nHeads) heads)")
            }
            guard Set(target).count == target.count else { throw CLIError("--heads lists a head twice") }
            targetName = "heads"
        }
        let controlSets: [[HeadIndex]]
        do {
            controlSets = try AblationPlan.controlSets(
                scores: contents.scores, threshold: thr, target: target,
                count: nControls, seed: seed)
        } catch let e as RetrievalHeadsError {
            throw CLIError(wrapping: e, hint: "lower --top or --controls")
        }
        let conditions =
            causal != nil
            ? AblationPlan.causalConditions(sources: target)
            : AblationPlan.conditions(target: target, targetName: targetName, controls: controlSets)
        let probe = try suite.loadProbe(for: env, quiet: sweepRun.json)

        var options = AblationOptions()
        (options.method, options.phase) = try ablationChoice()
        options.seed = seed
        options.bootstrapResamples = bootstrap
        options.perplexityTokens = pplTokens ?? 1024
        options.reusePrefix = !sweepRun.noSharePrefix
        options.stopAfter = sweepRun.stopAfter
        options.decodeBatch = decodeBatch
        if causal != nil { options.causalTargets = target }
        var runner: AblationRunner
        do {
            runner = try AblationRunner(
                probe: probe, model: env.model, tokenizer: env.tokenizer,
                chatTemplate: try env.chatWrapper(needed: probe.suite.chat),
                conditions: conditions, options: options)
        } catch let p as NIAHTextCheck.Problem {
            throw CLIError(p.description, hint: "remove that text from the suite's haystack or needles")
        }
        let trials = try probe.cells.map { try runner.builder.trial($0) }
        try CommandChecks.niahTrials(trials, maxNewTokens: probe.suite.maxNewTokens, model: env.model)
        let n = options.perplexityTokens
        if n > 1 { try CommandChecks.context(n, env.model, "--ppl-tokens \(n)", hint: "lower --ppl-tokens") }
        if n > 1, try HeldOutPassage.make(probe: probe, tokenizer: env.tokenizer, count: n) == nil {
            let used = probe.suite.lengths.max() ?? 0
            let problem =
                "the haystack is too short for a held-out passage of \(n) tokens (the passage and the mean-ablation "
                + "reference before it need 2 x \(n) tokens after the first \(used), which the trials read)"
            if pplTokens != nil { throw ValidationError("--ppl-tokens \(n): \(problem); lower it, or 0 to skip") }
            FileHandle.standardError.write(Data("note: perplexity skipped: \(problem); see --ppl-tokens\n".utf8))
        }
        runner.attributes = [
            "scores_file": .string(URL(fileURLWithPath: scores).lastPathComponent),
            "threshold": .double(thr),
            "target": .string(targetName),
            "controls": .int(Int64(nControls))
        ]

        let plan = try runner.shardPlan(trials)
        let (shardInfo, output) = try sharding.plan(output: self.output, costs: plan.costs, order: plan.order)
        runner.options.shardItems = shardInfo?.trials
        let writer = try sweepRun.openRunFile(
            output, env: env, command: "ablate",
            plan: NIAHSuiteOptions.planLines(probe)
                + conditions.map { "condition \($0.name) \($0.kind.rawValue) \($0.headList)" }
                + [
                    "method \(options.method.description) phase \(options.phase.rawValue) seed \(options.seed) "
                        + "ppl_tokens \(options.perplexityTokens)"
                ],
            inputs: suite.inputFiles + [scores], shard: shardInfo)
        let result = try sweepRun.withProgress(title: "ablate", unit: "runs") {
            try runner.run(file: writer.file, progress: $0)
        }
        guard result.finished else {
            try writer.checkpoint()
            if json {
                print(
                    try JSONOutput.object([
                        "finished": false, "done": result.records.count,
                        "partial": writer.temporaryPath
                    ]))
            } else {
                FileHandle.standardError.write(
                    Data(
                        ("stopped after \(result.ranNow) unit(s); rerun the same command to "
                            + "resume from \(writer.temporaryPath)\n").utf8))
            }
            return
        }
        if shardInfo != nil { try writer.file.setAttribute("sweep_seconds", result.seconds) }
        try writer.finalize()
        if try sharding.finishMPI(output: self.output, json: json) { return }
        if let shard = shardInfo {
            let text =
                "ablate shard \(shard.spec) (\(shard.trials.count) of \(plan.order.count) plan items): "
                + "\(result.records.count) runs in \(Formatting.fixed(result.seconds, 1)) s; wrote \(output)\n"
                + "the summary is computed by `headlight merge` over all \(shard.spec.count) shards\n"
            if json {
                print(
                    try JSONOutput.object([
                        "output": output, "finished": true, "shard": shard.spec.description,
                        "plan_items": shard.trials, "runs": result.records.count, "seconds": result.seconds
                    ]))
            } else {
                print(TerminalText.escape(text, allowNewlines: true), terminator: "")
            }
            return
        }
        if json {
            print(try JSONOutput.object(Self.jsonObject(result, output: output, env: env, options: options)))
        } else {
            let text = Self.summary(result, output: output, env: env, probe: probe, options: options)
            print(TerminalText.escape(text, allowNewlines: true), terminator: "")
        }
    }

    /// --ablate-method / --ablate-phase with the deprecated --method / --phase folded in (warnings
    /// through `warn`). Ablation runs score generated answers, so prefill-only ablation is refused.
    @discardableResult
    func ablationChoice(
        warn: (String) -> Void = AblationVocabulary.warn
    ) throws -> (AblationMethod, InterventionPhase) {
        if let m = method { try AblationVocabulary.checkMethod(m, option: "--method") }
        if let p = phase { try AblationVocabulary.checkPhase(p, option: "--phase") }
        let r = try ablation.resolve(oldMethod: ("--method", method), oldPhase: ("--phase", phase), warn: warn)
        guard r.phase != .prefill else {
            throw ValidationError(
                "ablate does not support --ablate-phase prefill: the answers it scores are generated in the decode "
                    + "phase; use both or decode (or `headlight trace --ablate-phase prefill` for one prompt)")
        }
        return (r.method, r.phase)
    }

    static func ci(_ c: ConfidenceInterval) -> [String: Any] {
        ["estimate": c.estimate, "lower": c.lower, "upper": c.upper]
    }

    static func jsonObject(
        _ r: AblationResult, output: String, env: LoadedModel,
        options: AblationOptions
    ) -> [String: Any] {
        let metrics = AblationMetric.allCases.map(\.name)
        func diff(_ ds: [AblationDifference]) -> [String: Any] {
            Dictionary(
                uniqueKeysWithValues: ds.map { d in
                    (d.metric.name, ci(d.result.difference).merging(["p": d.result.pValue]) { $1 } as [String: Any])
                })
        }
        var o: [String: Any] = [
            "output": output, "model": env.displayName, "finished": true, "method": options.method.description,
            "phase": options.phase.rawValue, "trials": r.records.count / max(r.conditions.count, 1),
            "seconds": r.seconds,
            "conditions": r.conditions.map { s -> [String: Any] in
                [
                    "name": s.condition.name, "kind": s.condition.kind.rawValue,
                    "heads": s.condition.heads.map(\.description),
                    "perplexity": s.perplexity,
                    "metrics": Dictionary(uniqueKeysWithValues: zip(metrics, s.means.map(ci)))
                ]
            },
            "target_minus_controls": diff(r.targetVsControls),
            "target_minus_baseline": diff(r.targetVsBaseline)
        ]
        if let cm = r.controlMean { o["controls_mean"] = Dictionary(uniqueKeysWithValues: zip(metrics, cm.map(ci))) }
        if let h = r.heldOut { o["perplexity_passage"] = h.description }
        if let cs = r.causal {
            let b = r.conditions.firstIndex { $0.condition.kind == .baseline } ?? 0
            o["causal"] =
                [
                    "targets": cs.targets.map(\.description),
                    "baseline_scores": cs.scores[b],
                    "counted_trials": cs.counted,
                    "edges": r.conditions.indices.filter { r.conditions[$0].condition.kind == .single }.map {
                        i -> [String: Any] in
                        [
                            "source": r.conditions[i].condition.heads[0].description,
                            "score_change": zip(cs.scores[i], cs.scores[b]).map { $0 - $1 }
                        ]
                    }
                ] as [String: Any]
        }
        return o
    }

    static func summary(
        _ r: AblationResult, output: String, env: LoadedModel, probe: NIAHProbe,
        options: AblationOptions
    ) -> String {
        let f = Formatting.fixed
        func pad(_ s: String, _ n: Int) -> String {
            s.count >= n ? s + " " : s.padding(toLength: n, withPad: " ", startingAt: 0)
        }
        func ciText(_ c: ConfidenceInterval) -> String { "\(f(c.estimate, 1)) [\(f(c.lower, 1)), \(f(c.upper, 1))]" }
        let trials = r.records.count / max(r.conditions.count, 1)
        var s =
            "ablation on \(env.displayName), suite \(probe.suite.name) (\(trials) trials), method "
            + "\(options.method.description), "
        s += "phase \(options.phase.rawValue); time \(f(r.seconds, 1)) s\n"
        s +=
            pad("condition", 12) + pad("ROUGE-1 x100 [95% CI]", 24) + pad("NeedleBench v1", 24) + pad("exact x100", 24)
            + "perplexity\n"
        for c in r.conditions {
            s += pad(c.condition.name, 12) + c.means.map { pad(ciText($0), 24) }.joined() + f(c.perplexity, 2) + "\n"
        }
        if let cm = r.controlMean { s += pad("controls", 12) + cm.map { pad(ciText($0), 24) }.joined() + "\n" }
        func diffLine(_ label: String, _ ds: [AblationDifference]) {
            guard !ds.isEmpty else { return }
            s += pad(label, 12) + ds.map { pad(ciText($0.result.difference), 24) }.joined() + "\n"
        }
        diffLine("target-ctrl", r.targetVsControls)
        diffLine("target-base", r.targetVsBaseline)
        for c in r.conditions where !c.condition.heads.isEmpty {
            s += "  \(c.condition.name): \(c.condition.headList)\n"
        }
        if let h = r.heldOut { s += "perplexity passage: \(h.description)\n" }
        if let cs = r.causal, let b = r.conditions.firstIndex(where: { $0.condition.kind == .baseline }) {
            s += "causal graph: retrieval score change of each target (column) with the row's head ablated alone\n"
            s +=
                pad("ablated", 12) + cs.targets.map { pad($0.description, 8) }.joined()
                + "still right (of the baseline's counted)\n"
            s += pad("(baseline)", 12) + cs.scores[b].map { pad(f($0, 3), 8) }.joined() + "\(cs.counted[b])\n"
            for i in r.conditions.indices where r.conditions[i].condition.kind == .single {
                s +=
                    pad(r.conditions[i].condition.heads[0].description, 12)
                    + zip(cs.scores[i], cs.scores[b]).map { pad(($0 - $1 >= 0 ? "+" : "") + f($0 - $1, 3), 8) }.joined()
                    + "\(cs.counted[i])\n"
            }
        }
        s += "wrote \(output)\n"
        return s
    }
}
