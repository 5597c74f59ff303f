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

    @Option(name: .customLong("export-trials"), help: "Write the trials' prompt ids and needle spans to this JSON file and exit.")
    var exportTrials: String?

    func validate() throws {
        try suite.validate()
        guard threshold.isFinite else { throw ValidationError("--threshold must be a number") }
        guard top >= 0 else { throw ValidationError("--top must be >= 0") }
        try sweepRun.validate()
    }

    func run() throws {
        let json = sweepRun.json
        let env = try RetrievalEnvironment.load(model: suite.model)
        let probe = try suite.loadProbe()
        var options = RetrievalSweepOptions()
        options.threshold = threshold
        options.reusePrefix = !sweepRun.noSharePrefix
        options.sharedPrefixOrder = !sweepRun.noSharePrefix
        options.stopAfter = sweepRun.stopAfter
        let sweep: RetrievalHeadSweep
        do {
            sweep = try RetrievalHeadSweep(probe: probe, model: env.model, tokenizer: env.tokenizer,
                                           chatTemplate: try env.chatWrapper(needed: probe.suite.chat), options: options)
        } catch let p as NIAHTextCheck.Problem {
            throw CLIError(p.description, hint: "remove that text from the suite's haystack or needles")
        }
        let trials = try sweep.buildTrials()
        if let path = exportTrials {
            try RetrievalReferenceExport.write(trials: trials, probe: probe, tokenizer: env.tokenizer, model: env.url,
                                               to: URL(fileURLWithPath: path))
            if !json { print("wrote \(trials.count) trials to \(path)") }
            else { print("{\"exported\":\(trials.count),\"path\":\(RetrievalEnvironment.jsonString(path))}") }
            return
        }
        let unlocated = trials.filter { $0.needleSpan == nil }
        if !unlocated.isEmpty && !json {
            let names = unlocated.map { "\($0.needle.id)/\($0.cell.length)/\(RetrievalEnvironment.fmt($0.cell.depth, 0))" }
            FileHandle.standardError.write(Data(("note: needle span not found in \(unlocated.count) trial(s) (\(names.joined(separator: ", "))); "
                + "they are run and recorded but cannot score heads\n").utf8))
        }

        let writer = try sweepRun.openRunFile(output, env: env, command: "retrieval-heads")
        let result = try sweepRun.withProgress(title: "retrieval-heads") { try sweep.run(file: writer.file, trials: trials, progress: $0) }
        guard result.finished else {
            try writer.checkpoint()
            let msg = "stopped after \(result.ranNow) trial(s) (\(result.records.count) of \(trials.count) done); "
                + "rerun the same command to resume from \(writer.temporaryPath)"
            if json {
                print(try RetrievalEnvironment.json(["finished": false, "done": result.records.count,
                                                     "trials": trials.count, "partial": writer.temporaryPath]))
            } else {
                FileHandle.standardError.write(Data((msg + "\n").utf8))
            }
            return
        }
        try writer.file.setAttribute("sweep_seconds", result.seconds)
        try writer.finalize()
        if json {
            print(try RetrievalEnvironment.json(Self.jsonObject(result, output: output, probe: probe, env: env, top: top)))
        } else {
            print(Self.summary(result, output: output, probe: probe, env: env, top: top), terminator: "")
        }
    }

    static func jsonObject(_ r: RetrievalSweepResult, output: String, probe: NIAHProbe, env: RetrievalEnvironment,
                           top: Int) -> [String: Any] {
        func head(_ x: (head: HeadIndex, score: Double)) -> [String: Any] {
            ["head": x.head.description, "layer": x.head.layer, "index": x.head.head, "score": x.score]
        }
        return [
            "output": output, "model": env.displayName, "suite": probe.suite.name, "finished": true,
            "trials": r.records.count, "located": r.records.filter(\.located).count,
            "successful": r.records.filter(\.success).count, "counted": r.scores.countedTrials,
            "resumed_trials": r.resumedTrials, "seconds": r.seconds,
            "n_layers": r.scores.layers, "n_heads": r.scores.heads, "threshold": r.threshold,
            "retrieval_heads": r.retrievalHeads.map(head), "top": r.scores.top(top).map(head),
            "mean_rouge1_recall": Statistics.mean(r.records.map(\.rouge)),
        ]
    }

    static func summary(_ r: RetrievalSweepResult, output: String, probe: NIAHProbe, env: RetrievalEnvironment,
                        top: Int) -> String {
        let f = RetrievalEnvironment.fmt
        var s = "retrieval heads of \(env.displayName) on suite \(probe.suite.name)\n"
        s += "trials: \(r.records.count) (\(r.records.filter(\.located).count) with the needle span located, "
        s += "\(r.records.filter(\.success).count) answered correctly, \(r.scores.countedTrials) counted)"
        s += r.resumedTrials > 0 ? "; \(r.resumedTrials) resumed from a partial run\n" : "\n"
        s += "mean ROUGE-1 recall x100: \(f(Statistics.mean(r.records.map(\.rouge)), 1)); time \(f(r.seconds, 1)) s\n"
        let above = r.retrievalHeads
        s += "heads > \(f(r.threshold, 2)): \(above.count) of \(r.scores.layers * r.scores.heads)"
        s += above.isEmpty ? "\n" : " (" + above.prefix(20).map { $0.head.description }.joined(separator: ", ")
            + (above.count > 20 ? ", ..." : "") + ")\n"
        if top > 0 {
            s += "top \(min(top, r.scores.layers * r.scores.heads)) heads:\n"
            s += "  rank  head     score\n"
            for (i, x) in r.scores.top(top).enumerated() {
                s += "  " + String(i + 1).padding(toLength: 6, withPad: " ", startingAt: 0)
                    + x.head.description.padding(toLength: 9, withPad: " ", startingAt: 0) + f(x.score, 4) + "\n"
            }
        }
        s += "wrote \(output)\n"
        return s
    }
}

