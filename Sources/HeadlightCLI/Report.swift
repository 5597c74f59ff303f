import Analysis
import ArgumentParser
import Foundation
import GGUF
import Inference
import Reports
import RunRecording
import TraceStore

/// `headlight report RUN.h5... -o reports/NAME/`: an HTML report (index.html with inline SVG,
/// plus figures/*.svg) from run files, and two helpers that write the run files the head graphs
/// and the attention figure are drawn from.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Build an HTML report from run files (and compute head graphs / needle attention for it).",
        discussion: """
            `headlight report RUN.h5... -o DIR` reads the run files and nothing else, and writes \
            DIR/index.html (self-contained: inline CSS and SVG, no scripts, no network) and every figure \
            as DIR/figures/NAME.svg. A figure is drawn only when the run files hold its data: retrieval \
            heads (heat map, top heads, needle plot), ablation (needle plots per condition, top-K vs random \
            bars with 95% CIs, perplexity change), head graphs (composition, causal), attention around the \
            needle, citation, membership. Reproducibility facts close every report.

            `headlight report composition` computes weight-based Q/K/V composition scores among the top \
            retrieval heads (Elhage et al. 2021; approximate under RoPE and GQA) into a run file. \
            `headlight report attention` reruns one detection trial and stores the top heads' attention \
            over the prompt. Give their outputs to `headlight report` like any other run file.
            """,
        subcommands: [Render.self, CompositionCommand.self, AttentionCommand.self],
        defaultSubcommand: Render.self)

    // MARK: render

    struct Render: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "render", abstract: "Write DIR/index.html and DIR/figures/*.svg from run files (the default).")

        @Argument(help: "Run files (.h5).")
        var runFiles: [String] = []

        @Option(name: [.customShort("o"), .long], help: "Report directory (created if needed).")
        var output: String

        @Option(help: "Report title (default: from the analyses and the model).")
        var title: String?

        @Flag(name: .customLong("allow-incomplete"), help: "Also read run files that did not finish (complete = 0).")
        var allowIncomplete = false

        func validate() throws {
            guard !runFiles.isEmpty else { throw ValidationError("give at least one run file (.h5)") }
            for f in runFiles where !FileManager.default.fileExists(atPath: f) {
                throw ValidationError("no such run file: \(f)")
            }
            try CommandChecks.outputDirectory(output)
        }

        func run() throws {
            // Run files may come from anyone: each is read in a child process first (docs/security.md).
            for path in runFiles { try RunFileIsolation.check(path) }
            var files: [RunFileContents] = []
            for path in runFiles {
                do {
                    files.append(try RunFileContents.load(URL(fileURLWithPath: path), allowIncomplete: allowIncomplete))
                } catch {
                    let message = HeadlightMain.describe(error, file: path)
                    throw CLIError(
                        message,
                        hint: !allowIncomplete && message.contains("did not finish")
                            ? "a run that was interrupted can be shown with --allow-incomplete" : nil)
                }
            }
            let command = Shell.command(
                ["headlight", "report"] + runFiles + ["-o", output]
                    + (title.map { ["--title", $0] } ?? []))
            let doc: ReportDocument
            do {
                doc = try RunReport.document(
                    files, title: title, headlightVersion: Headlight.version,
                    reportCommand: command, machine: RunProvenance.machineSummary())
            } catch let e as ReportError {
                throw CLIError(wrapping: e, hint: e.recoverySuggestion)
            }
            let index = try doc.write(to: URL(fileURLWithPath: output, isDirectory: true))
            let figures = doc.figureFiles().count
            FileHandle.standardError.write(
                Data(
                    ("report: \(figures) figure\(figures == 1 ? "" : "s") from \(files.count) run "
                        + "file\(files.count == 1 ? "" : "s")\n").utf8))
            print(Report.displayPath(index))
        }
    }

    // MARK: composition

    struct CompositionCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "composition",
            abstract: "Weight-based Q/K/V composition scores among the top retrieval heads, into a run file.",
            discussion: CompositionScores.approximationNote)

        @Option(
            name: [.customShort("m"), .long],
            help: "Path to a .gguf file (default: $HEADLIGHT_MODEL or the cached SmolLM2-135M-Instruct).")
        var model: String?

        @Option(name: .customLong("heads-from"), help: "A retrieval-heads run file; its top heads are used.")
        var headsFrom: String?

        @Option(help: "Explicit heads, e.g. 14.3,15.2 (instead of --heads-from).")
        var heads: String?

        @Option(help: "With --heads-from: the N highest-scoring heads.")
        var top = 12

        @Flag(name: .customLong("no-fold-norms"), help: "Do not fold the RMSNorm gains into the weights.")
        var noFoldNorms = false

        @Option(name: .customLong("baseline-draws"), help: "Random-matrix draws for the baseline (0: none).")
        var baselineDraws = 8

        @Option(name: [.customShort("o"), .long], help: "Run file to write.")
        var output = "composition.h5"

        @OptionGroup var kvCache: KVCacheOption

        func validate() throws {
            guard (headsFrom == nil) != (heads == nil) else {
                throw ValidationError("give exactly one of --heads-from FILE or --heads LIST")
            }
            guard (2...64).contains(top) else { throw ValidationError("--top must be in 2...64") }
            guard (0...100).contains(baselineDraws) else {
                throw ValidationError("--baseline-draws must be in 0...100")
            }
            if let h = heads {
                let items = h.split(separator: ",", omittingEmptySubsequences: false)
                for p in items where HeadIndex(String(p)) == nil {
                    throw ValidationError("--heads: \"\(p)\" is not a head (write L.H, e.g. 14.3)")
                }
                // Composition runs from a head in an earlier layer to one in a later layer.
                let parsed = items.compactMap { HeadIndex(String($0)) }
                guard Set(parsed.map(\.layer)).count >= 2 else {
                    throw ValidationError(
                        "--heads needs heads in at least two layers (composition is measured from an earlier "
                            + "layer's head to a later one's), e.g. 14.3,15.2")
                }
                guard Set(parsed).count == parsed.count else { throw ValidationError("--heads lists a head twice") }
            }
            try CommandChecks.outputFile(output)
        }

        func run() throws {
            try kvCache.apply()
            let env = try LoadedModel.load(model)
            let c = env.model.config
            var chosen: [HeadIndex]
            var headScores: [Double]?
            var selection: String
            if let path = headsFrom {
                let data = try Report.retrieval(path, layers: c.nLayers, heads: c.nHeads)
                let top = data.scores.ranked.prefix(top)
                chosen = top.map(\.head)
                headScores = top.map(\.score)
                selection = "top \(chosen.count) heads by retrieval score in \((path as NSString).lastPathComponent)"
            } else {
                chosen = heads!.split(separator: ",").compactMap { HeadIndex(String($0)) }
                selection = "heads given on the command line"
            }
            // Layer order makes the matrices read naturally (writers before readers).
            if let s = headScores {
                let pairs = zip(chosen, s).sorted { $0.0 < $1.0 }
                chosen = pairs.map(\.0)
                headScores = pairs.map(\.1)
            } else {
                chosen.sort()
            }
            let start = Date()
            let scores: CompositionScores
            do {
                scores = try Composition.compute(
                    model: env.model, heads: chosen, foldNormGains: !noFoldNorms,
                    baselineDraws: baselineDraws)
            } catch let e as CompositionError {
                throw CLIError(wrapping: e)
            }
            let writer = try RunFileWriter(path: output)
            do {
                try RunFileHeader(model: env, command: "report composition").write(to: writer.file)
                try RunProvenance.writeMachineAttributes(into: writer.file)
                try CompositionRunFile.write(
                    scores, to: writer.file, selection: selection,
                    headsSource: headsFrom.map { ($0 as NSString).lastPathComponent },
                    headScores: headScores, baselineDraws: baselineDraws)
                try writer.finalize()
            } catch {
                try? writer.abandon() // no <output>.tmp-PID left behind
                throw error
            }
            let best = scores.pairs().prefix(5).map {
                "\($0.from)→\($0.to) \($0.kind.rawValue.uppercased()) \(String(format: "%.3f", $0.score))"
            }
            print(
                "composition among \(chosen.count) heads (\(String(format: "%.1f", Date().timeIntervalSince(start))) "
                    + "s); random baseline Q \(String(format: "%.3f", scores.baseline[.q] ?? .nan)), K "
                    + "\(String(format: "%.3f", scores.baseline[.k] ?? .nan)), V "
                    + "\(String(format: "%.3f", scores.baseline[.v] ?? .nan))")
            if !best.isEmpty { print("strongest: " + best.joined(separator: ", ")) }
            print("wrote \(output)")
        }
    }

    // MARK: attention

    struct AttentionCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "attention",
            abstract: "Rerun one detection trial and store the top heads' attention over the prompt, into a run file.",
            discussion: """
                Pass the same suite options as the retrieval-heads run (the trial is rebuilt from the suite; its \
                prompt length is checked against the run file). The model answers greedily again (stopping at a \
                newline or end of generation, as in detection) and the attention rows of the top heads are stored \
                for every answer step; the report shows the step at which they attend most to the needle.
                """)

        @OptionGroup var suite: NIAHSuiteOptions

        @Option(name: .customLong("heads-from"), help: "The retrieval-heads run file.")
        var headsFrom: String

        @Option(help: "How many of the top heads to store.")
        var top = 4

        @Option(help: "Trial index (default: a counted trial with the longest context, needle nearest 50% depth).")
        var trial: Int?

        @Option(name: .customLong("max-steps"), help: "Answer tokens to generate (and capture) at most.")
        var maxSteps = 50

        @Option(name: [.customShort("o"), .long], help: "Run file to write.")
        var output = "needle_attention.h5"

        @OptionGroup var kvCache: KVCacheOption

        func validate() throws {
            try suite.validate()
            guard (1...16).contains(top) else { throw ValidationError("--top must be in 1...16") }
            guard (1...256).contains(maxSteps) else { throw ValidationError("--max-steps must be in 1...256") }
            if let trial, trial < 0 { throw ValidationError("--trial must be >= 0") }
            try CommandChecks.outputFile(output)
        }

        func run() throws {
            try kvCache.apply()
            let env = try LoadedModel.load(suite.model)
            let c = env.model.config
            let data = try Report.retrieval(headsFrom, layers: c.nLayers, heads: c.nHeads)
            let probe = try suite.loadProbe(for: env)
            let cells = probe.cells
            do {
                let record = try NeedleAttention.chooseTrial(data.records, requested: trial, file: headsFrom)
                guard record.trialIndex >= 0 && record.trialIndex < cells.count else {
                    throw NeedleAttentionError.trialOutsideSuite(trial: record.trialIndex, cells: cells.count)
                }
                let builder = NIAHTrialBuilder(
                    probe: probe, tokenizer: env.tokenizer,
                    chatTemplate: try env.chatWrapper(needed: probe.suite.chat))
                let t = try builder.trial(cells[record.trialIndex])
                if record.promptTokens > 0 && t.promptTokens.count != record.promptTokens {
                    throw NeedleAttentionError.promptMismatch(
                        trial: record.trialIndex, rebuilt: t.promptTokens.count,
                        stored: record.promptTokens)
                }
                let heads = data.scores.ranked.prefix(top).map(\.head)
                let start = Date()
                let r = try NeedleAttention.run(
                    model: env.model, tokenizer: env.tokenizer, trial: t,
                    trialIndex: record.trialIndex, heads: heads, maxSteps: maxSteps)
                let writer = try RunFileWriter(path: output)
                do {
                    try RunFileHeader(model: env, command: "report attention").write(to: writer.file)
                    try RunProvenance.writeMachineAttributes(into: writer.file)
                    try NeedleAttention.write(
                        r, headsSource: (headsFrom as NSString).lastPathComponent, to: writer.file)
                    try writer.finalize()
                } catch {
                    try? writer.abandon()
                    throw error
                }
                let mass = heads.indices.compactMap { i in
                    r.needleMass(head: i).map { "\(heads[i]) \(String(format: "%.0f%%", $0 * 100))" }
                }
                print(
                    "trial \(r.trialIndex) (\(r.needleID), \(r.length) tokens, depth \(r.depth)%): "
                        + "\(r.promptLength) prompt tokens, \(r.generated.count) answer tokens, "
                        + "\(String(format: "%.1f", Date().timeIntervalSince(start))) s")
                if !mass.isEmpty {
                    let tok = r.chosenStep < r.generated.count ? env.tokenizer.piece(r.generated[r.chosenStep]) : "?"
                    print(
                        "attention on the needle at answer token \(r.chosenStep) (\(tok.debugDescription)): "
                            + mass.joined(separator: ", "))
                }
                print("wrote \(output)")
            } catch let e as NeedleAttentionError {
                throw CLIError(e.errorDescription ?? "\(e)", hint: e.recoverySuggestion)
            }
        }
    }

    // MARK: helpers


    /// The finished `/retrieval_heads` group of `path` (`RetrievalRunFile.read`), for this model.
    static func retrieval(_ path: String, layers: Int, heads: Int) throws -> RetrievalRunFile.Contents {
        try RunFileIsolation.check(path)
        let d: RetrievalRunFile.Contents
        do { d = try RetrievalRunFile.read(path: path) } catch RetrievalHeadsError.badScoresFile {
            // Never suggest writing to `path`: it is an existing file of the user's (a trace, say).
            throw CLIError(
                "\(path) has no /retrieval_heads results (it is not a run file of `headlight retrieval-heads`)",
                hint: "pass the run file a `headlight retrieval-heads -o FILE` run wrote")
        } catch {
            throw CLIError(HeadlightMain.describe(error, file: path))
        }
        guard d.layers == layers, d.heads == heads else {
            throw CLIError(
                "\(path) is for a model with \(d.layers) x \(d.heads) heads, this one has \(layers) x \(heads)",
                hint: "pass the model the run file was made with (-m)")
        }
        return d
    }

    static func displayPath(_ url: URL) -> String {
        let cwd = FileManager.default.currentDirectoryPath
        let p = url.standardizedFileURL.path
        return p.hasPrefix(cwd + "/") ? String(p.dropFirst(cwd.count + 1)) : p
    }
}
