import ArgumentParser
import Foundation

/// The `headlight` command. Each subcommand lives in its own file.
public struct Headlight: ParsableCommand {
    public static let version = "0.1.0"

    public static let configuration = CommandConfiguration(
        commandName: "headlight",
        abstract: "A native workbench for mechanistic interpretability of GGUF language models.",
        version: version,
        subcommands: [
            Inspect.self,
            Tokenize.self,
            Doctor.self,
            NotebookCommand.self,
            Report.self,
            Generate.self,
            Bench.self,
            Trace.self,
            Membership.self,
            RetrievalHeads.self, Ablate.self,
            Cite.self,
            Merge.self
        ]
    )

    public init() {}
}
