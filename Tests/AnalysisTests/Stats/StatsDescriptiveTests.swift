import XCTest
@testable import Analysis

/// Mean / variance / quantiles / ranks / correlations: hand-computed cases, then numpy and scipy
/// fixtures (Tests/Fixtures/stats/make_fixtures.py).
final class StatsDescriptiveTests: XCTestCase {
    func testHandComputed() {
        XCTAssertEqual(Statistics.mean([1, 2, 3, 4]), 2.5)
        XCTAssertTrue(Statistics.mean([]).isNaN)
        XCTAssertEqual(Statistics.variance([1, 2, 3, 4]), 1.25)
        XCTAssertEqual(Statistics.variance([1, 2, 3, 4], ddof: 1), 5.0 / 3, accuracy: 1e-15)
        XCTAssertEqual(Statistics.standardDeviation([2, 4, 4, 4, 5, 5, 7, 9]), 2)
        XCTAssertTrue(Statistics.variance([3], ddof: 1).isNaN)
        XCTAssertEqual(Statistics.quantile([1, 2, 3, 4], 0.25), 1.75)
        XCTAssertEqual(Statistics.quantile([4, 1, 3, 2], 0.5), 2.5)
        XCTAssertEqual(Statistics.quantile([1, 2, 3, 4], 1), 4)
        XCTAssertEqual(Statistics.percentile([1, 2, 3, 4], 25), 1.75)
        XCTAssertTrue(Statistics.quantile([1, 2], 1.5).isNaN)
        XCTAssertEqual(Statistics.quantiles([5, 1, 3], [0, 0.5, 1]), [1, 3, 5])
        XCTAssertEqual(Statistics.averageRanks([10, 20, 20, 30]), [1, 2.5, 2.5, 4])
        XCTAssertEqual(Statistics.averageRanks([3, 3, 3]), [2, 2, 2])

        XCTAssertEqual(Statistics.pearson([1, 2, 3], [2, 4, 6]), 1)
        XCTAssertEqual(Statistics.pearson([1, 2, 3], [3, 2, 1]), -1)
        XCTAssertTrue(Statistics.pearson([1, 1, 1], [1, 2, 3]).isNaN)
        // ranks of y: [1, 2, 3.5, 5, 3.5]; r = 8 / sqrt(10 * 9.5)
        XCTAssertEqual(Statistics.spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]), 8 / (95.0).squareRoot(), accuracy: 1e-15)
        // Pearson([1,0,1,0], [3,1,5,1]) = 3 / sqrt(11)
        XCTAssertEqual(
            Statistics.pointBiserial([true, false, true, false], [3, 1, 5, 1]), 3 / (11.0).squareRoot(), accuracy: 1e-15
        )
        XCTAssertEqual(Statistics.correlationPValue(r: 0, n: 10), 1, accuracy: 1e-15)
        XCTAssertEqual(Statistics.correlationPValue(r: 1, n: 10), 0)
        XCTAssertEqual(Statistics.correlationPValue(r: 0.3, n: 2), 1)
        // t = 2.228138851986 is the two-sided 5% point of t(10)
        XCTAssertEqual(Statistics.studentTTwoSidedPValue(t: 2.228138851986, df: 10), 0.05, accuracy: 1e-10)
    }

    func testDescriptiveFixtures() {
        let sec = StatsFixture.dict(StatsFixture.section("descriptive"))
        let qs = StatsFixture.nums(sec["qs"])
        for c in StatsFixture.list(sec["cases"]).map(StatsFixture.dict) {
            let name = c["name"] as! String
            let x = StatsFixture.nums(c["x"])
            statsAssertClose([Statistics.mean(x)], [StatsFixture.num(c["mean"])], tol: 1e-14, "\(name) mean")
            statsAssertClose(
                [
                    Statistics.variance(x), Statistics.variance(x, ddof: 1),
                    Statistics.standardDeviation(x), Statistics.standardDeviation(x, ddof: 1)
                ],
                [c["var0"], c["var1"], c["std0"], c["std1"]].map(StatsFixture.num),
                tol: 1e-14, "\(name) var/std ddof 0,1")
            // numpy "linear" quantiles are reproduced bit for bit
            let q = qs.map { Statistics.quantile(x, $0) }
            XCTAssertEqual(statsMaxAbsDiff(q, StatsFixture.nums(c["quantiles"])), 0, "\(name) quantiles")
            XCTAssertEqual(Statistics.quantiles(x, qs), q)
            XCTAssertEqual(Statistics.averageRanks(x), StatsFixture.nums(c["ranks"]), "\(name) ranks")
        }
    }

    func testCorrelationFixtures() {
        let sec = StatsFixture.dict(StatsFixture.section("correlation"))
        for c in StatsFixture.list(sec["cases"]).map(StatsFixture.dict) {
            let name = c["name"] as! String
            let x = StatsFixture.nums(c["x"]), y = StatsFixture.nums(c["y"])
            let p = Statistics.pearsonTest(x, y), s = Statistics.spearmanTest(x, y)
            statsAssertClose([p.r, p.pValue], StatsFixture.nums(c["pearson"]), tol: 1e-12, "\(name) pearsonr (r, p)")
            statsAssertClose(
                [s.r, s.pValue], StatsFixture.nums(c["spearman"]), tol: 1e-12, "\(name) spearmanr (rho, p)")
        }
        let pb = StatsFixture.dict(sec["pointbiserial"])
        let r = Statistics.pointBiserialTest(StatsFixture.bools(pb["group"]), StatsFixture.nums(pb["x"]))
        statsAssertClose(
            [r.r, r.pValue], [StatsFixture.num(pb["r"]), StatsFixture.num(pb["p"])], tol: 1e-12,
            "pointbiserialr (r, p)")
    }

    func testIncompleteBetaFixture() {
        let rows = StatsFixture.list(StatsFixture.section("betainc")).map(StatsFixture.nums)
        var maxRel = 0.0
        for r in rows {
            let v = Statistics.regularizedIncompleteBeta(a: r[0], b: r[1], x: r[2])
            maxRel = max(maxRel, abs(v - r[3]) / max(abs(r[3]), 1e-300))
        }
        print("[stats] betainc vs scipy.special.betainc: \(rows.count) points, max relative diff \(maxRel)")
        XCTAssertLessThan(maxRel, 1e-11)
    }
}
