import Foundation

/// A notebook process launcher that, besides capturing a cell's stdout and stderr like
/// `FoundationProcessLauncher`, echoes the cell's stderr lines (progress bars, notes) to this
/// process's stderr as they arrive, indented under the `[k/n] headlight ...` line. Long cells
/// (a detection sweep, an ablation) then show their progress and ETA while the notebook runs.
public struct ProgressEchoLauncher: NotebookProcessLauncher {
    /// Prefix of echoed lines.
    public var indent: String
    /// Where echoed lines go (default: standard error).
    public var sink: @Sendable (String) -> Void

    public init(indent: String = "      ", sink: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.indent = indent
        self.sink = sink
    }

    private final class State: @unchecked Sendable {
        let lock = NSLock()
        var data = Data()
        var pending = Data()
        var echoed = false
    }

    public func run(executable: String, arguments: [String], workingDirectory: URL, environment: [String: String]) throws -> NotebookProcessResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.currentDirectoryURL = workingDirectory
        var env = environment
        // Progress lines of long cells (retrieval-heads, ablate) every 15 s instead of every minute.
        if env["HEADLIGHT_PROGRESS_INTERVAL"] == nil { env["HEADLIGHT_PROGRESS_INTERVAL"] = "15" }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let state = State()
        let indent = self.indent, sink = self.sink
        let emit: @Sendable (Data) -> Void = { line in
            var text = String(decoding: line, as: UTF8.self)
            // A progress bar redrawn with \r: show its latest state only.
            if let r = text.lastIndex(of: "\r") { text = String(text[text.index(after: r)...]) }
            text = text.replacingOccurrences(of: "\u{1B}[K", with: "")
            guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { return }
            sink((state.echoed ? "" : "\n") + indent + text + "\n")
            state.echoed = true
        }
        let errHandle = err.fileHandleForReading
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) {
            while true {
                let chunk = errHandle.availableData
                if chunk.isEmpty { break }
                state.lock.lock()
                state.data.append(chunk)
                state.pending.append(chunk)
                while let nl = state.pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = state.pending[state.pending.startIndex..<nl]
                    state.pending = Data(state.pending[(nl + 1)...])
                    emit(Data(line))
                }
                state.lock.unlock()
            }
            state.lock.lock()
            if !state.pending.isEmpty { emit(state.pending); state.pending = Data() }
            state.lock.unlock()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        if state.echoed { sink(indent + "done") }
        let code = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
        return NotebookProcessResult(exitCode: code, stdout: outData, stderr: state.data)
    }
}
