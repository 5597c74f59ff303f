import Foundation
import XCTest
import TraceStore
@testable import Analysis

/// The copy rule, aggregation, ordering and the record table, without a model.
final class RuleRetrievalTests: XCTestCase {
    func testTopAttendedTakesLowestIndexOnTies() {
        XCTAssertEqual(RetrievalCopyRule.topAttended([0.1, 0.5, 0.2, 0.5]), 1) // torch.topk(1) -> 1
        XCTAssertEqual(RetrievalCopyRule.topAttended([0.3]), 0)
        XCTAssertEqual(RetrievalCopyRule.topAttended([]), -1)
        XCTAssertEqual(RetrievalCopyRule.topAttended([.nan, 0.2, 0.2]), 1)
        XCTAssertEqual(RetrievalCopyRule.topAttended([0, 0, 0]), 0)
        var big = [Float](repeating: 0, count: 3000)
        big[2000] = 1
        big[100] = 1
        big[5] = 1
        XCTAssertEqual(RetrievalCopyRule.topAttended(big), 5)
    }

    func testAccumulateScoresOnlyCopiesInsideTheSpan() {
        // prompt positions:   0   1   2   3   4   5
        let prompt: [Int32] = [10, 11, 12, 13, 12, 14]
        let span = 2..<5 // n = 3
        var s = [Double](repeating: 0, count: 5)
        // heads look at: 2 (token 12, in span), 4 (12, in span), 1 (outside), 5 (outside), 3 (13 != 12)
        let hits = RetrievalCopyRule.accumulate(
            scores: &s, top: [2, 4, 1, 5, 3], generated: 12, prompt: prompt, span: span)
        XCTAssertEqual(hits, 2)
        XCTAssertEqual(s, [1.0 / 3, 1.0 / 3, 0, 0, 0])
        // A key past the prompt (a generated position) never scores, even inside a span that
        // runs past the end.
        var t = [Double](repeating: 0, count: 1)
        RetrievalCopyRule.accumulate(scores: &t, top: [6], generated: 12, prompt: prompt, span: 4..<8)
        XCTAssertEqual(t, [0])
        // Span end is exclusive.
        RetrievalCopyRule.accumulate(scores: &t, top: [5], generated: 14, prompt: prompt, span: 2..<5)
        XCTAssertEqual(t, [0])
    }

    func testAggregateAveragesCountedTrialsOnly() {
        let a: [Double] = [1, 0, 0.5, 0], b: [Double] = [0, 0, 0.5, 1], c: [Double] = [9, 9, 9, 9]
        let s = RetrievalHeadScores.aggregate(trialScores: [a, b, c], counted: [true, true, false], layers: 2, heads: 2)
        XCTAssertEqual(s.scores, [0.5, 0, 0.5, 0.5])
        XCTAssertEqual(s.countedTrials, 2)
        // Ranking: score desc, then (layer, head).
        XCTAssertEqual(s.ranked.map(\.head.description), ["0.0", "1.0", "1.1", "0.1"])
        XCTAssertEqual(s.above(0.1).map(\.head.description), ["0.0", "1.0", "1.1"])
        XCTAssertEqual(s.atOrBelow(0.1).map(\.description), ["0.1"])
        XCTAssertEqual(s.top(2).map(\.score), [0.5, 0.5])
        let none = RetrievalHeadScores.aggregate(trialScores: [a], counted: [false], layers: 2, heads: 2)
        XCTAssertEqual(none.scores, [0, 0, 0, 0])
        XCTAssertEqual(none.countedTrials, 0)
    }

    func testHeadIndexParsing() {
        XCTAssertEqual(HeadIndex("14.3"), HeadIndex(layer: 14, head: 3))
        XCTAssertEqual(HeadIndex("14-3"), HeadIndex(layer: 14, head: 3))
        XCTAssertEqual(HeadIndex(" 2:0 "), HeadIndex(layer: 2, head: 0))
        XCTAssertNil(HeadIndex("14"))
        XCTAssertNil(HeadIndex("a.b"))
        XCTAssertNil(HeadIndex("-1.2"))
        XCTAssertEqual(HeadIndex(layer: 3, head: 4).flat(heads: 9), 31)
    }

    func testSharedPrefixOrderIsLexicographic() {
        let p: [[Int32]] = [[1, 2, 3], [1, 2], [0, 9], [1, 2, 3], [1, 1, 7]]
        XCTAssertEqual(RetrievalHeadSweep.sharedPrefixOrder(p), [2, 4, 1, 0, 3])
    }

    func testPythonStrip() {
        XCTAssertEqual(PythonStrip.strip("  a b \n"), "a b")
        XCTAssertEqual(PythonStrip.strip("\u{3000}x\u{85}"), "x")
        XCTAssertEqual(PythonStrip.strip(" \n\t"), "")
    }
}
