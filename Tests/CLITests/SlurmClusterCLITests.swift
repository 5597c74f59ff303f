import Foundation
import XCTest

/// The Slurm recipe of docs/scale-out.md on a one-node cluster the test starts itself
/// (`scripts/slurm/local-cluster.sh`: munged, slurmctld and slurmd on localhost with a generated
/// slurm.conf in a temporary directory): `scripts/slurm/detect.sbatch` as an array of 2 and
/// `merge.sbatch` with `--dependency=afterok` give the run file a single run writes. Skipped,
/// with the reason printed, where slurm-wlm and munge are not installed (`make test-slurm`
/// installs them).
final class SlurmClusterCLITests: ShardMergeTestCase {
    func testArrayOfTwoAndMergeReproduceTheSingleRun() throws {
        let script = RetrievalCLITests.root.appendingPathComponent("scripts/slurm/local-cluster.sh").path
        let cluster = dir.appendingPathComponent("cluster")
        try FileManager.default.createDirectory(at: cluster, withIntermediateDirectories: true)
        let start = try shell(["bash", script, "start", cluster.path])
        if start.status == 77 {
            print("SlurmClusterCLITests skipped: \(start.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            throw XCTSkip("slurm-wlm/munge not installed (make test-slurm installs them)")
        }
        defer { _ = try? shell(["bash", script, "stop", cluster.path]) }
        XCTAssertEqual(start.status, 0, start.stderr + logs(cluster))
        guard start.status == 0 else { return }
        let bin = try XCTUnwrap(InspectTests.binary).path
        let env = [
            "SLURM_CONF": cluster.appendingPathComponent("slurm.conf").path, "HEADLIGHT": bin,
            "PATH": (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin") + ":/usr/sbin"
        ]
        let slurm = RetrievalCLITests.root.appendingPathComponent("scripts/slurm")
        let runDir = path("run")
        let grid = ShardMergeSweepsCLITests.grid + ["--threads", "1"]
        let array = try shell(
            [
                "sbatch", "--parsable", "--array=0-1", "--cpus-per-task=1",
                slurm.appendingPathComponent("detect.sbatch").path, runDir
            ] + grid, env: env)
        XCTAssertEqual(array.status, 0, array.stderr)
        let arrayID = array.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let merge = try shell(
            [
                "sbatch", "--parsable", "--dependency=afterok:\(arrayID)",
                slurm.appendingPathComponent("merge.sbatch").path, runDir, "2"
            ], env: env)
        XCTAssertEqual(merge.status, 0, merge.stderr)
        let mergeID = merge.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        // Wait for both jobs to leave the queue (at most 5 minutes).
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline {
            let q = try shell(["squeue", "-h", "-j", "\(arrayID),\(mergeID)"], env: env)
            if q.status == 0 && q.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        let merged = runDir + "/retrieval_heads.h5"
        XCTAssertTrue(FileManager.default.fileExists(atPath: merged), "no merged file; " + logs(cluster))
        guard FileManager.default.fileExists(atPath: merged) else { return }
        let single = path("single.h5")
        try succeed(["retrieval-heads"] + grid + ["-o", single])
        try ShardMergeCLITests.assertSameRun(single, merged)
    }

    /// Runs a command (found on PATH) in the test's directory, with `env` added.
    func shell(_ argv: [String], env: [String: String] = [:]) throws -> HeadlightRun {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = argv
        p.currentDirectoryURL = dir
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        let out = dir.appendingPathComponent("shell.out"), err = dir.appendingPathComponent("shell.err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return HeadlightRun(
            status: p.terminationStatus, stdout: try String(contentsOf: out, encoding: .utf8),
            stderr: try String(contentsOf: err, encoding: .utf8))
    }

    /// The daemons' and jobs' logs, for a failure message.
    func logs(_ cluster: URL) -> String {
        var s = ""
        for d in [cluster, dir!] {
            for f in (try? FileManager.default.contentsOfDirectory(atPath: d.path)) ?? [] where f.hasSuffix(".log") {
                let text = (try? String(contentsOfFile: d.appendingPathComponent(f).path, encoding: .utf8)) ?? ""
                s += "\n--- \(f)\n" + text.split(separator: "\n").suffix(15).joined(separator: "\n")
            }
        }
        return s
    }
}
