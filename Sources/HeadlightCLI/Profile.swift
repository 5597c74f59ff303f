import Analysis
import ArgumentParser
import Foundation
import Inference
import TraceStore

/// `headlight profile`: the attention-sparsity profile of every head across context lengths.
struct Profile: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Profile attention sparsity per head: top-k share, entropy and sink mass vs context length.",
        discussion: """
            For each context length, --samples windows of that many tokens are cut from --text at \
            seeded offsets and run once each; the attention rows of the last --queries positions of \
            every layer and head are reduced on the fly (no pattern is stored, so 8k tokens fit in a \
            few hundred MB): the share of mass in the top-k keys for each k, the entropy, the mass on \
            the first tokens (attention sinks), and the mass a window-W policy with sinks would keep. \
            The premise of head-aware KV-cache policies (DuoAttention, StreamingLLM, ...): how many \
            heads could keep only a few keys at long context.
            """)

    @Option(
        name: [.customShort("m"), .long],
        help: "Path to a .gguf file (default: $HEADLIGHT_MODEL or the cached SmolLM2-135M-Instruct).")
    var model: String?

    @Option(help: "Text the windows are cut from.")
    var text = "probes/niah/haystack/jargon-file-4.4.7.txt"

    @Option(help: "Context lengths in tokens, comma-separated.")
    var lengths = "1024,2048,4096,8192"

    @Option(help: "Windows per length.")
    var samples = 2

    @Option(help: "Query positions per window (the last ones).")
    var queries = 32

    @Option(help: "k values of the top-k share, comma-separated.")
    var ks = "1,4,16,64,256"

    @Option(name: .customLong("sinks"), help: "Sink sizes (first tokens), comma-separated.")
    var sinks = "1,4"

    @Option(help: "Windows W of the streaming-mass statistic, comma-separated.")
    var windows = "128,512"

    @Option(name: .customLong("streaming-sinks"), help: "Sink tokens kept with the window in the streaming mass.")
    var streamingSinks = 4

    @Option(help: "Bootstrap resamples of the CIs over the windows (samples).")
    var bootstrap = Statistics.defaultBootstrapResamples

    @Option(help: "Seed for the window offsets.")
    var seed: UInt64 = 0

    @Option(name: [.customShort("o"), .long], help: "Run file to write.")
    var output = "profile.h5"

    @Flag(help: "Print a JSON summary on stdout instead of text.")
    var json = false

    @Flag(name: .customLong("no-progress"), help: "No progress on stderr.")
    var noProgress = false

    static func list(_ s: String, _ option: String, min: Int) throws -> [Int] {
        let parts = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        var out: [Int] = []
        for p in parts {
            guard let v = Int(p), v >= min else {
                throw ValidationError("\(option): '\(p)' is not an integer >= \(min)")
            }
            out.append(v)
        }
        guard !out.isEmpty else { throw ValidationError("\(option): empty list") }
        guard Set(out).count == out.count else { throw ValidationError("\(option): duplicate values in '\(s)'") }
        return out
    }

    @OptionGroup var kvCache: KVCacheOption

    func validate() throws {
        _ = try Self.list(lengths, "--lengths", min: 2)
        _ = try Self.list(ks, "--ks", min: 1)
        _ = try Self.list(sinks, "--sinks", min: 1)
        _ = try Self.list(windows, "--windows", min: 1)
        guard samples >= 1 else { throw ValidationError("--samples must be at least 1") }
        guard bootstrap >= 1 else { throw ValidationError("--bootstrap must be >= 1") }
        guard queries >= 1 else { throw ValidationError("--queries must be at least 1") }
        guard streamingSinks >= 0 else { throw ValidationError("--streaming-sinks must be >= 0") }
        try CommandChecks.outputFile(output)
    }

    func run() throws {
        guard let body = try? String(contentsOfFile: text, encoding: .utf8) else {
            throw CLIError(
                "--text: cannot read \(text) as UTF-8 text",
                hint: FileManager.default.fileExists(atPath: text) ? nil : "run from the repository root or pass --text"
            )
        }
        var o = SparsityProfileOptions()
        o.lengths = try Self.list(lengths, "--lengths", min: 2).sorted()
        o.ks = try Self.list(ks, "--ks", min: 1)
        o.sinkSizes = try Self.list(sinks, "--sinks", min: 1)
        o.windows = try Self.list(windows, "--windows", min: 1)
        o.samples = samples
        o.queries = queries
        o.streamingSinks = streamingSinks
        o.seed = seed
        o.bootstrapResamples = bootstrap
        try kvCache.apply()
        let env = try LoadedModel.load(model)
        let profiler = SparsityProfiler(model: env.model, tokenizer: env.tokenizer, options: o)
        let bar = ProgressBar(enabled: !noProgress, interval: 30)
        let result: SparsityProfileResult
        do {
            result = try profiler.run(text: body) { done, total, t in
                guard bar.due(final: done == total) else { return }
                bar.show("profile: \(done)/\(total) windows (length \(t)), elapsed \(ProgressBar.clock(bar.elapsed))")
            }
        } catch let e as SparsityError {
            bar.finish()
            throw CLIError(wrapping: e, hint: "lower --lengths or use a longer --text")
        }
        bar.finish()
        let writer = try RunFileWriter(path: output)
        do {
            try RunFileHeader(model: env, command: "profile").write(to: writer.file)
            try SparsityRunFile.write(to: writer.file, result: result, text: text)
            try writer.finalize()
        } catch {
            try? writer.abandon()
            throw error
        }
        let s = SparsitySummary(result)
        if json {
            print(try JSONOutput.object(s.json(output: output, model: env.displayName)))
        } else {
            print(
                TerminalText.escape(s.text(output: output, model: env.displayName), allowNewlines: true), terminator: ""
            )
        }
    }
}

