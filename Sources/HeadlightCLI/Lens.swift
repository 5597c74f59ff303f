import Analysis
import ArgumentParser
import Foundation
import Inference
import RunRecording
import TraceStore

/// `headlight lens`: the logit lens of a prompt at chosen positions and, with `--target`
/// (and `--baseline`), the direct logit attribution of every head, MLP and the embedding to the
/// target's logit (difference). Prints a summary and writes a run file (`/lens`, docs/run-file.md)
/// that `headlight report` draws.
struct Lens: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Logit lens and direct logit attribution of a prompt.",
        discussion: """
            The logit lens reads the residual stream before every block (and after the last) through \
            the final norm and the unembedding. With --target TOKEN (and --baseline TOKEN) every \
            component's direct contribution to logit(target) (− logit(baseline)) is computed with \
            the final norm's scale frozen, as TransformerLens's logit attribution does; the \
            contributions add up to the model's own logit difference.

            Example (IOI): headlight lens --prompt "When Mary and John went to the store, John gave \
            a drink to" --target " Mary" --baseline " John" -o ioi.h5
            """)

    @Option(
        name: [.customShort("m"), .long],
        help: "Path to a .gguf file or a known model name (default: the cached SmolLM2-135M-Instruct).")
    var model: String?

    @Option(help: "The prompt text.")
    var prompt: String?

    @Option(name: .customLong("prompt-file"), help: "Read the prompt from a file.")
    var promptFile: String?

    @Flag(help: "Wrap the prompt in the model's chat template as a user message.")
    var chat = false

    @Option(
        parsing: .unconditional,
        help: "Prompt positions to read (default: the last), e.g. -1, 3,5, last:4, 10:20.")
    var positions: String = "-1"

    @Option(help: "Top tokens kept per layer and position.")
    var top: Int = 10

    @Option(help: "Token whose logit is attributed: text that is exactly one token (e.g. \" Mary\").")
    var target: String?

    @Option(name: .customLong("target-id"), parsing: .unconditional, help: "Token id whose logit is attributed.")
    var targetID: Int?

    @Option(help: "Token subtracted from the target (logit difference): one token of text.")
    var baseline: String?

    @Option(name: .customLong("baseline-id"), parsing: .unconditional, help: "Token id subtracted from the target.")
    var baselineID: Int?

    @Flag(help: "Print only the output path.")
    var quiet = false

    @Option(name: [.customShort("o"), .long], help: "Output run file (.h5).")
    var output: String

    @OptionGroup var kvCache: KVCacheOption

    func validate() throws {
        guard (prompt == nil) != (promptFile == nil) else {
            throw ValidationError("give exactly one of --prompt TEXT or --prompt-file FILE")
        }
        guard top >= 1 else { throw ValidationError("--top must be at least 1 (got \(top))") }
        if target != nil && targetID != nil { throw ValidationError("give --target or --target-id, not both") }
        if baseline != nil && baselineID != nil { throw ValidationError("give --baseline or --baseline-id, not both") }
        if (baseline != nil || baselineID != nil) && target == nil && targetID == nil {
            throw ValidationError("--baseline needs --target")
        }
        for (name, v) in [("--target-id", targetID), ("--baseline-id", baselineID)] {
            if let v, v < 0 { throw ValidationError("\(name) must be >= 0 (got \(v))") }
        }
        _ = try QuerySelection(parsing: positions)
        try RunFileWriter.checkOutputPath(output)
    }

    func run() throws {
        try kvCache.apply()
        let env = try LoadedModel.load(model, hashInBackground: true)
        let c = env.config, tokenizer = env.tokenizer
        var text = prompt ?? ""
        if let promptFile {
            guard let data = FileManager.default.contents(atPath: promptFile) else {
                throw CLIError("--prompt-file: cannot read \(promptFile)", hint: "check the path")
            }
            text = String(decoding: data, as: UTF8.self)
        }
        var ids: [Int32]
        if chat {
            let template = try ChatTemplate(gguf: env.gguf)
            ids = tokenizer.encodeChat(
                try template.apply(messages: [.user(text)], addGenerationPrompt: true), template: template)
        } else {
            ids = tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        }
        guard !ids.isEmpty else { throw CLIError("the prompt is empty after tokenization", hint: "pass some text") }
        guard ids.count <= c.contextLength else {
            throw CLIError("the prompt has \(ids.count) tokens, more than the model's context of \(c.contextLength)")
        }
        let selected: [Int]
        do {
            selected = try QuerySelection(parsing: positions).resolve(prompt: ids.count, decode: 0)
        } catch let e as HookError {
            throw CLIError(wrapping: e, hint: "positions are 0..<\(ids.count); negative ones count from the end")
        }
        func token(_ text: String?, _ id: Int?, _ option: String) throws -> Int32? {
            if let id {
                guard id < c.vocabSize else {
                    throw CLIError("\(option) \(id) is outside the vocabulary (0..<\(c.vocabSize))")
                }
                return Int32(id)
            }
            guard let text else { return nil }
            let t = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
            guard t.count == 1 else {
                let pieces = t.map { Self.shown(tokenizer.piece($0)) }.joined(separator: " ")
                throw CLIError(
                    "\(option) \(Self.shown(text)) is \(t.count) tokens (\(pieces)), not one",
                    hint: "pick text that is a single token (often with a leading space), or pass \(option)-id")
            }
            return t[0]
        }
        let targetToken = try token(target, targetID, "--target")
        let baselineToken = try token(baseline, baselineID, "--baseline")
        let request = LogitLensRequest(positions: selected, top: top, target: targetToken, baseline: baselineToken)
        let lens: LogitLens
        do {
            lens = try LogitLens.compute(model: env.model, prompt: ids, request: request)
        } catch let e as LensError {
            throw CLIError(wrapping: e)
        }

        let writer = try RunFileWriter(path: output)
        var done = false
        defer { if !done { try? writer.abandon() } }
        try RunFileHeader(model: env, command: "lens").write(to: writer.file)
        let tokensDS = try writer.file.createDataset(RunFile.tokens, data: ids)
        try tokensDS.setAttribute(RunFile.Attr.prompt, text)
        try tokensDS.setAttribute("prompt_length", ids.count)
        try tokensDS.setAttribute("chat", chat)
        try writer.file.createDataset(RunFile.tokenStrings, strings: ids.map { tokenizer.piece($0) })
        try LensRunFile.write(lens, text: { tokenizer.piece($0) }, to: writer.file)
        try writer.finalize()
        done = true
        if quiet {
            print(output)
        } else {
            print(summary(lens, ids: ids, tokenizer: tokenizer), terminator: "")
            print("wrote \(output)")
        }
    }

    /// The lens per position (top-1 per row; the target's rank) and the strongest attributions.
    private func summary(_ lens: LogitLens, ids: [Int32], tokenizer: Tokenizer) -> String {
        let P = lens.positions.count, k = lens.request.top, H = lens.heads, L = lens.layers
        var o = ""
        for (pi, pos) in lens.positions.enumerated() {
            o += "position \(pos) (\(Self.shown(tokenizer.piece(ids[pos])))): predicted next token by layer\n"
            for r in 0..<lens.rows {
                let id = lens.topIDs[(r * P + pi) * k]
                let logit = lens.topLogits[(r * P + pi) * k]
                var line = "  \(lens.rowLabels[r].padding(toLength: 6, withPad: " ", startingAt: 0))"
                line += "\(Self.shown(tokenizer.piece(id)).padding(toLength: 16, withPad: " ", startingAt: 0))"
                line += String(format: "%8.3f", logit)
                if lens.request.target != nil {
                    let i = r * P + pi
                    line += "   target rank \(lens.targetRank[i])"
                    if lens.request.baseline != nil {
                        line += String(format: ", logit diff %+.3f", lens.targetLogit[i] - lens.baselineLogit[i])
                    }
                }
                o += line + "\n"
            }
            guard let a = lens.attribution else { continue }
            let what = lens.request.baseline == nil ? "logit of the target" : "logit difference"
            o += String(
                format: "  direct attribution to the %@: model %+.3f, sum of components %+.3f\n", what,
                a.logitDifference[pi], a.total[pi])
            var parts: [(String, Double)] = [("embed", a.embed[pi])]
            for l in 0..<L {
                for h in 0..<H { parts.append(("head \(l).\(h)", a.heads[(pi * L + l) * H + h])) }
                parts.append(("mlp \(l)", a.mlp[pi * L + l]))
            }
            for (name, v) in parts.sorted(by: { abs($0.1) > abs($1.1) }).prefix(8) {
                o += String(format: "    %-10@ %+.3f\n", name, v)
            }
        }
        return o
    }

    /// Token text for the terminal: quoted, with control and format characters (ESC, bidi
    /// overrides) shown as \u{...}.
    static func shown(_ text: String) -> String {
        var out = "\""
        for s in text.unicodeScalars {
            switch s.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .unassigned, .privateUse:
                out += "\\u{\(String(s.value, radix: 16))}"
            default:
                if s == "\"" || s == "\\" { out += "\\" }
                out.unicodeScalars.append(s)
            }
        }
        return out + "\""
    }
}
