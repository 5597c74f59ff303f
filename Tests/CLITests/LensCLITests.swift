import Foundation
import XCTest

/// `headlight lens` as a subprocess on the default model: the IOI example end to end (summary,
/// run file, report with the lens figures), and its input errors. Skipped without the model.
final class LensCLITests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        guard FileManager.default.fileExists(atPath: InspectTests.modelURL.path) else {
            throw XCTSkip("default model not found at \(InspectTests.modelURL.path) (run scripts/fetch-model.sh)")
        }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("headlight-lens-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    func testIOIExampleEndToEnd() throws {
        let out = dir.appendingPathComponent("ioi.h5").path
        let r = try HeadlightProcess.run([
            "lens", "--prompt", "When Mary and John went to the store, John gave a drink to", "--target", " Mary",
            "--baseline", " John", "--positions=-1,-3", "--top", "5", "-o", out
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("position 13 (\" to\")"), r.stdout)
        XCTAssertTrue(r.stdout.contains("final \" Mary\""), r.stdout)
        XCTAssertTrue(r.stdout.contains("direct attribution to the logit difference"), r.stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["ioi.h5"])

        let report = dir.appendingPathComponent("report").path
        let rep = try HeadlightProcess.run(["report", out, "-o", report])
        XCTAssertEqual(rep.status, 0, rep.stderr)
        let figures = try FileManager.default.contentsOfDirectory(atPath: report + "/figures").sorted()
        XCTAssertEqual(figures, ["lens-dla-11.svg", "lens-dla-13.svg", "lens-logit-diff.svg", "lens-top1.svg"])
        let html = try String(contentsOfFile: report + "/index.html", encoding: .utf8)
        XCTAssertTrue(html.contains("Logit lens and direct logit attribution"))
        XCTAssertTrue(html.contains("head 23.3"), "the strongest head is listed")
    }

    func testInputErrorsAreClear() throws {
        let out = dir.appendingPathComponent("x.h5").path
        func fails(_ args: [String], _ status: Int32, _ message: String) throws {
            let r = try HeadlightProcess.run(["lens"] + args + ["-o", out])
            XCTAssertEqual(r.status, status, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
        try fails(["--prompt", "a b c", "--target", " Mary Jane"], 1, "is 2 tokens")
        try fails(["--prompt", "a b c", "--positions", "40"], 1, "position 40")
        try fails(["--prompt", "a b c", "--target-id", "99999999"], 1, "outside the vocabulary")
        try fails(["--prompt", "a b c", "--baseline", " John"], 2, "--baseline needs --target")
        try fails(["--prompt", "a b c", "--top", "0"], 2, "--top must be at least 1")
        try fails(["--prompt", "a b c", "--target-id", "-3"], 2, "must be >= 0")
    }
}
