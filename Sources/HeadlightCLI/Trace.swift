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

    @Option(
        help: ArgumentHelp(
            "Trace many prompts in one process: a JSONL file, one {\"prompt\": ...} object a line (keys name, "
                + "chat, system, generate optional); each goes to /inputs/NAME.", valueName: "file.jsonl"))
    var prompts: String?

    @Flag(help: "With --prompts: discard an interrupted batch (<output>.partial) instead of resuming it.")
    var restart = false

    @Option(name: .customLong("stop-after"), help: .hidden)
    var stopAfter: Int?

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

    @OptionGroup var kvCache: KVCacheOption

    func validate() throws {
        guard [prompt != nil, promptFile != nil, tokenIDs != nil, prompts != nil].filter({ $0 }).count == 1 else {
            throw ValidationError(
                "give exactly one of --prompt TEXT, --prompt-file FILE, --token-ids FILE or --prompts FILE.jsonl")
        }
        if prompts == nil && (restart || stopAfter != nil) {
            throw ValidationError("--restart applies to --prompts batches (single-prompt traces always start afresh)")
        }
        if let k = stopAfter, k < 0 { throw ValidationError("--stop-after must be >= 0") }
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
        if system != nil && !chat && prompts == nil { throw ValidationError("--system needs --chat") }
        guard CommandChecks.parseByteSize(maxOutput) != nil else {
            throw ValidationError("--max-output: \"\(maxOutput)\" is not a size (write e.g. 500MB, 10GB or 2TiB)")
        }
        if let prompt { try CommandChecks.noNUL(prompt, source: "--prompt") }
        if let system { try CommandChecks.noNUL(system, source: "--system") }
        if let patchSource { try CommandChecks.noNUL(patchSource, source: "--patch-source") }
        try CommandChecks.outputFile(output)
    }

    func run() throws {
        // A batch's prompts file is checked before the model is loaded.
        let batch = try prompts.map(PromptBatchFile.read)
        // The model's SHA-256 (a root attribute) is computed while the weights are dequantized.
        try kvCache.apply()
        let env = try LoadedModel.load(model, hashInBackground: true)
        if let batch {
            try runBatch(env: env, batch: batch)
            return
        }
        let c = env.model.config

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
            text = env.tokenizer.decode(ids)
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
            ids = try encode(text, chat: chat, system: system, gguf: env.gguf, tokenizer: env.tokenizer)
        }
        guard !ids.isEmpty else { throw CLIError("the prompt is empty after tokenization", hint: "pass some text") }
        let input = TraceInput(
            text: text, ids: ids, chat: chat, system: system, generate: generate, what: "the prompt")
        let prepared = try prepare(input, env: env)
        if let plan = prepared.plan {
            try checkOutputSize(
                plan.estimatedBytes(float16: float16),
                detail: "\(plan.captures.count) datasets, \(plan.sequenceLength) positions")
        }
        let shared = try sharedInterventions(env: env)

        // Observe: stream into the run file.
        let writer = try RunFileWriter(path: output)
        var done = false
        defer { if !done { try? writer.abandon() } }
        try RunFileHeader(model: env, command: "trace").write(to: writer.file)
        let recorded = try record(prepared, shared: shared, env: env, file: writer.file, at: "")
        try writer.finalize()
        done = true
        if !quiet {
            let result = recorded.result
            let line = String(
                format:
                    "trace: %d tokens (%d prompt + %d generated), %d capture datasets, %.1f MB captured; prefill %.2f "
                    + "s, decode %.2f s; wrote %@\n",
                result.tokens.count, result.promptLength, result.generated, recorded.datasets,
                Double(recorded.bytes) / 1e6, result.prefillSeconds, result.decodeSeconds, output)
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    /// One prompt to trace: its text as given, its tokens (chat template applied) and the options
    /// that may differ between the prompts of a batch. `what` names it in error messages.
    struct TraceInput {
        var text: String
        var ids: [Int32]
        var chat: Bool
        var system: String?
        var generate: Int
        var what: String
    }

    /// A prompt with its capture plan (nil: interventions only), checked against the model's
    /// context before anything runs.
    struct PreparedTrace {
        var input: TraceInput
        var plan: TracePlan?
    }

    /// What every prompt of an invocation shares: the ablations and the mean-ablation reference.
    struct SharedInterventions {
        var interventions: [HeadIntervention]
        var phase: InterventionPhase
        var headMeans: [Int: [Float]]?
        var meanSource: String
    }

    /// Checks the prompt's length against the context and builds its capture plan.
    func prepare(_ input: TraceInput, env: LoadedModel) throws -> PreparedTrace {
        let c = env.model.config
        let total = input.ids.count + input.generate
        let gen = prompts == nil ? "--generate" : "generate"
        try CommandChecks.context(
            total, env.model, "\(input.what) (\(input.ids.count) tokens) + \(gen) \(input.generate)",
            hint: "shorten the prompt or lower \(gen)")
        if let patchSource {
            // Checked here so that a batch fails before its first prompt runs.
            let src = try encode(
                patchSource, chat: input.chat, system: input.system, gguf: env.gguf, tokenizer: env.tokenizer)
            try CommandChecks.context(src.count, env.model, "--patch-source (\(src.count) tokens)")
            _ = try Self.patchPositionPairs(patchPositions, source: src.count, target: input.ids.count)
        }
        let requests = try captureRequests(
            config: c, promptTokens: input.ids, generate: input.generate, tokenizer: env.tokenizer)
        do {
            let plan =
                requests.isEmpty
                ? nil
                : try TracePlan(
                    config: c, requests: requests, promptLength: input.ids.count, decodeSteps: input.generate)
            return PreparedTrace(input: input, plan: plan)
        } catch let e as HookError {
            throw CLIError(wrapping: e, hint: "see `headlight trace --help` for the selection syntax")
        }
    }

    /// The ablations (--ablate) and, for mean ablation with --mean-prompt-file, the head means.
    func sharedInterventions(env: LoadedModel) throws -> SharedInterventions {
        let (defaultMethod, phase) = try ablation.resolve()
        var ivs: [HeadIntervention] = []
        do {
            if let ablate {
                ivs = try HeadIntervention.parse(
                    ablate, config: env.model.config, defaultMethod: defaultMethod, phase: phase)
            }
        } catch let e as HookError {
            throw CLIError(wrapping: e, hint: "write ablations as LAYER.HEAD[:method], e.g. 3.4:zero,5.*:uniform")
        }
        var shared = SharedInterventions(
            interventions: ivs, phase: phase, headMeans: nil, meanSource: "running mean over the traced sequence")
        if let meanPromptFile, ivs.contains(where: { $0.method == .mean }) {
            let refText = try readText(meanPromptFile, option: "--mean-prompt-file")
            try CommandChecks.noNUL(refText, source: "--mean-prompt-file \(meanPromptFile)")
            let ref = try encode(refText, chat: chat, system: system, gguf: env.gguf, tokenizer: env.tokenizer)
            try CommandChecks.context(ref.count, env.model, "--mean-prompt-file (\(ref.count) tokens)")
            let layers = Array(Set(ivs.filter { $0.method == .mean }.map(\.layer))).sorted()
            shared.headMeans = try env.model.meanHeadOutputs([ref], layers: layers)
            shared.meanSource = "mean over \(ref.count) tokens of \((meanPromptFile as NSString).lastPathComponent)"
        }
        return shared
    }

    /// Traces one prepared prompt into `file` under `prefix` ("" for a single-prompt file: `/captures`,
    /// `/tokens`, `/token_strings`; `/inputs/NAME` in a batch): the one capture path of `trace`.
    func record(
        _ prepared: PreparedTrace, shared: SharedInterventions, env: LoadedModel, file: H5File, at prefix: String
    ) throws -> (result: TraceResult, datasets: Int, bytes: Int) {
        let loaded = env.model, tokenizer = env.tokenizer
        let ids = prepared.input.ids, generate = prepared.input.generate
        let session = InferenceSession(model: loaded, maxContext: ids.count + generate, maxChunk: maxChunk)
        if shared.headMeans != nil { session.headMeans = shared.headMeans }
        session.interventions = shared.interventions
        var patchDescriptions: [String] = []
        if let patch, let patchSource {
            let src = try encode(
                patchSource, chat: prepared.input.chat, system: prepared.input.system, gguf: env.gguf,
                tokenizer: tokenizer)
            try CommandChecks.context(src.count, loaded, "--patch-source (\(src.count) tokens)")
            let pairs = try Self.patchPositionPairs(patchPositions, source: src.count, target: ids.count)
            session.patches = try patches(patch, source: src, positions: pairs, model: loaded, phase: shared.phase)
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

        let captureWriter = try CaptureWriter(
            file: file, options: .init(float16: float16, gzip: gzip, shuffle: !noShuffle),
            groupPath: prefix + RunFile.captures)
        let group = captureWriter.group
        if let hooks { try group.setAttribute("hooks_requested", hooks.split(separator: ",").map(String.init)) }
        try group.setAttribute("query_selection", queries)
        let ivs = shared.interventions
        if !ivs.isEmpty {
            try group.setAttribute("interventions", ivs.map(\.description))
            if ivs.contains(where: { $0.method == .mean }) { try group.setAttribute("mean_source", shared.meanSource) }
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
            if let plan = prepared.plan {
                let sink = RunFileCaptureSink(writer: captureWriter)
                result = try session.trace(prompt: ids, plan: plan, into: sink, stopTokens: stops)
            } else {
                // Interventions only: no captures, but a run file with tokens (and the generated text).
                let empty = try TracePlan(
                    config: loaded.config, requests: [CaptureRequest(hooks: ["logits"], queries: .positions([-1]))],
                    promptLength: ids.count, decodeSteps: generate)
                result = try session.trace(prompt: ids, plan: empty, into: CaptureStore(), stopTokens: stops)
            }
        }

        // Inputs: tokens (prompt + generated) and their strings.
        let tokensDS = try file.createDataset(prefix + RunFile.tokens, data: result.tokens)
        try tokensDS.setAttribute(RunFile.Attr.prompt, prepared.input.text)
        try tokensDS.setAttribute("prompt_length", result.promptLength)
        try tokensDS.setAttribute("generated", result.generated)
        try tokensDS.setAttribute("chat", prepared.input.chat)
        try file.createDataset(
            prefix + RunFile.tokenStrings,
            strings: result.tokens.map {
                String(decoding: tokenizer.pieceBytes($0, special: true), as: UTF8.self).replacingOccurrences(
                    of: "\0", with: "")
            })
        if result.generated > 0 {
            try tokensDS.setAttribute(
                "generated_text", tokenizer.decode(Array(result.tokens[result.promptLength...]), skipSpecial: true))
        }
        return (result, prepared.plan?.captures.count ?? 0, captureWriter.bytesWritten)
    }
    /// Refuses captures whose output would exceed --max-output or the free space of the output's
    /// file system, with the estimate in the message (before anything is written). `detail`
    /// says what was estimated.
    func checkOutputSize(_ estimate: Int, detail: String, prefix: String = "the captures") throws {
        let limit = CommandChecks.parseByteSize(maxOutput)!
        let what =
            "\(prefix) would take about \(CommandChecks.formatBytes(estimate)) (\(detail)"
            + "\(gzip != nil ? ", before compression" : ""))"
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

    func readText(_ path: String, option: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("\(option): cannot read \(path)", hint: "check the path")
        }
        return String(decoding: data, as: UTF8.self)
    }

    func encode(
        _ text: String, chat: Bool, system: String?, gguf: GGUFFile, tokenizer: Tokenizer
    ) throws -> [Int32] {
        guard chat else { return tokenizer.encode(text, addSpecial: true, parseSpecial: false) }
        let template = try ChatTemplate(gguf: gguf)
        var messages: [ChatMessage] = []
        if let system { messages.append(.system(system)) }
        messages.append(.user(text))
        return tokenizer.encodeChat(
            try template.apply(messages: messages, addGenerationPrompt: true), template: template)
    }

    private func captureRequests(
        config c: ModelConfig, promptTokens ids: [Int32], generate: Int, tokenizer: Tokenizer
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
