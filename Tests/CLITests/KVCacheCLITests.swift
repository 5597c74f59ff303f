import Foundation
import XCTest

/// `--kv f32|f16` and `HEADLIGHT_KV` as a subprocess on the default model: the choice is
/// recorded in the run file (`kv_cache`) and in `bench`'s JSON; bad values are clear errors.
/// Skipped without the binary, the default model or h5dump.
final class KVCacheCLITests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        guard FileManager.default.fileExists(atPath: InspectTests.modelURL.path) else {
            throw XCTSkip("default model not found at \(InspectTests.modelURL.path) (run scripts/fetch-model.sh)")
        }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("headlight-kv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    func trace(_ extra: [String], env: [String: String]? = nil) throws -> (HeadlightRun, String) {
        let out = dir.appendingPathComponent("run-\(UUID().uuidString).h5").path
        let r = try HeadlightProcess.run(
            ["trace", "--prompt", "The capital of France is", "--hooks", "v,logits", "--layers", "0", "-o", out]
                + extra, environment: env)
        return (r, out)
    }

    func kvAttribute(_ path: String) throws -> String {
        guard let h5dump = TraceTests.tool("h5dump") else { throw XCTSkip("h5dump not installed (hdf5-tools)") }
        let (st, out) = try TraceTests.run(h5dump, ["-a", "/kv_cache", path])
        XCTAssertEqual(st, 0, out)
        return out
    }

    func testChoiceIsRecordedInTheRunFile() throws {
        let (r32, out32) = try trace([])
        XCTAssertEqual(r32.status, 0, r32.stderr)
        XCTAssertTrue(try kvAttribute(out32).contains("\"f32\""))
        let (r16, out16) = try trace(["--kv", "f16"])
        XCTAssertEqual(r16.status, 0, r16.stderr)
        XCTAssertTrue(try kvAttribute(out16).contains("\"f16\""))
        let (re, oute) = try trace([], env: ["HEADLIGHT_KV": "f16"])
        XCTAssertEqual(re.status, 0, re.stderr)
        XCTAssertTrue(try kvAttribute(oute).contains("\"f16\""))
        // --kv wins over the environment.
        let (rb, outb) = try trace(["--kv", "f32"], env: ["HEADLIGHT_KV": "f16"])
        XCTAssertEqual(rb.status, 0, rb.stderr)
        XCTAssertTrue(try kvAttribute(outb).contains("\"f32\""))
    }

    func testBadValuesAreClearErrors() throws {
        let (r, out) = try trace(["--kv", "f64"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--kv") && r.stderr.contains("f16"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        let (re, oute) = try trace([], env: ["HEADLIGHT_KV": "half"])
        XCTAssertNotEqual(re.status, 0)
        XCTAssertTrue(re.stderr.contains("HEADLIGHT_KV") && re.stderr.contains("\"half\""), re.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: oute))
    }

    func testBenchReportsTheStorage() throws {
        let r = try HeadlightProcess.run(["bench", "--prefill", "16", "--threads", "1", "--kv", "f16"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        XCTAssertEqual(json["kv_cache"] as? String, "f16")
        // SmolLM2-135M: 30 layers x K and V x 16 positions x 192 values x 2 bytes.
        XCTAssertEqual(try XCTUnwrap(json["kv_cache_mb"] as? Double), Double(2 * 30 * 16 * 192 * 2) / 1_048_576)
    }
}
