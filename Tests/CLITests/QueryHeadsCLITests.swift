import Analysis
import Foundation
import TraceStore
import XCTest

/// `headlight query-heads` and `headlight profile` as subprocesses: argument errors, and small
/// end-to-end runs on the default model read back by the groups' readers and drawn by `report`.
final class CLIQueryHeadsTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hl-qr-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func headlight(_ args: [String]) throws -> HeadlightRun {
        try HeadlightProcess.run(args, currentDirectory: CLICiteTests.root)
    }

    func testArgumentErrors() throws {
        var r = try headlight(["profile", "--lengths", "64,x", "-o", dir.appendingPathComponent("p.h5").path])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("--lengths: 'x' is not an integer >= 2"), r.stderr)
        r = try headlight(["profile", "--ks", "4,4", "-o", dir.appendingPathComponent("p.h5").path])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("duplicate"), r.stderr)
        r = try headlight(["query-heads", "--top", "0", "-o", dir.appendingPathComponent("q.h5").path])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("--top must be at least 1"), r.stderr)
        let probes = dir.appendingPathComponent("p.jsonl")
        try #"{"id": "a", "passages": ["x y", "z w"], "question": "q?"}"#.write(
            to: probes, atomically: true, encoding: .utf8)
        r = try headlight(["query-heads", "--probes", probes.path, "-o", dir.appendingPathComponent("q.h5").path])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("\(probes.path):1: item 'a' has no 'source'"), r.stderr)
    }

    func testSmallRunsReadBackAndReport() throws {
        let model = InspectTests.modelURL.path
        guard FileManager.default.fileExists(atPath: model) else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("CI: default model missing") }
            throw XCTSkip("default model not found at \(model) (run scripts/fetch-model.sh)")
        }
        let q = dir.appendingPathComponent("q.h5").path, p = dir.appendingPathComponent("p.h5").path
        var r = try headlight(["query-heads", "-m", model, "--limit", "2", "--top", "4", "-o", q, "--no-progress"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("re-ranking on the 1 evaluation items"), r.stdout)
        r = try headlight([
            "profile", "-m", model, "--lengths", "64,128", "--samples", "1", "--queries", "4", "-o", p, "--no-progress"
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        let f = try RunFile.open(q)
        let c = try XCTUnwrap(QueryHeadsRunFile.read(f))
        try f.close()
        XCTAssertEqual(c.layers * c.heads, 270)
        XCTAssertEqual([c.detect, c.eval], [1, 1])
        XCTAssertEqual(c.methods, ["qrhead", "all_heads", "bm25", "answer_likelihood"])
        XCTAssertEqual(c.topHeads.count, 4)
        // qr-001 (the one evaluation item) is a paraphrase item: its recall@1 per kind is the overall one
        XCTAssertEqual(c.kinds, ["paraphrase"])
        XCTAssertEqual(c.kindCounts, [1])
        XCTAssertEqual(c.recallAt1ByKind[0], c.recall.map { $0[0] })
        for row in c.recall {
            XCTAssertEqual(row.count, 8)
            XCTAssertEqual(row.last!, 1, accuracy: 1e-12, "recall@(all passages) is 1")
            XCTAssertEqual(row, row.sorted(), "recall@k grows with k")
        }
        let g = try RunFile.open(p)
        let s = try XCTUnwrap(SparsityRunFile.read(g))
        try g.close()
        XCTAssertEqual(s.lengths, [64, 128])
        for li in 0..<2 {
            for h in 0..<270 {
                let shares = s.topKShare[li].map { $0[h] }
                XCTAssertEqual(shares, shares.sorted(), "top-k share grows with k")
                XCTAssertLessThanOrEqual(shares.last!, 1 + 1e-5)
                XCTAssertLessThanOrEqual(s.sinkMass[li][0][h], s.sinkMass[li][1][h] + 1e-9)
            }
        }
        let out = dir.appendingPathComponent("report").path
        r = try headlight(["report", q, p, "-o", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let html = try String(contentsOfFile: out + "/index.html", encoding: .utf8)
        for id in ["qrhead-scores", "qrhead-recall", "sparsity-topk", "sparsity-curves"] {
            XCTAssertTrue(html.contains(id), "report lacks \(id)")
        }
    }
}
