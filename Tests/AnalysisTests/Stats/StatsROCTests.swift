import XCTest
@testable import Analysis

final class StatsROCTests: XCTestCase {
    func testHandComputedAUC() {
        // positives 0.9, 0.5; negatives 0.1, 0.5: pairs 1 + 1 + 1 + 1/2 = 3.5 of 4
        XCTAssertEqual(Statistics.rocAUC(labels: [true, false, true, false], scores: [0.9, 0.1, 0.5, 0.5]), 0.875)
        XCTAssertEqual(Statistics.rocAUC(labels: [1, 0, 1, 0], scores: [0.9, 0.1, 0.5, 0.5]), 0.875)
        XCTAssertEqual(Statistics.rocAUC(labels: [true, true, false], scores: [3, 2, 1]), 1)
        XCTAssertEqual(Statistics.rocAUC(labels: [true, true, false], scores: [1, 2, 3]), 0)
        XCTAssertEqual(Statistics.rocAUC(labels: [true, false, true, false], scores: [1, 1, 1, 1]), 0.5)
        XCTAssertTrue(Statistics.rocAUC(labels: [true, true], scores: [1, 2]).isNaN)

        let c = Statistics.rocCurve(labels: [true, false, true, false], scores: [0.9, 0.1, 0.5, 0.5])
        XCTAssertEqual(c.thresholds, [.infinity, 0.9, 0.5, 0.1])
        XCTAssertEqual(c.tpr, [0, 0.5, 1, 1])
        XCTAssertEqual(c.fpr, [0, 0, 0.5, 1])
        XCTAssertEqual(c.area, 0.875)
    }

    func testSklearnFixtures() {
        for c in StatsFixture.list(StatsFixture.section("roc")).map(StatsFixture.dict) {
            let name = c["name"] as! String
            let labels = StatsFixture.ints(c["labels"]).map { $0 == 1 }
            let scores = StatsFixture.nums(c["scores"])
            let auc = Statistics.rocAUC(labels: labels, scores: scores)
            statsAssertClose([auc], [StatsFixture.num(c["auc"])], tol: 1e-14, "\(name) roc_auc_score")
            let curve = Statistics.rocCurve(labels: labels, scores: scores)
            statsAssertClose(curve.fpr, StatsFixture.nums(c["fpr"]), tol: 1e-15, "\(name) roc_curve fpr")
            statsAssertClose(curve.tpr, StatsFixture.nums(c["tpr"]), tol: 1e-15, "\(name) roc_curve tpr")
            XCTAssertEqual(curve.thresholds, StatsFixture.nums(c["thresholds"]), "\(name) thresholds")
            XCTAssertEqual(curve.area, auc, accuracy: 1e-14)
        }
    }
}
