import Foundation

/// Errors raised while rendering or writing reports.
public enum ReportError: Error, LocalizedError, Equatable, Sendable {
    /// Graphviz rejected the graph. `status` is the shim's HL_GV_* code,
    /// `message` what Graphviz itself said (captured, not printed).
    case graphviz(status: Int32, message: String)
    /// A file or directory could not be written.
    case io(path: String, message: String)
    /// The caller passed something the renderer cannot use.
    case invalidInput(String)

    public var errorDescription: String? {
        switch self {
        case let .graphviz(status, message):
            return "Graphviz failed (status \(status)): \(message)"
        case let .io(path, message):
            return "Could not write \(path): \(message)"
        case let .invalidInput(message):
            return "Invalid report input: \(message)"
        }
    }

    public var recoverySuggestion: String? {
        switch self {
        case .graphviz:
            return "Check the DOT text (DirectedGraph output is always valid; hand-written DOT may not be). "
                + "Is the Graphviz 'dot' layout plugin installed (Debian: graphviz, libgraphviz-dev)?"
        case .io:
            return "Check that the output directory is writable and the disk is not full."
        case .invalidInput:
            return nil
        }
    }
}
