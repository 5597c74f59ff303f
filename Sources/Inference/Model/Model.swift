import Foundation
import GGUF

/// A loaded model: its config and its weights (matrices read in place from the GGUF mapping, see
/// `WeightMatrix`, which keep the file open). Immutable, so any number of `InferenceSession`s can
/// share it.
public final class Model: @unchecked Sendable {
    public let config: ModelConfig
    public let family: ModelFamily
    public let weights: ModelWeights
    /// `general.name`, if the file has one.
    public let name: String?

    /// Loads `file`: resolves its family from `general.architecture` (an unsupported one is an
    /// error listing the supported ones), decodes the config and maps every weight
    /// (a missing tensor is an error naming it).
    public init(gguf file: GGUFFile) throws {
        let arch = try file.architecture()
        family = try ModelRegistry.family(for: arch)
        config = try family.decodeConfig(file, arch)
        weights = try ModelWeights(file: file, config: config)
        name = file.metadata["general.name"]?.stringValue
    }

    public convenience init(path: String) throws {
        try self.init(gguf: GGUFFile(path: path))
    }

    /// The default session length: the training context, capped at 8192 positions.
    public var defaultMaxContext: Int { min(config.contextLength, 8192) }

    /// A new session with an empty KV cache of `maxContext` positions (default `defaultMaxContext`).
    public func makeSession(maxContext: Int? = nil) -> InferenceSession {
        InferenceSession(model: self, maxContext: maxContext ?? defaultMaxContext)
    }
}
