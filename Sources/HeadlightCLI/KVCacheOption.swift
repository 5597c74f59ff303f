import ArgumentParser
import Foundation
import Inference

/// `--kv f32|f16`, shared by every command that runs the model: how its sessions' KV caches store
/// keys and values (see `KVStorage`). Default: `HEADLIGHT_KV`, else f32. Recorded in run files as
/// the root attribute `kv_cache` (docs/run-file.md) and, for resumable sweeps, part of the
/// resume identity.
struct KVCacheOption: ParsableArguments {
    @Option(
        name: .customLong("kv"),
        help: ArgumentHelp(
            "KV cache storage: f32 (Float32, the reference) or f16 (IEEE binary16: half the memory; "
                + "attention reads rounded keys and values). Default: $HEADLIGHT_KV, else f32.",
            valueName: "f32|f16"))
    var kv: KVStorage?

    func validate() throws {
        if kv == nil {
            do {
                _ = try KVStorage.fromEnvironment()
            } catch let e as KVStorageError {
                throw ValidationError("\(e.errorDescription ?? "") — \(e.recoverySuggestion ?? "")")
            }
        }
    }

    /// The storage this run uses (`--kv`, else `HEADLIGHT_KV`, else f32).
    func storage() throws -> KVStorage {
        if let kv { return kv }
        return try KVStorage.fromEnvironment() ?? .f32
    }

    /// Makes `storage()` the default of every session this process creates; returns it.
    @discardableResult
    func apply() throws -> KVStorage {
        let s = try storage()
        KVStorage.default = s
        return s
    }
}

extension KVStorage: ExpressibleByArgument {}
