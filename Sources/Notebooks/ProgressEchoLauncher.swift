import Foundation
import Reports

/// A notebook process launcher that, besides capturing a cell's stdout and stderr like
/// `FoundationProcessLauncher`, echoes the cell's stderr lines (progress bars, notes) to this
/// process's stderr as they arrive, indented under the `[k/n] headlight ...` line. Long cells
/// (a detection sweep, an ablation) then show their progress and ETA while the notebook runs.
public struct ProgressEchoLauncher: NotebookProcessLauncher {
    /// Prefix of echoed lines.
    public var indent: String
    /// Where echoed lines go (default: standard error).
    public var sink: @Sendable (String) -> Void

    public init(
        indent: String = "      ",
        sink: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }
    ) {
        self.indent = indent
        self.sink = sink
    }

    /// Splits stderr into lines and echoes the non-empty ones.
    private final class Echo: @unchecked Sendable {
        let lock = NSLock()
        var pending = Data()
        var echoed = false
        let indent: String
        let sink: @Sendable (String) -> Void
        init(indent: String, sink: @escaping @Sendable (String) -> Void) {
            self.indent = indent
            self.sink = sink
        }

        func emit(_ line: Data) {
            var text = String(decoding: line, as: UTF8.self)
            // A progress bar redrawn with \r: show its latest state only.
            if let r = text.lastIndex(of: "\r") { text = String(text[text.index(after: r)...]) }
            text = text.replacingOccurrences(of: "\u{1B}[K", with: "")
            guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { return }
            sink((echoed ? "" : "\n") + indent + text + "\n")
            echoed = true
        }

        func feed(_ chunk: Data) {
            lock.lock()
            defer { lock.unlock() }
            pending.append(chunk)
            while let nl = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = pending[pending.startIndex..<nl]
                pending = Data(pending[(nl + 1)...])
                emit(Data(line))
            }
        }

        func finish() {
            lock.lock()
            defer { lock.unlock() }
            if !pending.isEmpty {
                emit(pending)
                pending = Data()
            }
            if echoed { sink(indent + "done") }
        }
    }

    public func run(
        executable: String, arguments: [String], workingDirectory: URL, environment: [String: String]
    ) throws -> NotebookProcessResult {
        var env = environment
        // Progress lines of long cells (retrieval-heads, ablate) every 15 s instead of every minute.
        if env["HEADLIGHT_PROGRESS_INTERVAL"] == nil { env["HEADLIGHT_PROGRESS_INTERVAL"] = "15" }
        let echo = Echo(indent: indent, sink: sink)
        let result = try FoundationProcessLauncher(onStderr: { echo.feed($0) })
            .run(executable: executable, arguments: arguments, workingDirectory: workingDirectory, environment: env)
        echo.finish()
        return result
    }
}
