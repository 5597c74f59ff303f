import Foundation
import GGUF
import Inference
import RunRecording
import TraceStore

/// The GGUF file a command reads: `--model` resolved (`ModelLocator`) and parsed, without
/// weights. `inspect`, `tokenize` and `bench` start here; the rest load a `LoadedModel`.
struct ModelFile {
    let url: URL
    let gguf: GGUFFile

    static func open(_ path: String?) throws -> ModelFile {
        let url = try ModelLocator.resolve(path)
        return ModelFile(url: url, gguf: try GGUFFile(url: url))
    }

    func tokenizer() throws -> Tokenizer { try Tokenizer(gguf: gguf) }
}

/// A model ready to run: its file, GGUF, tokenizer, weights and chat template (nil when the
/// file has none Headlight can render), plus the run-file header and resume check built from
/// them.
struct LoadedModel {
    let url: URL
    let gguf: GGUFFile
    let tokenizer: Tokenizer
    let model: Model
    let chatTemplate: ChatTemplate?
    /// Seconds spent building the model from the GGUF file (weights dequantized or mapped).
    let loadSeconds: Double
    /// The model file's SHA-256: hashed at most once (a run file's header, its resume identity
    /// and a scores file's check all ask for it), on another thread when `load` started it early.
    private let digest: ModelFileDigest

    /// Resolves, parses and loads the model: GGUF, tokenizer, then weights. With
    /// `hashInBackground` the file's SHA-256 is computed on another thread meanwhile.
    static func load(_ path: String?, hashInBackground: Bool = false) throws -> LoadedModel {
        let file = try ModelFile.open(path)
        let url = file.url
        let digest = ModelFileDigest(url: url, startNow: hashInBackground)
        let tokenizer = try file.tokenizer()
        let start = Date()
        let model = try Model(gguf: file.gguf)
        return LoadedModel(
            url: url, gguf: file.gguf, tokenizer: tokenizer, model: model,
            chatTemplate: try? ChatTemplate(gguf: file.gguf),
            loadSeconds: Date().timeIntervalSince(start), digest: digest)
    }

    var config: ModelConfig { model.config }

    /// The model's name, else its file name.
    var displayName: String { model.name ?? url.lastPathComponent }

    /// The model file's SHA-256 (from the background hash when one was started; hashed once).
    func sha256() throws -> String { try digest.value() }

    /// The chat wrapper for NIAHTrialBuilder: one user message plus the generation prompt.
    func chatWrapper(needed: Bool) throws -> ((String) -> String)? {
        guard needed else { return nil }
        guard let t = chatTemplate else {
            throw CLIError(
                "the suite asks for the chat form but \(url.lastPathComponent) has no chat template "
                    + "Headlight can render", hint: "pass --chat false")
        }
        return { body in (try? t.apply(messages: [.user(body)], addGenerationPrompt: true)) ?? body }
    }
}

/// A model file's SHA-256, computed once: on a background thread from the start (`startNow`),
/// else on the first `value()`. A failure is kept and thrown again.
final class ModelFileDigest: @unchecked Sendable {
    private let url: URL
    private let lock = NSLock()
    private var background: BackgroundValue<String>?
    private var result: Result<String, Error>?

    init(url: URL, startNow: Bool) {
        self.url = url
        if startNow { background = BackgroundValue { try SHA256.hashFile(at: url) } }
    }

    func value() throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if result == nil {
            let url = self.url
            result = Result { try background?.value() ?? SHA256.hashFile(at: url) }
            background = nil
        }
        return try result!.get()
    }
}

extension RunFileHeader {
    /// The root header of a run file this command writes with `model`.
    init(model: LoadedModel, command: String) throws {
        self.init(
            model: model.model, file: model.url, modelSHA256: try model.sha256(), command: command,
            headlightVersion: Headlight.version)
    }
}
