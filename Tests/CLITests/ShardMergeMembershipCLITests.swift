import Foundation
import TraceStore
import XCTest

/// Sharded `membership` (issue 14): a tiny labeled set (`MembershipCommandTests`' texts) scored
/// as one process, as 3 shards merged and as 2 MPI ranks gives the same `/membership` group —
/// per-document scores, surface features, folds, every method's AUC, CI and ROC curve bit for
/// bit — with the general-probability reference (whose softmax sums the shards carry) and the
/// token-frequency one. A missing shard is refused by name.
final class ShardMergeMembershipCLITests: ShardMergeTestCase {
    func membership() throws -> [String] {
        func jsonl(_ name: String, _ texts: [String]) throws -> String {
            let p = path(name)
            let lines = try texts.enumerated().map { i, t in
                String(
                    decoding: try JSONSerialization.data(withJSONObject: ["name": "\(name)\(i)", "text": t]),
                    as: UTF8.self)
            }
            try (lines.joined(separator: "\n") + "\n").write(toFile: p, atomically: true, encoding: .utf8)
            return p
        }
        return [
            "membership", "--members", try jsonl("m", MembershipCommandTests.memberTexts), "--nonmembers",
            try jsonl("n", MembershipCommandTests.nonmemberTexts), "--score",
            try jsonl("u", [MembershipCommandTests.memberTexts[0], "x"]), "--window", "32", "--stride", "31",
            "--folds", "2", "--bootstrap", "100", "--workers", "1", "--threads", "1", "--no-progress"
        ]
    }

    func testShardsMergeIntoTheSingleRun() throws {
        let gp = try membership() + ["--reference", "gp"]
        let (full, merged) = try singleAndMerged("gp", gp)
        try Self.assertSameGroup(full, merged, "membership")
        let f = try RunFile.open(merged)
        let g = try f.group("membership")
        XCTAssertEqual(try g.intAttribute("members"), 4)
        XCTAssertEqual(try g.intAttribute("unlabeled"), 1)
        // "x" is one token: skipped in every shard, listed once in the merged file.
        XCTAssertEqual(try g.stringsAttribute("skipped").count, 1)
        XCTAssertEqual(try f.stringsAttribute("merged_shards"), ["0/3", "1/3", "2/3"])
        try f.close()

        let tf = try membership() + ["--normalization", "ratio"]
        let (full2, merged2) = try singleAndMerged("tf", tf, shards: 2)
        try Self.assertSameGroup(full2, merged2, "membership")
        let mpi = path("tf-mpi.h5")
        try mpirun(tf, output: mpi)
        try Self.assertSameGroup(full2, mpi, "membership")
    }
}
