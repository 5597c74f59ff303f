import Analysis
import ArgumentParser
import Foundation
import Inference
import TraceStore

/// `headlight kv-policy`: head-aware KV-cache policies (full KV on a few heads, a window + sinks,
/// top-K or nothing on the rest), rescored on a NIAH suite and a held-out passage, with the memory
/// each policy needs.
struct KVPolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv-policy",
        abstract: "Rescore a NIAH suite and a held-out passage with head-aware KV-cache policies.",
        discussion: """
            Every head keeps its full KV cache or gets --rest, the policy of the other heads: \
            window:W+S (the W most recent keys plus S attention sinks, StreamingLLM style; --window \
            W1,W2,... with --sinks S sweeps W), topk:K (the K highest-scoring keys per query) or drop \
            (no cache, output 0). Policies act in prefill and decode as a server that evicts keys would: \
            a windowed head never sees an evicted key, in the prompt either.

            Conditions: baseline (every head full); uniform (the rest policy on every head); top N \
            (the N best heads of --full-heads-from, a retrieval-heads run, for each N of --top; or the \
            heads scoring above --threshold; or --heads L.H,...); and --controls seeded random sets of \
            N heads drawn as `ablate` draws them (heads scoring <= the threshold, not in the top N). \
            Each condition is scored like `ablate`: ROUGE-1 recall x100, NeedleBench v1 and exact \
            recovery per trial, bootstrap CIs, per length x depth, paired differences top-N - random and \
            condition - baseline; the held-out passage's perplexity (the haystack's last --ppl-tokens \
            tokens, which no trial reads) with a block-bootstrap CI; and the KV-cache bytes the policy \
            needs at the run's context and at 32k/128k tokens (fp16 cache; the formula is stored in the \
            run file). The run file is checkpointed after every trial and resumed if interrupted.
            """)

    @OptionGroup var suite: NIAHSuiteOptions

    @Option(name: .customLong("full-heads-from"), help: "Run file of `headlight retrieval-heads` with the head scores.")
    var fullHeadsFrom: String?

    @Option(help: "Comma-separated N: full KV on the N highest-scoring heads (one condition set per N).")
    var top: String?

    @Option(help: "Full KV on the heads scoring above this (instead of --top).")
    var threshold: Double?

    @Option(help: "Full KV on these heads instead: comma-separated LAYER.HEAD.")
    var heads: String?

    @Option(help: "Policy of the other heads: window, topk or drop.")
    var rest = "window"

    @Option(help: "Comma-separated window sizes W (rest window).")
    var window = "128,512"

    @Option(help: "Attention-sink tokens S kept by a window.")
    var sinks = 4

    @Option(help: "Comma-separated K (rest topk).")
    var topk: String?

    @Option(help: "Random control sets of N heads per N (default 2 with --full-heads-from; needs it).")
    var controls: Int?

    @OptionGroup var seedBootstrap: SeedBootstrapOptions
    var seed: UInt64 { seedBootstrap.seed }
    var bootstrap: Int { seedBootstrap.bootstrap }


    @Option(
        name: .customLong("ppl-tokens"),
        help: "Tokens of the held-out perplexity passage (0: skip).")
    var pplTokens = 2048

    @Option(name: [.customShort("o"), .long], help: "Run file to write.")
    var output = "kv_policy.h5"

    @OptionGroup var sweepRun: SweepRunOptions

    @OptionGroup var kvCache: KVCacheOption

    func validate() throws {
        try suite.validate()
        try sweepRun.validate()
        guard [top != nil, threshold != nil, heads != nil].filter({ $0 }).count <= 1 else {
            throw ValidationError("give at most one of --top N,..., --threshold t or --heads L.H,...")
        }
        if top != nil || threshold != nil {
            guard fullHeadsFrom != nil else {
                throw ValidationError("--top/--threshold need --full-heads-from detect.h5")
            }
        }
        if heads == nil && top == nil && threshold == nil && fullHeadsFrom != nil {
            throw ValidationError("--full-heads-from needs --top N,... or --threshold t")
        }
        if let t = top { _ = try Self.ints(t, "--top", min: 1) }
        guard (controls ?? 0) >= 0 else { throw ValidationError("--controls must be >= 0") }
        guard (controls ?? 0) == 0 || fullHeadsFrom != nil else {
            throw ValidationError(
                "--controls needs --full-heads-from (random heads are drawn from its non-retrieval heads)")
        }
        try seedBootstrap.validate()
        guard pplTokens == 0 || pplTokens >= 2 else { throw ValidationError("--ppl-tokens must be 0 or at least 2") }
        _ = try restPolicies()
        if let h = heads {
            for item in h.split(separator: ",", omittingEmptySubsequences: false) where HeadIndex(String(item)) == nil {
                throw ValidationError("--heads: \"\(item)\" is not LAYER.HEAD")
            }
        }
        try CommandChecks.outputFile(output)
    }

    static func ints(_ text: String, _ option: String, min lo: Int) throws -> [Int] {
        try text.split(separator: ",", omittingEmptySubsequences: false).map {
            guard let v = Int($0.trimmingCharacters(in: .whitespaces)), v >= lo else {
                throw ValidationError("\(option): \"\($0)\" is not an integer >= \(lo)")
            }
            return v
        }
    }

    /// The rest policies of the sweep, checked (W >= 1, S >= 0, K >= 1).
    func restPolicies() throws -> [HeadKVPolicy] {
        do {
            switch rest.lowercased() {
            case "window":
                guard sinks >= 0 else { throw ValidationError("--sinks must be >= 0 (got \(sinks))") }
                return try Self.ints(window, "--window", min: Int.min).map {
                    let p = HeadKVPolicy.window(size: $0, sinks: sinks)
                    try p.validate()
                    return p
                }
            case "topk":
                guard let k = topk else { throw ValidationError("--rest topk needs --topk K,...") }
                return try Self.ints(k, "--topk", min: Int.min).map {
                    let p = HeadKVPolicy.topk($0)
                    try p.validate()
                    return p
                }
            case "drop": return [.drop]
            default:
                throw ValidationError("--rest must be window, topk or drop (got \"\(rest)\")")
            }
        } catch let e as KVPolicyError {
            throw ValidationError(e.errorDescription ?? "\(e)")
        }
    }

    func run() throws {
        let json = sweepRun.json
        try kvCache.apply()
        let env = try LoadedModel.load(suite.model)
        let c = env.model.config
        var scores: RetrievalHeadScores?
        var thr = RetrievalCopyRule.defaultHeadThreshold
        if let path = fullHeadsFrom {
            try RunFileIsolation.check(path)
            let contents = try RetrievalScoresInput.read(
                path, option: "--full-heads-from", for: env, modelHint: "use the retrieval-heads run of this model")
            scores = contents.scores
            thr = contents.threshold
        }
        var counts: [Int] = []
        var explicit: [HeadIndex]?
        if let t = top {
            counts = try Self.ints(t, "--top", min: 1)
            if let big = counts.first(where: { $0 > c.nLayers * c.nHeads }) {
                throw CLIError("--top \(big) exceeds the model's \(c.nLayers * c.nHeads) heads")
            }
        } else if let t = threshold {
            explicit = scores!.above(t).map(\.head)
            if explicit!.isEmpty {
                throw CLIError("no head scores above --threshold \(t) in \(fullHeadsFrom!)", hint: "lower --threshold")
            }
            thr = t
        } else if let h = heads {
            let hs = h.split(separator: ",").map { HeadIndex(String($0))! }
            for x in hs where x.layer >= c.nLayers || x.head >= c.nHeads {
                throw CLIError(
                    "--heads: unknown head \(x): the model has \(c.nLayers) layers x \(c.nHeads) heads",
                    hint: "heads are LAYER.HEAD with LAYER in 0..<\(c.nLayers), HEAD in 0..<\(c.nHeads)")
            }
            guard Set(hs).count == hs.count else { throw CLIError("--heads lists a head twice") }
            explicit = hs
        }
        let rests = try restPolicies()
        let conditions: [KVPolicyCondition]
        do {
            conditions = try KVPolicyPlan.conditions(
                scores: scores, counts: counts, explicit: explicit, rests: rests,
                controls: scores == nil ? 0 : (controls ?? 2),
                threshold: thr, seed: seed)
        } catch let e as RetrievalHeadsError {
            throw CLIError(wrapping: e, hint: "lower --top or --controls")
        }
        let probe = try suite.loadProbe(for: env, quiet: json)
        var options = KVPolicyOptions()
        options.seed = seed
        options.bootstrapResamples = bootstrap
        options.perplexityTokens = pplTokens
        options.reusePrefix = !sweepRun.noSharePrefix
        options.stopAfter = sweepRun.stopAfter
        let runner: KVPolicyRunner
        do {
            runner = try KVPolicyRunner(
                probe: probe, model: env.model, tokenizer: env.tokenizer,
                chatTemplate: try env.chatWrapper(needed: probe.suite.chat), conditions: conditions, options: options)
        } catch let p as NIAHTextCheck.Problem {
            throw CLIError(p.description, hint: "remove that text from the suite's haystack or needles")
        }
        let trials = try probe.cells.map { try runner.builder.trial($0) }
        try CommandChecks.niahTrials(trials, maxNewTokens: probe.suite.maxNewTokens, model: env.model)
        let shortest = trials.map(\.promptTokens.count).min() ?? 0
        for r in rests {
            do { try r.validate(context: shortest) } catch let e as KVPolicyError {
                throw CLIError(
                    "\(e.errorDescription ?? "\(e)") (the shortest trial prompt)",
                    hint: e.recoverySuggestion ?? "")
            }
        }
        if pplTokens > 1 {
            try CommandChecks.context(pplTokens, env.model, "--ppl-tokens \(pplTokens)", hint: "lower --ppl-tokens")
            if try HeldOutPassage.make(probe: probe, tokenizer: env.tokenizer, count: pplTokens) == nil {
                throw ValidationError(
                    "--ppl-tokens \(pplTokens): the haystack is too short for a held-out passage after the tokens "
                        + "the trials read; lower it, or 0 to skip")
            }
        }
        var attrs: [String: H5AttributeValue] = ["threshold": .double(thr)]
        if let p = fullHeadsFrom { attrs["scores_file"] = .string(URL(fileURLWithPath: p).lastPathComponent) }
        runner.attributes = attrs
        let writer = try sweepRun.openRunFile(
            output, env: env, command: "kv-policy",
            plan: NIAHSuiteOptions.planLines(probe)
                + conditions.map { "condition \($0.name) \($0.kind.rawValue) \($0.rest) \($0.headList)" }
                + ["seed \(seed) ppl_tokens \(pplTokens) bootstrap \(bootstrap)"],
            inputs: suite.inputFiles + [fullHeadsFrom].compactMap { $0 })
        let result = try sweepRun.withProgress(title: "kv-policy", unit: "runs") {
            try runner.run(file: writer.file, progress: $0)
        }
        guard result.finished else {
            try writer.checkpoint()
            if json {
                print(
                    try JSONOutput.object([
                        "finished": false, "done": result.records.count, "partial": writer.temporaryPath
                    ]))
            } else {
                FileHandle.standardError.write(
                    Data(
                        ("stopped after \(result.ranNow) unit(s); rerun the same command to resume from "
                            + "\(writer.temporaryPath)\n").utf8))
            }
            return
        }
        try writer.finalize()
        if json {
            print(try JSONOutput.object(Self.jsonObject(result, output: output, env: env)))
        } else {
            print(
                TerminalText.escape(Self.summary(result, output: output, env: env), allowNewlines: true), terminator: ""
            )
        }
    }

    static func jsonObject(_ r: KVPolicyResult, output: String, env: LoadedModel) -> [String: Any] {
        let metrics = AblationMetric.allCases.map(\.name)
        func ci(_ c: ConfidenceInterval) -> [String: Any] {
            ["estimate": c.estimate, "lower": c.lower, "upper": c.upper]
        }
        return [
            "output": output, "model": env.displayName, "finished": true, "seconds": r.seconds,
            "context_tokens": r.contextTokens,
            "conditions": r.conditions.map { s -> [String: Any] in
                var o: [String: Any] = [
                    "name": s.condition.name, "kind": s.condition.kind.rawValue, "rest": s.condition.rest.description,
                    "full_heads": s.condition.fullHeads.map(\.description),
                    "perplexity": Foundation.exp(s.meanNLL),
                    "perplexity_ci": [Foundation.exp(s.nllLower), Foundation.exp(s.nllUpper)],
                    "kv_bytes": s.kvBytes,
                    "metrics": Dictionary(uniqueKeysWithValues: zip(metrics, s.means.map(ci)))
                ]
                if let v = s.vsRandom {
                    o["minus_random"] = Dictionary(
                        uniqueKeysWithValues: zip(metrics, v.map { ci($0.difference).merging(["p": $0.pValue]) { $1 } })
                    )
                }
                return o
            }
        ]
    }

    static func summary(_ r: KVPolicyResult, output: String, env: LoadedModel) -> String {
        let f = Formatting.fixed
        func pad(_ s: String, _ n: Int) -> String {
            s.count >= n ? s + " " : s.padding(toLength: n, withPad: " ", startingAt: 0)
        }
        func mib(_ b: Int) -> String { f(Double(b) / 1_048_576, 2) }
        let trials = r.records.count / max(r.conditions.count, 1)
        var s = "kv-policy on \(env.displayName): \(trials) trials x \(r.conditions.count) conditions; "
        s += "time \(f(r.seconds, 1)) s\n"
        s +=
            pad("condition", 26) + pad("ROUGE-1 x100 [95% CI]", 22) + pad("exact x100", 8) + pad("ppl [95% CI]", 22)
            + pad("KV MiB@\(r.contextTokens)", 14) + pad("@32k", 9) + pad("@128k", 9) + "top-N - random (ROUGE)\n"
        for c in r.conditions {
            let m = c.means[0]
            s += pad(c.condition.name, 26) + pad("\(f(m.estimate, 1)) [\(f(m.lower, 1)), \(f(m.upper, 1))]", 22)
            s += pad(f(c.means[2].estimate, 1), 8)
            s += pad(
                "\(f(Foundation.exp(c.meanNLL), 2)) [\(f(Foundation.exp(c.nllLower), 2)), "
                    + "\(f(Foundation.exp(c.nllUpper), 2))]", 22)
            s += pad(mib(c.kvBytes[0]), 14) + pad(mib(c.kvBytes[1]), 9) + pad(mib(c.kvBytes[2]), 9)
            if let d = c.vsRandom?[0] {
                s += "\(f(d.difference.estimate, 1)) [\(f(d.difference.lower, 1)), \(f(d.difference.upper, 1))]"
            }
            s += "\n"
        }
        if let h = r.heldOut { s += "perplexity passage: \(h.description)\n" }
        s += "KV memory: \(KVPolicyRunFile.memoryFormula) (bytes_per_value 2, fp16)\n"
        s += "wrote \(output)\n"
        return s
    }
}
