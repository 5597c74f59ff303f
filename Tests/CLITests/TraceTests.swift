import Foundation
import XCTest
#if canImport(Glibc)
    import Glibc
#endif

/// `headlight trace` as a subprocess on the default model: the run file read back with `h5dump`
/// (structure, types, shapes, attributes, values) and, when available, h5py; selection errors;
/// and kill safety (SIGKILL mid-run leaves no file at the output path, only a temporary file with
/// `complete = 0`). Skipped without the binary, the default model or h5dump.
final class TraceTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        guard FileManager.default.fileExists(atPath: InspectTests.modelURL.path) else {
            throw XCTSkip("default model not found at \(InspectTests.modelURL.path) (run scripts/fetch-model.sh)")
        }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("headlight-trace-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    func headlight(_ args: [String]) throws -> HeadlightRun { try HeadlightProcess.run(args) }

    static func tool(_ name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for d in path + ["/usr/bin", "/usr/local/bin", "/bin"]
        where FileManager.default.isExecutableFile(atPath: "\(d)/\(name)") {
            return "\(d)/\(name)"
        }
        return nil
    }

    /// Runs a tool, returning (status, stdout + stderr).
    static func run(_ exe: String, _ args: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testRunFileStructureWithH5Dump() throws {
        guard let h5dump = Self.tool("h5dump") else { throw XCTSkip("h5dump not installed (Debian: hdf5-tools)") }
        let out = dir.appendingPathComponent("run.h5").path
        let prompt = "The capital of France is Paris. The capital of Italy is"
        let r = try headlight([
            "trace", "--prompt", prompt, "--hooks", "pattern,blocks.-1.hook_resid_post,logits",
            "--layers", "0,5,-1", "--heads", "0:3", "--queries", "last:4", "--float16", "--gzip", "4",
            "--generate", "2", "-o", out
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out))
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: dir.path), ["run.h5"], "no temporary file left")

        let (st, header) = try Self.run(h5dump, ["-H", out])
        XCTAssertEqual(st, 0, header)
        for needle in [
            "GROUP \"/\"", "ATTRIBUTE \"complete\"", "ATTRIBUTE \"format\"", "ATTRIBUTE \"model_sha256\"",
            "ATTRIBUTE \"command_line\"", "ATTRIBUTE \"n_layers\"", "GROUP \"captures\"",
            "DATASET \"blocks.0.attn.hook_pattern\"", "DATASET \"blocks.5.attn.hook_pattern\"",
            "DATASET \"blocks.29.attn.hook_pattern\"", "DATASET \"blocks.29.hook_resid_post\"", "DATASET \"logits\"",
            "DATASET \"tokens\"", "DATASET \"token_strings\"", "ATTRIBUTE \"axes\"", "ATTRIBUTE \"heads\"",
            "ATTRIBUTE \"queries\"", "ATTRIBUTE \"form\"", "16-bit little-endian floating-point",
            "H5T_STD_I32LE", "ATTRIBUTE \"prompt\""
        ] {
            XCTAssertTrue(header.contains(needle), "h5dump -H lacks \(needle)")
        }
        // 12 prompt tokens + 2 generated; last:4 = the last 4 prompt positions; 3 heads; keys over all 14 positions.
        XCTAssertTrue(header.contains("DATASPACE  SIMPLE { ( 3, 4, 14 ) / ( 3, 4, 14 ) }"), header)
        XCTAssertTrue(header.contains("DATASPACE  SIMPLE { ( 4, 49152 ) / ( 4, 49152 ) }"), header)
        XCTAssertTrue(header.contains("DATASPACE  SIMPLE { ( 14 ) / ( 14 ) }"), header)

        let (_, complete) = try Self.run(h5dump, ["-a", "/complete", out])
        XCTAssertTrue(complete.contains("(0): 1"), complete)
        let (_, queries) = try Self.run(h5dump, ["-a", "/captures/blocks.0.attn.hook_pattern/queries", out])
        XCTAssertTrue(queries.contains("(0): 8, 9, 10, 11"), queries)
        let (_, axes) = try Self.run(h5dump, ["-a", "/captures/blocks.0.attn.hook_pattern/axes", out])
        XCTAssertTrue(axes.contains("\"head\", \"query\", \"key\""), axes)
        // One attention row: keys 0...11 sum to 1 (float16), keys 12, 13 are causal zeros.
        let (_, row) = try Self.run(
            h5dump, ["-d", "/captures/blocks.5.attn.hook_pattern", "-s", "1,3,0", "-c", "1,1,14", "-y", "-w", "0", out])
        let values = row.components(separatedBy: "DATA {")[1].components(separatedBy: "}").first!
            .split(whereSeparator: { ", \n".contains($0) }).compactMap { Double($0) }
        XCTAssertEqual(values.count, 14, row)
        XCTAssertEqual(values.prefix(12).reduce(0, +), 1, accuracy: 5e-3)
        XCTAssertEqual(Array(values.suffix(2)), [0, 0])

        // h5py, as in the README, when Python has it.
        if let python = Self.tool("python3") {
            let script = """
                import h5py, numpy as np
                with h5py.File("\(out)", "r") as f:
                    assert f.attrs["format"] == "headlight-run" and f.attrs["complete"] == 1
                    pat = f["captures/blocks.5.attn.hook_pattern"]
                    assert list(pat.attrs["axes"]) == ["head", "query", "key"], pat.attrs["axes"]
                    assert pat.dtype == np.float16 and pat.shape == (3, 4, 14)
                    rows = pat[()].astype(np.float32)
                    assert np.allclose(rows.sum(-1), 1, atol=5e-3)
                    assert f["tokens"].attrs["prompt_length"] == 12 and f["tokens"].shape == (14,)
                    print("h5py ok", len(f["token_strings"].asstr()[()]))
                """
            let (pst, pout) = try Self.run(python, ["-c", script])
            if pout.contains("No module named") {
                print("h5py not available: \(pout)")
            } else {
                XCTAssertEqual(pst, 0, pout)
                XCTAssertTrue(pout.contains("h5py ok 14"), pout)
            }
        }

        // Top-k and span forms
        let out2 = dir.appendingPathComponent("forms.h5").path
        let r2 = try headlight([
            "trace", "--prompt", prompt, "--hooks", "blocks.3.attn.hook_pattern", "--queries", "-1",
            "--top-k", "5", "-o", out2
        ])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        let (_, h2) = try Self.run(h5dump, ["-H", out2])
        XCTAssertTrue(h2.contains("DATASET \"blocks.3.attn.hook_pattern.topk_indices\""), h2)
        XCTAssertTrue(h2.contains("DATASPACE  SIMPLE { ( 9, 1, 5 ) / ( 9, 1, 5 ) }"), h2)
        let out3 = dir.appendingPathComponent("spans.h5").path
        let r3 = try headlight([
            "trace", "--prompt", prompt, "--hooks", "blocks.3.attn.hook_pattern", "--queries", "last:2",
            "--spans", "france= France,paris=5:6", "-o", out3
        ])
        XCTAssertEqual(r3.status, 0, r3.stderr)
        let (_, labels) = try Self.run(h5dump, ["-a", "/captures/blocks.3.attn.hook_pattern/span_starts", out3])
        XCTAssertTrue(labels.contains("(0): 3, 5"), labels)
    }

    func testSelectionErrorsNameTheValidRange() throws {
        let out = dir.appendingPathComponent("bad.h5").path
        let cases: [([String], [String])] = [
            (["--hooks", "pattern", "--layers", "99"], ["layer 99", "0...29"]),
            (["--hooks", "pattern", "--heads", "-12"], ["head -12", "0...8"]),
            (["--hooks", "attn.hook_nope"], ["unknown hook 'attn.hook_nope'", "blocks.{L}.attn.hook_pattern"]),
            (["--hooks", "pattern", "--spans", "needle=4:4"], ["span 'needle'", "empty"]),
            (["--hooks", "pattern", "--queries", "500"], ["position 500", "0...4"]),
            (["--hooks", "pattern", "--ablate", "3.9"], ["head 9", "0...8"])
        ]
        for (args, needles) in cases {
            let r = try headlight(["trace", "--prompt", "one two three four five"] + args + ["-o", out])
            XCTAssertEqual(r.status, 1, "\(args): \(r.stderr)")
            for n in needles { XCTAssertTrue(r.stderr.contains(n), "\(args): stderr lacks '\(n)': \(r.stderr)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: dir.path), [], "failed runs leave nothing behind")
    }

    /// SIGKILL in the middle of a run: nothing at the output path; the temporary file, if readable,
    /// says complete = 0.
    func testKilledRunLeavesNoCompleteFile() throws {
        guard let binary = InspectTests.binary else { throw XCTSkip("headlight binary not found") }
        let out = dir.appendingPathComponent("killed.h5").path
        let promptFile = dir.appendingPathComponent("prompt.txt")
        try String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 300).write(
            to: promptFile, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = binary
        p.arguments = [
            "trace", "--prompt-file", promptFile.path, "--hooks", "pattern", "--float16", "--quiet", "-o", out
        ]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Wait until the run is under way: the temporary file exists and has grown past the header.
        let deadline = Date().addingTimeInterval(120)
        var temp: String?
        while Date() < deadline && p.isRunning {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            if let t = entries.first(where: { $0.hasPrefix("killed.h5.tmp-") }) {
                let path = dir.appendingPathComponent(t).path
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
                if size > 4 << 20 {
                    temp = path
                    break
                }
            }
            usleep(50_000)
        }
        XCTAssertTrue(p.isRunning, "the run finished before it could be killed")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .uncaughtSignal)
        let tempPath = try XCTUnwrap(temp, "no temporary file appeared")
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: out), "a killed run must not leave a file at the output path")
        XCTAssertTrue(FileManager.default.fileExists(atPath: tempPath))
        if let h5dump = Self.tool("h5dump") {
            let (st, text) = try Self.run(h5dump, ["-a", "/complete", tempPath])
            // Either unreadable (killed between flushes) or readable with complete = 0.
            if st == 0 { XCTAssertTrue(text.contains("(0): 0"), text) }
            print("killed run: temporary file \(st == 0 ? "readable, complete = 0" : "not a readable HDF5 file")")
        }
    }
}
