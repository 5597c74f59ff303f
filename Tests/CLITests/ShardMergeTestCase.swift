import Foundation
import TraceStore
import XCTest

/// What the sharded-sweep tests (`ShardMerge*CLITests`) share: a temporary directory per test,
/// running `headlight` (also under `mpirun`), and the comparison of a merged run file with a
/// single run's, group by group, bit for bit.
class ShardMergeTestCase: XCTestCase {
    var dir: URL!

    /// The default suite's needles (probes/niah/default.json) with `--no-progress`, for grids.
    static let suite = [
        "--probes", RetrievalCLITests.root.appendingPathComponent("probes/niah/default.json").path, "--no-progress"
    ]

    override func setUpWithError() throws {
        guard FileManager.default.fileExists(atPath: InspectTests.modelURL.path) else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("CI: default model not found") }
            throw XCTSkip("default model not found at \(InspectTests.modelURL.path)")
        }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hl-shard-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Runs `headlight args` (its status is checked by the caller).
    func run(_ args: [String], env: [String: String]? = nil) throws -> HeadlightRun {
        try HeadlightProcess.run(args, environment: env)
    }

    /// Runs `headlight args` and expects exit status 0.
    func succeed(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try HeadlightProcess.run(args)
        XCTAssertEqual(r.status, 0, "\(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
    }

    /// Runs `args` whole into `name`.h5 and as `shards` shards merged into `name`-merged.h5
    /// (shards given in reverse order); checks that a merge without shard 1 is refused by name.
    /// `interrupt`: run that shard with `--stop-after 1` first and resume it. Returns both paths.
    func singleAndMerged(
        _ name: String, _ args: [String], shards n: Int = 3, interrupt: Int? = nil
    ) throws -> (single: String, merged: String) {
        let full = path("\(name).h5"), merged = path("\(name)-merged.h5")
        try succeed(args + ["-o", full])
        let shards = (0..<n).map { path("\(name)-s\($0).h5") }
        for k in 0..<n {
            let shard = args + ["--shard", "\(k)/\(n)", "-o", shards[k]]
            if k == interrupt {
                try succeed(shard + ["--stop-after", "1"])
                XCTAssertTrue(FileManager.default.fileExists(atPath: shards[k] + ".partial"), "\(name) shard \(k)")
                XCTAssertFalse(FileManager.default.fileExists(atPath: shards[k]), "\(name) shard \(k)")
            }
            try succeed(shard)
        }
        try succeed(["merge"] + shards.reversed() + ["-o", merged])
        let missing = try run(["merge", shards[0]] + shards.dropFirst(2) + ["-o", path("x.h5")])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("missing shard(s) 1 of \(n)"), missing.stderr)
        return (full, merged)
    }

    /// Root attributes that legitimately differ between a single run and a merge.
    static let volatileRoot: Set = [
        "created", "finished", "command_line", "sweep_seconds", "merged", "merged_shard_files",
        "merged_shard_hosts", "merged_shards", "merged_shard_count", "merged_shard_seconds"
    ]

    /// Record columns that depend on timing or on which trials ran before (prefix reuse).
    static let volatileColumns: Set = ["seconds", "prefilled_tokens"]

    /// Group attributes that depend on timing or on the worker count.
    static let volatileAttributes: Set = ["seconds", "scoring_seconds", "tokens_per_second", "workers"]

    /// Asserts that group `name` of the two files holds the same attributes (but the volatile
    /// ones) and datasets, recursively, bit for bit, and that the root attributes agree but for
    /// timing, the command line and the merge provenance (which `merged` must have).
    static func assertSameGroup(
        _ single: String, _ merged: String, _ name: String, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let a = try RunFile.open(single), b = try RunFile.open(merged)
        defer {
            try? a.close()
            try? b.close()
        }
        XCTAssertEqual(
            try a.attributes().filter { !volatileRoot.contains($0.key) },
            try b.attributes().filter { !volatileRoot.contains($0.key) && !$0.key.hasPrefix("merged_") },
            "root attributes", file: file, line: line)
        func compare(_ ga: H5Group, _ gb: H5Group) throws {
            // As text: NaN values (e.g. no wrong citations) are equal here, unlike with ==.
            func text(_ g: H5Group) throws -> [String: String] {
                try g.attributes().filter { !volatileAttributes.contains($0.key) }.mapValues { "\($0)" }
            }
            XCTAssertEqual(try text(ga), try text(gb), "\(ga.name) attributes", file: file, line: line)
            XCTAssertEqual(try ga.children().sorted(), try gb.children().sorted(), ga.name, file: file, line: line)
            for c in try ga.children() where !volatileColumns.contains(c) {
                if try ga.kind(of: c) == .group {
                    try compare(try ga.group(c), try gb.group(c))
                    continue
                }
                let x = try ga.dataset(c), y = try gb.dataset(c)
                let label = "\(ga.name)/\(c)"
                XCTAssertEqual(try x.shape, try y.shape, label, file: file, line: line)
                XCTAssertEqual(try x.attributes(), try y.attributes(), label, file: file, line: line)
                if try x.shape.contains(0) { continue }
                switch x.elementType {
                case .string:
                    XCTAssertEqual(try x.readStrings(), try y.readStrings(), label, file: file, line: line)
                case .float64:
                    XCTAssertEqual(
                        try x.read(Double.self).map(\.bitPattern), try y.read(Double.self).map(\.bitPattern), label,
                        file: file, line: line)
                case .float32:
                    XCTAssertEqual(
                        try x.read(Float.self).map(\.bitPattern), try y.read(Float.self).map(\.bitPattern), label,
                        file: file, line: line)
                case .int8: XCTAssertEqual(try x.read(Int8.self), try y.read(Int8.self), label, file: file, line: line)
                default: XCTAssertEqual(try x.read(Int64.self), try y.read(Int64.self), label, file: file, line: line)
                }
            }
        }
        try compare(try a.group(name), try b.group(name))
    }

    /// Runs `headlight args --mpi -o output` as 2 MPI ranks on this machine (rank 0 merges)
    /// and asserts it exits 0. Skips with a printed reason if `mpirun` is missing.
    func mpirun(_ args: [String], output: String, file: StaticString = #filePath, line: UInt = #line) throws {
        guard let mpirun = Self.which("mpirun") else {
            print("\(Self.self): mpirun not found (apt-get install openmpi-bin): MPI recipe not tested")
            throw XCTSkip("mpirun not found (apt-get install openmpi-bin)")
        }
        let bin = try XCTUnwrap(InspectTests.binary).path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun)
        p.arguments = ["--allow-run-as-root", "--oversubscribe", "-n", "2", bin] + args + ["--mpi", "-o", output]
        p.environment = ProcessInfo.processInfo.environment.merging([
            "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"
        ]) { $1 }
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "mpirun -n 2 \(args.joined(separator: " "))", file: file, line: line)
    }

    static func which(_ name: String) -> String? {
        for d in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(d)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }
}
