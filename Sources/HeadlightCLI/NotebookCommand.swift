import ArgumentParser
import Foundation
import Notebooks
import Reports
import RunRecording

/// `headlight notebook run|list`: literate CLI notebooks (Markdown with runnable `headlight`
/// cells) rendered to HTML reports. Format: notebooks-cli/README.md and
/// Sources/Notebooks/Notebook.swift.
struct NotebookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notebook",
        abstract: "Run literate notebooks (Markdown with headlight cells) and render them as HTML reports.",
        subcommands: [Run.self, List.self],
        defaultSubcommand: nil)

    /// `headlight notebook run NOTEBOOK.md`.
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a notebook's cells (cached) and write reports/NAME/index.html.",
            discussion: """
                Cells run in order as subprocesses of this headlight binary, in the working directory \
                (default: the current directory; relative paths in cells resolve there), with this \
                environment. A cell whose command, headlight version, HEADLIGHT_* environment, input \
                files and upstream cells are unchanged is taken from OUTPUT-DIR/.cache instead of \
                being run again; editing only prose runs nothing. The first failing cell stops the \
                run (exit code 1). See notebooks-cli/README.md for the notebook format.
                """)

        @Argument(help: "The notebook, e.g. notebooks-cli/NAME.md.")
        var notebook: String

        @Flag(help: "Ignore the cache and run every cell.")
        var force = false

        @Option(
            name: .customLong("output-dir"),
            help: "Report directory (default: reports/NAME under the working directory).")
        var outputDir: String?

        @Option(name: .customLong("headlight"), help: "The headlight binary the cells run (default: this one).")
        var headlight: String?

        @Option(name: .customLong("workdir"), help: "Working directory of the cells (default: the current directory).")
        var workdir: String?

        func validate() throws {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: notebook, isDirectory: &isDir), !isDir.boolValue else {
                throw ValidationError("no notebook at \(notebook)")
            }
            if let w = workdir {
                guard FileManager.default.fileExists(atPath: w, isDirectory: &isDir), isDir.boolValue else {
                    throw ValidationError("--workdir \(w) is not a directory")
                }
            }
        }

        func run() throws {
            // Depth guard first: a cell that runs a notebook fails before anything is checked or run.
            try NotebookRunner.refuseNested(environment: ProcessInfo.processInfo.environment)
            let fm = FileManager.default
            let cwd = URL(fileURLWithPath: fm.currentDirectoryPath, isDirectory: true)
            let workingDirectory =
                workdir.map { URL(fileURLWithPath: $0, isDirectory: true, relativeTo: cwd).standardizedFileURL } ?? cwd
            let notebookURL = URL(fileURLWithPath: notebook, relativeTo: cwd).standardizedFileURL
            let name = notebookURL.deletingPathExtension().lastPathComponent
            let outputDirectory =
                outputDir.map { URL(fileURLWithPath: $0, isDirectory: true, relativeTo: cwd).standardizedFileURL }
                ?? workingDirectory.appendingPathComponent("reports", isDirectory: true).appendingPathComponent(
                    name, isDirectory: true)
            let (executable, version) = try NotebookCommand.resolveHeadlight(headlight)

            var rebuild = "headlight notebook run \(notebook)"
            if let o = outputDir { rebuild += " --output-dir \(o)" }
            if let w = workdir { rebuild += " --workdir \(w)" }
            let options = NotebookRunOptions(
                executable: executable, headlightVersion: version,
                workingDirectory: workingDirectory, outputDirectory: outputDirectory,
                environment: ProcessInfo.processInfo.environment, force: force,
                hasher: NotebookCommand.sha256)
            let figures = RunReportFigureProvider(machine: RunProvenance.machineSummary())
            let index = try NotebookSession.run(
                notebookURL: notebookURL, displayPath: notebook, options: options,
                launcher: ProgressEchoLauncher(), figureProvider: figures,
                rebuildCommand: rebuild
            ) { event in
                FileHandle.standardError.write(Data(event.text.utf8))
            }
            print(NotebookCommand.displayPath(index, relativeTo: cwd))
        }
    }

    /// `headlight notebook list`.
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the notebooks in notebooks-cli/ and their reports.")

        @Option(help: "Directory to list.")
        var dir = "notebooks-cli"

        func run() throws {
            let fm = FileManager.default
            guard let names = try? fm.contentsOfDirectory(atPath: dir) else {
                throw CLIError("cannot list \(dir)", hint: "run from the repository root or pass --dir")
            }
            let notebooks = names.filter { $0.hasSuffix(".md") && $0 != "README.md" }.sorted()
            if notebooks.isEmpty {
                print("no notebooks in \(dir)")
                return
            }
            for n in notebooks {
                let path = (dir as NSString).appendingPathComponent(n)
                let stem = (n as NSString).deletingPathExtension
                let report = "reports/\(stem)/index.html"
                let hasReport = fm.fileExists(atPath: report)
                do {
                    let nb = try Notebook.load(URL(fileURLWithPath: path), displayPath: path)
                    let title =
                        nb.items.lazy.compactMap { item -> String? in
                            guard case .prose(let text, _) = item else { return nil }
                            return text.split(separator: "\n").first { $0.hasPrefix("# ") }.map {
                                String($0.dropFirst(2))
                            }
                        }.first ?? stem
                    print(
                        "\(path)  \(nb.cells.count) cell\(nb.cells.count == 1 ? "" : "s")  "
                            + "\(title)\(hasReport ? "  -> \(report)" : "")"
                    )
                } catch {
                    print("\(path)  (does not parse: \(HeadlightMain.describe(error)))")
                }
            }
        }
    }

    /// SHA-256 (SHA256.swift) as the notebook cache's hash.
    static let sha256 = NotebookHasher(
        name: "sha256",
        hashData: { SHA256.hash($0) },
        hashFile: { try SHA256.hashFile(at: $0) })

    /// The binary cells run, and its version: `--headlight PATH` or this process's own executable
    /// (/proc/self/exe) with `Headlight.version`. A `--headlight` binary must identify itself as
    /// Headlight: `PATH --version` must exit 0 within 10 s and print exactly one line
    /// `headlight X.Y.Z` (`Headlight.versionLine`). Any other program is refused — cells are
    /// Headlight argument lists, and running them with, say, /usr/bin/env would turn a cell
    /// `sh -c "..."` into a shell command (issue 17, docs/security.md).
    static func resolveHeadlight(_ explicit: String?) throws -> (String, String) {
        let fm = FileManager.default
        if let explicit {
            let path = URL(fileURLWithPath: explicit).standardizedFileURL.path
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue,
                fm.isExecutableFile(atPath: path)
            else {
                throw CLIError("--headlight \(explicit) is not an executable file")
            }
            let output = try versionOutput(of: path)
            guard let version = headlightVersion(fromVersionOutput: output) else {
                let shown = output.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
                throw CLIError(
                    "--headlight \(explicit) is not a Headlight binary: its --version printed "
                        + (shown.isEmpty ? "nothing" : String(shown.prefix(80)).debugDescription),
                    hint: "--headlight must name a headlight executable (whose --version prints "
                        + "\"\(Headlight.versionLine)\" or another version)")
            }
            return (path, version)
        }
        if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return (exe, Headlight.version)
        }
        if let exe = Bundle.main.executablePath {
            return (exe, Headlight.version)
        }
        throw CLIError("cannot find the headlight executable", hint: "pass --headlight PATH")
    }

    /// What `path --version` prints on stdout (at most 64 KiB), with stdin and stderr closed off.
    /// Throws when it cannot be started, exits non-zero or by a signal, or runs longer than
    /// `timeout` seconds (then it is killed). Output goes to a temporary file, not a pipe, so a
    /// program that never closes its stdout cannot block the wait.
    static func versionOutput(of path: String, timeout: Double = 10) throws -> String {
        let fm = FileManager.default
        let capture = fm.temporaryDirectory.appendingPathComponent("headlight-version-\(UUID().uuidString)")
        guard fm.createFile(atPath: capture.path, contents: nil), let out = try? FileHandle(forWritingTo: capture)
        else {
            throw CLIError("cannot create a temporary file in \(fm.temporaryDirectory.path)")
        }
        defer {
            try? out.close()
            try? fm.removeItem(at: capture)
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = ["--version"]
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        let exited = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in exited.signal() }
        do { try p.run() } catch {
            throw CLIError("cannot run \(path) --version: \(error.localizedDescription)")
        }
        if exited.wait(timeout: .now() + timeout) == .timedOut {
            // Its process group too (Process starts children in their own group): a shell script's
            // children would otherwise keep running.
            kill(-p.processIdentifier, SIGKILL)
            kill(p.processIdentifier, SIGKILL)
            exited.wait()
            throw CLIError(
                "--headlight \(path) is not a Headlight binary: \(path) --version did not finish within "
                    + "\(Int(timeout)) s")
        }
        guard p.terminationReason == .exit, p.terminationStatus == 0 else {
            throw CLIError(
                "--headlight \(path) is not a Headlight binary: \(path) --version failed "
                    + (p.terminationReason == .exit
                        ? "with exit code \(p.terminationStatus)" : "(signal \(p.terminationStatus))"))
        }
        let reader = try FileHandle(forReadingFrom: capture)
        defer { try? reader.close() }
        let data = (try? reader.read(upToCount: 64 << 10)) ?? nil
        return String(decoding: data ?? Data(), as: UTF8.self)
    }

    /// The version in `headlight --version` output: exactly `headlight X.Y.Z` (optionally
    /// `-suffix` or `+suffix` of letters, digits, `.` and `-`) and one final newline; nil for
    /// anything else, e.g. GNU `env (GNU coreutils) 9.1 ...`, a bare `0.1.0` or a second line.
    static func headlightVersion(fromVersionOutput text: String) -> String? {
        var t = Substring(text)
        if t.hasSuffix("\n") { t = t.dropLast() }
        let prefix = "headlight "
        guard t.hasPrefix(prefix) else { return nil }
        let version = t.dropFirst(prefix.count)
        let core = version.prefix { $0 != "-" && $0 != "+" }
        let parts = core.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } })
        else { return nil }
        let suffix = version.dropFirst(core.count)
        if !suffix.isEmpty {
            guard suffix.count > 1,
                suffix.dropFirst().allSatisfy({
                    $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-")
                })
            else { return nil }
        }
        return String(version)
    }

    static func displayPath(_ url: URL, relativeTo base: URL) -> String {
        let p = url.standardizedFileURL.path
        let b = base.standardizedFileURL.path
        return p.hasPrefix(b + "/") ? String(p.dropFirst(b.count + 1)) : p
    }
}
