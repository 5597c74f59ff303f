import Foundation

/// One of N parts of a sweep's trial plan: `--shard K/N`, K counted from 0 (0 <= K < N), the
/// numbering of Slurm array task ids (`$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT` with
/// `--array=0-(N-1)`) and MPI ranks. Which trials part K holds is `ShardPlan.assign`.
public struct ShardSpec: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// 0-based part number.
    public let index: Int
    /// Number of parts (>= 1).
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1 else { throw ShardError.badSpec("\(index)/\(count)", detail: "N must be at least 1") }
        guard index >= 0, index < count else {
            throw ShardError.badSpec(
                "\(index)/\(count)", detail: "K must be in 0...\(count - 1) (shards are numbered from 0)")
        }
        self.index = index
        self.count = count
    }

    /// Parses "K/N" (decimal integers, 0 <= K < N).
    public static func parse(_ text: String) throws -> ShardSpec {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0].trimmingCharacters(in: .whitespaces)),
            let n = Int(parts[1].trimmingCharacters(in: .whitespaces))
        else { throw ShardError.badSpec(text, detail: "expected K/N with integers, e.g. 0/4") }
        return try ShardSpec(index: k, count: n)
    }

    /// "K/N".
    public var description: String { "\(index)/\(count)" }
}

/// Errors of sharding and merging shard run files.
public enum ShardError: LocalizedError, Equatable, Sendable {
    case badSpec(String, detail: String)
    /// The file has no shard attributes.
    case notAShard(file: String)
    /// The file differs from the first shard in `key`.
    case foreign(file: String, key: String, have: String, want: String, reference: String)
    case duplicateShard(shard: String, files: [String])
    case missingShards(shards: [Int], count: Int, trials: [Int])
    case duplicateTrial(trial: String, files: [String])
    case incomplete(file: String, planned: Int)
    case outsideShard(file: String, trials: [Int])
    case unsupported(file: String, command: String)
    case noShards
    case environment(String)

    public var errorDescription: String? {
        switch self {
        case let .badSpec(s, d): return "--shard \(s): \(d)"
        case let .notAShard(f): return "\(f): not a shard run file (no shard_index / shard_count attributes)"
        case let .foreign(f, k, h, w, r):
            return "\(f): foreign shard: its \(k) is \(h), but \(r) has \(w)"
        case let .duplicateShard(s, fs): return "shard \(s) given more than once: \(fs.joined(separator: ", "))"
        case let .missingShards(s, n, t):
            return "missing shard(s) \(s.map(String.init).joined(separator: ", ")) of \(n) "
                + "(trials \(Self.list(t)) not covered)"
        case let .duplicateTrial(t, fs): return "trial \(t) is in more than one shard: \(fs.joined(separator: ", "))"
        case let .incomplete(f, p): return "\(f): incomplete shard (the run of its \(p) trials did not finish)"
        case let .outsideShard(f, t): return "\(f): records trials outside its shard: \(Self.list(t))"
        case let .unsupported(f, c): return "\(f): merging \(c) run files is not supported"
        case .noShards: return "no shard files given"
        case let .environment(d): return d
        }
    }

    public var recoverySuggestion: String? {
        switch self {
        case .badSpec: return "Pass --shard K/N with 0 <= K < N, e.g. --shard 0/4 ... --shard 3/4."
        case .notAShard: return "Pass the files written with --shard K/N."
        case .foreign:
            return "Merge only shards of one plan: same command, model, suite and options (rerun that shard)."
        case .duplicateShard: return "Pass each shard once."
        case .missingShards: return "Run the missing shard(s), or pass --allow-incomplete to merge what is there."
        case .duplicateTrial: return "Pass each shard once; shards of one plan never share trials."
        case .incomplete:
            return "Rerun that shard's command to resume it, or pass --allow-incomplete (lists the missing trials)."
        case .outsideShard: return "The file was edited or written by another plan; rerun that shard."
        case .unsupported: return "Merge retrieval-heads, ablate, cite or membership shard files."
        case .noShards: return "headlight merge SHARD.h5... -o RUN.h5"
        case .environment: return "Run under mpirun/srun, or pass --shard K/N instead of --mpi."
        }
    }

    /// "1, 2, 5" (at most 20, then "...").
    static func list(_ t: [Int]) -> String {
        t.prefix(20).map(String.init).joined(separator: ", ") + (t.count > 20 ? ", ... (\(t.count))" : "")
    }
}
