import ArgumentParser
import Foundation
import GGUF
import Inference

/// `headlight generate`: run a prompt through the model and stream the continuation to stdout.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text from a prompt, streaming tokens to stdout as they are produced.",
        discussion: """
            Greedy by default (--temperature 0); with a temperature > 0 tokens are sampled from the \
            top-k / top-p candidates with a seeded generator, so a run is reproducible. Generation \
            stops at an end-of-generation token, after --max-tokens, or when the context is full. \
            PROMPT "-" reads the prompt from standard input.
            """)

    @Option(
        name: [.customShort("m"), .long],
        help: "Path to a .gguf file (default: $HEADLIGHT_MODEL or the cached SmolLM2-135M-Instruct).")
    var model: String?

    @Flag(inversion: .prefixedNo, help: "Wrap the prompt in the model's chat template as a user message.")
    var chat = false

    @Option(help: "System message for --chat (default: the template's own, if it has one).")
    var system: String?

    @Option(name: .customLong("max-tokens"), help: "Maximum number of tokens to generate.")
    var maxTokens = 256

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(name: .customLong("top-k"), help: "Sample among the k most likely tokens only (0: no limit).")
    var topK = 0

    @Option(name: .customLong("top-p"), help: "Sample from the smallest set of tokens whose probability reaches p.")
    var topP: Float = 1

    @Option(help: "Seed of the sampler's random generator.")
    var seed: UInt64 = 0

    @Option(
        name: .customLong("max-context"),
        help: "KV-cache size in tokens (default: prompt + --max-tokens, at most the model's context length).")
    var maxContext: Int?

    @Flag(name: .customLong("ignore-eos"), help: "Keep generating after end-of-generation tokens.")
    var ignoreEOS = false

    @Flag(help: "Print token counts and throughput to stderr.")
    var stats = false

    @Argument(help: "The prompt text (\"-\": read standard input).")
    var prompt: String

    @OptionGroup var kvCache: KVCacheOption

    func validate() throws {
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be >= 0") }
        guard topK >= 0 else { throw ValidationError("--top-k must be >= 0") }
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        if let maxContext, maxContext < 2 { throw ValidationError("--max-context must be at least 2") }
        if system != nil && !chat { throw ValidationError("--system needs --chat") }
    }

    func run() throws {
        try kvCache.apply()
        let env = try LoadedModel.load(model)
        let file = env.gguf, tokenizer = env.tokenizer, model = env.model
        if let maxContext {
            // Before the prompt is read or any cache allocated: the cache holds --max-context positions.
            try CommandChecks.context(maxContext, model, "--max-context \(maxContext)", hint: "lower --max-context")
        }

        var text = prompt
        if text == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        }
        let ids: [Int32]
        if chat {
            let template = try ChatTemplate(gguf: file)
            var messages: [ChatMessage] = []
            if let system { messages.append(.system(system)) }
            messages.append(.user(text))
            ids = tokenizer.encodeChat(
                try template.apply(messages: messages, addGenerationPrompt: true),
                template: template)
        } else {
            ids = tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        }
        guard !ids.isEmpty else { throw CLIError("the prompt is empty after tokenization", hint: "pass some text") }

        let limit = maxContext ?? min(ids.count + maxTokens, model.config.contextLength)
        guard ids.count < limit else {
            throw CLIError(
                "the prompt has \(ids.count) tokens, which leaves no room in a context of \(limit)",
                hint: maxContext == nil
                    ? "the model was trained on \(model.config.contextLength) tokens; shorten the prompt or pass "
                        + "--max-context"
                    : "raise --max-context")
        }
        let session = model.makeSession(maxContext: limit)
        var sampler = Sampler(temperature: temperature, topK: topK, topP: topP, seed: seed)
        var decoder = StreamDecoder(tokenizer: tokenizer, skipSpecial: true)
        let out = FileHandle.standardOutput
        func emit(_ s: String) { if !s.isEmpty { out.write(Data(s.utf8)) } }

        let prefillStart = Date()
        var logits = try session.prefill(tokens: ids)
        let prefillSeconds = Date().timeIntervalSince(prefillStart)
        let decodeStart = Date()
        var generated = 0
        var stopReason = "max tokens"
        while generated < maxTokens {
            let next = sampler.sample(logits)
            generated += 1
            if !ignoreEOS && tokenizer.isEndOfGeneration(next) {
                stopReason = "end of generation (\(tokenizer.tokenString(next)))"
                break
            }
            emit(decoder.push(next))
            guard generated < maxTokens else { break }
            guard session.position < session.maxContext else {
                stopReason = "context full"
                break
            }
            logits = try session.step(token: next)
        }
        emit(decoder.finish())
        emit("\n")
        let decodeSeconds = Date().timeIntervalSince(decodeStart)

        if stats {
            let steps = max(generated - 1, 0) // decode steps run (the first token comes from the prefill)
            let line = String(
                format:
                    "[%@: load %.2fs; prompt %d tokens in %.2fs (%.1f tok/s); generated %d tokens, %d decode steps in "
                    + "%.2fs (%.1f tok/s); stop: %@; BLAS %@]\n",
                env.displayName, env.loadSeconds, ids.count, prefillSeconds,
                Double(ids.count) / max(prefillSeconds, 1e-9), generated, steps, decodeSeconds,
                Double(steps) / max(decodeSeconds, 1e-9), stopReason, BLASRuntime.corename)
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}
