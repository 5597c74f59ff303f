import ArgumentParser
import Foundation
import Reports
import TraceStore

/// `headlight check-run-file RUN.h5` (hidden): reads a run file the way `report` will, then every
/// object in it (`H5ReadCheck`), in a process of its own. Commands that read run files from
/// elsewhere (`report`, `report composition/attention --heads-from`, `ablate --scores`) run it as
/// a child first (`RunFileIsolation`), because a damaged file can crash libhdf5 itself; a crash
/// here becomes a clear error there. Exit 0: everything read; exit 1: some objects could not be
/// read (cleanly; listed on stderr, and the caller's own reading reports them again).
struct CheckRunFile: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: RunFileIsolation.subcommand,
        abstract: "Read every object of a run file (the child process of `report`'s safety check).",
        shouldDisplay: false)

    @Argument(help: "The run file (.h5).")
    var file: String

    func run() throws {
        let url = URL(fileURLWithPath: file)
        var problems: [String] = []
        // What `report` reads, in the same way, first.
        do {
            let contents = try RunFileContents.load(url, allowIncomplete: true)
            if !contents.hasAnalysis { _ = RunFileSummary().blocks(forRunFile: url) }
        } catch {
            problems.append(HeadlightMain.describe(error, file: file))
        }
        let walk = H5ReadCheck.readEverything(file)
        problems += walk.problems
        print(
            "\(file): \(walk.objects) objects, \(walk.attributes) attributes, \(walk.bytesRead) bytes of data read; "
                + "\(problems.count) problem\(problems.count == 1 ? "" : "s")")
        guard problems.isEmpty else {
            FileHandle.standardError.write(Data(problems.map { "problem: \($0)\n" }.joined().utf8))
            throw ExitCode(1)
        }
    }
}

/// Reading untrusted run files in a child process first (see `CheckRunFile`).
enum RunFileIsolation {
    static let subcommand = "check-run-file"
    /// Seconds the check may take before the file counts as unreadable (a damaged file can also
    /// make libhdf5 loop; the walk itself is bounded, see `H5ReadCheck`).
    static let timeout: Double = 300

    /// Runs `headlight check-run-file path` and waits for it. A child killed by a signal (libhdf5
    /// crashed on the file) or running past `timeout` is `CLIError` "run file X is corrupt";
    /// any exit code is fine (clean read errors are reported by the caller's own reading).
    /// Files that do not exist are left to the caller's error.
    static func check(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        guard
            let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? Bundle.main.executablePath
        else {
            throw CLIError("cannot find the headlight executable to check \(path) in a child process")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = [subcommand, path]
        var env = ProcessInfo.processInfo.environment
        env["SWIFT_BACKTRACE"] = "enable=no" // a crash is expected here: no crash report, no delay
        // No BLAS here: without this, OpenBLAS's idle thread pool spins (sched_yield) and doubles the
        // check's time on a busy 2-core machine (measured: 0.25 s -> 0.12 s per file).
        env["OPENBLAS_NUM_THREADS"] = "1"
        p.environment = env
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        let exited = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in exited.signal() }
        do { try p.run() } catch {
            throw CLIError("cannot start \(exe) \(subcommand) \(path): \(error.localizedDescription)")
        }
        if exited.wait(timeout: .now() + timeout) == .timedOut {
            // Its process group too (Process starts children in their own group): a shell script's
            // children would otherwise keep running.
            kill(-p.processIdentifier, SIGKILL)
            kill(p.processIdentifier, SIGKILL)
            exited.wait()
            throw CLIError(
                "run file \(path) is corrupt (reading it did not finish within \(Int(timeout)) s in a checker process)",
                hint: "the file cannot be read safely; regenerate it, or get an intact copy from whoever made it")
        }
        if p.terminationReason == .uncaughtSignal {
            throw CLIError(
                "run file \(path) is corrupt (reading crashed libhdf5 in a checker process)",
                hint: "the checker died of \(signalName(p.terminationStatus)); the file cannot be read safely — "
                    + "regenerate it, or get an intact copy from whoever made it")
        }
    }

    static func signalName(_ s: Int32) -> String {
        let names: [Int32: String] = [
            SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP",
            SIGFPE: "SIGFPE", SIGKILL: "SIGKILL"
        ]
        return "signal \(s)" + (names[s].map { " (\($0))" } ?? "")
    }
}
