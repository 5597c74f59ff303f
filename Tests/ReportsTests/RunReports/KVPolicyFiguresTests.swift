import Foundation
import XCTest

@testable import Analysis
@testable import Reports

/// The KV-policy figures from a hand-built `/kv_policy` summary: the Pareto plots, needle grids and
/// table are drawn, the table shows the stored numbers, and hostile condition text is escaped.
final class KVPolicyFiguresTests: XCTestCase {
    func contents() -> KVPolicyRunFile.Contents {
        let names = ["baseline", "uniform/window:128+4", "top5/window:128+4", "random5.1/<script>alert(1)</script>"]
        let kinds = ["baseline", "uniform", "retrieval", "random"]
        let C = 4, M = 3
        let means: [Double] = [90, 10, 70, 20]
        func matrix(_ shift: Double) -> KVPolicyRunFile.Matrix {
            .init(shape: [C, M], values: (0..<C).flatMap { c in (0..<M).map { _ in means[c] + shift } })
        }
        var vsRandom = [Double](repeating: .nan, count: C * M * 4)
        for (j, v) in [50.0, 30, 70, 0.002].enumerated() { vsRandom[(2 * M + 0) * 4 + j] = v }
        return KVPolicyRunFile.Contents(
            conditionNames: names, conditionKinds: kinds,
            conditionRest: ["full", "window:128+4", "window:128+4", "window:128+4"],
            conditionFullHeads: ["", "", "1.2,3.4", "5.6,7.8"], conditionN: [0, 0, 5, 5],
            conditionControl: [0, 0, 0, 1],
            metrics: AblationMetric.allCases.map(\.name), level: 0.95, trials: 2, contextTokens: 1000,
            memoryContexts: [1000, 32768, 131_072], memoryFormula: "bytes = <formula>", perplexityTokens: 130,
            records: [], finished: true, mean: matrix(0), ciLower: matrix(-5), ciUpper: matrix(5),
            cells: .init(shape: [C, M, 1, 2], values: (0..<(C * M * 2)).map { Double($0 % 100) }),
            lengths: [1000], depths: [0, 100], perplexity: [10, 14, 12, 13], perplexityLower: [9, 13, 11, 12],
            perplexityUpper: [11, 15, 13, 14],
            kvBytes: [
                [1_048_576, 33_554_432, 134_217_728], [4096, 4096, 4096], [8192, 65536, 262_144], [8192, 65536, 262_144]
            ],
            vsBaseline: nil, vsRandom: .init(shape: [C, M, 4], values: vsRandom))
    }

    func testFiguresTableAndEscaping() throws {
        let data = KVPolicyRunData(contents())
        XCTAssertEqual(data.conditions[2].vsRandom, [50, 30, 70, 0.002])
        XCTAssertNil(data.conditions[3].vsRandom)
        XCTAssertEqual(data.conditions[1].grid, [[6], [7]], "[depth][length] of metric 0: cells[1, 0, 0, d] = 6 + d")
        let blocks = KVPolicyFigures.blocks(data, source: "<evil>.h5")
        let figures = blocks.compactMap { b -> ReportDocument.Figure? in
            if case .figure(let f) = b { return f } else { return nil }
        }
        XCTAssertEqual(
            figures.map(\.name), ["kv-policy-rouge-pareto", "kv-policy-ppl-pareto", "kv-policy-needle-grids"])
        var doc = ReportDocument(title: "t")
        var s = ReportDocument.Section("KV")
        s.blocks = blocks
        doc.sections = [s]
        let html = doc.html()
        for f in figures {
            let x = XMLCheck.parse(f.svg)
            XCTAssertTrue(x.ok, "\(f.name): \(x.error ?? "")")
            XCTAssertFalse(x.elements.contains { $0.name == "script" }, f.name)
        }
        XCTAssertFalse(html.contains("<script>alert"))
        XCTAssertTrue(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        XCTAssertTrue(html.contains("70.0 [65.0, 75.0]"), "top-5 ROUGE with its CI")
        XCTAssertTrue(html.contains("50.0 [30.0, 70.0]"), "top-N minus random")
        XCTAssertTrue(html.contains("&lt;formula&gt;"))
        // the Pareto plot puts the 32k memory on x: 65536 bytes = 0.0625 MiB for top5
        XCTAssertTrue(figures[0].svg.contains("top-N retrieval heads full, rest window:128+4"))
    }
}
