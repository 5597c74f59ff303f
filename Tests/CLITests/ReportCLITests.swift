import Analysis
import Foundation
import TraceStore
import XCTest

/// `headlight report` run as a subprocess: a report from a small run file written here, the
/// errors for bad input, and (with the default model) `report composition`.
final class CLIReportCommandTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hl-report-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    typealias Run = HeadlightRun

    func headlight(_ args: [String]) throws -> Run { try HeadlightProcess.run(args, currentDirectory: dir) }

    /// A detection-like run file: 4 layers x 3 heads, two trials, a hostile needle id.
    func writeRunFile(_ name: String) throws -> String {
        let path = dir.appendingPathComponent(name).path
        let w = try RunFileWriter(path: path)
        try RunFileHeader(
            headlightVersion: "0.1.0", command: "retrieval-heads", commandLine: ["headlight", "retrieval-heads"],
            modelFile: "tiny.gguf", modelSHA256: "00", dimensions: ["n_layers": 4, "n_heads": 3]
        ).write(to: w.file)
        let g = try w.file.createGroup("retrieval_heads")
        try g.setAttribute("n_layers", 4)
        try g.setAttribute("n_heads", 3)
        try g.setAttribute("threshold", 0.1)
        try g.setAttribute("suite", "{}")
        try g.setAttribute("suite_name", "tiny")
        try g.setAttribute("planned_trials", 2)
        try g.setAttribute("counted_trials", 1)
        try g.createDataset("scores", data: [0, 0.2, 0, 0, 0.5, 0, 0.05, 0, 0, 0, 0, 0.3], shape: [4, 3])
        // The trials record table, in the layout the sweep writes (RetrievalRunFile.columns).
        let t = try RecordTable(
            group: try g.createGroup("trials"), columns: RetrievalRunFile.columns(layers: 4, heads: 3))
        let ids = ["<script>alert(1)</script>", "\"]; a -> b [label=\""], responses = ["ok", "<b>bold</b>"]
        for i in 0..<2 {
            try t.append([
                "trial_index": .int(i), "needle_id": .string(ids[i]), "needle_index": .int(0),
                "length": .int(500 * (i + 1)),
                "depth": .double(Double(i) * 100), "prompt_tokens": .int(500 * (i + 1)), "span_start": .int(10),
                "span_end": .int(20), "response": .string(responses[i]), "generated_tokens": .int(2),
                "stop": .string("newline"), "rouge1_recall": .double(i == 0 ? 100 : 20), "success": .int(1 - i),
                "counted": .int(1 - i), "head_scores": .doubles([Double](repeating: 0, count: 12)),
                "prefilled_tokens": .int(500), "seconds": .double(1)
            ])
        }
        try w.finalize()
        return path
    }

    func testReportFromARunFile() throws {
        let file = try writeRunFile("detect.h5")
        let r = try headlight(["report", file, "-o", "out/rep"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(
            r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).components(separatedBy: "\n").last,
            "out/rep/index.html")
        let index = dir.appendingPathComponent("out/rep/index.html")
        let html = try String(contentsOf: index, encoding: .utf8)
        XCTAssertFalse(html.lowercased().contains("<script"))
        XCTAssertTrue(html.contains("&lt;b&gt;bold&lt;/b&gt;"))
        for f in ["retrieval-heatmap", "needle-plain"] {
            XCTAssertTrue(
                FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/rep/figures/\(f).svg").path), f)
        }
        XCTAssertTrue(r.stderr.contains("2 figures from 1 run file"), r.stderr)
        // The explicit subcommand name works too.
        XCTAssertEqual(try headlight(["report", "render", file, "-o", "out/rep2"]).status, 0)
    }

    func testBadInputs() throws {
        var r = try headlight(["report", "-o", "x"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("at least one run file"), r.stderr)
        r = try headlight(["report", "missing.h5", "-o", "x"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("no such run file"), r.stderr)
        try Data("not hdf5".utf8).write(to: dir.appendingPathComponent("bad.h5"))
        r = try headlight(["report", "bad.h5", "-o", "x"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("bad.h5"), r.stderr)
        XCTAssertEqual(r.stderr.components(separatedBy: "bad.h5").count - 1, 1, "path named once: \(r.stderr)")
        XCTAssertFalse(r.stderr.contains("--allow-incomplete"), "not an interrupted run: \(r.stderr)")
        r = try headlight(["report", "composition", "--heads", "1.x", "-o", "c.h5"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("is not a head"), r.stderr)
    }

    /// With the default model: composition among three heads, then a report with the graph.
    func testCompositionOnTheDefaultModel() throws {
        guard FileManager.default.fileExists(atPath: InspectTests.modelURL.path) else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("CI: default model missing") }
            throw XCTSkip("default model not downloaded")
        }
        let r = try headlight([
            "report", "composition", "-m", InspectTests.modelURL.path, "--heads", "17.3,18.6,23.2",
            "--baseline-draws", "2", "-o", "comp.h5"
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("composition among 3 heads"), r.stdout)
        let f = try RunFile.open(dir.appendingPathComponent("comp.h5").path)
        let g = try f.group("composition")
        XCTAssertEqual(try g.stringsAttribute("heads"), ["17.3", "18.6", "23.2"])
        let q = try g.dataset("q_comp").read(Double.self)
        XCTAssertEqual(q.count, 9)
        XCTAssertTrue(q[1].isFinite && q[1] > 0 && q[1] < 1, "\(q)") // 17.3 -> 18.6
        XCTAssertTrue(q[3].isNaN) // 18.6 -> 17.3: earlier layer
        XCTAssertNotNil(try f.attributeIfPresent("blas_core"))
        try f.close()
        let rep = try headlight(["report", "comp.h5", "-o", "rep"])
        XCTAssertEqual(rep.status, 0, rep.stderr)
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: dir.appendingPathComponent("rep/figures/composition-graph.svg").path)
        )
    }
}
