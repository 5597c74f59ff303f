import Foundation
import Inference
import TraceStore

/// `headlight trace --prompts FILE.jsonl`: many prompts in one process (the model is loaded
/// once), each traced by the single-prompt path (`Trace.record`) into `/inputs/NAME/` with the
/// layout a single-prompt file has at its root (`tokens`, `token_strings`, `captures/`).
///
/// Every prompt is tokenized and planned before the first one runs, so a bad line, a prompt
/// too long for the context or captures larger than --max-output fail before any work. The
/// file is written like the sweeps (`<output>.partial`, resumable): after each prompt its group
/// gets `complete = 1` and the file is flushed; a rerun of the same command (same options,
/// model and prompts file bytes) keeps the finished prompts, drops a half-written one and goes
/// on; --restart discards the partial file.
extension Trace {
    /// The `/inputs` group and the attributes of its members.
    enum BatchLayout {
        static let inputs = "/inputs"
        static func group(_ name: String) -> String { inputs + "/" + name }
    }

    func runBatch(env: LoadedModel, batch: PromptBatchFile) throws {
        let promptsFile = batch.path
        let file = (promptsFile as NSString).lastPathComponent
        if system != nil && !batch.entries.contains(where: { $0.chat ?? chat }) {
            throw CLIError(
                "--system needs --chat (or lines with \"chat\": true in \(file))",
                hint: "add --chat to wrap every prompt in the chat template")
        }
        // Tokenize and plan every prompt first.
        var prepared: [PreparedTrace] = []
        for e in batch.entries {
            let useChat = e.chat ?? chat
            if e.system != nil && !useChat {
                throw PromptBatchFile.ParseError(
                    file: promptsFile, line: e.line, detail: "\"system\" needs chat (\"chat\": true, or --chat)")
            }
            let sys = e.system ?? system
            let ids = try encode(e.prompt, chat: useChat, system: sys, gguf: env.gguf, tokenizer: env.tokenizer)
            guard !ids.isEmpty else {
                throw PromptBatchFile.ParseError(
                    file: promptsFile, line: e.line, detail: "the prompt is empty after tokenization")
            }
            let input = TraceInput(
                text: e.prompt, ids: ids, chat: useChat, system: sys, generate: e.generate ?? generate,
                what: "prompt \"\(e.name)\" (\(file) line \(e.line))")
            prepared.append(try prepare(input, env: env))
        }
        let plans = prepared.compactMap(\.plan)
        if !plans.isEmpty {
            try checkOutputSize(
                plans.map { $0.estimatedBytes(float16: float16) }.reduce(0, +),
                detail: "\(plans.map(\.captures.count).reduce(0, +)) datasets over \(prepared.count) prompts",
                prefix: "the captures of the \(prepared.count) prompts")
        }
        let shared = try sharedInterventions(env: env)

        if restart {
            try? FileManager.default.removeItem(atPath: RunFileWriter.temporaryPath(for: output, resumable: true))
        }
        let identity = [
            RunFile.Attr.command: "trace", RunFile.Attr.modelSHA256: try env.sha256(),
            "plan_sha256": try SweepRunOptions.planDigest(
                plan: batchPlanLines(shared), inputs: [promptsFile] + (meanPromptFile.map { [$0] } ?? [])),
            RunFile.Attr.kvCache: KVStorage.default.rawValue
        ]
        let writer = try RunFileWriter(
            path: output, resumable: true, header: try RunFileHeader(model: env, command: "trace"), identity: identity)
        var finalized = false
        defer { if !finalized { writer.close() } }
        let names = batch.entries.map(\.name)
        var finished = Set<String>()
        if writer.resumed {
            let g = try writer.file.group(BatchLayout.inputs)
            guard try g.attributeIfPresent("names")?.stringsValue == names else {
                throw TraceStoreError.cannotResume(
                    file: writer.temporaryPath, detail: "its /inputs@names differ from the prompts of \(file)",
                    hint: "Rerun with --restart to discard it, or choose another -o.")
            }
            for name in try g.children() {
                let path = BatchLayout.group(name)
                if try writer.file.kind(of: path) == .group,
                    try writer.file.group(path).attributeIfPresent(RunFile.Attr.complete)?.intValue == 1
                {
                    finished.insert(name)
                } else {
                    try writer.file.remove(path) // killed while this prompt was being written
                }
            }
            try writer.checkpoint()
        } else {
            let g = try writer.file.createGroup(BatchLayout.inputs)
            try g.setAttribute("names", names)
            try g.setAttribute("count", names.count)
            try g.setAttribute("prompts_file", file)
            try writer.checkpoint()
        }

        var ran = 0
        var tokens = 0
        var bytes = 0
        let start = Date()
        for (i, (p, e)) in zip(prepared, batch.entries).enumerated() where !finished.contains(e.name) {
            if let k = stopAfter, ran >= k {
                writer.close()
                if !quiet {
                    FileHandle.standardError.write(
                        Data(
                            ("trace: stopped after \(ran) prompts (--stop-after); \(writer.temporaryPath) holds "
                                + "\(finished.count + ran) of \(names.count); rerun to resume\n").utf8))
                }
                return
            }
            let prefix = BatchLayout.group(e.name)
            let g = try writer.file.createGroup(prefix)
            try g.setAttribute("index", i)
            try g.setAttribute("line", e.line)
            let r = try record(p, shared: shared, env: env, file: writer.file, at: prefix)
            try g.setAttribute(RunFile.Attr.complete, 1)
            try writer.checkpoint()
            ran += 1
            tokens += r.result.tokens.count
            bytes += r.bytes
            if !quiet {
                let line = String(
                    format: "trace: [%d/%d] %@: %d tokens (%d prompt + %d generated), %d capture datasets, %.2f s\n",
                    finished.count + ran, names.count, e.name, r.result.tokens.count, r.result.promptLength,
                    r.result.generated, r.datasets, r.result.prefillSeconds + r.result.decodeSeconds)
                FileHandle.standardError.write(Data(line.utf8))
            }
        }
        try writer.finalize()
        finalized = true
        if !quiet {
            let line = String(
                format:
                    "trace: %d prompts (%d traced now, %d resumed), %d tokens, %.1f MB captured, %.2f s; wrote %@\n",
                names.count, ran, finished.count, tokens, Double(bytes) / 1e6, Date().timeIntervalSince(start), output)
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    /// What determines a batch's contents besides the prompts file (for the resume check).
    func batchPlanLines(_ shared: SharedInterventions) -> [String] {
        [
            "trace --prompts v1", "hooks=\(hooks ?? "")", "layers=\(layers ?? "")", "heads=\(heads ?? "")",
            "queries=\(queries)", "top-k=\(topK.map(String.init) ?? "")", "spans=\(spans.joined(separator: "\u{1}"))",
            "interventions=\(shared.interventions.map(\.description).joined(separator: ","))",
            "mean-prompt-file=\(meanPromptFile ?? "")", "patch=\(patch ?? "")", "patch-source=\(patchSource ?? "")",
            "patch-positions=\(patchPositions ?? "")", "generate=\(generate)", "ignore-eos=\(ignoreEOS)",
            "chat=\(chat)", "system=\(system ?? "")", "float16=\(float16)", "gzip=\(gzip.map(String.init) ?? "")",
            "shuffle=\(!noShuffle)", "max-chunk=\(maxChunk)"
        ]
    }
}
