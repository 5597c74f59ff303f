import CNative
import Foundation

/// In-process Graphviz (libgvc, "dot" layout) through the `hl_graphviz` C shim.
/// Calls are serialised inside the shim because Graphviz keeps global state.
public enum Graphviz {
    /// Graphviz library version, e.g. "2.43.0".
    public static var version: String { String(cString: hl_gv_version()) }

    /// Lays out `dot` with the dot engine and returns the SVG text Graphviz produced
    /// (with its XML prolog). Messages Graphviz would print are captured; on failure
    /// they become `ReportError.graphviz`.
    public static func renderSVG(dot: String) throws -> String {
        try render(dot: dot).svg
    }

    /// Like `renderSVG(dot:)`, also returning the warnings Graphviz emitted on success
    /// (one entry per "Warning: ..." line).
    public static func render(dot: String) throws -> (svg: String, warnings: [String]) {
        if dot.utf8.contains(0) {
            throw ReportError.graphviz(status: 1, message: "DOT text contains a NUL byte")
        }
        var out: UnsafeMutablePointer<CChar>? = nil
        var len: UInt32 = 0
        var err = [CChar](repeating: 0, count: 8192)
        let errCount = Int32(err.count)
        let rc = dot.withCString { cdot in
            err.withUnsafeMutableBufferPointer { buf in
                hl_gv_render_svg(cdot, &out, &len, buf.baseAddress, errCount)
            }
        }
        defer { hl_gv_free_svg(out) }
        let messages = err.withUnsafeBufferPointer { buf in
            String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        guard rc == 0, let out else {
            let text = messages.trimmingCharacters(in: .whitespacesAndNewlines)
            throw ReportError.graphviz(status: rc, message: text.isEmpty ? "unknown Graphviz error" : text)
        }
        let svg = String(decoding: UnsafeRawBufferPointer(start: out, count: Int(len)), as: UTF8.self)
        let warnings = messages.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
            !$0.isEmpty
        }
        return (svg, warnings)
    }
}
