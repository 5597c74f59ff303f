import XCTest
@testable import Analysis
import Inference

final class StatsBootstrapTests: XCTestCase {
    /// Percentile CIs computed in Python with the same PRNG stream (make_fixtures.py).
    func testAgainstPythonWithSameStream() {
        let sec = StatsFixture.dict(StatsFixture.section("bootstrap"))
        let b = Int(StatsFixture.num(sec["resamples"]))

        let m = StatsFixture.dict(sec["mean"])
        let ci = Statistics.bootstrapMean(
            StatsFixture.nums(m["x"]), resamples: b, seed: UInt64(StatsFixture.num(m["seed"])))
        statsAssertClose(
            [ci.estimate, ci.lower, ci.upper],
            [StatsFixture.num(m["estimate"])] + StatsFixture.nums(m["ci"]), tol: 1e-13, "bootstrap mean CI")

        let a = StatsFixture.dict(sec["auc"])
        let aci = Statistics.bootstrapAUC(
            labels: StatsFixture.bools(a["labels"]), scores: StatsFixture.nums(a["scores"]),
            stratified: true, resamples: b, seed: UInt64(StatsFixture.num(a["seed"])))
        statsAssertClose(
            [aci.estimate, aci.lower, aci.upper],
            [StatsFixture.num(a["estimate"])] + StatsFixture.nums(a["ci"]), tol: 1e-13, "stratified bootstrap AUC CI")
        XCTAssertEqual(aci.skipped, 0)

        let p = StatsFixture.dict(sec["paired"])
        let pr = Statistics.pairedBootstrapMeanDifference(
            StatsFixture.nums(p["a"]), StatsFixture.nums(p["b"]),
            resamples: b, seed: UInt64(StatsFixture.num(p["seed"])))
        statsAssertClose(
            [pr.difference.estimate, pr.difference.lower, pr.difference.upper, pr.pValue],
            [StatsFixture.num(p["estimate"])] + StatsFixture.nums(p["ci"]) + [StatsFixture.num(p["p"])],
            tol: 1e-13, "paired bootstrap (diff, lo, hi, p)")
    }

    func testDeterministicContainsEstimateAndShrinks() {
        var g = SeededGenerator(seed: 77)
        func normals(_ n: Int) -> [Double] {
            (0..<n).map { _ in
                let u1 = max(SeededRandom.unitDouble(using: &g), 1e-300), u2 = SeededRandom.unitDouble(using: &g)
                return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
            }
        }
        let small = normals(40), large = normals(1600)
        let c1 = Statistics.bootstrapMean(small, resamples: 1000, seed: 9)
        let c2 = Statistics.bootstrapMean(small, resamples: 1000, seed: 9)
        XCTAssertEqual(c1, c2, "same seed, same interval")
        XCTAssertNotEqual(Statistics.bootstrapMean(small, resamples: 1000, seed: 10), c1)
        XCTAssertTrue(c1.contains(c1.estimate))
        let c3 = Statistics.bootstrapMean(large, resamples: 1000, seed: 9)
        XCTAssertTrue(c3.contains(c3.estimate))
        print("[stats] bootstrap mean CI width n=40: \(c1.width), n=1600: \(c3.width) (ratio ~ sqrt(40) = 6.3)")
        XCTAssertLessThan(c3.width, c1.width / 4)
        // the width should be near 2 * 1.96 / sqrt(n) for unit-variance data
        XCTAssertEqual(c3.width, 2 * 1.96 / 40, accuracy: 0.02)

        // AUC: labels = (x > 0) noisy
        let n = 300
        let x = normals(n), noise = normals(n)
        let labels = x.map { $0 > 0 }, scores = zip(x, noise).map { $0 + $1 }
        let s = Statistics.bootstrapAUC(labels: labels, scores: scores, seed: 1)
        XCTAssertEqual(s, Statistics.bootstrapAUC(labels: labels, scores: scores, seed: 1))
        XCTAssertTrue(s.contains(s.estimate))
        XCTAssertEqual(s.resamples, Statistics.defaultBootstrapResamples)
        let sub = Statistics.bootstrapAUC(labels: Array(labels[0..<40]), scores: Array(scores[0..<40]), seed: 1)
        XCTAssertLessThan(s.width, sub.width)
        let u = Statistics.bootstrapAUC(labels: labels, scores: scores, stratified: false, seed: 1)
        XCTAssertTrue(u.contains(u.estimate))
        XCTAssertEqual(u.resamples + u.skipped, Statistics.defaultBootstrapResamples)
    }

    func testUnstratifiedSkipsOneClassResamples() {
        // 1 positive in 4: P(no positive in a resample) = (3/4)^4 ~ 0.32
        let ci = Statistics.bootstrapAUC(
            labels: [true, false, false, false], scores: [0.9, 0.1, 0.2, 0.3],
            stratified: false, resamples: 1000, seed: 3)
        XCTAssertGreaterThan(ci.skipped, 200)
        XCTAssertLessThan(ci.skipped, 450)
        XCTAssertEqual(ci.resamples + ci.skipped, 1000)
        XCTAssertEqual(ci.estimate, 1)
        XCTAssertEqual(ci.upper, 1)
    }

    func testPairedDifference() {
        let a = (0..<50).map { Double($0 % 7) + 1 }
        let b = a.map { $0 - 1 }
        let r = Statistics.pairedBootstrapMeanDifference(a, b, resamples: 500, seed: 4)
        XCTAssertEqual(r.difference.estimate, 1)
        XCTAssertEqual(r.difference.lower, 1)
        XCTAssertEqual(r.difference.upper, 1)
        XCTAssertEqual(r.pValue, 2.0 / 501, accuracy: 1e-15)
    }
}