// MARK: - Shared by retrieval-heads and ablate

/// Options and steps shared by the resumable sweeps (`retrieval-heads`, `ablate`): output
/// format, progress bar, prefix reuse, restart and the hidden --stop-after.
struct SweepRunOptions: ParsableArguments {
    @Flag(help: "Print a JSON summary on stdout instead of text.")
    var json = false

    @Flag(name: .customLong("no-progress"), help: "No progress bar on stderr.")
    var noProgress = false

    @Flag(name: .customLong("no-share-prefix"), help: "Prefill every trial from scratch, in grid order.")
    var noSharePrefix = false

    @Flag(help: "Discard an interrupted run (<output>.partial) instead of resuming it.")
    var restart = false

    @Option(name: .customLong("stop-after"), help: .hidden)
    var stopAfter: Int?

    func validate() throws {
        if let k = stopAfter, k < 0 { throw ValidationError("--stop-after must be >= 0") }
    }

    /// The resumable run file at `output` (its partial file discarded first with --restart),
    /// checked against this model, with the root header written when it is new.
    func openRunFile(_ output: String, env: RetrievalEnvironment, command: String) throws -> RunFileWriter {
        if restart { try? FileManager.default.removeItem(atPath: RunFileWriter.temporaryPath(for: output, resumable: true)) }
        let writer = try RunFileWriter(path: output, resumable: true)
        try env.checkResumable(writer)
        if !writer.resumed { try env.header(command: command).write(to: writer.file) }
        return writer
    }

    /// Runs `body` with a progress bar on stderr (unless --no-progress), closed however it ends.
    func withProgress<T>(title: String, unit: String = "trials",
                         _ body: (@escaping (SweepProgress) -> Void) throws -> T) throws -> T {
        let bar = RetrievalProgressBar(enabled: !noProgress, title: title, unit: unit)
        defer { bar.finish() }
        return try body { bar.update($0) }
    }
}

/// Suite selection and overrides (probes/README.md, `NIAHSuite.Overrides`).
struct NIAHSuiteOptions: ParsableArguments {
    @Option(name: [.customShort("m"), .long], help: "Path to a .gguf file (default: $HEADLIGHT_MODEL or the cached SmolLM2-135M-Instruct).")
    var model: String?

