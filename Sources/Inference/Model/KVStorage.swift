import Foundation

/// How a session's KV cache stores keys and values: Float32 (the reference, the default) or IEEE
/// binary16 (half the memory and half the bytes read per decoded token; every stored value rounded
/// to nearest even). Chosen per session (`InferenceSession(model:maxContext:kv:)`); the default
/// of new sessions is `KVStorage.default` (`HEADLIGHT_KV`, the CLI's `--kv`).
///
/// With `.f16` everything the model computes stays Float32 except the stored K and V rows: the
/// attention kernels widen them as they read. Captures stay Float32 and show what the model uses:
/// `hook_v` and `hook_rot_k` (the values stored) are the rounded values; the intermediates before
/// storage (`hook_k`, `hook_k_normed`) are not rounded.
public enum KVStorage: String, Sendable, CaseIterable, CustomStringConvertible {
    case f32
    case f16

    /// The environment variable giving the default storage.
    public static let environmentKey = "HEADLIGHT_KV"

    /// Storage of sessions created without an explicit choice: `HEADLIGHT_KV` when it names one
    /// (read once, at first use), else `.f32`. The CLI sets it from `--kv` (after checking
    /// `HEADLIGHT_KV` with `fromEnvironment()`, which rejects a bad value).
    nonisolated(unsafe) public static var `default`: KVStorage = (try? fromEnvironment()) ?? .f32

    /// `HEADLIGHT_KV` parsed (nil when unset or empty).
    /// - Throws: `KVStorageError.invalid` for any other value.
    public static func fromEnvironment(
        _ env: [String: String] = ProcessInfo.processInfo.environment
    ) throws
        -> KVStorage?
    {
        guard let raw = env[environmentKey], !raw.isEmpty else { return nil }
        return try parse(raw, source: environmentKey)
    }

    /// `raw` ("f32" or "f16") as a storage; `source` names where it came from in the error.
    public static func parse(_ raw: String, source: String) throws -> KVStorage {
        guard let s = KVStorage(rawValue: raw) else { throw KVStorageError.invalid(value: raw, source: source) }
        return s
    }

    /// Bytes per stored value.
    public var bytesPerValue: Int { self == .f32 ? 4 : 2 }

    public var description: String { rawValue }
}

/// A KV storage name that is neither "f32" nor "f16".
public enum KVStorageError: LocalizedError, Equatable {
    case invalid(value: String, source: String)

    public var errorDescription: String? {
        switch self {
        case .invalid(let value, let source):
            return "\(source): unknown KV cache storage \"\(value)\" (expected f32 or f16)"
        }
    }

    public var recoverySuggestion: String? {
        "use f32 (Float32, the reference) or f16 (IEEE binary16: half the memory, values rounded)"
    }
}
