import Analysis
import ArgumentParser
import Foundation

/// Suite selection and overrides (probes/README.md, `NIAHSuite.Overrides`).
struct NIAHSuiteOptions: ParsableArguments {
    @Option(
        name: [.customShort("m"), .long],
        help: "Path to a .gguf file (default: $HEADLIGHT_MODEL or the cached SmolLM2-135M-Instruct).")
    var model: String?

    @Option(help: "NIAH suite file (default: probes/niah/default.json under the current directory).")
    var probes: String?

    @Option(help: "Override the suite's haystack (file or directory).")
    var haystack: String?

    @Option(help: "Override the suite's needles file (JSONL); without --needle-ids all of its needles are used.")
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

    /// Files whose bytes determine the trials (for a resumed sweep's plan check).
    var inputFiles: [String] { [suitePath] + [haystack, needles].compactMap { $0 } }

    /// The trial grid and suite settings as plan lines (for a resumed sweep's plan check).
    static func planLines(_ probe: NIAHProbe) -> [String] {
        let s = probe.suite
        return ["suite \(s.name) buffer \(s.buffer) chat \(s.chat) seed \(s.seed) max_new_tokens \(s.maxNewTokens)"]
            + probe.cells.map { "cell \(probe.needles[$0.needleIndex].id) \($0.length) \($0.depth.bitPattern)" }
    }

    var suitePath: String { probes ?? "probes/niah/default.json" }

    /// The suite for `env`'s model. A suite that asks for the chat form (`"chat": true`, the
    /// default) on a model whose GGUF has no chat template Headlight can render — a base model such
    /// as Gemma 3 270M — runs in the plain form instead (the template rendered without a chat
    /// wrapper), with a note on stderr; the run file's plan records `chat false`. `--chat true`
    /// given explicitly still fails on such a model.
    func loadProbe(for env: LoadedModel, quiet: Bool = false) throws -> NIAHProbe {
        let probe = try loadProbe()
        guard probe.suite.chat, chat == nil, env.chatTemplate == nil else { return probe }
        if !quiet {
            FileHandle.standardError.write(
                Data(
                    ("note: \(env.url.lastPathComponent) has no chat template (a base model), so suite "
                        + "'\(probe.suite.name)' runs in the plain form (--chat false)\n").utf8))
        }
        return try loadProbe(chatOverride: false)
    }

    func loadProbe(chatOverride: Bool? = nil) throws -> NIAHProbe {
        let path = suitePath
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIError(
                "suite file not found: \(path)",
                hint: probes == nil
                    ? "run from the repository root or pass --probes probes/niah/default.json"
                    : "check the path")
        }
        do {
            var o = try overrides()
            if let chatOverride { o.chat = chatOverride }
            return try NIAHProbe.load(contentsOf: URL(fileURLWithPath: path), overrides: o)
        } catch let e as NIAHSuiteError {
            throw CLIError(wrapping: e, hint: e.recoverySuggestion)
        }
    }
}
