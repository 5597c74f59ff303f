import Analysis
import ArgumentParser
import Foundation
import Inference
import TraceStore

/// Options and steps shared by the resumable sweeps (`retrieval-heads`, `ablate`): output
/// format, progress bar, prefix reuse, restart and the hidden --stop-after.
struct SweepRunOptions: ParsableArguments {
    @Flag(help: "Print a JSON summary on stdout instead of text.")
    var json = false

    @Flag(name: .customLong("no-progress"), help: "No progress bar on stderr.")
    var noProgress = false

    @Flag(name: .customLong("no-share-prefix"), help: "Prefill every trial from scratch, in grid order.")
    var noSharePrefix = false

    @Flag(help: "Discard an interrupted run (<output>.partial) instead of resuming it.")
    var restart = false

    @Option(name: .customLong("stop-after"), help: .hidden)
    var stopAfter: Int?

    func validate() throws {
        if let k = stopAfter, k < 0 { throw ValidationError("--stop-after must be >= 0") }
    }

    /// The resumable run file at `output` (its partial file discarded first with --restart),
    /// checked against this model, with the root header written when it is new.
    func openRunFile(_ output: String, env: LoadedModel, command: String) throws -> RunFileWriter {
        if restart { try? FileManager.default.removeItem(atPath: RunFileWriter.temporaryPath(for: output, resumable: true)) }
        let writer = try RunFileWriter(path: output, resumable: true)
        try env.checkResumable(writer)
        if !writer.resumed { try RunFileHeader(model: env, command: command).write(to: writer.file) }
        return writer
    }

    /// Runs `body` with a progress bar on stderr (unless --no-progress), closed however it ends.
    func withProgress<T>(title: String, unit: String = "trials",
                         _ body: (@escaping (SweepProgress) -> Void) throws -> T) throws -> T {
        let bar = SweepProgressBar(enabled: !noProgress, title: title, unit: unit)
        defer { bar.finish() }
        return try body { bar.update($0) }
    }
}
