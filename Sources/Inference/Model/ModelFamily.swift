import GGUF

/// A family of architectures that share one forward pass, registered by `general.architecture`
/// (after mlx-swift-lm's model registry). A family decodes its GGUF keys into a `ModelConfig`;
/// tensors follow llama.cpp's names (`token_embd`, `blk.N.attn_q`, ...), loaded by `ModelWeights`.
public struct ModelFamily: Sendable {
    /// Human-readable name, e.g. "Llama".
    public let name: String
    /// `general.architecture` values this family runs.
    public let architectures: [String]
    /// Decodes the hyperparameters of `file` (whose architecture is one of `architectures`).
    public let decodeConfig: @Sendable (_ file: GGUFFile, _ architecture: String) throws -> ModelConfig

    public init(name: String, architectures: [String],
                decodeConfig: @escaping @Sendable (GGUFFile, String) throws -> ModelConfig) {
        self.name = name
        self.architectures = architectures
        self.decodeConfig = decodeConfig
    }
}

/// Every model family Headlight can run. Add a family here to support a new architecture.
public enum ModelRegistry {
    public static let families: [ModelFamily] = [
        LlamaFamily.family,
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
