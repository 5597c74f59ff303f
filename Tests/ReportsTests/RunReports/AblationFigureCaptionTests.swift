import Foundation
@testable import Reports
import XCTest

/// The ablation bar chart's caption says what the conditions are: top-K against random controls,
/// or (a `--causal` run) single heads ablated alone.
final class AblationFigureCaptionTests: XCTestCase {
    func data(_ kinds: [String]) -> AblationRunData {
        let conds = kinds.enumerated().map { i, k in
            AblationRunData.Condition(
                name: "\(k)_\(i)", label: "\(k) \(i)", kind: k, heads: k == "baseline" ? [] : ["18.\(i)"],
                meanScore: 50 - Double(i), lower: 40, upper: 60, perplexity: .nan,
                perplexityChange: .nan, grid: nil)
        }
        return AblationRunData(
            conditions: conds, lengths: [], depths: [], metric: "rouge1_recall_x100", level: 0.95,
            method: "uniform", phase: "decode", note: nil, targetVsControls: nil, targetVsBaseline: nil)
    }

    func caption(_ kinds: [String]) -> String {
        for b in AblationFigures.blocks(data(kinds), plain: nil, source: "x.h5") {
            if case .figure(let f) = b, f.name == "ablation-scores" { return f.caption }
        }
        XCTFail("no ablation-scores figure")
        return ""
    }

    func testCaptionFollowsTheConditions() {
        let targeted = caption(["baseline", "target", "control", "control"])
        XCTAssertTrue(targeted.contains("random non-retrieval"), targeted)
        XCTAssertFalse(targeted.contains("ablated alone"), targeted)
        let causal = caption(["baseline", "single", "single", "single"])
        XCTAssertTrue(causal.contains("ablated alone"), causal)
        XCTAssertFalse(causal.contains("random"), causal)
    }
}
