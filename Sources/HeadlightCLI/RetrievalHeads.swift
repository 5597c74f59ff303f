import Analysis
import ArgumentParser
import Foundation
import GGUF
import Inference
import TraceStore

/// `headlight retrieval-heads`: Wu et al.'s retrieval-head detection on a NIAH suite.
struct RetrievalHeads: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrieval-heads",
        abstract: "Find retrieval heads (Wu et al. 2024) with a needle-in-a-haystack sweep.",
        discussion: """
            Every trial of the suite (needles x lengths x depths, probes/README.md) is built as in \
            Wu et al.'s retrieval_head_detection.py, prefilled on prompt[:-1] and decoded greedily \
            from the last prompt token (at most max_new_tokens steps, stopping after a token \
            containing a newline or an end-of-generation token). At each step the attention row of \
            the fed token is captured for every layer and query head; a head whose top-1 attended \
            key lies in the needle span and holds the token just generated gains 1/n (n = span \
            length). Trials whose answer has ROUGE-1 recall x100 > 50 count; a head's score is its \
            mean over counted trials, and heads above --threshold (0.1) are retrieval heads.

            The run file (-o) is written atomically and checkpointed after every trial: if the run \
            is killed, the same command resumes from <output>.partial and gives identical final \
            results (--restart discards it). Consecutive trials reuse the KV cache of their shared \
            prompt prefix (--no-share-prefix turns that off; results are the same).

            --export-trials writes the prompts (token ids) and needle spans as JSON for the \
            transformers reference script (Tests/Fixtures/retrieval/reference_detect.py) and exits.
            """)

    @OptionGroup var suite: NIAHSuiteOptions

    @Option(name: [.customShort("o"), .long], help: "Run file to write.")
    var output = "retrieval_heads.h5"

    @Option(help: "Heads scoring above this are retrieval heads.")
    var threshold = RetrievalCopyRule.defaultHeadThreshold

    @Option(help: "List the N highest-scoring heads.")
    var top = 10

    @OptionGroup var sweepRun: SweepRunOptions

    @OptionGroup var sharding: ShardOptions

    @Option(
        name: .customLong("export-trials"),
        help: "Write the trials' prompt ids and needle spans to this JSON file and exit.")
    var exportTrials: String?

    @Option(
        name: .customLong("decode-batch"),
        help: ArgumentHelp(
            "Decode B consecutive trials together (one matrix-matrix product per step over B KV caches).",
            discussion: "Results are identical for every B; 1 decodes one trial at a time. Default: "
                + "\(RetrievalSweepOptions.defaultDecodeBatch)."))
    var decodeBatch = RetrievalSweepOptions.defaultDecodeBatch

    @OptionGroup var kvCache: KVCacheOption

    func validate() throws {
        try suite.validate()
        guard threshold.isFinite else { throw ValidationError("--threshold must be a number") }
        guard top >= 0 else { throw ValidationError("--top must be >= 0") }
        guard (1...64).contains(decodeBatch) else { throw ValidationError("--decode-batch must be in 1...64") }
        try sweepRun.validate()
        try CommandChecks.outputFile(output)
        if let exportTrials { try CommandChecks.outputFile(exportTrials, option: "--export-trials") }
        try sharding.validate()
    }

    func run() throws {
        let json = sweepRun.json
        sharding.applyThreads()
        try kvCache.apply()
        let env = try LoadedModel.load(suite.model, hashInBackground: exportTrials == nil)
        let probe = try suite.loadProbe(for: env, quiet: json)
        var options = RetrievalSweepOptions()
        options.threshold = threshold
        options.reusePrefix = !sweepRun.noSharePrefix
        options.sharedPrefixOrder = !sweepRun.noSharePrefix
        options.stopAfter = sweepRun.stopAfter
        options.decodeBatch = decodeBatch
        var sweep: RetrievalHeadSweep
        do {
            sweep = try RetrievalHeadSweep(
                probe: probe, model: env.model, tokenizer: env.tokenizer,
                chatTemplate: try env.chatWrapper(needed: probe.suite.chat), options: options)
        } catch let p as NIAHTextCheck.Problem {
            throw CLIError(p.description, hint: "remove that text from the suite's haystack or needles")
        }
        let trials = try sweep.buildTrials()
        if !json {
            for line in Self.needleSpanNotes(trials) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
        }
        if let path = exportTrials {
            try RetrievalReferenceExport.write(
                trials: trials, probe: probe, tokenizer: env.tokenizer, model: env.url,
                to: URL(fileURLWithPath: path))
            if !json {
                print("wrote \(trials.count) trials to \(path)")
            } else {
                print("{\"exported\":\(trials.count),\"path\":\(JSONOutput.string(path))}")
            }
            return
        }
        try CommandChecks.niahTrials(trials, maxNewTokens: probe.suite.maxNewTokens, model: env.model)

        let (shardInfo, output) = try sharding.plan(
            output: self.output, costs: sweep.shardCosts(trials), order: sweep.executionOrder(trials))
        sweep.options.trialSubset = shardInfo?.trials
        let writer = try sweepRun.openRunFile(
            output, env: env, command: "retrieval-heads",
            plan: NIAHSuiteOptions.planLines(probe), inputs: suite.inputFiles, shard: shardInfo)
        let result = try sweepRun.withProgress(title: "retrieval-heads") {
            try sweep.run(file: writer.file, trials: trials, progress: $0)
        }
        guard result.finished else {
            try writer.checkpoint()
            let planned = sweep.options.trialSubset?.count ?? trials.count
            let msg =
                "stopped after \(result.ranNow) trial(s) (\(result.records.count) of \(planned) done); "
                + "rerun the same command to resume from \(writer.temporaryPath)"
            if json {
                print(
                    try JSONOutput.object([
                        "finished": false, "done": result.records.count,
                        "trials": planned, "partial": writer.temporaryPath
                    ]))
            } else {
                FileHandle.standardError.write(Data((msg + "\n").utf8))
            }
            return
        }
        try writer.file.setAttribute("sweep_seconds", result.seconds)
        try writer.finalize()
        if try sharding.finishMPI(output: self.output, json: json) { return }
        if json {
            print(try JSONOutput.object(Self.jsonObject(result, output: output, probe: probe, env: env, top: top)))
        } else {
            let text = Self.summary(result, output: output, probe: probe, env: env, top: top)
            print(TerminalText.escape(text, allowNewlines: true), terminator: "")
        }
    }

    static func jsonObject(
        _ r: RetrievalSweepResult, output: String, probe: NIAHProbe, env: LoadedModel,
        top: Int
    ) -> [String: Any] {
        func head(_ x: (head: HeadIndex, score: Double)) -> [String: Any] {
            ["head": x.head.description, "layer": x.head.layer, "index": x.head.head, "score": x.score]
        }
        return [
            "output": output, "model": env.displayName, "suite": probe.suite.name, "finished": true,
            "trials": r.records.count, "located": r.records.filter(\.located).count,
            "successful": r.records.filter(\.success).count, "counted": r.scores.countedTrials,
            "resumed_trials": r.resumedTrials, "seconds": r.seconds,
            "prefill_seconds": r.prefillSeconds, "decode_seconds": r.decodeSeconds,
            "n_layers": r.scores.layers, "n_heads": r.scores.heads, "threshold": r.threshold,
            "retrieval_heads": r.retrievalHeads.map(head), "top": r.scores.top(top).map(head),
            "mean_rouge1_recall": Statistics.mean(r.records.map(\.rouge))
        ]
    }

    /// Notes on trials whose needle span the token-set rule did not find: located by the
    /// needle's text instead, or not located at all (with the reason).
    static func needleSpanNotes(_ trials: [NIAHTrial]) -> [String] {
        func names(_ rule: NeedleSpanRule) -> [String] {
            trials.filter { $0.needleSpanRule == rule }.map {
                TerminalText.escape("\($0.needle.id)/\($0.cell.length)/\(Formatting.fixed($0.cell.depth, 0))")
            }
        }
        var notes: [String] = []
        let byText = names(.text)
        if !byText.isEmpty {
            notes.append(
                "note: needle span located by its text in \(byText.count) trial(s) (\(byText.joined(separator: ", "))): "
                    + "the token-set rule (Wu et al.'s find_needle_idx) found no window because the needle's edge "
                    + "tokens differ in context (e.g. \"Because\" vs \" because\", \".\" merged with the next character)"
            )
        }
        let missing = names(.notFound)
        if !missing.isEmpty {
            notes.append(
                "note: needle span not found in \(missing.count) trial(s) (\(missing.joined(separator: ", "))): "
                    + "the real_needle text does not occur in the prompt (ASCII case ignored); "
                    + "they are run and recorded but cannot score heads")
        }
        return notes
    }

    static func summary(
        _ r: RetrievalSweepResult, output: String, probe: NIAHProbe, env: LoadedModel,
        top: Int
    ) -> String {
        let f = Formatting.fixed
        var s = "retrieval heads of \(env.displayName) on suite \(probe.suite.name)\n"
        s += "trials: \(r.records.count) (\(r.records.filter(\.located).count) with the needle span located, "
        s += "\(r.records.filter(\.success).count) answered correctly, \(r.scores.countedTrials) counted)"
        s += r.resumedTrials > 0 ? "; \(r.resumedTrials) resumed from a partial run\n" : "\n"
        s += "mean ROUGE-1 recall x100: \(f(Statistics.mean(r.records.map(\.rouge)), 1)); "
        s +=
            "time \(f(r.seconds, 1)) s "
            + "(prefill \(f(r.prefillSeconds, 1)) s, decode \(f(r.decodeSeconds, 1)) s)\n"
        let above = r.retrievalHeads
        s += "heads > \(f(r.threshold, 2)): \(above.count) of \(r.scores.layers * r.scores.heads)"
        s +=
            above.isEmpty
            ? "\n"
            : " (" + above.prefix(20).map { $0.head.description }.joined(separator: ", ")
                + (above.count > 20 ? ", ..." : "") + ")\n"
        if top > 0 {
            s += "top \(min(top, r.scores.layers * r.scores.heads)) heads:\n"
            s += "  rank  head     score\n"
            for (i, x) in r.scores.top(top).enumerated() {
                s +=
                    "  " + String(i + 1).padding(toLength: 6, withPad: " ", startingAt: 0)
                    + x.head.description.padding(toLength: 9, withPad: " ", startingAt: 0) + f(x.score, 4) + "\n"
            }
        }
        s += "wrote \(output)\n"
        return s
    }
}
