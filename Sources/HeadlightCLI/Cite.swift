import Analysis
import ArgumentParser
import Foundation
import Inference
import TraceStore

/// `headlight cite`: attention vs citations (methods.md section 3).
struct Cite: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cite",
        abstract: "Measure whether attention agrees with citations to numbered passages.",
        discussion: """
            Each probe item (JSONL, probes/README.md "Citation set") lists numbered passages and a \
            question. Items with an answer such as "words [3]." are teacher-forced (prompt and answer \
            in one prefill); items without one, or all items with --mode generate, are answered by \
            greedy decoding and the citations [k] are parsed from the output. For every cited \
            statement the attention mass of each head on each passage's tokens is averaged over the \
            query positions that produce the statement (the citation marker excluded); captured as \
            span masses, so memory does not grow with the context.

            Reported: agreement (the most-attended passage is the cited one) for the mean over all \
            heads, over a retrieval-head set (--retrieval-heads, a `headlight retrieval-heads` run \
            file) and per head; Spearman and point-biserial correlations between passage mass and \
            the citation indicator; for deliberately wrong citations, whether attention follows the \
            citation or the true source; and L-CiteEval citation recall / precision with the \
            exact-match judge (the answer text found in the cited passage; not NLI entailment).
            """)

    @Option(
        name: [.customShort("m"), .long],
        help: "Path to a .gguf file (default: $HEADLIGHT_MODEL or the cached SmolLM2-135M-Instruct).")
    var model: String?

    @Option(help: "Probe file (JSONL).")
    var probes = "probes/citation/default.jsonl"

    @Option(help: "auto (teacher-force items with an answer, generate the rest), teacher, or generate.")
    var mode = "auto"

    @Option(
        name: .customLong("retrieval-heads"), help: "A retrieval-heads run file: also read out the mean over its heads."
    )
    var retrievalHeads: String?

    @Option(help: "Use the K best heads of --retrieval-heads (default: those above its threshold).")
    var top: Int?

    @Option(help: "Run only the first N items.")
    var limit: Int?

    @Option(
        name: .customLong("pad-to"),
        help: "Add distractor passages (from the probe file) until each prompt has at least T tokens.")
    var padTo: Int?

    @Option(name: .customLong("max-new-tokens"), help: "Greedy decoding budget per generated answer.")
    var maxNewTokens = 64

    @Option(
        name: .customLong("decode-batch"),
        help: ArgumentHelp(
            "Generate the answers of B consecutive items together (one matrix-matrix product per step).",
            discussion: "Results are identical for every B; 1 generates one at a time. Default: 4."))
    var decodeBatch = 4

    @Flag(name: .customLong("no-chat"), help: "Do not wrap the prompt in the model's chat template.")
    var noChat = false

    @Option(help: "Seed for padding layouts and bootstrap resampling.")
    var seed: UInt64 = 0

    @Option(help: "Bootstrap resamples for confidence intervals.")
    var resamples = Statistics.defaultBootstrapResamples

    @Option(name: .customLong("show-heads"), help: "List the N best heads in the summary.")
    var showHeads = 10

    @Option(name: [.customShort("o"), .long], help: "Run file to write.")
    var output = "cite.h5"

    @Flag(help: "Print a JSON summary on stdout instead of text.")
    var json = false

    @Flag(name: .customLong("no-progress"), help: "No progress on stderr.")
    var noProgress = false

    @Flag(help: "Discard an interrupted run (<output>.partial) instead of resuming it.")
    var restart = false

    @Option(name: .customLong("stop-after"), help: .hidden)
    var stopAfter: Int?

    @OptionGroup var sharding: ShardOptions

    @OptionGroup var kvCache: KVCacheOption

    func validate() throws {
        guard CitationRunOptions.Mode(rawValue: mode) != nil else {
            throw ValidationError("--mode must be auto, teacher or generate (got '\(mode)')")
        }
        if let k = top, k < 1 { throw ValidationError("--top must be at least 1") }
        guard (1...64).contains(decodeBatch) else { throw ValidationError("--decode-batch must be in 1...64") }
        if top != nil && retrievalHeads == nil { throw ValidationError("--top needs --retrieval-heads") }
        if let n = limit, n < 1 { throw ValidationError("--limit must be at least 1") }
        if let t = padTo, t < 1 { throw ValidationError("--pad-to must be at least 1") }
        guard maxNewTokens >= 1 else { throw ValidationError("--max-new-tokens must be at least 1") }
        guard resamples >= 1 else { throw ValidationError("--resamples must be at least 1") }
        guard showHeads >= 0 else { throw ValidationError("--show-heads must be >= 0") }
        if let k = stopAfter, k < 0 { throw ValidationError("--stop-after must be >= 0") }
        try CommandChecks.outputFile(output)
        try sharding.validate()
    }

    /// What determines the records (for `plan_sha256`): the options that change them and the
    /// bytes of the probe file and the retrieval-heads file.
    var planLines: [String] {
        [
            "cite mode \(mode) limit \(limit.map(String.init) ?? "all") pad_to \(padTo.map(String.init) ?? "none") "
                + "max_new_tokens \(maxNewTokens) chat \(!noChat) seed \(seed) resamples \(resamples) "
                + "top \(top.map(String.init) ?? "threshold")"
        ]
    }

    func run() throws {
        sharding.applyThreads()
        var items: [CitationItem]
        do { items = try CitationProbeFile.load(path: probes) } catch let e as CitationError {
            throw CLIError(
                wrapping: e,
                hint: probes == "probes/citation/default.jsonl" && !FileManager.default.fileExists(atPath: probes)
                    ? "run from the repository root or pass --probes PATH" : nil)
        }
        let pool = items.flatMap(\.passages)
        if let n = limit { items = Array(items.prefix(n)) }
        let m = CitationRunOptions.Mode(rawValue: mode)!
        if m == .teacher, let bad = items.first(where: { $0.answer == nil }) {
            throw CLIError(
                "\(probes):\(bad.line): item '\(bad.id)' has no 'answer' to teacher-force",
                hint: "use --mode auto (generate for such items) or --mode generate")
        }
        if let r = retrievalHeads, !FileManager.default.fileExists(atPath: r) {
            throw CLIError(
                "--retrieval-heads: no such file: \(r)", hint: "run `headlight retrieval-heads -o \(r)` first")
        }
        try kvCache.apply()
        let env = try LoadedModel.load(model)
        let c = env.model.config
        if let k = top, k > c.nLayers * c.nHeads {
            throw ValidationError(
                "--top \(k) exceeds the model's \(c.nLayers * c.nHeads) heads (\(c.nLayers) layers x \(c.nHeads))")
        }
        var rhSet: RetrievalHeadSet?
        if let r = retrievalHeads {
            do { rhSet = try RetrievalHeadSet.load(path: r, top: top, layers: c.nLayers, heads: c.nHeads) } catch let e
                as CitationError
            {
                throw CLIError(wrapping: e)
            }
        }
        var options = CitationRunOptions()
        options.mode = m
        options.maxNewTokens = maxNewTokens
        options.decodeBatch = decodeBatch
        options.padTo = padTo
        options.chat = !noChat
        options.seed = seed
        if options.chat && env.chatTemplate == nil {
            throw CLIError(
                "\(env.url.lastPathComponent) has no chat template Headlight can render", hint: "pass --no-chat")
        }
        let runner = CitationRunner(
            model: env.model, tokenizer: env.tokenizer, chatTemplate: env.chatTemplate, options: options)
        let parameters = CitationRunFile.Parameters(
            probes: probes, mode: mode, padTo: padTo, maxNewTokens: maxNewTokens, chat: options.chat,
            instruction: options.instruction, retrievalFile: retrievalHeads, retrievalRule: rhSet?.rule,
            judge: runner.judge, seed: seed, resamples: resamples)
        let inputs = [probes] + (retrievalHeads.map { [$0] } ?? [])
        let progress = CiteProgress(enabled: !noProgress)
        var shard: ShardInfo?
        var output = self.output
        let writer: RunFileWriter
        let recorded: CitationProgressFile
        do {
            if sharding.shard != nil || sharding.mpi {
                (shard, output) = try sharding.plan(
                    output: output, costs: try runner.tokenCosts(items, pool: pool), order: Array(items.indices))
            }
            // Checkpointed after every item in <output>.partial; a rerun resumes after the last one.
            writer = try SweepRunOptions.openRunFile(
                output, env: env, command: "cite", plan: planLines, inputs: inputs, shard: shard, restart: restart)
            do {
                recorded = try CitationProgressFile(
                    file: writer.file, parameters: parameters, layers: c.nLayers, heads: c.nHeads,
                    retrievalSet: rhSet?.heads ?? [])
            } catch {
                writer.close()
                throw error
            }
            let planned = shard?.trials ?? Array(items.indices)
            var ran = 0
            do {
                _ = try runner.run(
                    items, pool: pool, only: Array(planned.dropFirst(recorded.done)),
                    record: { r in
                        try recorded.append(r)
                        try writer.checkpoint()
                        ran += 1
                        if let k = stopAfter, ran >= k, recorded.done < planned.count { throw CiteStopped() }
                    },
                    progress: { done, total, id in progress.update(done, total, id) })
            } catch {
                // Nothing ran (e.g. an item too long for the context): no checkpoint to keep.
                if ran == 0 && !writer.resumed { try? writer.abandon() } else { writer.close() }
                throw error
            }
        } catch is CiteStopped {
            progress.finish()
            let line =
                "stopped after \(stopAfter ?? 0) item(s); rerun the same command to resume from \(output).partial"
            FileHandle.standardError.write(Data((line + "\n").utf8))
            return
        } catch CitationError.tooLong(let id, let tokens, let limit) {
            // Checked for every item before the first forward pass.
            progress.finish()
            throw ValidationError(
                "item '\(id)' needs \(tokens) positions (prompt\(padTo != nil ? " padded by --pad-to" : "")"
                    + "\(m == .teacher ? "" : " + --max-new-tokens \(maxNewTokens)")), more than the model's context of "
                    + "\(limit) tokens; lower --pad-to or --max-new-tokens, or shorten the item")
        } catch let e as CitationError {
            progress.finish()
            throw CLIError(wrapping: e, hint: padTo != nil ? "lower --pad-to or use a larger probe file" : nil)
        }
        progress.finish()
        let plan = try SweepRunOptions.planDigest(plan: planLines, inputs: inputs)
        let records: CitationRecords
        do {
            records = try CitationRecords.read(try writer.file.group(CitationRunFile.group), file: writer.temporaryPath)
            if shard != nil {
                // A shard's file is its records (`headlight merge` computes the summary).
                try writer.file.setAttribute("sweep_seconds", records.doubles("seconds").reduce(0, +))
                try writer.finalize()
            }
        } catch {
            writer.close()
            throw error
        }
        if let shard {
            try printShard(shard, records, output: output)
            return
        }
        defer { writer.close() }
        let observations = records.observations
        guard !observations.isEmpty else {
            throw CLIError(
                "no cited statement to score: \(records.items.count) item(s) ran but no answer cited a valid passage",
                hint: m == .generate ? "the model did not cite; try --mode teacher" : nil)
        }
        let summary = CitationMetrics.summarize(
            observations, layers: c.nLayers, heads: c.nHeads, retrieval: rhSet?.heads,
            resamples: resamples, seed: seed)
        // The run file from the recorded items (a resumed run's as an uninterrupted one's), then
        // the checkpoint file goes.
        let final = try RunFileWriter(path: output)
        do {
            try RunFileHeader(model: env, command: "cite").write(to: final.file)
            try final.file.setAttribute("plan_sha256", plan)
            try CitationRunFile.write(to: final.file, records: records, summary: summary, parameters: parameters)
            try final.finalize()
        } catch {
            try? final.abandon()
            throw error
        }
        try writer.abandon()
        if json {
            print(try JSONOutput.object(jsonObject(records, summary, env: env, rh: rhSet, judge: runner.judge)))
        } else {
            let out = text(records, summary, env: env, rh: rhSet, judge: runner.judge)
            print(TerminalText.escape(out, allowNewlines: true), terminator: "")
        }
    }

    /// After a shard's run file is written (`--shard K/N`, `--mpi`): with --mpi rank 0 merges,
    /// else one line (or JSON) about the shard.
    func printShard(_ shard: ShardInfo, _ records: CitationRecords, output: String) throws {
        if try sharding.finishMPI(output: self.output, json: json) { return }
        let line =
            "cite shard \(shard.spec): \(records.items.count) of the plan's items (\(shard.trials.count) planned), "
            + "\(records.observations.count) cited statements; wrote \(output)\n"
            + "the summary is computed by `headlight merge` over all \(shard.spec.count) shards\n"
        if json {
            print(
                try JSONOutput.object([
                    "output": output, "finished": true, "shard": shard.spec.description, "items": shard.trials
                ]))
        } else {
            print(TerminalText.escape(line, allowNewlines: true), terminator: "")
        }
    }

    // MARK: - Output

    func readoutJSON(_ r: AttentionReadout) -> [String: Any] {
        func ci(_ c: ConfidenceInterval) -> [String: Any] {
            ["estimate": c.estimate, "lower": c.lower, "upper": c.upper]
        }
        return [
            "agreement": ci(r.agreement), "mean_spearman": ci(r.meanSpearman),
            "mean_point_biserial": ci(r.meanPointBiserial), "wrong_follows_citation": ci(r.wrongFollowsCitation),
            "wrong_follows_true_source": ci(r.wrongFollowsTrueSource),
            "agreement_all_statements": r.agreementAllStatements
        ]
    }

    func jsonObject(
        _ rec: CitationRecords, _ s: CitationSummary, env: LoadedModel, rh: RetrievalHeadSet?,
        judge: CitationJudge
    ) -> [String: Any] {
        let modes = rec.strings("mode"), prompt = rec.ints("prompt_tokens")
        var o: [String: Any] = [
            "output": output, "model": env.displayName, "probes": probes, "mode": mode,
            "items": rec.items.count, "teacher_forced": modes.filter { $0 == "teacher" }.count,
            "generated": modes.filter { $0 == "generate" }.count,
            "statements": s.statements, "consistent": s.consistent, "wrong_citations": s.wrong,
            "chance_agreement": s.chanceAgreement,
            "all_heads": readoutJSON(s.allHeads), "best_head": readoutJSON(s.bestHead),
            "best_head_name": s.ranking[0].description, "best_head_held_out_agreement": s.bestHeadHeldOutAgreement,
            "top_heads": s.ranking.prefix(showHeads).map { h -> [String: Any] in
                let k = h.flat(heads: s.heads)
                return [
                    "head": h.description, "layer": h.layer, "index": h.head, "agreement": s.headAgreement[k],
                    "mean_spearman": s.headMeanSpearman[k], "mean_point_biserial": s.headMeanPointBiserial[k],
                    "wrong_follows_true_source": s.headWrongFollowsTrueSource[k]
                ]
            },
            "citation_eval": [
                "judge": judge.name, "rule": judge.rule, "recall": Statistics.mean(rec.doubles("cite_recall")),
                "precision": Statistics.mean(rec.doubles("cite_precision")),
                "f1": Statistics.mean(rec.doubles("cite_f1"))
            ],
            "prompt_tokens_max": prompt.max() ?? 0,
            "prompt_tokens_mean": Statistics.mean(prompt.map(Double.init)),
            "seconds": rec.doubles("seconds").reduce(0, +)
        ]
        if let p = s.allHeadsPerToken { o["all_heads_per_token"] = readoutJSON(p) }
        if let r = s.retrievalHeads, let rh {
            var j = readoutJSON(r)
            j["heads"] = rh.heads.map(\.description)
            j["rule"] = rh.rule
            o["retrieval_heads"] = j
        }
        let judged = rec.answersJudged
        if !judged.isEmpty { o["answer_accuracy"] = Double(judged.filter { $0 }.count) / Double(judged.count) }
        if let t = padTo { o["pad_to"] = t }
        return o
    }

    func text(
        _ rec: CitationRecords, _ s: CitationSummary, env: LoadedModel, rh: RetrievalHeadSet?,
        judge: CitationJudge
    ) -> String {
        let f = Formatting.fixed
        func pct(_ x: Double) -> String { x.isFinite ? f(100 * x, 1) + "%" : "n/a" }
        func ci(_ c: ConfidenceInterval, percent: Bool = true) -> String {
            percent
                ? "\(pct(c.estimate)) [\(pct(c.lower)), \(pct(c.upper))]"
                : "\(f(c.estimate, 3)) [\(f(c.lower, 3)), \(f(c.upper, 3))]"
        }
        let teacher = rec.strings("mode").filter { $0 == "teacher" }.count
        let prompt = rec.ints("prompt_tokens"), n = rec.items.count
        var o = "citation attention of \(env.displayName) on \(probes)\n"
        o += "items: \(n) (\(teacher) teacher-forced, \(n - teacher) generated); "
        o += "prompt tokens mean \(f(Statistics.mean(prompt.map(Double.init)), 0)), "
        o += "max \(prompt.max() ?? 0); time \(f(rec.doubles("seconds").reduce(0, +), 1)) s\n"
        o +=
            "cited statements: \(s.statements) (\(s.consistent) citing the true source or unknown, \(s.wrong) wrong "
            + "citations)\n"
        o += "agreement (argmax passage == cited), 95% bootstrap CI; chance \(pct(s.chanceAgreement)):\n"
        func line(_ name: String, _ r: AttentionReadout) -> String {
            "  \(name.padding(toLength: 22, withPad: " ", startingAt: 0))\(ci(r.agreement))   spearman "
                + "\(f(r.meanSpearman.estimate, 3))   point-biserial \(f(r.meanPointBiserial.estimate, 3))\n"
        }
        o += line("all heads", s.allHeads)
        if let p = s.allHeadsPerToken { o += line("all heads (per token)", p) }
        if let r = s.retrievalHeads, let rh { o += line("retrieval heads (\(rh.heads.count))", r) }
        o += line("best head \(s.ranking[0])", s.bestHead)
        o += "  best head, split-half held out: \(pct(s.bestHeadHeldOutAgreement))\n"
        if s.wrong > 0 {
            o += "wrong citations (\(s.wrong)): argmax on the cited distractor / on the true source\n"
            o +=
                "  all heads              \(pct(s.allHeads.wrongFollowsCitation.estimate)) / "
                + "\(ci(s.allHeads.wrongFollowsTrueSource))\n"
            if let r = s.retrievalHeads {
                o +=
                    "  retrieval heads        \(pct(r.wrongFollowsCitation.estimate)) / "
                    + "\(ci(r.wrongFollowsTrueSource))\n"
            }
            o += "  best head \(s.ranking[0].description.padding(toLength: 13, withPad: " ", startingAt: 0))"
            o += "\(pct(s.bestHead.wrongFollowsCitation.estimate)) / \(ci(s.bestHead.wrongFollowsTrueSource))\n"
        }
        if showHeads > 0 {
            o += "best heads (agreement, mean spearman, mean point-biserial):\n"
            for (i, h) in s.ranking.prefix(showHeads).enumerated() {
                let k = h.flat(heads: s.heads)
                o += "  \(String(i + 1).padding(toLength: 4, withPad: " ", startingAt: 0))"
                o += "\(h.description.padding(toLength: 7, withPad: " ", startingAt: 0))\(pct(s.headAgreement[k]))"
                o += "  \(f(s.headMeanSpearman[k], 3))  \(f(s.headMeanPointBiserial[k], 3))\n"
            }
        }
        o += "citation recall / precision / F1 (\(judge.name) judge, not NLI entailment): "
        o +=
            "\(pct(Statistics.mean(rec.doubles("cite_recall")))) / \(pct(Statistics.mean(rec.doubles("cite_precision")))) / "
            + "\(pct(Statistics.mean(rec.doubles("cite_f1"))))\n"
        let judged = rec.answersJudged
        if !judged.isEmpty {
            o += "generated answers containing the gold text: \(judged.filter { $0 }.count) of \(judged.count)\n"
        }
        o += "wrote \(output)\n"
        return o
    }
}

/// Thrown by the hidden --stop-after to stop a run after K items, as if it were killed.
private struct CiteStopped: Error {}

/// Item progress on stderr (`ProgressBar`): redrawn in place on a terminal, else a line every 30 s.
final class CiteProgress {
    let line: ProgressBar

    init(enabled: Bool) { line = ProgressBar(enabled: enabled, interval: 30) }

    func update(_ done: Int, _ total: Int, _ id: String) {
        guard line.due(final: done == total) else { return }
        let elapsed = line.elapsed
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : .nan
        line.show(
            "cite: \(done)/\(total) items (\(id)), elapsed \(ProgressBar.clock(elapsed)), "
                + "ETA \(ProgressBar.clock(eta))")
    }

    func finish() { line.finish() }
}
