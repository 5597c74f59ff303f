import ArgumentParser
import Foundation

/// The `headlight` command. Each subcommand lives in its own file.
public struct Headlight: ParsableCommand {
    public static let version = "0.1.0"
    /// What `headlight --version` prints: the name and the version, so a caller (such as
    /// `notebook run --headlight PATH`) can tell a Headlight binary from any other program.
    public static let versionLine = "headlight \(version)"

    public static let configuration = CommandConfiguration(
        commandName: "headlight",
        abstract: "A native workbench for mechanistic interpretability of GGUF language models.",
        version: versionLine,
        subcommands: [
            Inspect.self,
            Tokenize.self,
            Doctor.self,
            NotebookCommand.self,
            Report.self,
            Generate.self,
            Bench.self,
            Trace.self,
            Lens.self,
            Membership.self,
            RetrievalHeads.self, Ablate.self, KVPolicyCommand.self,
            Cite.self,
            QueryHeads.self, Profile.self,
            CheckRunFile.self,
            Merge.self
        ]
    )

    public init() {}
}
