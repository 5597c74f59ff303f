@testable import Analysis
import Foundation
import XCTest

/// The bootstrap CIs of `headlight profile` (over windows) and of the QRHead vs Wu et al.
/// comparison (over detection items), on inputs whose intervals are known by hand.
final class SparsityQueryHeadsCITests: XCTestCase {
    /// Two windows, one statistic, two heads: the mean per head; the bounds are those of the three
    /// possible resample means (a, (a + b) / 2, b), i.e. the two windows' values at 95%.
    func testSparsityBootstrapOverWindows() {
        let a: [[Double]] = [[0.2, 0.4]], b: [[Double]] = [[0.6, 0.8]] // [series][head]
        let r = SparsityStats.bootstrap(samples: [a, b], resamples: 400, level: 0.95, seed: 3)
        XCTAssertEqual(r.mean[0][0], 0.4, accuracy: 1e-15)
        XCTAssertEqual(r.mean[0][1], 0.6, accuracy: 1e-15)
        XCTAssertEqual(r.lower[0], [0.2, 0.4])
        XCTAssertEqual(r.upper[0], [0.6, 0.8])
        // median over the two heads: estimate 0.5; resamples give 0.3, 0.5 or 0.7
        XCTAssertEqual(r.median[0].estimate, 0.5, accuracy: 1e-15)
        XCTAssertEqual(r.median[0].lower, 0.3, accuracy: 1e-15)
        XCTAssertEqual(r.median[0].upper, 0.7, accuracy: 1e-15)
        // one window: the mean, and no interval
        let one = SparsityStats.bootstrap(samples: [a], resamples: 400, level: 0.95, seed: 3)
        XCTAssertEqual(one.mean[0], [0.2, 0.4])
        XCTAssertTrue(one.lower[0].allSatisfy(\.isNaN) && one.upper[0].allSatisfy(\.isNaN))
        XCTAssertEqual(one.median[0].estimate, 0.3, accuracy: 1e-15)
        XCTAssertTrue(one.median[0].lower.isNaN)
        // series round trip
        let s = SparsityStats(
            topKShare: [[1], [2]], entropy: [3], normalizedEntropy: [4], sinkMass: [[5]], streamingMass: [[6], [7]])
        XCTAssertEqual(SparsityStats(series: s.series, ks: 2, sinks: 1, windows: 2), s)
    }

    /// Identical detection items: every resample is the original, so each bound is the point value;
    /// with differing items the overlap interval stays within 0...N and brackets a value it can take.
    func testQRHeadComparisonBootstrap() {
        let wu: [Double] = [0.9, 0.1, 0.5, 0.3, 0.7, 0.0]
        let item: [Double] = [0.8, 0.2, 0.1, 0.4, 0.6, 0.3]
        let same = QueryHeadsSummary.compareBootstrap(
            [item, item, item], wu: wu, sizes: [2, 3], resamples: 200, seed: 1)
        for (i, n) in [2, 3].enumerated() {
            let o = Double(Statistics.topOverlap(item, wu, n: n))
            XCTAssertEqual(same.overlaps[i].lower, o)
            XCTAssertEqual(same.overlaps[i].upper, o)
        }
        XCTAssertEqual(same.spearman.lower, Statistics.spearman(item, wu), accuracy: 1e-12)
        XCTAssertEqual(same.kendall.upper, Statistics.kendallTau(item, wu), accuracy: 1e-12)
        let other: [Double] = [0.0, 0.9, 0.8, 0.1, 0.2, 0.7]
        let mixed = QueryHeadsSummary.compareBootstrap(
            [item, other, item, other], wu: wu, sizes: [3], resamples: 500, seed: 2)
        XCTAssertLessThan(mixed.spearman.lower, mixed.spearman.upper, "differing items widen the interval")
        XCTAssertTrue(mixed.overlaps[0].lower >= 0 && mixed.overlaps[0].upper <= 3)
        let single = QueryHeadsSummary.compareBootstrap([item], wu: wu, sizes: [3], resamples: 50, seed: 2)
        XCTAssertTrue(single.overlaps[0].lower.isNaN && single.kendall.upper.isNaN, "one item: no interval")
    }
}
