import Foundation
import XCTest

/// `headlight cite` as a subprocess: input errors (exit 1 or 2 with a message naming the
/// culprit) and an end-to-end run on three smoke items with the real model (skipped without
/// the binary or the model, as in `InspectTests`).
final class CLICiteTests: XCTestCase {
    typealias Run = HeadlightRun

    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("headlight-cite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func headlight(_ args: [String]) throws -> Run { try HeadlightProcess.run(args, currentDirectory: Self.root) }

    func write(_ name: String, _ text: String) throws -> String {
        let u = dir.appendingPathComponent(name)
        try text.write(to: u, atomically: true, encoding: .utf8)
        return u.path
    }

    func requireModel() throws -> String {
        let m = InspectTests.modelURL
        guard FileManager.default.fileExists(atPath: m.path) else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("CI: default model missing") }
            throw XCTSkip("default model not found at \(m.path) (run scripts/fetch-model.sh)")
        }
        return m.path
    }

    func assertError(
        _ r: Run, contains text: String, status: Int32 = 1, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(r.status, status, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.contains(text), "expected \(text) in: \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stdout, "", file: file, line: line)
    }

    // MARK: errors (checked before the model is loaded)

    func testBadProbeLineNamesFileAndLine() throws {
        let good = #"{"id": "a", "passages": ["x y", "z w"], "question": "q?", "answer": "x [1]."}"#
        let p = try write(
            "p.jsonl",
            good + "\n" + #"{"id": "b", "passages": ["x", "z"], "question": "q?", "answer": "x [4]."}"# + "\n")
        let r = try headlight(["cite", "--probes", p, "-o", dir.appendingPathComponent("o.h5").path])
        assertError(r, contains: "error: \(p):2: item 'b' cites passage [4] but has 2 passages")
        let q = try write("q.jsonl", good + "\n{oops\n")
        assertError(try headlight(["cite", "--probes", q]), contains: "\(q):2: not valid JSON")
        assertError(
            try headlight(["cite", "--probes", dir.appendingPathComponent("none.jsonl").path]), contains: "no such file"
        )
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("o.h5").path))
    }

    func testOptionErrors() throws {
        assertError(
            try headlight(["cite", "--mode", "bogus"]), contains: "--mode must be auto, teacher or generate", status: 2)
        assertError(try headlight(["cite", "--top", "5"]), contains: "--top needs --retrieval-heads", status: 2)
        let p = try write("p.jsonl", #"{"passages": ["x y", "z w"], "question": "q?"}"# + "\n")
        assertError(
            try headlight(["cite", "--probes", p, "--mode", "teacher"]), contains: "has no 'answer' to teacher-force")
        assertError(
            try headlight([
                "cite", "--probes", "probes/citation/smoke.jsonl", "--retrieval-heads",
                dir.appendingPathComponent("rh.h5").path
            ]), contains: "--retrieval-heads: no such file")
    }

    // MARK: end to end

    func testSmokeRunWritesRunFileAndJSON() throws {
        let model = try requireModel()
        let out = dir.appendingPathComponent("cite.h5").path
        let r = try headlight([
            "cite", "-m", model, "--probes", "probes/citation/smoke.jsonl", "--limit", "3", "--json",
            "--resamples", "200", "-o", out
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        XCTAssertEqual(j["items"] as? Int, 3)
        XCTAssertEqual(j["teacher_forced"] as? Int, 2)
        XCTAssertEqual(j["generated"] as? Int, 1)
        XCTAssertEqual(j["wrong_citations"] as? Int, 2)
        let all = try XCTUnwrap(j["all_heads"] as? [String: Any])
        XCTAssertNotNil(all["agreement"] as? [String: Any])
        XCTAssertEqual((j["top_heads"] as? [Any])?.count, 10)
        XCTAssertEqual((j["citation_eval"] as? [String: Any])?["judge"] as? String, "exact-match")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out))

        // text summary
        let t = try headlight([
            "cite", "-m", model, "--probes", "probes/citation/smoke.jsonl", "--limit", "2", "--no-progress",
            "--resamples", "100", "-o", out
        ])
        XCTAssertEqual(t.status, 0, t.stderr)
        XCTAssertTrue(t.stdout.contains("agreement (argmax passage == cited)"), t.stdout)
        XCTAssertTrue(t.stdout.contains("exact-match judge, not NLI entailment"), t.stdout)
        XCTAssertTrue(t.stdout.contains("wrote \(out)"))
        XCTAssertEqual(t.stderr, "")
    }
}
