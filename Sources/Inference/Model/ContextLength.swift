import Foundation

/// A run that needs more positions than the model was trained on (`ModelConfig.contextLength`).
/// Thrown before any session is created, so an oversized request never allocates its KV cache
/// (2 x L x C x Hkv x dh floats) or reaches the forward pass; `InferenceSession` itself throws
/// `ModelError.contextFull` rather than write past its cache.
public struct ContextLengthError: LocalizedError, Equatable, Sendable {
    /// What needs the positions, as the user can act on it, e.g. "--lengths 20000 (prompt of
    /// 19860 tokens) + --max-new-tokens 50 + 1".
    public var what: String
    public var needed: Int
    public var contextLength: Int

    public init(what: String, needed: Int, contextLength: Int) {
        self.what = what
        self.needed = needed
        self.contextLength = contextLength
    }

    public var errorDescription: String? {
        "\(what) needs \(needed) positions, more than the model's context length of \(contextLength) tokens"
    }
}

extension Model {
    /// Throws `ContextLengthError` unless `needed` positions fit the model's context length.
    public func checkContext(_ needed: Int, for what: @autoclosure () -> String) throws {
        guard needed <= config.contextLength else {
            throw ContextLengthError(what: what(), needed: needed, contextLength: config.contextLength)
        }
    }
}
