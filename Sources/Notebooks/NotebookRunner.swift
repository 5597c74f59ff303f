// Running a notebook's cells in order, with caching (NotebookCache.swift).
//
// Each cell runs as a subprocess: `<executable> <arguments...>` — the headlight binary that
// runs the notebook (the CLI resolves /proc/self/exe; `--headlight PATH` overrides), in the
// working directory (the current directory unless the caller says otherwise), with the caller's
// environment, no standard input, stdout and stderr captured. The first cell that exits
// non-zero stops the run with `NotebookError.cellFailed`, naming the cell, its line in the .md
// file, its command and the tail of its stderr. How processes are started is injectable
// (`NotebookProcessLauncher`), so tests can run /bin/echo, /bin/false or an in-process fake.
//
// Depth guard: every cell runs with HEADLIGHT_NOTEBOOK_CELL=<notebook>:<line> in its
// environment, and a notebook run started where that variable is set is refused
// (`NotebookError.nested`). A cell `headlight notebook run X.md` therefore fails at once instead
// of recursing until the process limit (a notebook that runs itself). The variable is not part
// of the cell keys.
import Foundation
import Reports

/// What a finished subprocess left behind.
public struct NotebookProcessResult: Sendable {
    public var exitCode: Int32
    public var stdout: Data
    public var stderr: Data

