import Foundation

/// The `--json` output of the analysis commands: one object per run, keys sorted.
enum JSONOutput {
    /// `s` as a JSON string literal.
    static func string(_ s: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [s], options: [])) ?? Data("[\"\"]".utf8)
        let t = String(decoding: data, as: UTF8.self)
        return String(t.dropFirst().dropLast())
    }

    /// `o` as one line of JSON with sorted keys (NaN and infinity become null).
    static func object(_ o: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: sanitize(o), options: [.sortedKeys]), as: UTF8.self)
    }

    /// JSON has no NaN or infinity: they become null.
    static func sanitize(_ v: Any) -> Any {
        switch v {
        case let d as Double: return d.isFinite ? d : NSNull()
        case let a as [Any]: return a.map(sanitize)
        case let o as [String: Any]: return o.mapValues(sanitize)
        default: return v
        }
    }
}

/// Numbers in the commands' text summaries.
enum Formatting {
    /// `x` with `digits` decimals, "n/a" when not finite.
    static func fixed(_ x: Double, _ digits: Int) -> String {
        x.isFinite ? String(format: "%.\(digits)f", x) : "n/a"
    }
}