    @Option(help: "NIAH suite file (default: probes/niah/default.json under the current directory).")
    var probes: String?

    @Option(help: "Override the suite's haystack (file or directory).")
    var haystack: String?

    @Option(help: "Override the suite's needles file (JSONL).")
    var needles: String?

    @Option(name: .customLong("needle-ids"), help: "Comma-separated needle ids to use.")
    var needleIDs: String?

    @Option(help: "Comma-separated context lengths in tokens.")
    var lengths: String?

    @Option(help: "Comma-separated needle depths in percent.")
    var depths: String?

    @Option(help: "Tokens reserved for template, question and answer.")
    var buffer: Int?

    @Option(name: .customLong("max-new-tokens"), help: "Greedy decoding budget per trial.")
    var maxNewTokens: Int?

    @Option(help: "Override the suite's chat setting (true/false).")
    var chat: Bool?

    func validate() throws {
        _ = try overrides()
    }

    func overrides() throws -> NIAHSuite.Overrides {
        func list<T>(_ s: String?, _ name: String, _ parse: (String) -> T?) throws -> [T]? {
            guard let s else { return nil }
            let parts = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            var out: [T] = []
            for p in parts {
                guard let v = parse(p) else { throw ValidationError("--\(name): \"\(p)\" is not a valid value") }
                out.append(v)
            }
            guard !out.isEmpty else { throw ValidationError("--\(name) needs at least one value") }
            return out
        }
        return NIAHSuite.Overrides(
            haystack: haystack, needles: needles,
            needleIDs: try list(needleIDs, "needle-ids") { $0.isEmpty ? nil : $0 },
            lengths: try list(lengths, "lengths") { Int($0) }, depths: try list(depths, "depths") { Double($0) },
            buffer: buffer, chat: chat, maxNewTokens: maxNewTokens)
    }

    var suitePath: String { probes ?? "probes/niah/default.json" }

    func loadProbe() throws -> NIAHProbe {
        let path = suitePath
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIError("suite file not found: \(path)",
                           hint: probes == nil ? "run from the repository root or pass --probes probes/niah/default.json"
                                               : "check the path")
        }
        do {
            return try NIAHProbe.load(contentsOf: URL(fileURLWithPath: path), overrides: try overrides())
        } catch let e as NIAHSuiteError {
            throw CLIError(e.errorDescription ?? "\(e)", hint: e.recoverySuggestion)
        }
    }
}

/// The loaded model, tokenizer and chat template, and run-file header helpers.
struct RetrievalEnvironment {
    let url: URL
    let file: GGUFFile
    let model: Model
    let tokenizer: Tokenizer
    let chatTemplate: ChatTemplate?

    static func load(model path: String?) throws -> RetrievalEnvironment {
        let url = try ModelLocator.resolve(path)
        let file = try GGUFFile(url: url)
        let tokenizer = try Tokenizer(gguf: file)
        let model = try Model(gguf: file)
        return RetrievalEnvironment(url: url, file: file, model: model, tokenizer: tokenizer,
                                    chatTemplate: try? ChatTemplate(gguf: file))
    }

    var displayName: String { model.name ?? url.lastPathComponent }

    /// The chat wrapper for NIAHTrialBuilder: one user message plus the generation prompt.
    func chatWrapper(needed: Bool) throws -> ((String) -> String)? {
        guard needed else { return nil }
        guard let t = chatTemplate else {
            throw CLIError("the suite asks for the chat form but \(url.lastPathComponent) has no chat template "
                           + "Headlight can render", hint: "pass --chat false")
        }
        return { body in (try? t.apply(messages: [.user(body)], addGenerationPrompt: true)) ?? body }
    }

