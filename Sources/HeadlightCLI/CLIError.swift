import Analysis
import ArgumentParser
import Foundation
import TraceStore

/// An error the CLI reports to the user: a message, a hint, and exit code 1.
public struct CLIError: LocalizedError, CustomStringConvertible {
    public var message: String
    public var hint: String?

    public init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }

    /// A library error shown to the user: its description (`errorDescription`, else the error
    /// itself), with `hint`.
    public init(wrapping error: Error, hint: String? = nil) {
        self.init(HeadlightMain.describe(error), hint: hint)
    }

    public var errorDescription: String? { description }
    public var description: String {
        if let hint { return "\(message)\nhint: \(hint)" }
        return message
    }
}

/// Runs the command line: usage errors exit 2, every other failure prints
/// `error: ...` (with a hint when there is one) and exits 1.
public enum HeadlightMain {
    public static func run(_ arguments: [String]? = nil) -> Never {
        do {
            let args = NegativeNumberArguments.attach(arguments ?? Array(CommandLine.arguments.dropFirst()))
            try ComputeThreads.applyEnvironment()
            var command = try Headlight.parseAsRoot(args)
            try command.run()
            Foundation.exit(0)
        } catch {
            let code = Headlight.exitCode(for: error)
            if code == .success {
                Headlight.exit(withError: error) // --help, --version
            }
            if code == .validationFailure {
                // Argument errors: message plus usage, exit code 2.
                let message = TerminalText.escape(Headlight.fullMessage(for: error), allowNewlines: true)
                FileHandle.standardError.write(Data((message + "\n").utf8))
                Foundation.exit(2)
            }
            var text = "error: \(describe(error))"
            if let e = error as? TraceStoreError, let hint = e.recoverySuggestion { text += "\nhint: \(hint)" }
            if let e = error as? ShardError, let hint = e.recoverySuggestion { text += "\nhint: \(hint)" }
            // Messages quote file contents (suite names, needle ids): no raw control characters.
            FileHandle.standardError.write(Data((TerminalText.escape(text, allowNewlines: true) + "\n").utf8))
            Foundation.exit(1)
        }
    }

    static func describe(_ error: Error) -> String {
        if let e = error as? LocalizedError, let d = e.errorDescription { return d }
        return String(describing: error)
    }

    /// An error about `file`, prefixed with the file unless its description already names it
    /// (as given or as an absolute path).
    static func describe(_ error: Error, file: String) -> String {
        let d = describe(error)
        return d.hasPrefix(file) || d.hasPrefix(URL(fileURLWithPath: file).path) ? d : "\(file): \(d)"
    }
}
