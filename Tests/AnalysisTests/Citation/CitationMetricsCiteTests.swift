import XCTest
@testable import Analysis

/// Citation metrics against hand-computed cases (no model needed).
final class CitationMetricsCiteTests: XCTestCase {
    // MARK: one vector

    func testScoreHandComputed() {
        // v = [0.1, 0.5, 0.2, 0.2], cited passage 1 (0-based).
        // Spearman: ranks(v) = [1, 4, 2.5, 2.5], ranks(indicator [0,1,0,0]) = [2, 4, 2, 2];
        //   centred: [-1.5, 1.5, 0, 0] and [-0.5, 1.5, -0.5, -0.5]: sxy = 3, sxx = 4.5, syy = 3,
        //   rho = 3 / sqrt(13.5) = sqrt(2/3).
        // Point-biserial: indicator mean 0.25, v mean 0.25; sxy = 0.25, sxx = 0.75, syy = 0.09,
        //   r = 0.25 / sqrt(0.0675).
        let s = CitationMetrics.score([0.1, 0.5, 0.2, 0.2], cited: [1], trueSource: 2)
        XCTAssertEqual(s.argmax, 1)
        XCTAssertTrue(s.agree)
        XCTAssertEqual(s.onTrueSource, false)
        XCTAssertEqual(s.spearman, (2.0 / 3).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(s.pointBiserial, 0.25 / 0.0675.squareRoot(), accuracy: 1e-12)
    }

    func testArgmaxTiesGoToLowestIndex() {
        XCTAssertEqual(CitationMetrics.argmax([0.3, 0.3, 0.1]), 0)
        XCTAssertEqual(CitationMetrics.argmax([]), -1)
        XCTAssertEqual(CitationMetrics.argmax([.nan, 0.2]), 1)
        let s = CitationMetrics.score([0.3, 0.3, 0.1], cited: [1])
        XCTAssertFalse(s.agree)
        XCTAssertNil(s.onTrueSource)
    }

    func testEverythingCitedGivesNaNCorrelations() {
        let s = CitationMetrics.score([0.2, 0.7], cited: [0, 1])
        XCTAssertTrue(s.agree)
        XCTAssertTrue(s.spearman.isNaN)
        XCTAssertTrue(s.pointBiserial.isNaN)
    }

    func testMeanVectorOverHeadSets() {
        // 1 layer x 2 heads x 3 passages
        let o = StatementObservation(passages: 3, cited: [0], trueSource: 0, mass: [0.6, 0.2, 0.1, 0.1, 0.5, 0.2])
        assertClose(CitationMetrics.meanVector(o, heads: 2, set: nil), [0.35, 0.35, 0.15])
        assertClose(CitationMetrics.meanVector(o, heads: 2, set: [HeadIndex(layer: 0, head: 1)]), [0.1, 0.5, 0.2])
        assertClose(CitationMetrics.headVector(o, layer: 0, head: 0, heads: 2), [0.6, 0.2, 0.1])
    }

    // MARK: summary

    /// Three statements, 1 layer x 2 heads, 3 passages (mass per head):
    /// A cites 0, source 0: h0 [.6 .2 .1] h1 [.1 .5 .2] -> mean [.35 .35 .15], argmax 0 (tie): agree
    /// B cites 2, source 2: h0 [.1 .2 .5] h1 [.3 .2 .1] -> mean [.2 .2 .3], argmax 2: agree
    /// C cites 1, source 0 (wrong): h0 [.7 .1 .1] h1 [.1 .6 .1] -> mean [.4 .35 .1], argmax 0 = source
    func fixture() -> [StatementObservation] {
        [
            StatementObservation(
                passages: 3, cited: [0], trueSource: 0, mass: [0.6, 0.2, 0.1, 0.1, 0.5, 0.2], spanTokens: [10, 10, 10]),
            StatementObservation(
                passages: 3, cited: [2], trueSource: 2, mass: [0.1, 0.2, 0.5, 0.3, 0.2, 0.1], spanTokens: [10, 10, 10]),
            StatementObservation(
                passages: 3, cited: [1], trueSource: 0, mass: [0.7, 0.1, 0.1, 0.1, 0.6, 0.1], spanTokens: [10, 10, 10])
        ]
    }

    func testSummaryHandComputed() throws {
        let s = CitationMetrics.summarize(
            fixture(), layers: 1, heads: 2, retrieval: [HeadIndex(layer: 0, head: 1)],
            resamples: 200, seed: 1)
        XCTAssertEqual(s.statements, 3)
        XCTAssertEqual(s.consistent, 2)
        XCTAssertEqual(s.wrong, 1)
        XCTAssertEqual(s.chanceAgreement, 1.0 / 3, accuracy: 1e-12)
        // all heads
        XCTAssertEqual(s.allHeads.agreement.estimate, 1)
        XCTAssertEqual(s.allHeads.agreementAllStatements, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(s.allHeads.wrongFollowsTrueSource.estimate, 1)
        XCTAssertEqual(s.allHeads.wrongFollowsCitation.estimate, 0)
        XCTAssertEqual(s.allHeads.scores.map(\.argmax), [0, 2, 0])
        // per head: h0 agrees on A and B, h1 on neither
        XCTAssertEqual(s.headAgreement, [1, 0])
        XCTAssertEqual(s.headWrongFollowsTrueSource, [1, 0])
        XCTAssertEqual(s.headWrongFollowsCitation, [0, 1])
        XCTAssertEqual(s.ranking, [HeadIndex(layer: 0, head: 0), HeadIndex(layer: 0, head: 1)])
        // h0 point-biserial on A: indicator [1,0,0] vs [.6,.2,.1]: sxy = .3, sxx = 2/3, syy = .14.
        // On B: indicator [0,0,1] vs [.1,.2,.5] (mean .8/3): sxy = .7/3, sxx = 2/3, syy = .26/3.
        let pbA = 0.3 / (2.0 / 3 * 0.14).squareRoot()
        let pbB = (0.7 / 3) / (2.0 / 3 * (0.26 / 3)).squareRoot()
        XCTAssertEqual(s.headMeanPointBiserial[0], (pbA + pbB) / 2, accuracy: 1e-5)
        // retrieval set = head 1
        let r = try XCTUnwrap(s.retrievalHeads)
        XCTAssertEqual(r.agreement.estimate, 0)
        XCTAssertEqual(r.wrongFollowsCitation.estimate, 1)
        // best head = h0; split half: chosen on A, tested on B (hit) and vice versa
        XCTAssertEqual(s.bestHead.agreement.estimate, 1)
        XCTAssertEqual(s.bestHeadHeldOutAgreement, 1)
        // equal span lengths: the per-token readout agrees with the raw one
        XCTAssertEqual(s.allHeadsPerToken?.scores.map(\.argmax), [0, 2, 0])
    }

    func testRankingTiesByPointBiserialThenIndex() {
        let r = CitationMetrics.rank(
            agreement: [0.5, 0.5, 0.9, 0.5], pointBiserial: [0.1, 0.3, 0.0, .nan], layers: 2, heads: 2)
        XCTAssertEqual(r.map(\.description), ["1.0", "0.1", "0.0", "1.1"])
    }

    func testBootstrapIntervalsBracketEstimates() {
        var obs: [StatementObservation] = []
        for i in 0..<40 {
            let hit = i % 4 != 0 // 75% agreement
            obs.append(
                StatementObservation(passages: 2, cited: [0], trueSource: 0, mass: hit ? [0.8, 0.1] : [0.1, 0.8]))
        }
        let s = CitationMetrics.summarize(obs, layers: 1, heads: 1, resamples: 500, seed: 3)
        XCTAssertEqual(s.allHeads.agreement.estimate, 0.75)
        XCTAssertLessThan(s.allHeads.agreement.lower, 0.75)
        XCTAssertGreaterThan(s.allHeads.agreement.upper, 0.75)
        XCTAssertTrue(s.allHeads.wrongFollowsTrueSource.estimate.isNaN) // no wrong citations
        XCTAssertTrue(s.headWrongFollowsTrueSource[0].isNaN)
        let t = CitationMetrics.summarize(obs, layers: 1, heads: 1, resamples: 500, seed: 3)
        XCTAssertEqual(s.allHeads.agreement, t.allHeads.agreement) // same seed, same interval
    }

    // MARK: citation recall / precision (exact-match judge)

    func testCitationQualityHandComputed() {
        let passages = ["The cat sat on the mat.", "Dogs bark loudly."]
        let j = ExactMatchJudge()
        func q(_ st: [CitationResponse.Statement]) -> CitationQuality {
            CitationMetrics.citationQuality(
                CitationResponse(passages: passages, statements: st, gold: "cat sat"), judge: j)
        }
        XCTAssertEqual(q([.init(text: "cat sat", citations: [1])]), CitationQuality(recall: 1, precision: 1, f1: 1))
        XCTAssertEqual(q([.init(text: "cat sat", citations: [2])]), CitationQuality(recall: 0, precision: 0, f1: 0))
        // [2] is neither sufficient alone nor necessary: precision 1/2, F1 = 2 * 1 * .5 / 1.5
        let both = q([.init(text: "cat sat", citations: [1, 2])])
        XCTAssertEqual(both.recall, 1)
        XCTAssertEqual(both.precision, 0.5)
        XCTAssertEqual(both.f1, 2.0 / 3, accuracy: 1e-12)
        // out-of-range citation: irrelevant
        XCTAssertEqual(q([.init(text: "cat sat", citations: [1, 5])]).precision, 0.5)
        // an uncited statement counts against recall only
        let two = q([.init(text: "cat sat", citations: [1]), .init(text: "something else", citations: [])])
        XCTAssertEqual(two.recall, 0.5)
        XCTAssertEqual(two.precision, 1)
        XCTAssertEqual(two.f1, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(q([]), CitationQuality(recall: 0, precision: 0, f1: 0))
        // a statement copied from a passage is supported without gold; matching is normalized
        XCTAssertTrue(j.supports(passages: passages, statement: "DOGS   bark", gold: nil))
        XCTAssertFalse(j.supports(passages: passages, statement: "dogs sat", gold: nil))
    }

    /// With a judge that needs two passages together, a citation that is not sufficient alone
    /// but whose removal breaks support is relevant (L-CiteEval's second clause).
    func testPrecisionNecessityClause() {
        struct BothJudge: CitationJudge {
            var name: String { "both" }
            var rule: String { "needs passages A and B" }
            func supports(passages: [String], statement: String, gold: String?) -> Bool {
                passages.contains("A") && passages.contains("B")
            }
        }
        let r = CitationResponse(
            passages: ["A", "B", "C"], statements: [.init(text: "x", citations: [1, 2, 3])], gold: nil)
        let q = CitationMetrics.citationQuality(r, judge: BothJudge())
        XCTAssertEqual(q.recall, 1)
        XCTAssertEqual(q.precision, 2.0 / 3, accuracy: 1e-12) // A and B necessary, C not
    }

    func assertClose(_ a: [Double], _ b: [Double], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-6, file: file, line: line) }
    }
}
