import Foundation
import TraceStore
import XCTest

/// Run files under a full disk, a kill at any moment, a planted link and a mixed-up resume, as a
/// user meets them (issue 17 items 1-4): never a signal, always a clear error, and a `.partial`
/// that resumes to the same results. The full disk is simulated with a file-size limit
/// (`ulimit -f`, SIGXFSZ ignored: writes past it fail with EFBIG like ENOSPC), which works
/// without mounting anything; `RunFileSafetyTests` covers the writer in-process.
final class RunFileSafetyCLITests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        guard FileManager.default.fileExists(atPath: InspectTests.modelURL.path) else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("CI: default model not found") }
            throw XCTSkip("default model not found at \(InspectTests.modelURL.path)")
        }
        guard InspectTests.binary != nil else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("CI: headlight binary not found") }
            throw XCTSkip("headlight binary not found")
        }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hl-safety-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    private var grid: [String] { RetrievalCLITests.grid + ["--no-progress"] }

    private func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    private func scores(_ file: String) throws -> [Double] {
        try RunFileTestSupport.doubles(file, "retrieval_heads/scores")
    }

    /// `bash -c` with SIGXFSZ ignored and a file-size limit of `kib` KiB, then exec headlight.
    private func runLimited(kib: Int, _ args: [String]) throws -> HeadlightRun {
        let bin = try XCTUnwrap(InspectTests.binary).path
        let quoted = ([bin] + args).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let script = "trap '' XFSZ; ulimit -f \(kib); exec " + quoted.joined(separator: " ")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", script]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(
            p.terminationReason, .exit, "headlight died of a signal: \(String(decoding: data, as: UTF8.self))")
        return HeadlightRun(status: p.terminationStatus, stdout: "", stderr: String(decoding: data, as: UTF8.self))
    }

    /// Disk full during a sweep: exit 1 with a message that says so (no SIGSEGV at exit), the
    /// `.partial` stays readable, and once space is back the same command resumes and gives the
    /// uninterrupted run's scores.
    func testDiskFullDuringSweepKeepsAResumablePartial() throws {
        let full = path("full.h5")
        let a = try HeadlightProcess.run(["retrieval-heads"] + grid + ["-o", full])
        XCTAssertEqual(a.status, 0, a.stderr)

        let out = path("x.h5")
        let b = try runLimited(kib: 64, ["retrieval-heads"] + grid + ["-o", out])
        XCTAssertEqual(b.status, 1, b.stderr)
        XCTAssertTrue(b.stderr.contains("disk full") || b.stderr.contains("File too large"), b.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + ".partial"))

        let c = try HeadlightProcess.run(["retrieval-heads"] + grid + ["-o", out])
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertEqual(try scores(out), try scores(full))
    }

    /// Disk full during a plain trace: exit 1, no signal, no temporary file left behind.
    func testDiskFullDuringTraceExitsCleanly() throws {
        let out = path("trace.h5")
        let r = try runLimited(
            kib: 32,
            [
                "trace", "--prompt", String(repeating: "word ", count: 150), "--hooks", "blocks.*.attn.hook_pattern",
                "--queries", "all", "-o", out
            ])
        XCTAssertEqual(r.status, 1, r.stderr)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        XCTAssertEqual(left, [], "left behind: \(left)")
    }

    /// A kill -9 at any moment leaves no `.partial` or one that resumes: 0.5 s after start the
    /// model is still being hashed; rerunning finishes with the uninterrupted run's scores.
    func testKillAtHalfASecondThenResume() throws {
        let full = path("full.h5")
        XCTAssertEqual(try HeadlightProcess.run(["retrieval-heads"] + grid + ["-o", full]).status, 0)
        let out = path("k.h5")
        for delay in [0.5, 3.0] {
            let p = Process()
            p.executableURL = try XCTUnwrap(InspectTests.binary)
            p.arguments = ["retrieval-heads"] + grid + ["-o", out]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            Thread.sleep(forTimeInterval: delay)
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        let r = try HeadlightProcess.run(["retrieval-heads"] + grid + ["-o", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try scores(out), try scores(full))
    }

    /// A `.partial` of `retrieval-heads` is not resumed by `ablate` (or by a sweep with another
    /// grid): exit 1 naming the key, and the partial file is left as it was.
    func testResumeRefusesAnotherCommandOrPlan() throws {
        let detect = path("detect.h5")
        XCTAssertEqual(try HeadlightProcess.run(["retrieval-heads"] + grid + ["-o", detect]).status, 0)
        let out = path("x.h5")
        let a = try HeadlightProcess.run(["retrieval-heads"] + grid + ["-o", out, "--stop-after", "1"])
        XCTAssertEqual(a.status, 0, a.stderr)
        let before = try Data(contentsOf: URL(fileURLWithPath: out + ".partial"))

        let b = try HeadlightProcess.run(
            ["ablate", "--scores", detect, "--top", "2", "--controls", "1"] + grid
                + ["-o", out])
        XCTAssertEqual(b.status, 1, b.stderr)
        XCTAssertTrue(b.stderr.contains("command") && b.stderr.contains("retrieval-heads"), b.stderr)
        XCTAssertTrue(b.stderr.contains("--restart"), b.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))

        var other = grid
        let i = try XCTUnwrap(other.firstIndex(of: "--depths"))
        other[i + 1] = "0,50"
        let c = try HeadlightProcess.run(["retrieval-heads"] + other + ["-o", out])
        XCTAssertEqual(c.status, 1, c.stderr)
        XCTAssertTrue(c.stderr.contains("plan_sha256"), c.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + ".partial")), before)
    }

    /// A dangling `.partial` link must not make a sweep create a file outside the output
    /// directory; output paths that cannot work are refused before the model loads.
    func testPlantedPartialLinkAndBadOutputs() throws {
        let outside = path("elsewhere.h5")
        let out = path("s.h5")
        try FileManager.default.createSymbolicLink(atPath: out + ".partial", withDestinationPath: outside)
        let r = try HeadlightProcess.run(["retrieval-heads"] + grid + ["-o", out])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("symbolic link"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: outside))

        for (o, fragment) in [(dir.path, "is a directory"), (path("missing/x.h5"), "does not exist")] {
            let t = try HeadlightProcess.run(["trace", "--prompt", "hi", "--hooks", "logits", "-o", o])
            XCTAssertNotEqual(t.status, 0, t.stderr)
            XCTAssertTrue(t.stderr.contains(fragment), t.stderr)
        }
    }
}

/// Reads a float dataset of a finished run file for the CLI tests.
enum RunFileTestSupport {
    static func doubles(_ file: String, _ dataset: String) throws -> [Double] {
        let f = try RunFile.open(file)
        defer { try? f.close() }
        return try f.dataset(dataset).read(Double.self)
    }
}
