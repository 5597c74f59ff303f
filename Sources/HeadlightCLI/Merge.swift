import Analysis
import ArgumentParser
import Foundation
import TraceStore

/// `headlight merge`: joins the shard run files of one sweep (`--shard K/N`) into the run file
/// a single run writes (docs/scale-out.md).
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge the shard run files of a sweep into one run file.",
        discussion: """
            Checks that the shards come from the same command, model (sha256), plan (suite, trial \
            grid, options and input files: plan_sha256) and shard count, that each shard is given \
            once and that together they cover the plan exactly once; then writes the run file a \
            single run writes: the same datasets, the records in the same order, the summary \
            (scores) recomputed from the merged records by the sweep's own code. Root attributes \
            merged_shard_files, merged_shard_hosts, merged_shards and merged_shard_seconds record \
            where the parts came from. The output is written atomically.

            A shard that did not finish (only <shard>.partial exists) or a missing shard is an \
            error; with --allow-incomplete the merge writes what is there and lists the trials \
            missing (root attribute merged_missing_trials).
            """)

    @Argument(help: "Shard run files (written with --shard K/N), in any order.")
    var shards: [String] = []

    @Option(name: [.customShort("o"), .long], help: "Run file to write.")
    var output: String

    @Flag(name: .customLong("allow-incomplete"), help: "Merge unfinished or missing shards; list missing trials.")
    var allowIncomplete = false

    @Flag(help: "Print a JSON summary on stdout instead of text.")
    var json = false

    func validate() throws {
        guard !shards.isEmpty else { throw ValidationError("give at least one shard run file") }
        if let dup = Dictionary(grouping: shards, by: { $0 }).first(where: { $0.value.count > 1 }) {
            throw ValidationError("\(dup.key) is given more than once")
        }
        if shards.contains(output) { throw ValidationError("-o \(output) is one of the shard files") }
    }

    func run() throws {
        let r = try Self.mergeFiles(shards, output: output, allowIncomplete: allowIncomplete)
        if json {
            print(try JSONOutput.object(Self.jsonObject(r, output: output, shards: shards)))
            return
        }
        if !r.missingTrials.isEmpty {
            FileHandle.standardError.write(
                Data(
                    ("warning: \(r.missingTrials.count) trial(s) missing: "
                        + r.missingTrials.map(String.init).joined(separator: ", ") + "\n").utf8))
        }
        print("merged \(shards.count) shard(s): \(r.summary)\nwrote \(output)")
    }

    static func jsonObject(_ r: ShardMergeResult, output: String, shards: [String]) -> [String: Any] {
        ["output": output, "shards": shards, "trials": r.records, "missing_trials": r.missingTrials]
    }

    /// Merges `paths` into `output` (atomically; nothing is left at `output` on error).
    static func mergeFiles(_ paths: [String], output: String, allowIncomplete: Bool) throws -> ShardMergeResult {
        let set = try ShardSet.open(paths, allowIncomplete: allowIncomplete)
        defer { set.close() }
        let writer = try RunFileWriter(path: output)
        do {
            for (k, v) in try set.mergedRootAttributes() { try writer.file.setAttribute(k, v) }
            try set.writeProvenance(into: writer.file)
            let r: ShardMergeResult
            switch set.command {
            case "retrieval-heads": r = try RetrievalRunFile.merge(set, into: writer.file)
            case "ablate": r = try AblationRunFile.merge(set, into: writer.file)
            case "cite": r = try CitationRunFile.merge(set, into: writer.file)
            case "membership": r = try MembershipRunFile.merge(set, into: writer.file)
            default: throw ShardError.unsupported(file: set.shards[0].path, command: set.command)
            }
            if !r.missingTrials.isEmpty { try writer.file.setAttribute("merged_missing_trials", r.missingTrials) }
            try writer.finalize()
            return r
        } catch {
            try? writer.abandon()
            throw error
        }
    }
}
