import Analysis
import ArgumentParser
import Foundation
import Inference
import TraceStore

/// `headlight query-heads`: query-focused retrieval heads (QRHead) and attention re-ranking.
struct QueryHeads: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query-heads",
        abstract: "Find query-focused retrieval heads (QRHead) and re-rank passages with their attention.",
        discussion: """
            Each probe item (citation probe format, probes/README.md "Query-focused retrieval set") \
            lists passages, a question and its gold passage ('source'). Following QRHead (Zhang et al. \
            2025), every head scores each passage by the attention of the question tokens to it, \
            calibrated against the null query "N/A" and summed over the passage's tokens with \
            outliers below mean - 2 std removed; a head's QRScore is its mean score on the gold \
            passage over the detection items (the first half by default). The top heads then re-rank \
            the passages of the other items; recall@k, nDCG@k and MRR are reported against BM25, \
            the plain model's likelihood of the gold answer given each passage, all heads, and (with \
            --retrieval-heads) Wu et al.'s copy-based retrieval heads, whose scores are compared with \
            QRScores (top-N overlap, Spearman and Kendall rank correlation). Attention is reduced on \
            the fly to per-head mean rows of the question tokens: no pattern is stored.
            """)

    @Option(
        name: [.customShort("m"), .long],
        help: "Path to a .gguf file (default: $HEADLIGHT_MODEL or the cached SmolLM2-135M-Instruct).")
    var model: String?

    @Option(help: "Probe file (JSONL, citation format with 'source').")
    var probes = "probes/qr/default.jsonl"

    @Option(name: .customLong("retrieval-heads"), help: "A retrieval-heads run file to compare with (Wu et al.).")
    var retrievalHeads: String?

    @Option(name: .customLong("top"), help: "Heads in the QRHead (and Wu) re-ranking sets.")
    var top = 16

    @Option(name: .customLong("detect"), help: "Items (from the start) that detect heads; default: half.")
    var detect: Int?

    @Option(help: "Run only the first N items.")
    var limit: Int?

    @Option(name: .customLong("null-query"), help: "Calibration query.")
    var nullQuery = "N/A"

    @Flag(name: .customLong("no-likelihood"), help: "Skip the answer-likelihood baseline.")
    var noLikelihood = false

    @Flag(name: .customLong("no-chat"), help: "Do not wrap the prompt in the model's chat template.")
    var noChat = false

    @Option(help: "Seed for bootstrap resampling.")
    var seed: UInt64 = 0

    @Option(help: "Bootstrap resamples for confidence intervals.")
    var resamples = Statistics.defaultBootstrapResamples

    @Option(name: [.customShort("o"), .long], help: "Run file to write.")
    var output = "query-heads.h5"

    @Flag(help: "Print a JSON summary on stdout instead of text.")
    var json = false

    @Flag(name: .customLong("no-progress"), help: "No progress on stderr.")
    var noProgress = false

    @OptionGroup var kvCache: KVCacheOption

    func validate() throws {
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
        if let d = detect, d < 1 { throw ValidationError("--detect must be at least 1") }
        if let n = limit, n < 2 { throw ValidationError("--limit must be at least 2 (detection and evaluation items)") }
        guard !nullQuery.isEmpty else { throw ValidationError("--null-query must not be empty") }
        guard resamples >= 1 else { throw ValidationError("--resamples must be at least 1") }
        try CommandChecks.outputFile(output)
    }

    func run() throws {
        var items: [CitationItem]
        do { items = try CitationProbeFile.load(path: probes) } catch let e as CitationError {
            throw CLIError(
                wrapping: e,
                hint: probes == "probes/qr/default.jsonl" && !FileManager.default.fileExists(atPath: probes)
                    ? "run from the repository root or pass --probes PATH" : nil)
        }
        if let n = limit { items = Array(items.prefix(n)) }
        if let bad = items.first(where: { $0.source == nil }) {
            throw CLIError(
                "\(probes):\(bad.line): item '\(bad.id)' has no 'source' (the gold passage)",
                hint: "query-heads needs the gold passage of every item")
        }
        let nDetect = detect ?? items.count / 2
        guard nDetect < items.count else {
            throw ValidationError(
                "--detect \(nDetect) leaves no evaluation item (\(items.count) items); lower --detect")
        }
        if let r = retrievalHeads, !FileManager.default.fileExists(atPath: r) {
            throw CLIError(
                "--retrieval-heads: no such file: \(r)", hint: "run `headlight retrieval-heads -o \(r)` first")
        }
        try kvCache.apply()
        let env = try LoadedModel.load(model)
        let c = env.model.config
        guard top <= c.nLayers * c.nHeads else {
            throw ValidationError("--top \(top) exceeds the model's \(c.nLayers * c.nHeads) heads")
        }
        var wu: RetrievalHeadSet?
        if let r = retrievalHeads {
            do { wu = try RetrievalHeadSet.load(path: r, top: top, layers: c.nLayers, heads: c.nHeads) } catch let e
                as CitationError
            {
                throw CLIError(wrapping: e)
            }
        }
        var options = QueryHeadsOptions()
        options.chat = !noChat
        options.nullQuery = nullQuery
        options.topHeads = top
        options.likelihood = !noLikelihood
        if options.chat && env.chatTemplate == nil {
            throw CLIError(
                "\(env.url.lastPathComponent) has no chat template Headlight can render", hint: "pass --no-chat")
        }
        let runner = QueryHeadsRunner(
            model: env.model, tokenizer: env.tokenizer, chatTemplate: env.chatTemplate, options: options)
        let bar = ProgressBar(enabled: !noProgress, interval: 30)
        let results: [QueryHeadsItemResult]
        do {
            results = try runner.run(items, detectCount: nDetect) { done, total, id in
                guard bar.due(final: done == total) else { return }
                let e = bar.elapsed
                bar.show(
                    "query-heads: \(done)/\(total) items (\(id)), elapsed \(ProgressBar.clock(e)), ETA "
                        + ProgressBar.clock(e / Double(done) * Double(total - done)))
            }
        } catch let e as CitationError {
            bar.finish()
            throw CLIError(wrapping: e)
        }
        bar.finish()
        let summary = QueryHeadsSummary.summarize(
            results, layers: c.nLayers, heads: c.nHeads, topHeads: top, wuScores: wu?.scores, wuHeads: wu?.heads,
            resamples: resamples, seed: seed)
        let writer = try RunFileWriter(path: output)
        do {
            try RunFileHeader(model: env, command: "query-heads").write(to: writer.file)
            try QueryHeadsRunFile.write(
                to: writer.file, results: results, summary: summary,
                parameters: .init(
                    probes: probes, chat: options.chat, nullQuery: nullQuery, wuFile: retrievalHeads,
                    wuRule: wu?.rule))
            try writer.finalize()
        } catch {
            try? writer.abandon()
            throw error
        }
        let seconds = results.map(\.seconds).reduce(0, +)
        if json {
            print(try JSONOutput.object(jsonObject(summary, env: env, seconds: seconds)))
        } else {
            print(TerminalText.escape(text(summary, env: env, seconds: seconds), allowNewlines: true), terminator: "")
        }
    }

    static let shownK = [1, 2, 3, 5]

    func jsonObject(_ s: QueryHeadsSummary, env: LoadedModel, seconds: Double) -> [String: Any] {
        var o: [String: Any] = [
            "output": output, "model": env.displayName, "probes": probes, "detect_items": s.detectItems,
            "eval_items": s.evalItems, "top_heads": s.topHeads.map(\.description),
            "qr_scores_top": s.ranking.prefix(top).map { s.qrScores[$0.layer * s.heads + $0.head] },
            "seconds": seconds,
            "rerankers": s.rerankers.map { r -> [String: Any] in
                var m: [String: Any] = [
                    "name": r.name, "description": r.description, "mrr": r.mrr,
                    "recall_at_1_ci": [r.recallAt1CI.0, r.recallAt1CI.1]
                ]
                for k in Self.shownK where k <= r.recall.count {
                    m["recall@\(k)"] = r.recall[k - 1]
                    m["ndcg@\(k)"] = r.ndcg[k - 1]
                }
                return m
            }
        ]
        if !s.kinds.isEmpty {
            o["recall_at_1_by_kind"] = Dictionary(
                uniqueKeysWithValues: s.kinds.enumerated().map { i, k in
                    (k, Dictionary(uniqueKeysWithValues: zip(s.rerankers.map(\.name), s.recallAt1ByKind[i])))
                })
        }
        if let w = s.wuHeads {
            o["wu_heads"] = w.map(\.description)
            o["spearman_wu"] = s.spearman ?? Double.nan
            o["spearman_wu_p"] = s.spearmanP ?? Double.nan
            o["kendall_wu"] = s.kendall ?? Double.nan
            o["overlap"] = s.overlaps.map {
                ["n": $0.n, "overlap": $0.overlap, "expected": $0.expected, "lower": $0.lower, "upper": $0.upper]
            }
            o["spearman_wu_ci"] = s.spearmanCI.map { [$0.lower, $0.upper] } ?? [Double.nan, Double.nan]
            o["kendall_wu_ci"] = s.kendallCI.map { [$0.lower, $0.upper] } ?? [Double.nan, Double.nan]
        }
        return o
    }

    func text(_ s: QueryHeadsSummary, env: LoadedModel, seconds: Double) -> String {
        let f = Formatting.fixed
        var o = "query-focused retrieval heads of \(env.displayName) on \(probes)\n"
        o += "items: \(s.detectItems) detect heads, \(s.evalItems) evaluate re-rankers; time \(f(seconds, 1)) s\n"
        o += "top \(min(top, 10)) QR heads (QRScore): "
        o +=
            s.ranking.prefix(min(top, 10)).map { "\($0) \(f(s.qrScores[$0.layer * s.heads + $0.head], 3))" }.joined(
                separator: ", ") + "\n"
        if s.wuHeads != nil {
            o +=
                "vs Wu et al. retrieval scores: Spearman \(f(s.spearman ?? .nan, 3)) (p \(f(s.spearmanP ?? .nan, 4))), "
            o += "Kendall tau-b \(f(s.kendall ?? .nan, 3))\n"
            if let a = s.spearmanCI, let b = s.kendallCI {
                o += "  95% bootstrap CIs over the \(s.detectItems) detection items: Spearman [\(f(a.lower, 3)), "
                o += "\(f(a.upper, 3))], Kendall [\(f(b.lower, 3)), \(f(b.upper, 3))]\n"
            }
            o += "top-N overlap [95% CI]: "
            o +=
                s.overlaps.map {
                    "N=\($0.n): \($0.overlap) [\(f($0.lower, 0)), \(f($0.upper, 0))] (random \(f($0.expected, 1)))"
                }.joined(separator: ", ") + "\n"
        }
        o +=
            "re-ranking on the \(s.evalItems) evaluation items (chance recall@1 \(f(1 / Double(max(s.maxPassages, 1)), 3))):\n"
        o += "  method              " + Self.shownK.map { "R@\($0)   " }.joined() + "nDCG@3  MRR    R@1 95% CI\n"
        for r in s.rerankers {
            o += "  " + r.name.padding(toLength: 20, withPad: " ", startingAt: 0)
            for k in Self.shownK where k <= r.recall.count { o += f(r.recall[k - 1], 3) + "  " }
            o += (r.ndcg.count >= 3 ? f(r.ndcg[2], 3) : "n/a") + "   " + f(r.mrr, 3)
            o += "  [\(f(r.recallAt1CI.0, 3)), \(f(r.recallAt1CI.1, 3))]\n"
        }
        for (i, k) in s.kinds.enumerated() {
            o += "  recall@1 on \(s.kindCounts[i]) '\(k)' items: "
            o += zip(s.rerankers, s.recallAt1ByKind[i]).map { "\($0.name) \(f($1, 3))" }.joined(separator: ", ") + "\n"
        }
        o += "wrote \(output)\n"
        return o
    }
}