/// Head-averaged numbers of a profile for the terminal.
struct SparsitySummary {
    let r: SparsityProfileResult

    init(_ r: SparsityProfileResult) { self.r = r }

    func median(_ v: [Double]) -> Double { Statistics.median(v.filter(\.isFinite)) }

    /// Heads whose top-k share is at least 0.9 at length index li.
    func concentrated(_ li: Int, _ ki: Int) -> Int { r.topKShare[li][ki].filter { $0 >= 0.9 }.count }

    func json(output: String, model: String) -> [String: Any] {
        let o = r.options
        return [
            "output": output, "model": model, "heads": r.layers * r.heads, "lengths": o.lengths, "ks": o.ks,
            "seconds": r.seconds,
            "median_topk_share": r.topKShare.map { $0.map(median) },
            "heads_topk_share_ge_0.9": (0..<o.lengths.count).map { li in o.ks.indices.map { concentrated(li, $0) } },
            "median_normalized_entropy": r.normalizedEntropy.map(median),
            "median_sink_mass": r.sinkMass.map { $0.map(median) },
            "median_streaming_mass": r.streamingMass.map { $0.map(median) },
            "median_head_ci": r.medianHead.map { row in
                zip(o.seriesNames, row).map {
                    ["series": $0, "estimate": $1.estimate, "lower": $1.lower, "upper": $1.upper]
                }
            }
        ]
    }

    func text(output: String, model: String) -> String {
        let f = Formatting.fixed, o = r.options
        var s = "attention-sparsity profile of \(model): \(r.layers * r.heads) heads, \(o.samples) window(s) x "
        s += "\(o.queries) queries per length; time \(f(r.seconds.reduce(0, +), 1)) s\n"
        s += "median over heads (heads with share >= 0.9 in parentheses):\n"
        s += "  length  " + o.ks.map { "top-\($0)".padding(toLength: 14, withPad: " ", startingAt: 0) }.joined()
        s +=
            "norm.entropy  "
            + o.sinkSizes.map { "sink-\($0)".padding(toLength: 9, withPad: " ", startingAt: 0) }.joined()
        s += o.windows.map { "keep \(o.streamingSinks)+\($0)".padding(toLength: 13, withPad: " ", startingAt: 0) }
            .joined()
        s += "\n"
        for (li, t) in o.lengths.enumerated() {
            s += "  " + String(t).padding(toLength: 8, withPad: " ", startingAt: 0)
            for ki in o.ks.indices {
                s += "\(f(median(r.topKShare[li][ki]), 3)) (\(concentrated(li, ki)))".padding(
                    toLength: 14, withPad: " ", startingAt: 0)
            }
            s += f(median(r.normalizedEntropy[li]), 3).padding(toLength: 14, withPad: " ", startingAt: 0)
            for si in o.sinkSizes.indices {
                s += f(median(r.sinkMass[li][si]), 3).padding(toLength: 9, withPad: " ", startingAt: 0)
            }
            for wi in o.windows.indices {
                s += f(median(r.streamingMass[li][wi]), 3).padding(toLength: 13, withPad: " ", startingAt: 0)
            }
            s += "\n"
        }
        if o.samples >= 2 {
            s += "95% bootstrap CIs over the \(o.samples) windows of the medians over heads:\n"
            let names = o.seriesNames
            let shown =
                names.indices.filter { names[$0] == "top-16 share" || names[$0] == "normalized entropy" }
                + names.indices.filter { names[$0].hasPrefix("sink mass") }
            for (li, t) in o.lengths.enumerated() where li < r.medianHead.count {
                s += "  \(t): "
                s +=
                    shown.map {
                        let c = r.medianHead[li][$0]
                        return "\(names[$0]) \(f(c.estimate, 3)) [\(f(c.lower, 3)), \(f(c.upper, 3))]"
                    }.joined(separator: ", ") + "\n"
            }
        } else {
            s += "one window per length: no CIs (use --samples 2 or more)\n"
        }
        s += "wrote \(output)\n"
        return s
    }
}
