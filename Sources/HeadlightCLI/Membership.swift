import Analysis
import ArgumentParser
import Foundation
import GGUF
import Inference
import RunRecording
import TraceStore

/// `headlight membership`: document-level membership inference after Meeus et al. 2024.
struct Membership: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Document-level membership inference (Meeus et al. 2024): was a document in the training data?",
        discussion: """
            Every document is tokenized (BOS only if the model adds one), cut to \
            --max-tokens-per-doc tokens, and scored in sliding windows (--window tokens every \
            --stride tokens; each window is a fresh context, each token is scored once, in the \
            first window that predicts it: 128/127 means one token of overlap). Per token: NLL, \
            p(true token), top-1 probability. Documents are described by the 14 aggregates or a \
            histogram of the normalized token scores (none / ratio / max, reference distribution: \
            token frequencies or the model's mean softmax, both fit on each training fold) and \
            classified by logistic regression or a random forest under stratified k-fold \
            cross-validation. Baselines: perplexity, zlib ratio, Min-K% prob; a blind baseline \
            runs the same classifier on surface features of the text only. Every AUC comes with \
            a stratified-bootstrap 95% CI and the distribution-shift caveat.

            Inputs: --set FILE (a set file such as probes/membership/default.json), or \
            --members and --nonmembers (each a directory of text files or a JSONL file with a \
            "text" field per line); --score adds unlabeled documents, which get the baselines \
            and, when labeled documents are given too, classifier scores (fit on all labeled \
            documents). --score alone scores documents without classification.

            --workers sessions score documents side by side, each with --threads threads \
            (default: the cores divided by the workers). --shard K/N scores part K of N of the \
            documents (balanced by token cost) into a shard file; `headlight merge` evaluates the \
            N parts together into the file a single run writes (docs/scale-out.md).
            """)

    @Option(
        name: [.customShort("m"), .long],
        help: "Path to a .gguf file (default: $HEADLIGHT_MODEL or the cached SmolLM2-135M-Instruct).")
    var model: String?

    @Option(help: "Set file naming members and non-members (e.g. probes/membership/default.json).")
    var set: String?

    @Option(help: "Members: a directory of text files or a JSONL file.")
    var members: String?

    @Option(help: "Non-members: a directory of text files or a JSONL file.")
    var nonmembers: String?

    @Option(help: "Unlabeled documents to score: a directory or a JSONL file.")
    var score: String?

    @Option(help: "Window length in tokens.")
    var window = 128

    @Option(help: "Window stride in tokens (< --window).")
    var stride = 127

    @Option(help: "Reference distribution for ratio/max: tf (token frequency) or gp (general probability).")
    var reference = "tf"

    @Option(help: "Token-score normalization: none, ratio, max or all.")
    var normalization = "all"

    @Option(help: "Document features: aggregates or histogram.")
    var features = "aggregates"

    @Option(help: "Histogram bins (with --features histogram).")
    var bins = 100

    @Option(help: "Classifier: logreg or forest.")
    var classifier = "logreg"

    @Option(help: "Random-forest trees.")
    var trees = 500

    @Option(help: "Cross-validation folds.")
    var folds = 5

    @Option(help: "Seed of the fold assignment, the forest and the bootstrap.")
    var seed: UInt64 = 0

    @Option(name: .customLong("min-k"), help: "Min-K% fraction (0.05...0.6).")
    var minK = 0.2

    @Option(
        name: .customLong("max-tokens-per-doc"), help: "Token budget per document (default: the set file's, else 2000)."
    )
    var maxTokensPerDoc: Int?

    @Option(help: "Bootstrap resamples for the AUC confidence intervals.")
    var bootstrap = Statistics.defaultBootstrapResamples

    @Option(help: "Documents scored concurrently, one model session each (default: one per core).")
    var workers: Int?

    @Option(name: [.short, .long], help: "Run file to write.")
    var output = "membership.h5"

    @Flag(help: "Print one JSON object instead of the summary table.")
    var json = false

    @Flag(name: .customLong("no-progress"), help: "No progress line on stderr.")
    var noProgress = false

    @OptionGroup var kvCache: KVCacheOption
    /// --shard, --mpi and --threads (here: per worker; default cores / workers, at least 1).
    @OptionGroup var sharding: ShardOptions

    func validate() throws {
        _ = try makeConfig(maxTokens: maxTokensPerDoc ?? 2000)
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        guard trees >= 1 else { throw ValidationError("--trees must be at least 1") }
        try CommandChecks.outputFile(output)
        try sharding.validate()
    }

    /// What determines the records (`plan_sha256`): every option that changes the scores or the
    /// evaluation, and each input document (label, name, source, SHA-256 of its text).
    func planLines(_ docs: [MembershipDocument], _ c: MembershipConfig) -> [String] {
        [
            "membership window \(c.window) stride \(c.stride) reference \(c.reference.rawValue) normalizations "
                + "\(c.normalizations.map(\.rawValue)) features \(c.features.rawValue) bins \(c.histogramBins) "
                + "classifier \(c.classifier.rawValue) trees \(c.forestTrees) folds \(c.folds) seed \(c.seed) "
                + "min_k \(c.minK) max_tokens \(c.maxTokensPerDocument) bootstrap \(c.bootstrapResamples)"
        ]
            + docs.map { d in
                "doc \(d.label.map { $0 ? "member" : "nonmember" } ?? "unlabeled") \(d.name) \(d.source) "
                    + SHA256.hash(Data(d.text.utf8))
            }
    }

    /// Token cost of scoring a document of `n` tokens (`ShardPlan.trialCost` of each window).
    static func tokenCost(_ n: Int, _ c: MembershipConfig) -> Int {
        MembershipWindowing.windows(tokenCount: n, window: c.window, stride: c.stride).reduce(0) {
            $0 + ShardPlan.trialCost(promptTokens: $1.count, decodeSteps: 0)
        }
    }

    func makeConfig(maxTokens: Int) throws -> MembershipConfig {
        var c = MembershipConfig()
        c.window = window
        c.stride = stride
        guard let r = MembershipReference(rawValue: reference) else {
            throw ValidationError("--reference must be tf or gp (got \(reference))")
        }
        c.reference = r
        if normalization == "all" {
            c.normalizations = MembershipNormalization.allCases
        } else if let n = MembershipNormalization(rawValue: normalization) {
            c.normalizations = [n]
        } else {
            throw ValidationError("--normalization must be none, ratio, max or all (got \(normalization))")
        }
        guard let f = MembershipFeatureKind(rawValue: features) else {
            throw ValidationError("--features must be aggregates or histogram (got \(features))")
        }
        c.features = f
        c.histogramBins = bins
        guard let k = MembershipClassifierKind(rawValue: classifier) else {
            throw ValidationError("--classifier must be logreg or forest (got \(classifier))")
        }
        c.classifier = k
        c.forestTrees = trees
        c.folds = folds
        c.seed = seed
        c.minK = minK
        c.maxTokensPerDocument = maxTokens
        c.bootstrapResamples = bootstrap
        do { try c.validate() } catch let e as MembershipInputError { throw ValidationError(e.message) }
        return c
    }

    func run() throws {
        // 1. Documents (before the model, so bad input fails fast).
        var docs: [MembershipDocument] = []
        var setName: String?, setPath: String?, setMaxTokens: Int?
        do {
            if let set {
                guard members == nil && nonmembers == nil else {
                    throw CLIError("give either --set or --members/--nonmembers, not both")
                }
                let s = try MembershipInput.loadSet(path: set, placeholders: Self.placeholders)
                docs = s.members + s.nonmembers
                setName = s.name
                setPath = set
                setMaxTokens = s.maxTokensPerDocument
            } else if members != nil || nonmembers != nil {
                guard let members, let nonmembers else {
                    throw CLIError(
                        "\(members == nil ? "--nonmembers" : "--members") alone is a single class: classification "
                            + "needs both --members and --nonmembers",
                        hint: "use --score to score one set without classification")
                }
                docs =
                    try MembershipInput.load(path: members, label: true)
                    + MembershipInput.load(path: nonmembers, label: false)
            }
            if let score { docs += try MembershipInput.load(path: score, label: nil) }
        } catch let e as MembershipInputError {
            throw CLIError(e.message, hint: e.hint)
        }
        guard !docs.isEmpty else {
            throw CLIError(
                "no input documents", hint: "give --set FILE, --members DIR --nonmembers DIR, or --score DIR")
        }
        let labeledDocs = docs.compactMap(\.label)
        if !labeledDocs.isEmpty {
            let pos = labeledDocs.filter { $0 }.count, neg = labeledDocs.count - pos
            guard pos >= 2 && neg >= 2 else {
                throw CLIError("classification needs at least 2 members and 2 non-members (got \(pos) and \(neg))")
            }
        }
        var warnings: [String] = []
        let mismatched = docs.filter { d in d.expectedSHA256.map { $0 != SHA256.hash(Data(d.text.utf8)) } ?? false }
        if !mismatched.isEmpty {
            warnings.append(
                "\(mismatched.count) document(s) differ from the set file's SHA-256 (first: \(mismatched[0].source)); "
                    + "for the stdlib members a different Python patch release explains it"
            )
        }
        let config: MembershipConfig
        do { config = try makeConfig(maxTokens: maxTokensPerDoc ?? setMaxTokens ?? 2000) } catch let e
            as ValidationError
        {
            throw CLIError(e.message)
        }

        // 2. Model and tokenizer.
        // With --mpi the cores are shared among this node's ranks.
        let allCores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let cores = sharding.mpi ? ComputeThreads.sharedDefault() ?? allCores : allCores
        let workers = self.workers ?? cores
        let nThreads = sharding.threads ?? max(1, cores / workers)
        ComputeThreads.apply(nThreads)
        try kvCache.apply()
        let env = try LoadedModel.load(model)
        let tokenizer = env.tokenizer, m = env.model
        // Every window is one session of --window positions.
        try CommandChecks.context(config.window, m, "--window \(config.window)", hint: "lower --window")

        // 3. Tokenize and cut to the budget.
        var tokenized: [(doc: MembershipDocument, tokens: [Int32], original: Int)] = []
        var skipped: [(name: String, reason: String)] = []
        for d in docs {
            let ids = tokenizer.encode(d.text, addSpecial: true, parseSpecial: false)
            if ids.count < 2 {
                skipped.append((d.name, "\(ids.count) token(s): nothing to score"))
                continue
            }
            tokenized.append((d, Array(ids.prefix(config.maxTokensPerDocument)), ids.count))
        }
        if !skipped.isEmpty {
            warnings.append("skipped \(skipped.count) document(s) with fewer than 2 tokens (first: \(skipped[0].name))")
        }
        guard !tokenized.isEmpty else {
            throw CLIError(
                "none of the \(docs.count) document(s) has text to score (each has fewer than 2 tokens; first: "
                    + "\(skipped[0].name))",
                hint: "check that the files are not empty")
        }
        let labeled = tokenized.compactMap(\.doc.label)
        if !labeledDocs.isEmpty {
            do {
                try MembershipAnalysis.checkLabels(labeled, folds: config.folds, qualifier: " with text")
            } catch { throw CLIError(wrapping: error) }
        }
        for w in warnings { FileHandle.standardError.write(Data("warning: \(TerminalText.escape(w))\n".utf8)) }

        // 4. Score (a shard: its part of the documents with text, balanced by token cost).
        var shard: ShardInfo?
        var output = self.output
        if sharding.shard != nil || sharding.mpi {
            (shard, output) = try sharding.plan(
                output: output, costs: tokenized.map { Self.tokenCost($0.tokens.count, config) },
                order: Array(tokenized.indices))
        }
        if let shard { tokenized = shard.trials.map { tokenized[$0] } }
        let progress = MembershipProgress(enabled: !noProgress)
        let start = Date()
        let scores = try MembershipScoring.scoreDocuments(
            tokenized.map(\.tokens), window: config.window, stride: config.stride, workers: workers,
            accumulateProbabilities: config.reference == .gp && config.normalizations.contains { $0 != .none },
            makeSource: { _ in SessionWindowLogits(session: InferenceSession(model: m, maxContext: config.window)) },
            progress: { p in progress.update(p) })
        let seconds = Date().timeIntervalSince(start)
        progress.finish()
        let scored = zip(tokenized, scores).map { t, s in
            MembershipScoredDocument(
                document: t.doc, tokens: t.tokens, originalTokenCount: t.original, scores: s,
                decode: { tokenizer.decode($0) })
        }

        let plan = try SweepRunOptions.planDigest(plan: planLines(docs, config), inputs: [])
        if let shard {
            let writer = try RunFileWriter(path: output)
            do {
                try RunFileHeader(model: env, command: "membership").write(to: writer.file)
                try writer.file.setAttribute("plan_sha256", plan)
                try shard.write(to: writer.file)
                try writer.file.setAttribute("sweep_seconds", seconds)
                try MembershipRunFile.writeShard(
                    scored, items: shard.trials, config: config, setName: setName, setPath: setPath,
                    warnings: warnings, skipped: skipped, workers: workers, scoringSeconds: seconds, to: writer.file)
                try writer.finalize()
            } catch {
                try? writer.abandon()
                throw error
            }
            if try sharding.finishMPI(output: self.output, json: json) { return }
            if json {
                print(
                    try JSONOutput.object([
                        "output": output, "finished": true, "shard": shard.spec.description, "items": shard.trials
                    ]))
            } else {
                print(
                    "membership shard \(shard.spec): \(scored.count) documents scored; wrote \(output)\n"
                        + "the evaluation is computed by `headlight merge` over all \(shard.spec.count) shards")
            }
            return
        }

        // 5. Evaluate, write, report.
        let evaluation: MembershipEvaluation
        do { evaluation = try MembershipAnalysis.evaluate(scored, config: config) } catch let e as MembershipInputError
        {
            throw CLIError(e.message, hint: e.hint)
        }
        let result = MembershipRunResult(
            setName: setName, setPath: setPath, config: config, documents: scored,
            evaluation: evaluation, skipped: skipped, warnings: warnings,
            scoringSeconds: seconds, workers: workers)
        let writer = try RunFileWriter(path: output)
        do {
            try RunFileHeader(model: env, command: "membership").write(to: writer.file)
            try writer.file.setAttribute("plan_sha256", plan)
            try MembershipRunFile.write(result, to: writer.file)
            try writer.finalize()
        } catch {
            try? writer.abandon()
            throw error
        }
        if json {
            let data = try JSONSerialization.data(
                withJSONObject: Self.jsonObject(result, output: output),
                options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(
                TerminalText.escape(Self.summary(result, output: output, model: env.displayName), allowNewlines: true),
                terminator: "")
        }
    }

    /// `{python-stdlib}`: $HEADLIGHT_PYTHON_STDLIB, else what `python3` reports;
    /// `{cache}`: Headlight's cache directory.
    static let placeholders: [String: () throws -> String] = [
        "{python-stdlib}": {
            if let p = ProcessInfo.processInfo.environment["HEADLIGHT_PYTHON_STDLIB"], !p.isEmpty { return p }
            return try pythonStdlib()
        },
        "{cache}": { ModelLocator.cacheDirectory.path }
    ]

    static func pythonStdlib() throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch {
            throw MembershipInputError(
                "cannot run python3 to locate the standard library",
                hint: "set HEADLIGHT_PYTHON_STDLIB to the directory of a Python 3.11 standard library")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let out = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard p.terminationStatus == 0, !out.isEmpty else {
            throw MembershipInputError(
                "python3 did not report its standard library",
                hint: "set HEADLIGHT_PYTHON_STDLIB to the directory of a Python 3.11 standard library")
        }
        return out
    }

    // MARK: - Output

    static func fmt(_ x: Double, _ digits: Int = 3) -> String {
        x.isFinite ? String(format: "%.\(digits)f", x) : "n/a"
    }

    static func summary(_ r: MembershipRunResult, output: String, model: String) -> String {
        let c = r.config, e = r.evaluation
        var s = "headlight membership"
        if let n = r.setName { s += ": \(n)" }
        s += " (\(model))\n"
        var counts: [String] = []
        if r.memberCount + r.nonmemberCount > 0 {
            counts.append("\(r.memberCount) members, \(r.nonmemberCount) non-members")
        }
        if r.unlabeledCount > 0 { counts.append("\(r.unlabeledCount) unlabeled") }
        s += "documents: \(counts.joined(separator: ", "))"
        if !r.skipped.isEmpty { s += " (\(r.skipped.count) skipped: too short)" }
        s += "\n"
        s += String(
            format:
                "scored %d tokens (budget %d per document; %d forward tokens) in %.1f s: %.0f tokens/s, %d worker(s)\n",
            r.tokensScored, c.maxTokensPerDocument, r.forwardTokens, r.scoringSeconds, r.tokensPerSecond, r.workers)
        s += "windows: \(c.window) tokens, stride \(c.stride); Min-K% k = \(fmt(c.minK, 2)); "
        s += "\(c.folds)-fold stratified CV, seed \(c.seed); \(c.bootstrapResamples) bootstrap resamples\n"
        if !e.methods.isEmpty {
            let blind = e.blindAUC
            let w = max(36, e.methods.map { $0.label.count }.max() ?? 0)
            func pad(_ x: String, _ n: Int) -> String {
                x.count >= n ? x : x + String(repeating: " ", count: n - x.count)
            }
            s += "\n" + pad("method", w) + "  AUC     95% CI            vs blind\n"
            for m in e.methods {
                let delta =
                    (m.kind == "blind" || blind == nil)
                    ? "" : (m.auc.estimate - blind! >= 0 ? "+" : "") + fmt(m.auc.estimate - blind!)
                s +=
                    pad(m.label, w) + "  " + pad(fmt(m.auc.estimate) + " *", 7) + " [" + fmt(m.auc.lower) + ", "
                    + fmt(m.auc.upper) + "]    " + delta + "\n"
            }
            s += "\n* " + MembershipAnalysis.caveat + "\n"
        } else {
            s += "\nno labeled documents: no classification; per-document scores are in the run file\n"
            s += "\nname  tokens  perplexity  zlib_ratio  min_k_prob\n"
            for (i, d) in r.documents.enumerated().prefix(20) {
                let b = e.baselines[i]
                s +=
                    "\(d.name)  \(d.scores.count)  \(fmt(b.perplexity, 2))  \(fmt(b.zlibRatio, 5))  "
                    + "\(fmt(b.minKProb))\n"
            }
            if r.documents.count > 20 { s += "... (\(r.documents.count - 20) more)\n" }
        }
        for w in r.warnings { s += "warning: \(w)\n" }
        s += "run file: \(output)\n"
        return s
    }

    static func jsonNumber(_ x: Double) -> Any { x.isFinite ? x : NSNull() }

    static func jsonObject(_ r: MembershipRunResult, output: String) -> [String: Any] {
        let c = r.config, e = r.evaluation
        let blind = e.blindAUC
        let methods: [[String: Any]] = e.methods.map { m in
            var o: [String: Any] = [
                "name": m.name, "label": m.label, "kind": m.kind, "auc": jsonNumber(m.auc.estimate),
                "ci_lower": jsonNumber(m.auc.lower), "ci_upper": jsonNumber(m.auc.upper), "ci_level": m.auc.level,
                "caveat": MembershipAnalysis.caveat
            ]
            if let f = m.foldAUCs {
                o["fold_aucs"] = f.map(jsonNumber)
                o["mean_fold_auc"] = jsonNumber(Statistics.mean(f.filter { !$0.isNaN }))
            }
            if let blind, m.kind != "blind" { o["auc_minus_blind"] = jsonNumber(m.auc.estimate - blind) }
            return o
        }
        let documents: [[String: Any]] = r.documents.enumerated().map { i, d in
            let b = e.baselines[i]
            var o: [String: Any] = [
                "name": d.name, "n_tokens": d.tokens.count, "n_scored": d.scores.count,
                "perplexity": jsonNumber(b.perplexity), "zlib_ratio": jsonNumber(b.zlibRatio),
                "min_k_prob": jsonNumber(b.minKProb), "mean_nll": jsonNumber(b.meanNLL)
            ]
            o["label"] = d.label.map { $0 ? "member" : "nonmember" } ?? NSNull()
            return o
        }
        var o: [String: Any] = [
            "command": "membership",
            "run_file": output,
            "members": r.memberCount, "nonmembers": r.nonmemberCount, "unlabeled": r.unlabeledCount,
            "skipped": r.skipped.map(\.name),
            "tokens_scored": r.tokensScored, "forward_tokens": r.forwardTokens,
            "scoring_seconds": r.scoringSeconds, "tokens_per_second": jsonNumber(r.tokensPerSecond),
            "workers": r.workers,
            "config": [
                "window": c.window, "stride": c.stride, "reference": c.reference.rawValue,
                "normalizations": c.normalizations.map(\.rawValue), "features": c.features.rawValue,
                "histogram_bins": c.histogramBins, "classifier": c.classifier.rawValue, "folds": c.folds,
                "seed": c.seed, "min_k": c.minK, "max_tokens_per_doc": c.maxTokensPerDocument,
                "bootstrap_resamples": c.bootstrapResamples, "forest_trees": c.forestTrees
            ] as [String: Any],
            "methods": methods,
            "caveat": MembershipAnalysis.caveat,
            "documents": documents,
            "warnings": r.warnings
        ]
        if let n = r.setName { o["set"] = n }
        return o
    }
}

/// Document progress on stderr (`ProgressBar`): redrawn in place on a terminal, else one line every 10 s.
private final class MembershipProgress: @unchecked Sendable {
    let line: ProgressBar

    init(enabled: Bool) { line = ProgressBar(enabled: enabled, interval: 10) }

    func update(_ p: MembershipScoring.Progress) {
        let final = p.documentsDone == p.documents
        guard line.due(final: final) else { return }
        var eta = ""
        if let e = p.etaSeconds, !final { eta = String(format: ", ETA %d:%02d", Int(e) / 60, Int(e) % 60) }
        line.show(
            String(
                format: "membership: %d/%d documents, %d/%d tokens, %.0f tokens/s%@",
                p.documentsDone, p.documents, p.tokensDone, p.tokens, p.tokensPerSecond, eta))
    }

    func finish() { line.finish() }
}