    private var sizeBytes: Int? { (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue }

    func header(command: String) throws -> RunFileHeader {
        let c = model.config
        return RunFileHeader(
            headlightVersion: Headlight.version, command: command, commandLine: CommandLine.arguments,
            modelFile: url.lastPathComponent, modelSize: sizeBytes, modelSHA256: try SHA256.hashFile(at: url),
            modelName: model.name, architecture: c.architecture,
            dimensions: ["n_layers": c.nLayers, "n_heads": c.nHeads, "n_key_value_heads": c.nKVHeads,
                         "d_model": c.dModel, "d_head": c.dHead, "d_mlp": c.dFF, "d_vocab": c.vocabSize,
                         "n_ctx": c.contextLength])
    }

    /// A resumed partial file must come from the same model file.
    func checkResumable(_ writer: RunFileWriter) throws {
        guard writer.resumed else { return }
        let have = try writer.file.attributeIfPresent(RunFile.Attr.modelSHA256)?.stringValue
        let want = try SHA256.hashFile(at: url)
        if have != want {
            throw CLIError("\(writer.temporaryPath) was written with another model (sha256 \(have ?? "unknown"))",
                           hint: "rerun with that model, or pass --restart to discard the partial run")
        }
    }

    static func describe(_ e: Error) -> String { HeadlightMain.describe(e) }

    static func fmt(_ x: Double, _ digits: Int) -> String {
        x.isFinite ? String(format: "%.\(digits)f", x) : "n/a"
    }

    static func jsonString(_ s: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [s], options: [])) ?? Data("[\"\"]".utf8)
        let t = String(decoding: data, as: UTF8.self)
        return String(t.dropFirst().dropLast())
    }

    static func json(_ o: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: sanitize(o), options: [.sortedKeys]), as: UTF8.self)
    }

    /// JSON has no NaN or infinity: they become null.
    static func sanitize(_ v: Any) -> Any {
        switch v {
        case let d as Double: return d.isFinite ? d : NSNull()
        case let a as [Any]: return a.map(sanitize)
        case let o as [String: Any]: return o.mapValues(sanitize)
        default: return v
        }
    }
}

/// A progress bar with ETA on stderr: redrawn in place when stderr is a terminal, else a plain
/// line at most once a minute ($HEADLIGHT_PROGRESS_INTERVAL seconds when set).
final class RetrievalProgressBar: @unchecked Sendable {
    let enabled: Bool
    let title: String
    let unit: String
    let tty = isatty(2) != 0
    let start = Date()
    var lastPrint = Date.distantPast
    var printed = false
    var firstWork: Double?

    init(enabled: Bool, title: String, unit: String = "trials") {
        self.enabled = enabled
        self.title = title
        self.unit = unit
    }

    static func clock(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "--:--" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, (t / 60) % 60, t % 60)
                         : String(format: "%d:%02d", t / 60, t % 60)
    }

    /// Seconds between progress lines when stderr is not a terminal: 60, or
    /// $HEADLIGHT_PROGRESS_INTERVAL (the notebook runner sets 15 for the cells it echoes).
    static let lineInterval: Double = {
        if let v = ProcessInfo.processInfo.environment["HEADLIGHT_PROGRESS_INTERVAL"], let x = Double(v), x >= 0 { return x }
        return 60
    }()

    func update(_ p: SweepProgress) {
        guard enabled else { return }
        if firstWork == nil { firstWork = p.workDone }
        let now = Date()
        let final = p.done == p.total
        guard final || now.timeIntervalSince(lastPrint) >= (tty ? 0.2 : Self.lineInterval) else { return }
        if !tty && !final && p.done == 0 { return }
        lastPrint = now
        let elapsed = now.timeIntervalSince(start)
        let doneNow = p.workDone - (firstWork ?? 0)
        var eta = Double.nan
        if doneNow > 0 { eta = elapsed / doneNow * max(p.workTotal - p.workDone, 0) }
        let frac = p.workTotal > 0 ? min(max(p.workDone / p.workTotal, 0), 1) : Double(p.done) / Double(max(p.total, 1))
        let width = 24
        let filled = Int((frac * Double(width)).rounded(.down))
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" : "")
            + String(repeating: " ", count: max(width - filled - 1, 0))
        let line = "\(title): [\(bar)] \(p.done)/\(p.total) \(unit), elapsed \(Self.clock(elapsed)), ETA \(Self.clock(eta)) (\(p.label))"
        FileHandle.standardError.write(Data((tty ? "\r\u{1B}[K" + line : line + "\n").utf8))
        printed = true
    }

    func finish() {
        if enabled && tty && printed { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
