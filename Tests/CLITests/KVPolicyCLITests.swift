import Foundation
import TraceStore
import XCTest

/// `headlight kv-policy` as a subprocess on a tiny grid of the default model: a run stopped after
/// 2 trials (hidden --stop-after) and resumed writes the same records as an uninterrupted one; the
/// uniform window keeps W + S tokens of memory per KV head; bad policies and unknown heads are
/// clear errors. Skipped without the binary or the model (failed under CI).
final class KVPolicyCLITests: XCTestCase {
    static let grid = [
        "--probes", RetrievalCLITests.smoke, "--lengths", "300", "--depths", "0,100", "--max-new-tokens", "8",
        "--ppl-tokens", "130", "--bootstrap", "100", "--no-progress"
    ]

    func headlight(_ args: [String]) throws -> HeadlightRun { try HeadlightProcess.run(args) }

    func requireModel() throws {
        guard FileManager.default.fileExists(atPath: InspectTests.modelURL.path) else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("CI: default model not found") }
            throw XCTSkip("default model not found at \(InspectTests.modelURL.path)")
        }
    }

    func records(_ path: String) throws -> [String] {
        let f = try RunFile.open(path)
        defer { try? f.close() }
        let t = try f.group("kv_policy").group("records")
        let c = try t.dataset("condition").read(Int64.self), i = try t.dataset("trial_index").read(Int64.self)
        let r = try t.dataset("response").readStrings()
        return c.indices.map { "\(c[$0])/\(i[$0])/\(r[$0])" }.sorted()
    }

    func testRunResumesAndStoresMemory() throws {
        try requireModel()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kv-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let args = ["kv-policy", "--heads", "3.1,5.2", "--window", "32", "--sinks", "2", "--controls", "0"] + Self.grid
        let full = dir.appendingPathComponent("kv.h5").path
        let a = try headlight(args + ["-o", full, "--json"])
        XCTAssertEqual(a.status, 0, a.stderr)
        let js = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(a.stdout.utf8)) as? [String: Any])
        let conds = try XCTUnwrap(js["conditions"] as? [[String: Any]])
        XCTAssertEqual(conds.map { $0["name"] as? String }, ["baseline", "uniform/window:32+2", "heads2/window:32+2"])
        let bytes = conds.map { ($0["kv_bytes"] as? [Int]) ?? [] }
        // SmolLM2: 30 layers x 3 KV heads x 2 (K, V) x 64 dims x 2 bytes per token kept
        let perToken = 30 * 3 * 2 * 64 * 2
        XCTAssertEqual(bytes[0][1], perToken * 32768)
        XCTAssertEqual(bytes[1][1], perToken * 34)
        XCTAssertEqual(bytes[2][1], perToken * 34 + 2 * 2 * 64 * 2 * (32768 - 34)) // two KV groups kept whole
        let ctx = try XCTUnwrap(js["context_tokens"] as? Int)
        XCTAssertEqual(bytes[0][0], perToken * ctx)

        let resumed = dir.appendingPathComponent("resumed.h5").path
        let b = try headlight(args + ["-o", resumed, "--stop-after", "2"])
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: resumed + ".partial"))
        let c = try headlight(args + ["-o", resumed])
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertTrue(c.stdout.contains("uniform/window:32+2"), c.stdout)
        XCTAssertEqual(try records(full), try records(resumed))
    }

    func testBadPoliciesAreClearErrors() throws {
        for (extra, fragment) in [
            (["--window", "0"], "W must be >= 1"), (["--sinks", "-1"], "--sinks must be >= 0"),
            (["--rest", "topk", "--topk", "0"], "K must be >= 1"), (["--rest", "sliding"], "--rest must be"),
            (["--rest", "topk"], "needs --topk")
        ] {
            let r = try headlight(["kv-policy", "--heads", "3.1"] + extra)
            XCTAssertEqual(r.status, 2, "\(extra): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(fragment), "\(extra): \(r.stderr)")
        }
        let t = try headlight(["kv-policy", "--top", "5"])
        XCTAssertEqual(t.status, 2, t.stderr)
        XCTAssertTrue(t.stderr.contains("--full-heads-from"), t.stderr)
        try requireModel()
        let k = try headlight(["kv-policy", "--heads", "3.1", "--rest", "topk", "--topk", "5000"] + Self.grid)
        XCTAssertEqual(k.status, 1, k.stderr)
        XCTAssertTrue(k.stderr.contains("more keys than the context holds"), k.stderr)
        let h = try headlight(["kv-policy", "--heads", "99.0"] + Self.grid)
        XCTAssertEqual(h.status, 1, h.stderr)
        XCTAssertTrue(h.stderr.contains("unknown head 99.0"), h.stderr)
    }
}
