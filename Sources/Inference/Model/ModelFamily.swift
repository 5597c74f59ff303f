import GGUF

/// A family of architectures that share one forward pass, registered by `general.architecture`
/// (after mlx-swift-lm's model registry). A family decodes its GGUF keys into a `ModelConfig` and
/// brings its block (the forward pass of one layer); tensors follow llama.cpp's names
/// (`token_embd`, `blk.N.attn_q`, ...), loaded by `ModelWeights`. The embedding, the final norm and
/// the output head are shared (Forward.swift).
public struct ModelFamily: Sendable {
    /// Human-readable name, e.g. "Llama".
    public let name: String
    /// `general.architecture` values this family runs.
    public let architectures: [String]
    /// Decodes the hyperparameters of `file` (whose architecture is one of `architectures`).
    public let decodeConfig: @Sendable (_ file: GGUFFile, _ architecture: String) throws -> ModelConfig
    /// One block of the forward pass, called for every layer of every chunk and decode step.
    let block: BlockFunction

    init(
        name: String, architectures: [String],
        decodeConfig: @escaping @Sendable (GGUFFile, String) throws -> ModelConfig,
        block: @escaping BlockFunction
    ) {
        self.name = name
        self.architectures = architectures
        self.decodeConfig = decodeConfig
        self.block = block
    }
}

/// Every model family Headlight can run.
///
/// Adding a family (e.g. Gemma 3, Qwen3, Phi-3) takes one file, Sources/Inference/Model/<Name>.swift,
/// modelled on Llama.swift:
///  1. `public enum <Name>Family` with `static let family = ModelFamily(name:architectures:decodeConfig:block:)`;
///     `architectures` are the `general.architecture` values it runs; `decodeConfig` reads the
///     `{arch}.*` keys into a `ModelConfig` (errors name the key).
///  2. Its block, `func <name>Block(_ b: BlockPass) throws` in an `InferenceSession` extension, built
///     from the shared steps of BlockSteps.swift (`residual`, `normalize`, `projectQKV`, `rotate`,
///     `attend`, `headOutputs`, `attentionOutput`, `gatedMLP`) in the family's order, with its own
///     pieces in between (e.g. Qwen3's per-head q/k norms between `projectQKV` and `rotate`). Every
///     step takes the pass and does the hook work itself, so the block has no separate hooked path;
///     it ends with `try b.hooks?.captures?.check()`.
///  3. Tensors the family adds to llama.cpp's Llama set go into `LayerWeights` / `ModelWeights`
///     (optional, loaded when present) with a shape comment.
///  4. Register `<Name>Family.family` below, and add a tiny random-weight fixture
///     (Tests/Fixtures/reference/make_reference.py, `tiny-<arch>.*`) so ForwardTests checks its
///     logits and attention against transformers.
public enum ModelRegistry {
    public static let families: [ModelFamily] = [
        LlamaFamily.family, // llama (incl. Mistral-style sliding window, Llama 3 RoPE factors), qwen2
        Qwen3Family.family, // qwen3
        Phi3Family.family, // phi3
        GemmaFamily.family // gemma2, gemma3
    ]

    /// All supported `general.architecture` values, sorted.
    public static var supportedArchitectures: [String] {
        families.flatMap(\.architectures).sorted()
    }

    /// The family that runs `architecture`, or `ModelError.unsupportedArchitecture` listing the supported ones.
    public static func family(for architecture: String) throws -> ModelFamily {
        guard let f = families.first(where: { $0.architectures.contains(architecture) }) else {
            throw ModelError.unsupportedArchitecture(architecture, supported: supportedArchitectures)
        }
        return f
    }

    /// Decodes the config of any supported file.
    public static func config(of file: GGUFFile) throws -> ModelConfig {
        let arch = try file.architecture()
        return try family(for: arch).decodeConfig(file, arch)
    }
}
