import Analysis
import ArgumentParser
import Foundation
import TraceStore

/// `--shard K/N` and `--mpi` of the sweep commands (docs/scale-out.md).
struct ShardOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Run part K of N of the trial plan (K from 0: 0/4 ... 3/4), balanced by token cost.",
            discussion: "Writes a normal resumable run file for that part; `headlight merge` joins the N files "
                + "into the run file a single run writes.",
            valueName: "K/N"))
    var shard: String?

    @Flag(
        help: ArgumentHelp(
            "Run as one rank of an MPI job (rank and size from OMPI_COMM_WORLD_RANK/SIZE or PMI_RANK/SIZE).",
            discussion: "Each rank writes <output>.shard-K-of-N.h5; rank 0 then waits for the others' files "
                + "and merges them into <output>."))
    var mpi = false

    @Option(
        help: ArgumentHelp(
            "Threads for OpenBLAS and the kernel pool together (default: all cores; with --mpi, the "
                + "cores divided by the ranks on this node)."))
    var threads: Int?

    @Option(name: .customLong("mpi-timeout"), help: "Seconds rank 0 waits for the other ranks' shard files.")
    var mpiTimeout: Double = 7 * 24 * 3600

    func validate() throws {
        if let s = shard {
            do { _ = try ShardSpec.parse(s) } catch let e as ShardError {
                throw ValidationError(e.errorDescription! + " (" + (e.recoverySuggestion ?? "") + ")")
            }
        }
        if shard != nil && mpi { throw ValidationError("--shard and --mpi exclude each other (--mpi sets the shard)") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1 (got \(t))") }
        guard mpiTimeout > 0 else { throw ValidationError("--mpi-timeout must be > 0") }
    }

    /// Applies --threads (or, with --mpi, the cores shared among this node's ranks).
    func applyThreads() {
        if let n = threads ?? (mpi ? ComputeThreads.sharedDefault() : nil) { ComputeThreads.apply(n) }
    }

    /// The shard this process runs: --shard, or the MPI rank/size with --mpi; nil for a whole run.
    func spec(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ShardSpec? {
        if let s = shard { return try ShardSpec.parse(s) }
        guard mpi else { return nil }
        return try Self.mpiSpec(environment)
    }

    /// The part of a plan this process runs (nil for a whole run) and the file it writes: `output`,
    /// or with --mpi the rank's `mpiShardPath`. `costs[i]` is plan item i's token cost,
    /// `order` every item in the order a single run executes them.
    func plan(output: String, costs: [Int], order: [Int]) throws -> (info: ShardInfo?, output: String) {
        guard let spec = try spec() else { return (nil, output) }
        let info = ShardInfo(spec: spec, trials: ShardPlan.trials(costs: costs, shard: spec), planOrder: order)
        return (info, mpi ? Self.mpiShardPath(output, spec) : output)
    }

    /// After a finished run with --mpi: rank 0 merges every rank's file into `output`, the other
    /// ranks do nothing. Returns false without --mpi (the caller prints its own summary).
    func finishMPI(output: String, json: Bool) throws -> Bool {
        guard mpi, let spec = try spec() else { return false }
        if spec.index == 0 { try mpiMerge(output: output, spec: spec, json: json) }
        return true
    }

    /// Rank and size from the environment of an MPI launcher (OpenMPI, then PMI as set by
    /// MPICH/Hydra, Intel MPI and Slurm's srun).
    static func mpiSpec(_ env: [String: String]) throws -> ShardSpec {
        for (r, n) in [("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("PMI_RANK", "PMI_SIZE")] {
            guard let rs = env[r], let ns = env[n] else { continue }
            guard let rank = Int(rs), let size = Int(ns) else {
                throw ShardError.environment("--mpi: \(r)=\(rs), \(n)=\(ns) are not integers")
            }
            return try ShardSpec(index: rank, count: size)
        }
        throw ShardError.environment(
            "--mpi: no MPI rank in the environment (OMPI_COMM_WORLD_RANK/SIZE or PMI_RANK/PMI_SIZE)")
    }

    /// The run file of MPI rank K of N for the final `output`: "<stem>.shard-K-of-N.h5".
    static func mpiShardPath(_ output: String, _ s: ShardSpec) -> String {
        let stem = output.hasSuffix(".h5") ? String(output.dropLast(3)) : output
        return "\(stem).shard-\(s.index)-of-\(s.count).h5"
    }

    /// Rank 0 of an MPI run: waits until every rank's shard file is finished (a finished run
    /// file appears by rename, so existing means complete), then merges them into `output`.
    func mpiMerge(output: String, spec: ShardSpec, json: Bool) throws {
        let paths = (0..<spec.count).map { Self.mpiShardPath(output, try! ShardSpec(index: $0, count: spec.count)) }
        let deadline = Date().addingTimeInterval(mpiTimeout)
        var waiting = paths.filter { !FileManager.default.fileExists(atPath: $0) }
        if !waiting.isEmpty && !json {
            FileHandle.standardError.write(Data("rank 0: waiting for \(waiting.count) shard file(s)\n".utf8))
        }
        while !waiting.isEmpty {
            if Date() > deadline {
                throw CLIError(
                    "--mpi: rank 0 waited \(Int(mpiTimeout)) s; shard files still missing: "
                        + waiting.joined(separator: ", "),
                    hint: "check the other ranks' errors; rerun the job (finished shards are kept, "
                        + "interrupted ones resume) or merge by hand with headlight merge")
            }
            Thread.sleep(forTimeInterval: 0.5)
            waiting = waiting.filter { !FileManager.default.fileExists(atPath: $0) }
        }
        let r = try Merge.mergeFiles(paths, output: output, allowIncomplete: false)
        if json {
            print(try JSONOutput.object(Merge.jsonObject(r, output: output, shards: paths)))
        } else {
            print("merged \(paths.count) shards: \(r.summary)\nwrote \(output)")
        }
    }
}
