import Foundation

/// Where the default model (SmolLM2-135M-Instruct Q4_1) is cached, as scripts/fetch-model.sh puts
/// it: $HEADLIGHT_CACHE, else $XDG_CACHE_HOME/headlight, else ~/.cache/headlight, then models/.
enum DefaultModel {
    static var url: URL {
        let env = ProcessInfo.processInfo.environment
        let cache: URL
        if let c = env["HEADLIGHT_CACHE"], !c.isEmpty {
            cache = URL(fileURLWithPath: c)
        } else if let x = env["XDG_CACHE_HOME"], !x.isEmpty {
            cache = URL(fileURLWithPath: x).appendingPathComponent("headlight")
        } else {
            cache = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/headlight")
        }
        return cache.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf")
    }
}
