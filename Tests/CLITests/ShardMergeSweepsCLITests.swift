import Foundation
import TraceStore
import XCTest

/// Sharded `ablate` (random-head controls and `--causal`) and `cite` (issue 14): the default
/// suite on a small grid run as one process, as 3 shards merged and as 2 MPI ranks gives the
/// same run file — every dataset and attribute of the analysis group bit for bit, including the
/// bootstrap CIs, cell means, paired differences, causal graph and citation readouts that merge
/// recomputes — except timing and prefix-reuse counts. A missing shard is refused by name; an
/// interrupted `cite` (a shard or a whole run) resumes from its `.partial` into the same file.
final class ShardMergeSweepsCLITests: ShardMergeTestCase {
    /// The default suite's three needles at one length and one depth (3 trials).
    static let grid = suite + ["--lengths", "300", "--depths", "50", "--max-new-tokens", "12"]

    /// A retrieval-heads run on `grid`, made once for every test of the class (the head ranking
    /// the ablations and `cite --retrieval-heads` read).
    private static var sharedScores: String?
    private static let sharedDirectory = FileManager.default.temporaryDirectory.appendingPathComponent(
        "hl-shard-sweeps-\(UUID().uuidString)")

    override class func tearDown() {
        try? FileManager.default.removeItem(at: sharedDirectory)
        super.tearDown()
    }

    func scores() throws -> String {
        if let s = Self.sharedScores { return s }
        try FileManager.default.createDirectory(at: Self.sharedDirectory, withIntermediateDirectories: true)
        let s = Self.sharedDirectory.appendingPathComponent("rh.h5").path
        try succeed(["retrieval-heads"] + Self.grid + ["-o", s])
        Self.sharedScores = s
        return s
    }

    func ablate() throws -> [String] {
        ["ablate"] + Self.grid + ["--scores", try scores(), "--ppl-tokens", "64", "--bootstrap", "200"]
    }

    func testAblateWithControlsMergesAndRunsUnderMPI() throws {
        let args = try ablate() + ["--top", "2", "--controls", "2"]
        let (full, merged) = try singleAndMerged("controls", args)
        try Self.assertSameGroup(full, merged, "ablation")
        let f = try RunFile.open(merged)
        XCTAssertEqual(try f.group("ablation").dataset("difference_target_vs_controls").shape, [3, 4])
        XCTAssertEqual(try f.stringsAttribute("merged_shards"), ["0/3", "1/3", "2/3"])
        try f.close()
        let mpi = path("controls-mpi.h5")
        try mpirun(args, output: mpi)
        try Self.assertSameGroup(full, mpi, "ablation")
    }

    func testCausalAblationMerges() throws {
        let (full, merged) = try singleAndMerged("causal", try ablate() + ["--causal", "2", "--ablate-phase", "both"])
        try Self.assertSameGroup(full, merged, "ablation")
    }

    func testCiteResumesMergesAndRunsUnderMPI() throws {
        let cite = [
            "cite", "--probes", RetrievalCLITests.root.appendingPathComponent("probes/citation/default.jsonl").path,
            "--limit", "6", "--resamples", "200", "--max-new-tokens", "16", "--no-progress", "--retrieval-heads",
            try scores(), "--top", "4"
        ]
        // Shard 2 is stopped after one item (as if killed), then resumed.
        let (full, merged) = try singleAndMerged("cite", cite, interrupt: 2)
        try Self.assertSameGroup(full, merged, "citation")

        // A whole run stopped after 2 items resumes into the file an uninterrupted run writes.
        let resumed = path("cite-resumed.h5")
        try succeed(cite + ["-o", resumed, "--stop-after", "2"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: resumed + ".partial"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: resumed))
        try succeed(cite + ["-o", resumed])
        XCTAssertFalse(FileManager.default.fileExists(atPath: resumed + ".partial"))
        try Self.assertSameGroup(full, resumed, "citation")
        // Another plan's partial is refused, not mixed in.
        try succeed(cite + ["-o", resumed, "--stop-after", "1"])
        let other = try run(cite.map { $0 == "6" ? "5" : $0 } + ["-o", resumed])
        XCTAssertEqual(other.status, 1, other.stderr)
        XCTAssertTrue(other.stderr.contains("plan_sha256"), other.stderr)

        let mpi = path("cite-mpi.h5")
        try mpirun(cite, output: mpi)
        try Self.assertSameGroup(full, mpi, "citation")
    }
}