    public init(exitCode: Int32, stdout: Data, stderr: Data) {
        self.exitCode = exitCode
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Starts one cell's process and waits for it.
public protocol NotebookProcessLauncher {
    func run(
        executable: String, arguments: [String], workingDirectory: URL, environment: [String: String]
    ) throws -> NotebookProcessResult
}

/// The real launcher: Foundation's `Process`, stdout and stderr read concurrently (so neither
/// pipe can fill up and block the child), stdin from /dev/null. A child killed by a signal
/// reports exit code 128 + signal, as shells do.
public struct FoundationProcessLauncher: NotebookProcessLauncher {
    /// Called with each chunk of the cell's stderr as it arrives (the whole stderr is collected
    /// either way).
    public var onStderr: (@Sendable (Data) -> Void)?

    public init(onStderr: (@Sendable (Data) -> Void)? = nil) { self.onStderr = onStderr }

    private final class Box: @unchecked Sendable { var data = Data() }

    public func run(
        executable: String, arguments: [String], workingDirectory: URL, environment: [String: String]
    ) throws -> NotebookProcessResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.currentDirectoryURL = workingDirectory
        p.environment = environment
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let errBox = Box()
        let errHandle = err.fileHandleForReading
        let group = DispatchGroup()
        let onStderr = self.onStderr
        DispatchQueue.global().async(group: group) {
            guard let onStderr else {
                errBox.data = errHandle.readDataToEndOfFile()
                return
            }
            while true {
                let chunk = errHandle.availableData
                if chunk.isEmpty { break }
                errBox.data.append(chunk)
                onStderr(chunk)
            }
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        let code = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
        return NotebookProcessResult(exitCode: code, stdout: outData, stderr: errBox.data)
    }
}

/// How to run a notebook.
public struct NotebookRunOptions {
    /// The headlight binary each cell runs.
    public var executable: String
    /// Its version string (part of every cell key).
    public var headlightVersion: String
    /// Where cells run and relative paths in arguments resolve.
    public var workingDirectory: URL
    /// The report directory; the cache is its `.cache/` subdirectory.
    public var outputDirectory: URL
    /// The cells' environment.
    public var environment: [String: String]
    /// Ignore the cache and run every cell.
    public var force: Bool
    public var hasher: NotebookHasher

    public init(
        executable: String, headlightVersion: String, workingDirectory: URL, outputDirectory: URL,
        environment: [String: String] = ProcessInfo.processInfo.environment, force: Bool = false,
        hasher: NotebookHasher = .fnv1a128
    ) {
        self.executable = executable
        self.headlightVersion = headlightVersion
        self.workingDirectory = workingDirectory
        self.outputDirectory = outputDirectory
        self.environment = environment
        self.force = force
        self.hasher = hasher
    }
}

/// One cell's outcome (fresh or from the cache).
public struct NotebookCellResult: Sendable {
    public var cell: NotebookCell
    public var key: String
    public var exitCode: Int32
    /// Seconds the command took (for a cached cell: when it originally ran).
    public var duration: Double
    public var stdout: String
    public var stderr: String
    public var stdoutBytes: Int
    public var stderrBytes: Int
    /// Output files the cell produced, as written in its arguments.
    public var outputs: [String]
    public var cached: Bool
}

/// Progress events, for the `[2/5] headlight ... (12.3 s)` lines.
public enum NotebookProgress {
    case started(NotebookCell, total: Int)
    case finished(NotebookCellResult, total: Int)
    case failed(NotebookCell, total: Int, exitCode: Int32, duration: Double)

    /// The progress text: `started` gives the start of a line (no newline), the others its end.
    public var text: String {
        switch self {
        case let .started(cell, total):
            return "[\(cell.number)/\(total)] \(cell.shortCommand())"
        case let .finished(r, _):
            return r.cached ? " (cached)\n" : " (\(NotebookRunner.formatDuration(r.duration)))\n"
        case let .failed(_, _, code, duration):
            return " FAILED, exit code \(code) (\(NotebookRunner.formatDuration(duration)))\n"
        }
    }
}

public final class NotebookRunner {
    /// Set in every cell's environment to `<notebook path>:<line>`; see the top of this file.
    public static let cellEnvironmentVariable = "HEADLIGHT_NOTEBOOK_CELL"

    /// Throws `NotebookError.nested` when `environment` is that of a notebook cell.
    public static func refuseNested(environment: [String: String]) throws {
        if let cell = environment[cellEnvironmentVariable], !cell.isEmpty {
            throw NotebookError.nested(insideCell: cell)
        }
    }

    public var options: NotebookRunOptions
    public var launcher: NotebookProcessLauncher
    public var progress: ((NotebookProgress) -> Void)?

    /// How many lines of a failing cell's stderr the error shows.
    public static let stderrTailLines = 20

    public init(
        options: NotebookRunOptions, launcher: NotebookProcessLauncher = FoundationProcessLauncher(),
        progress: ((NotebookProgress) -> Void)? = nil
    ) {
        self.options = options
        self.launcher = launcher
        self.progress = progress
    }

    public var cache: NotebookCache { NotebookCache(outputDirectory: options.outputDirectory) }

    /// Runs (or takes from the cache) every cell in order. Throws at the first failing cell.
    public func run(_ notebook: Notebook) throws -> [NotebookCellResult] {
        try NotebookRunner.refuseNested(environment: options.environment)
        let cells = notebook.cells
        let cache = self.cache
        let fm = FileManager.default
        var results: [NotebookCellResult] = []
        var previousKey: String?
        for cell in cells {
            progress?(.started(cell, total: cells.count))
            let (key, inputs) = try NotebookKey.key(
                for: cell, headlightVersion: options.headlightVersion,
                environment: options.environment,
                workingDirectory: options.workingDirectory,
                previousKey: previousKey, hasher: options.hasher)
            previousKey = key
            if !options.force, let e = cache.entry(for: key), e.exitCode == 0,
                e.outputs.allSatisfy({
                    fm.fileExists(atPath: NotebookKey.resolve($0, in: options.workingDirectory).path)
                })
            {
                let r = NotebookCellResult(
                    cell: cell, key: key, exitCode: e.exitCode, duration: e.duration,
                    stdout: e.stdout, stderr: e.stderr, stdoutBytes: e.stdoutBytes,
                    stderrBytes: e.stderrBytes, outputs: e.outputs, cached: true)
                results.append(r)
                progress?(.finished(r, total: cells.count))
                continue
            }
            // Output directories must exist before the command writes into them.
            let outputs = NotebookKey.outputPaths(cell.arguments)
            for o in outputs {
                let dir = NotebookKey.resolve(o, in: options.workingDirectory).deletingLastPathComponent()
                try? fm.createDirectory(at: dir, withIntermediateDirectories: true)
            }
            let start = DispatchTime.now().uptimeNanoseconds
            let p: NotebookProcessResult
            var environment = options.environment
            environment[NotebookRunner.cellEnvironmentVariable] = "\(notebook.path):\(cell.line)"
            do {
                p = try launcher.run(
                    executable: options.executable, arguments: cell.arguments,
                    workingDirectory: options.workingDirectory, environment: environment)
            } catch {
                progress?(.failed(cell, total: cells.count, exitCode: -1, duration: 0))
                throw NotebookError.launch(
                    path: notebook.path, cell: cell.number, line: cell.line, command: cell.commandLine,
                    message: "\(options.executable): \(error.localizedDescription)")
            }
            let duration = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let stdout = String(decoding: p.stdout, as: UTF8.self)
            let stderr = String(decoding: p.stderr, as: UTF8.self)
            guard p.exitCode == 0 else {
                progress?(.failed(cell, total: cells.count, exitCode: p.exitCode, duration: duration))
                throw NotebookError.cellFailed(
                    path: notebook.path, cell: cell.number, line: cell.line,
                    command: cell.commandLine, exitCode: p.exitCode,
                    stderrTail: NotebookRunner.tail(stderr, lines: NotebookRunner.stderrTailLines))
            }
            let produced = outputs.filter {
                fm.fileExists(atPath: NotebookKey.resolve($0, in: options.workingDirectory).path)
            }
            let entry = NotebookCacheEntry(
                key: key, cell: cell.number, arguments: cell.arguments, exitCode: p.exitCode, duration: duration,
                stdout: clipText(stdout, limit: NotebookCache.storedOutputLimit).0,
                stderr: clipText(stderr, limit: NotebookCache.storedOutputLimit).0,
                stdoutBytes: p.stdout.count, stderrBytes: p.stderr.count, outputs: produced,
                inputs: Dictionary(inputs, uniquingKeysWith: { a, _ in a }), finished: RunClock.timestamp())
            try cache.store(entry)
            let r = NotebookCellResult(
                cell: cell, key: key, exitCode: p.exitCode, duration: duration,
                stdout: entry.stdout, stderr: entry.stderr, stdoutBytes: entry.stdoutBytes,
                stderrBytes: entry.stderrBytes, outputs: produced, cached: false)
            results.append(r)
            progress?(.finished(r, total: cells.count))
        }
        cache.prune(keeping: Set(results.map(\.key)))
        return results
    }

    /// The last `lines` lines of `text` (at most 4,000 characters).
    static func tail(_ text: String, lines: Int) -> String {
        var ls = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        while let l = ls.last, l.trimmingCharacters(in: .whitespaces).isEmpty { ls.removeLast() }
        var t = ls.suffix(lines).joined(separator: "\n")
        if t.count > 4000 { t = "..." + String(t.suffix(4000)) }
        return t
    }

    /// "0.42 s", "12.3 s", "4 min 05 s".
    public static func formatDuration(_ s: Double) -> String {
        if s < 1 { return String(format: "%.2f s", s) }
        if s < 60 { return String(format: "%.1f s", s) }
        let total = Int(s.rounded())
        return String(format: "%d min %02d s", total / 60, total % 60)
    }
}

/// ISO 8601 UTC timestamps (seconds).
enum RunClock {
    static func timestamp(_ date: Date = Date()) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }
}
