import Analysis
import Foundation
import TraceStore
import XCTest

/// Sharded sweeps (issue 14): a NIAH grid run as one process and as 3 shards merged gives the
/// same run file (all datasets and attributes but timing, prefix-reuse counts and the command
/// line), a merge with a missing, duplicated, foreign or unfinished shard fails clearly, an
/// interrupted shard resumes, and `mpirun -n 2 ... --mpi` reproduces the single run.
final class ShardMergeCLITests: ShardMergeTestCase {
    /// The default suite's three needles on a small grid (18 trials), with a decoding budget that
    /// lets some trials count.
    static let grid = suite + ["--lengths", "300,420", "--depths", "0,50,100", "--max-new-tokens", "24"]

    /// Asserts that `merged` holds what the single run `single` holds: root and /retrieval_heads
    /// attributes, scores and threshold heads bit for bit, every trial column in the same record
    /// order (except `seconds` and `prefilled_tokens`, which depend on timing and prefix reuse),
    /// and the merge provenance.
    static func assertSameRun(
        _ single: String, _ merged: String, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        try assertSameGroup(single, merged, "retrieval_heads", file: file, line: line)
        let b = try RunFile.open(merged)
        defer { try? b.close() }
        XCTAssertNotNil(try b.attributeIfPresent("merged_shard_hosts"), file: file, line: line)
    }

    func testShardsMergeIntoTheSingleRunAndBadSetsFail() throws {
        let full = path("full.h5")
        let a = try run(["retrieval-heads"] + Self.grid + ["-o", full])
        XCTAssertEqual(a.status, 0, a.stderr)
        let counted = try RunFile.open(full)
        XCTAssertGreaterThan(try counted.group("retrieval_heads").intAttribute("counted_trials"), 0)
        try counted.close()

        // Shard 2 is stopped after one trial (as if killed), then resumed from its .partial.
        let s = (0..<3).map { path("s\($0).h5") }
        for k in 0..<2 {
            let r = try run(["retrieval-heads"] + Self.grid + ["--shard", "\(k)/3", "-o", s[k]])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let stopped = try run(["retrieval-heads"] + Self.grid + ["--shard", "2/3", "-o", s[2], "--stop-after", "1"])
        XCTAssertEqual(stopped.status, 0, stopped.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: s[2] + ".partial"))

        // Unfinished shard: refused, or merged with the missing trials listed.
        let inc = try run(["merge", s[0], s[1], s[2], "-o", path("inc.h5")])
        XCTAssertEqual(inc.status, 1, inc.stderr)
        XCTAssertTrue(inc.stderr.contains("incomplete shard") && inc.stderr.contains("--allow-incomplete"), inc.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("inc.h5")))
        let inc2 = try run(["merge", s[0], s[1], s[2], "-o", path("inc.h5"), "--allow-incomplete"])
        XCTAssertEqual(inc2.status, 0, inc2.stderr)
        XCTAssertTrue(inc2.stderr.contains("trial(s) missing"), inc2.stderr)
        let incFile = try RunFile.open(path("inc.h5"))
        XCTAssertFalse(try incFile.intsAttribute("merged_missing_trials").isEmpty)
        try incFile.close()

        // A whole run refuses a shard's partial; the shard itself resumes it.
        let wrong = try run(["retrieval-heads"] + Self.grid + ["-o", s[2]])
        XCTAssertEqual(wrong.status, 1, wrong.stderr)
        XCTAssertTrue(wrong.stderr.contains("shard 2/3"), wrong.stderr)
        let resumed = try run(["retrieval-heads"] + Self.grid + ["--shard", "2/3", "-o", s[2], "--json"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("\"resumed_trials\":1"), resumed.stdout)

        // Shards cover the plan exactly once, balanced by tokens.
        var covered: [Int] = []
        for p in s {
            let f = try RunFile.open(p)
            covered += try f.intsAttribute("shard_trials")
            try f.close()
        }
        XCTAssertEqual(covered.sorted(), Array(0..<18))

        let merged = path("merged.h5")
        let m = try run(["merge", s[2], s[0], s[1], "-o", merged])
        XCTAssertEqual(m.status, 0, m.stderr)
        try Self.assertSameRun(full, merged)

        // Missing, duplicated and foreign shards.
        let missing = try run(["merge", s[0], s[2], "-o", path("x.h5")])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("missing shard(s) 1 of 3"), missing.stderr)
        try FileManager.default.copyItem(atPath: s[0], toPath: path("s0-copy.h5"))
        let dup = try run(["merge", s[0], s[1], s[2], path("s0-copy.h5"), "-o", path("x.h5")])
        XCTAssertEqual(dup.status, 1)
        XCTAssertTrue(dup.stderr.contains("shard 0/3 given more than once"), dup.stderr)
        let other = path("other.h5")
        let o = try run(
            ["retrieval-heads"] + Self.grid + ["--depths", "0,100", "--shard", "1/3", "-o", other])
        XCTAssertEqual(o.status, 0, o.stderr)
        let foreign = try run(["merge", s[0], other, s[2], "-o", path("x.h5")])
        XCTAssertEqual(foreign.status, 1)
        XCTAssertTrue(foreign.stderr.contains("\(other): foreign shard: its plan_sha256"), foreign.stderr)
        let notShard = try run(["merge", full, "-o", path("x.h5")])
        XCTAssertEqual(notShard.status, 1)
        XCTAssertTrue(notShard.stderr.contains("not a shard run file"), notShard.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("x.h5")))

        // Bad K/N: a usage error.
        for bad in ["3/3", "-1/3", "1/0", "1", "a/b"] {
            let r = try run(["retrieval-heads"] + Self.grid + ["--shard", bad, "-o", path("x.h5")])
            XCTAssertEqual(r.status, 2, "--shard \(bad): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("--shard"), r.stderr)
        }

        // MPI: two ranks on this machine, rank 0 merges.
        let mpiOut = path("mpi.h5")
        try mpirun(["retrieval-heads"] + Self.grid, output: mpiOut)
        try Self.assertSameRun(full, mpiOut)
    }
}
