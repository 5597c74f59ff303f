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
        try RunFileHeader(headlightVersion: "0.1.0", command: "retrieval-heads", commandLine: ["headlight", "retrieval-heads"],
                          modelFile: "tiny.gguf", modelSHA256: "00", dimensions: ["n_layers": 4, "n_heads": 3]).write(to: w.file)
        let g = try w.file.createGroup("retrieval_heads")
        try g.setAttribute("n_layers", 4); try g.setAttribute("n_heads", 3); try g.setAttribute("threshold", 0.1)
        try g.createDataset("scores", data: [0, 0.2, 0, 0, 0.5, 0, 0.05, 0, 0, 0, 0, 0.3], shape: [4, 3])
        let t = try g.createGroup("trials")
        try t.createDataset("trial_index", data: [Int64(0), 1])
        try t.createDataset("length", data: [Int64(500), 1000])
        try t.createDataset("depth", data: [0.0, 100])
        try t.createDataset("rouge1_recall", data: [100.0, 20])
        try t.createDataset("success", data: [Int8(1), 0])
        try t.createDataset("counted", data: [Int8(1), 0])
        try t.createDataset("needle_id", strings: ["<script>alert(1)</script>", "\"]; a -> b [label=\""])
        try t.createDataset("response", strings: ["ok", "<b>bold</b>"])
        try w.finalize()
        return path
    }

    func testReportFromARunFile() throws {
        let file = try writeRunFile("detect.h5")
        let r = try headlight(["report", file, "-o", "out/rep"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).components(separatedBy: "\n").last, "out/rep/index.html")
        let index = dir.appendingPathComponent("out/rep/index.html")
        let html = try String(contentsOf: index, encoding: .utf8)
        XCTAssertFalse(html.lowercased().contains("<script"))
        XCTAssertTrue(html.contains("&lt;b&gt;bold&lt;/b&gt;"))
        for f in ["retrieval-heatmap", "needle-plain"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/rep/figures/\(f).svg").path), f)
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
        let r = try headlight(["report", "composition", "-m", InspectTests.modelURL.path, "--heads", "17.3,18.6,23.2",
                               "--baseline-draws", "2", "-o", "comp.h5"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("composition among 3 heads"), r.stdout)
        let f = try RunFile.open(dir.appendingPathComponent("comp.h5").path)
        let g = try f.group("composition")
        XCTAssertEqual(try g.stringsAttribute("heads"), ["17.3", "18.6", "23.2"])
        let q = try g.dataset("q_comp").read(Double.self)
        XCTAssertEqual(q.count, 9)
        XCTAssertTrue(q[1].isFinite && q[1] > 0 && q[1] < 1, "\(q)")   // 17.3 -> 18.6
        XCTAssertTrue(q[3].isNaN)                                      // 18.6 -> 17.3: earlier layer
        XCTAssertNotNil(try f.attributeIfPresent("blas_core"))
        try f.close()
        let rep = try headlight(["report", "comp.h5", "-o", "rep"])
        XCTAssertEqual(rep.status, 0, rep.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("rep/figures/composition-graph.svg").path))
    }
}
