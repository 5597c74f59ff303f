import ArgumentParser
import Foundation
import GGUF
import Inference
import RunRecording
import TraceStore

/// `headlight trace`: one instrumented run of a prompt (and optionally a few generated tokens),
/// with the requested hook points streamed into an HDF5 run file (docs/run-file.md). A thin layer
/// over `InferenceSession.trace` and `CaptureWriter`.
struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a prompt with hooks: capture activations and attention into an HDF5 run file.",
        discussion: """
            Hooks use TransformerLens names: hook_embed, blocks.L.hook_resid_pre, blocks.L.attn.hook_q|k|v, \
            blocks.L.attn.hook_rot_q|rot_k, blocks.L.attn.hook_attn_scores, blocks.L.attn.hook_pattern, \
            blocks.L.attn.hook_z, blocks.L.attn.hook_result, blocks.L.hook_attn_out, blocks.L.hook_mlp_out, \
            blocks.L.hook_resid_post, ln_final.hook_normalized, logits. Short forms (attn.hook_pattern, \
            pattern, resid_pre) mean every layer; globs (blocks.*.attn.hook_pattern) and negative layers \
            (blocks.-1.hook_resid_post) work.

            Selections: --layers and --heads take indices and half-open ranges (0,3,8:12,-1); heads are \
            query heads (hook_k/v keep the KV heads those read). --queries takes all, prompt, decode, \
            last:N (the last N prompt tokens), positions and ranges (absolute; decode steps continue \
            the prompt's numbering). Attention hooks store whole rows unless --top-k K or --spans is given.

            Ablations: --ablate 3.4,5.*:uniform,*.2:scale=0.5 (methods uniform, zero, mean, bos, scale=F; \
            items without one use --ablate-method, default uniform; --ablate-phase, default both: the same \
            options, values and defaults as `headlight ablate`). Mean ablation uses the running mean of the \
            head's own output over the sequence, or the mean over --mean-prompt-file when given.

            Patching: --patch 3.4,blocks.5.hook_resid_pre copies those activations from a run of \
            --patch-source TEXT (head outputs by L.H, or resid_pre/resid_post/attn_out/mlp_out hooks), \
            position by position. The source must have as many tokens as the prompt unless \
            --patch-positions says which positions to patch (counted in each run; negative from each \
            run's end, so -1 patches the last token from the source's last token).

            The file is written to OUTPUT.tmp-PID and renamed to OUTPUT when complete; a killed run \
            leaves only the temporary file (root attribute complete = 0).
            """)

    @Option(
        name: [.customShort("m"), .long],
        help: "Path to a .gguf file (default: $HEADLIGHT_MODEL or the cached SmolLM2-135M-Instruct).")
    var model: String?

    @Option(help: "The prompt text.")
    var prompt: String?

    @Option(name: .customLong("prompt-file"), help: "Read the prompt from a file (\"-\": standard input).")
    var promptFile: String?

    @Option(
        name: .customLong("token-ids"),
        help: "Read the prompt as token ids (whitespace- or comma-separated) from a file.")
    var tokenIDs: String?

    @Flag(help: "Wrap the prompt in the model's chat template as a user message.")
    var chat = false

    @Option(help: "System message for --chat.")
    var system: String?

    @Option(help: "Hooks to capture, comma-separated (names, short forms, globs).")
    var hooks: String?

    @Option(parsing: .unconditional, help: "Layers (default: all), e.g. 0,5,10:20,-1.")
    var layers: String?

    @Option(parsing: .unconditional, help: "Query heads (default: all), e.g. 0,3:6.")
    var heads: String?

    @Option(parsing: .unconditional, help: "Query positions (default: all), e.g. last:64, 100:200, -1, decode.")
    var queries: String = "all"

    @Option(
        name: .customLong("top-k"),
        help: "Attention hooks: keep the K largest keys per row (values + int32 indices; at most the sequence length).")
    var topK: Int?

    @Option(
        parsing: .singleValue,
        help:
            "Attention mass on spans: label=start:end (tokens, half-open) or label=text; repeatable or comma-separated."
    )
    var spans: [String] = []

    @Option(parsing: .unconditional, help: "Head ablations L.H[:method], comma-separated; L or H may be *.")
    var ablate: String?

    @OptionGroup(title: "Ablation (same options as `headlight ablate`)") var ablation: AblationVocabulary

    @Option(
        name: .customLong("mean-prompt-file"),
        help: "Reference text for mean ablation (default: running mean over the traced sequence).")
    var meanPromptFile: String?

    @Option(
        parsing: .unconditional,
        help: """
            Activations to patch from the --patch-source run: L.H (head output) or \
            blocks.L.hook_resid_pre|hook_resid_post|hook_attn_out|hook_mlp_out, comma-separated.
            """
    )
    var patch: String?

    @Option(
        name: .customLong("patch-source"), help: "Prompt of the run that --patch copies from (tokenized like --prompt)."
    )
    var patchSource: String?

    @Option(
        name: .customLong("patch-positions"), parsing: .unconditional,
        help: ArgumentHelp(
            "Positions to patch, e.g. -1 or 3,5:8 (counted in each run, negative from its end; default: all, "
                + "which needs a source as long as the prompt).", valueName: "positions"))
    var patchPositions: String?

    @Option(help: "Generate N tokens after the prompt (greedy), capturing their decode steps too.")
    var generate: Int = 0

    @Flag(name: .customLong("ignore-eos"), help: "Keep generating after end-of-generation tokens.")
    var ignoreEOS = false

    @Flag(help: "Store float captures as float16.")
    var float16 = false

    @Option(help: "gzip level 0-9 for capture datasets (with byte shuffle).")
    var gzip: Int?

    @Flag(name: .customLong("no-shuffle"), help: "With --gzip, skip the shuffle filter.")
    var noShuffle = false

    @Option(name: .customLong("max-chunk"), help: "Prefill chunk size in tokens.")
    var maxChunk: Int = InferenceSession.defaultMaxChunk

    @Flag(help: "No progress line on stderr.")
    var quiet = false

    @Option(name: [.customShort("o"), .long], help: "Output run file (.h5).")
    var output: String

    @Option(
        name: .customLong("max-output"),
        help: "Refuse captures estimated larger than this (before compression), e.g. 500MB, 10GB, 2TiB.")
    var maxOutput = "10GB"

    func validate() throws {
        guard [prompt != nil, promptFile != nil, tokenIDs != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --prompt TEXT, --prompt-file FILE or --token-ids FILE")
        }
        if tokenIDs != nil && chat { throw ValidationError("--chat applies to text prompts, not --token-ids") }
        guard hooks != nil || ablate != nil || patch != nil else {
            throw ValidationError("nothing to do: give --hooks (and/or --ablate, --patch)")
        }
        if let k = topK, k < 1 { throw ValidationError("--top-k must be at least 1 (got \(k))") }
        if topK != nil && !spans.isEmpty {
            throw ValidationError("--top-k and --spans are exclusive (one form per hook)")
        }
        guard generate >= 0 else { throw ValidationError("--generate must be >= 0 (got \(generate))") }
        if let g = gzip, !(0...9).contains(g) { throw ValidationError("--gzip must be in 0...9 (got \(g))") }
        if (patch == nil) != (patchSource == nil) { throw ValidationError("--patch and --patch-source go together") }
        if patchPositions != nil && patch == nil { throw ValidationError("--patch-positions needs --patch") }
        guard maxChunk >= 1 else { throw ValidationError("--max-chunk must be at least 1") }
        if system != nil && !chat { throw ValidationError("--system needs --chat") }
        guard CommandChecks.parseByteSize(maxOutput) != nil else {
            throw ValidationError("--max-output: \"\(maxOutput)\" is not a size (write e.g. 500MB, 10GB or 2TiB)")
        }
        if let prompt { try CommandChecks.noNUL(prompt, source: "--prompt") }
        if let system { try CommandChecks.noNUL(system, source: "--system") }
        if let patchSource { try CommandChecks.noNUL(patchSource, source: "--patch-source") }
        try CommandChecks.outputFile(output)
    }

    func run() throws {
        // The model's SHA-256 (a root attribute) is computed while the weights are dequantized.
        let env = try LoadedModel.load(model, hashInBackground: true)
        let gguf = env.gguf, tokenizer = env.tokenizer, loaded = env.model
        let c = loaded.config

        let text: String
        var ids: [Int32]
        if let tokenIDs {
            let raw = try readText(tokenIDs, option: "--token-ids")
            ids = []
            for item in raw.split(whereSeparator: { " ,\n\t\r[]".contains($0) }) {
                guard let v = Int32(item), v >= 0, Int(v) < c.vocabSize else {
                    throw CLIError("--token-ids: '\(item)' is not a token id in 0..<\(c.vocabSize)")
                }
                ids.append(v)
            }
            text = tokenizer.decode(ids)
        } else {
            if let prompt {
                text = prompt
            } else if promptFile == "-" {
                text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            } else {
                text = try readText(promptFile!, option: "--prompt-file")
            }
            if prompt == nil {
                try CommandChecks.noNUL(
                    text,
                    source: promptFile == "-" ? "standard input (--prompt-file -)" : "--prompt-file \(promptFile!)")
            }
            ids = try encode(text, gguf: gguf, tokenizer: tokenizer)
        }
        guard !ids.isEmpty else { throw CLIError("the prompt is empty after tokenization", hint: "pass some text") }
        let total = ids.count + generate
        try CommandChecks.context(
            total, loaded, "the prompt (\(ids.count) tokens) + --generate \(generate)",
            hint: "shorten the prompt or lower --generate")

        // Ask: the captures.
        let requests = try captureRequests(config: c, promptTokens: ids, tokenizer: tokenizer)
        let plan: TracePlan?
        do {
            plan =
                requests.isEmpty
                ? nil : try TracePlan(config: c, requests: requests, promptLength: ids.count, decodeSteps: generate)
        } catch let e as HookError {
            throw CLIError(wrapping: e, hint: "see `headlight trace --help` for the selection syntax")
        }
        if let plan { try checkOutputSize(plan) }

        // Interventions.
        let session = InferenceSession(model: loaded, maxContext: total, maxChunk: maxChunk)
        let (defaultMethod, phase) = try ablation.resolve()
        var ivs: [HeadIntervention] = []
        do {
            if let ablate {
                ivs = try HeadIntervention.parse(ablate, config: c, defaultMethod: defaultMethod, phase: phase)
            }
        } catch let e as HookError {
            throw CLIError(wrapping: e, hint: "write ablations as LAYER.HEAD[:method], e.g. 3.4:zero,5.*:uniform")
        }
        var meanSource = "running mean over the traced sequence"
        if let meanPromptFile, ivs.contains(where: { $0.method == .mean }) {
            let refText = try readText(meanPromptFile, option: "--mean-prompt-file")
            try CommandChecks.noNUL(refText, source: "--mean-prompt-file \(meanPromptFile)")
            let ref = try encode(refText, gguf: gguf, tokenizer: tokenizer)
            try CommandChecks.context(ref.count, loaded, "--mean-prompt-file (\(ref.count) tokens)")
            let layers = Array(Set(ivs.filter { $0.method == .mean }.map(\.layer))).sorted()
            session.headMeans = try loaded.meanHeadOutputs([ref], layers: layers)
            meanSource = "mean over \(ref.count) tokens of \((meanPromptFile as NSString).lastPathComponent)"
        }
        session.interventions = ivs
        var patchDescriptions: [String] = []
        if let patch, let patchSource {
            let src = try encode(patchSource, gguf: gguf, tokenizer: tokenizer)
            try CommandChecks.context(src.count, loaded, "--patch-source (\(src.count) tokens)")
            let pairs = try Self.patchPositionPairs(patchPositions, source: src.count, target: ids.count)
            session.patches = try patches(patch, source: src, positions: pairs, model: loaded, phase: phase)
            let at =
                patchPositions.map { _ in
                    " at positions "
                        + pairs.map { "\($0.source)->\($0.target)" }.joined(
                            separator: ",")
                } ?? ""
            patchDescriptions = patch.split(separator: ",").map {
                "\($0.trimmingCharacters(in: .whitespaces)) from source of \(src.count) tokens\(at)"
            }
        }

        // Observe: stream into the run file.
        let writer = try RunFileWriter(path: output)
        var done = false
        defer { if !done { try? writer.abandon() } }
        try RunFileHeader(model: env, command: "trace").write(to: writer.file)
        let captureWriter = try CaptureWriter(
            file: writer.file,
            options: .init(float16: float16, gzip: gzip, shuffle: !noShuffle))
        let group = captureWriter.group
        if let hooks { try group.setAttribute("hooks_requested", hooks.split(separator: ",").map(String.init)) }
        try group.setAttribute("query_selection", queries)
        if !ivs.isEmpty {
            try group.setAttribute("interventions", ivs.map(\.description))
            if ivs.contains(where: { $0.method == .mean }) { try group.setAttribute("mean_source", meanSource) }
        }
        if !patchDescriptions.isEmpty { try group.setAttribute("patches", patchDescriptions) }

        // Prefill progress for long prompts: every chunk (a line each when stderr is not a terminal).
        let bar = ProgressBar(enabled: !quiet && ids.count >= 1024, interval: 0)
        if bar.enabled {
            session.progress = { done, all in
                guard bar.due(final: done == all) else { return }
                bar.show(
                    String(
                        format: "trace: prefill %d/%d tokens (%.0f%%), %.1f s", done, all,
                        100 * Double(done) / Double(all), bar.elapsed))
            }
        }
        let stops: Set<Int32> = ignoreEOS ? [] : tokenizer.endOfGeneration
        let result: TraceResult
        do {
            defer { bar.finish() }
            if let plan {
                let sink = RunFileCaptureSink(writer: captureWriter)
                result = try session.trace(prompt: ids, plan: plan, into: sink, stopTokens: stops)
            } else {
                // Interventions only: no captures, but a run file with tokens (and the generated text).
                let empty = try TracePlan(
                    config: c, requests: [CaptureRequest(hooks: ["logits"], queries: .positions([-1]))],
                    promptLength: ids.count, decodeSteps: generate)
                result = try session.trace(prompt: ids, plan: empty, into: CaptureStore(), stopTokens: stops)
            }
        }

        // Inputs: tokens (prompt + generated) and their strings.
        let tokensDS = try writer.file.createDataset(RunFile.tokens, data: result.tokens)
        try tokensDS.setAttribute(RunFile.Attr.prompt, text)
        try tokensDS.setAttribute("prompt_length", result.promptLength)
        try tokensDS.setAttribute("generated", result.generated)
        try tokensDS.setAttribute("chat", chat)
        try writer.file.createDataset(
            RunFile.tokenStrings,
            strings: result.tokens.map {
                String(decoding: tokenizer.pieceBytes($0, special: true), as: UTF8.self).replacingOccurrences(
                    of: "\0", with: "")
            })
        if result.generated > 0 {
            try tokensDS.setAttribute(
                "generated_text", tokenizer.decode(Array(result.tokens[result.promptLength...]), skipSpecial: true))
        }
        try writer.finalize()
        done = true
        if !quiet {
            let mb = Double(captureWriter.bytesWritten) / 1e6
            let line = String(
                format:
                    "trace: %d tokens (%d prompt + %d generated), %d capture datasets, %.1f MB captured; prefill %.2f "
                    + "s, decode %.2f s; wrote %@\n",
                result.tokens.count, result.promptLength, result.generated, plan?.captures.count ?? 0, mb,
                result.prefillSeconds, result.decodeSeconds, output)
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    /// Refuses a capture plan whose output would exceed --max-output or the free space of the
    /// output's file system, with the estimate in the message (before anything is written).
    private func checkOutputSize(_ plan: TracePlan) throws {
        let estimate = plan.estimatedBytes(float16: float16)
        let limit = CommandChecks.parseByteSize(maxOutput)!
        let what =
            "the captures would take about \(CommandChecks.formatBytes(estimate)) (\(plan.captures.count) datasets, "
            + "\(plan.sequenceLength) positions\(gzip != nil ? ", before compression" : ""))"
        if estimate > limit {
            throw CLIError(
                "\(what), more than --max-output \(maxOutput)",
                hint: "capture fewer hooks, layers, heads or queries (--queries last:N), use --top-k or --spans, "
                    + "or raise --max-output")
        }
        if let free = CommandChecks.freeBytes(near: output), estimate > free {
            throw CLIError(
                "\(what), more than the \(CommandChecks.formatBytes(free)) free where \(output) is written",
                hint: "free some space, write elsewhere (-o), or capture less")
        }
    }

    private func readText(_ path: String, option: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("\(option): cannot read \(path)", hint: "check the path")
        }
        return String(decoding: data, as: UTF8.self)
    }

    private func encode(_ text: String, gguf: GGUFFile, tokenizer: Tokenizer) throws -> [Int32] {
        guard chat else { return tokenizer.encode(text, addSpecial: true, parseSpecial: false) }
        let template = try ChatTemplate(gguf: gguf)
        var messages: [ChatMessage] = []
        if let system { messages.append(.system(system)) }
        messages.append(.user(text))
        return tokenizer.encodeChat(
            try template.apply(messages: messages, addGenerationPrompt: true), template: template)
    }

    private func captureRequests(
        config c: ModelConfig, promptTokens ids: [Int32], tokenizer: Tokenizer
    ) throws -> [CaptureRequest] {
        guard let hooks else { return [] }
        do {
            let layerSel = try layers.map { try IndexSelection(parsing: $0, what: "layer") }
            let headSel = try heads.map { try IndexSelection(parsing: $0, what: "head") }
            let querySel = try QuerySelection(parsing: queries)
            var form = AttentionForm.rows
            // More keys than the sequence has would only store padding.
            if let topK { form = .topK(min(topK, ids.count + generate)) }
            if !spans.isEmpty {
                let pieces = ids.map { tokenizer.pieceBytes($0, special: true) }
                var resolved: [TokenSpan] = []
                for spec in Self.splitSpans(spans) {
                    if let s = try TokenSpan.parseRange(spec, length: ids.count + generate) {
                        resolved.append(s)
                    } else {
                        let eq = spec.firstIndex(of: "=")!
                        resolved.append(
                            try TokenSpan.find(
                                String(spec[spec.index(after: eq)...]),
                                label: String(spec[..<eq]).trimmingCharacters(in: .whitespaces), in: pieces))
                    }
                }
                form = .spanMass(resolved)
            }
            return [
                CaptureRequest(
                    hooks: hooks.split(separator: ",").map(String.init), layers: layerSel, heads: headSel,
                    queries: querySel, form: form)
            ]
        } catch let e as HookError {
            throw CLIError(wrapping: e, hint: "see `headlight trace --help` for the selection syntax")
        }
    }

    /// Splits comma-separated span lists; a piece without "=" continues the previous text span.
    static func splitSpans(_ values: [String]) -> [String] {
        var out: [String] = []
        for v in values {
            var cur: [String] = []
            for piece in v.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
                if piece.contains("=") || cur.isEmpty { cur.append(piece) } else { cur[cur.count - 1] += "," + piece }
            }
            out += cur
        }
        return out
    }

    /// The (source, target) position pairs --patch copies: every position when the runs have the
    /// same length and no selection is given; else `selection` resolved in each run (negative
    /// indices from that run's end), which must pick as many positions in both.
    static func patchPositionPairs(
        _ selection: String?, source: Int, target: Int
    ) throws -> [(source: Int, target: Int)] {
        guard let selection else {
            guard source == target else {
                throw CLIError(
                    "--patch-source has \(source) tokens but the prompt has \(target); patching copies activations "
                        + "position by position",
                    hint: "give --patch-positions (e.g. -1 for the last token of each run, or 0:N) or a source of "
                        + "\(target) tokens")
            }
            return (0..<target).map { ($0, $0) }
        }
        do {
            let sel = try IndexSelection(parsing: selection, what: "patch position")
            let t = try sel.resolve(count: target, what: "patch position") {
                HookError.badSelection(
                    what: "patch position", text: selection, reason: "\($0) is outside the prompt's \(target) tokens")
            }
            let s = try sel.resolve(count: source, what: "patch position") {
                HookError.badSelection(
                    what: "patch position", text: selection,
                    reason: "\($0) is outside the source's \(source) tokens")
            }
            guard s.count == t.count else {
                throw CLIError(
                    "--patch-positions \(selection) selects \(s.count) positions of the \(source)-token source but "
                        + "\(t.count) of the \(target)-token prompt",
                    hint: "use single positions (negative ones count from each run's end) or ranges inside both runs")
            }
            return zip(s, t).map { ($0, $1) }
        } catch let e as HookError {
            throw CLIError(wrapping: e, hint: "write positions as in --queries: 3,5:8,-1")
        }
    }

    /// Runs the patch source once, capturing what --patch names, and turns the captures into patches
    /// of the `positions` pairs (a source row copied to a target position).
    private func patches(
        _ spec: String, source: [Int32], positions: [(source: Int, target: Int)], model: Model,
        phase: InterventionPhase
    ) throws -> [ActivationPatch] {
        let c = model.config
        var headItems: [(Int, Int)] = [], hookItems: [String] = []
        for raw in spec.split(separator: ",") {
            let item = raw.trimmingCharacters(in: .whitespaces)
            let parts = item.split(separator: ".")
            if parts.count == 2, let l = Int(parts[0]), let h = Int(parts[1]) {
                guard let layer = wrappedIndex(l, count: c.nLayers) else {
                    throw CLIError(wrapping: HookError.layerOutOfRange(l, nLayers: c.nLayers))
                }
                guard let head = wrappedIndex(h, count: c.nHeads) else {
                    throw CLIError(wrapping: HookError.headOutOfRange(h, nHeads: c.nHeads))
                }
                headItems.append((layer, head))
            } else {
                hookItems.append(item)
            }
        }
        var requests: [CaptureRequest] = []
        let zLayers = Array(Set(headItems.map(\.0))).sorted()
        if !zLayers.isEmpty { requests.append(CaptureRequest(hooks: ["attn.hook_z"], layers: IndexSelection(zLayers))) }
        do {
            for h in hookItems {
                let points = try HookPoint.resolve(h, nLayers: c.nLayers)
                guard points.allSatisfy({ [.residPre, .residPost, .attnOut, .mlpOut].contains($0.kind) }) else {
                    throw CLIError(
                        "--patch \(h): only L.H head outputs and resid_pre/resid_post/attn_out/mlp_out hooks can be "
                            + "patched"
                    )
                }
                requests.append(CaptureRequest(hooks: points.map(\.name)))
            }
        } catch let e as HookError {
            throw CLIError(wrapping: e)
        }
        let session = InferenceSession(model: model, maxContext: source.count)
        let (store, _) = try session.trace(prompt: source, requests: requests)
        var whole: [ActivationPatch] = []
        for (l, h) in headItems {
            whole.append(try ActivationPatch(from: store["blocks.\(l).attn.hook_z"]!, head: h, phase: phase))
        }
        for t in store.tensors where t.layout.point.kind != .z {
            whole.append(try ActivationPatch(from: t, phase: phase))
        }
        // Every source position was captured (rows start..<start + source.count); keep the pairs'.
        var out: [ActivationPatch] = []
        for p in whole {
            let width = p.values.count / max(source.count, 1)
            guard p.start == 0, width * source.count == p.values.count else {
                throw CLIError("--patch: the source capture of \(p.target) does not cover the source's positions")
            }
            if positions.count == source.count && positions.allSatisfy({ $0.source == $0.target }) {
                out.append(p)
                continue
            }
            for (s, t) in positions {
                out.append(
                    ActivationPatch(
                        p.target, start: t, values: Array(p.values[(s * width)..<((s + 1) * width)]), phase: p.phase))
            }
        }
        return out
    }
}
