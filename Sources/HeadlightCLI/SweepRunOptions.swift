import Analysis
import ArgumentParser
import Foundation
import Inference
import RunRecording
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

    /// The resumable run file at `output` (its partial file discarded first with --restart). A
    /// new file gets its root header before it appears as `<output>.partial`; an existing
    /// `.partial` is resumed only if it was written by the same command, model (sha256) and plan
    /// (`planDigest` of `plan` and the bytes of `inputs`) with the same KV cache storage
    /// (`kv_cache`), checked before anything is written.
    ///
    /// A shard (`shard`, --shard K/N) adds "K/N" to the identity and records its `ShardInfo`; a
    /// whole run refuses a shard's `.partial`. `plan_sha256` is the full plan's in both cases.
    func openRunFile(
        _ output: String, env: LoadedModel, command: String, plan: [String],
        inputs: [String], shard: ShardInfo? = nil
    ) throws -> RunFileWriter {
        try Self.openRunFile(
            output, env: env, command: command, plan: plan, inputs: inputs, shard: shard, restart: restart)
    }

    /// `openRunFile` for commands without these options (`cite`): `restart` is their --restart.
    static func openRunFile(
        _ output: String, env: LoadedModel, command: String, plan: [String],
        inputs: [String], shard: ShardInfo?, restart: Bool
    ) throws -> RunFileWriter {
        if restart {
            try? FileManager.default.removeItem(atPath: RunFileWriter.temporaryPath(for: output, resumable: true))
        }
        let header = try RunFileHeader(model: env, command: command)
        var identity = [
            RunFile.Attr.command: command, RunFile.Attr.modelSHA256: try env.sha256(),
            "plan_sha256": try Self.planDigest(plan: plan, inputs: inputs),
            RunFile.Attr.kvCache: KVStorage.default.rawValue
        ]
        if let shard { identity[ShardInfo.Attr.shard] = shard.spec.description }
        let writer = try RunFileWriter(path: output, resumable: true, header: header, identity: identity)
        if let shard {
            try shard.write(to: writer.file)
        } else if try writer.file.hasAttribute(ShardInfo.Attr.shard) {
            let s = try writer.file.attributeIfPresent(ShardInfo.Attr.shard)?.stringValue ?? "?"
            writer.close()
            throw TraceStoreError.cannotResume(
                file: writer.temporaryPath, detail: "it is the partial run of shard \(s), this run is not sharded",
                hint: "Rerun with --shard \(s), or with --restart to discard it.")
        }
        return writer
    }

    /// SHA-256 of what determines a sweep's records: the command's plan lines (trial cells,
    /// conditions, computation options; not output-only options such as --top or --json) and
    /// the bytes of its input files (suite, haystack file or directory, needles, scores file).
    static func planDigest(plan: [String], inputs: [String]) throws -> String {
        let h = SHA256()
        for line in plan { h.update(Data((line + "\u{0}").utf8)) }
        for path in inputs {
            h.update(Data(("file:" + path + "\u{0}").utf8))
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { continue }
            let files =
                isDir.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { path + "/" + $0 }
                : [path]
            for f in files {
                h.update(Data((f + "\u{0}").utf8))
                if let d = FileManager.default.contents(atPath: f) { h.update(d) }
            }
        }
        return h.finalizeHex()
    }

    /// Runs `body` with a progress bar on stderr (unless --no-progress), closed however it ends.
    func withProgress<T>(
        title: String, unit: String = "trials",
        _ body: (@escaping (SweepProgress) -> Void) throws -> T
    ) throws -> T {
        let bar = SweepProgressBar(enabled: !noProgress, title: title, unit: unit)
        defer { bar.finish() }
        return try body { bar.update($0) }
    }
}
