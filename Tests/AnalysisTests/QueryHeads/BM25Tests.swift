import Foundation
import XCTest

@testable import Analysis

/// BM25 against rank-bm25 (Tests/Fixtures/bm25/make_fixtures.py), the ranking metrics and
/// Kendall's tau against hand computations and scipy.
final class BM25Tests: XCTestCase {
    struct Case: Decodable {
        var name: String
        var documents: [String]
        var query: String
        var document_tokens: [[String]]
        var query_tokens: [String]
        var scores: [Double]
        var idf: [String: Double]
        var average_idf: Double
    }

    struct Fixture: Decodable {
        var k1: Double
        var b: Double
        var epsilon: Double
        var cases: [Case]
    }

    func testMatchesRankBM25() throws {
        let url = RepoPaths.root.appendingPathComponent("Tests/Fixtures/bm25/bm25.json")
        let fx = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        XCTAssertGreaterThanOrEqual(fx.cases.count, 10)
        var maxDiff = 0.0
        for c in fx.cases {
            XCTAssertEqual(c.documents.map(BM25.tokenize), c.document_tokens, "\(c.name): document tokens")
            XCTAssertEqual(BM25.tokenize(c.query), c.query_tokens, "\(c.name): query tokens")
            let bm = BM25(texts: c.documents, k1: fx.k1, b: fx.b, epsilon: fx.epsilon)
            let s = bm.scores(query: c.query)
            XCTAssertEqual(s.count, c.scores.count, c.name)
            for (a, b) in zip(s, c.scores) { maxDiff = max(maxDiff, abs(a - b)) }
            XCTAssertEqual(bm.averageIDF, c.average_idf, accuracy: 1e-12, c.name)
            XCTAssertEqual(Set(bm.idf.keys), Set(c.idf.keys), c.name)
            for (w, v) in c.idf { XCTAssertEqual(bm.idf[w]!, v, accuracy: 1e-12, "\(c.name): idf(\(w))") }
        }
        print(
            "BM25 vs rank-bm25: \(fx.cases.count) cases, first scores \(fx.cases[0].scores.prefix(3)), max |diff| \(maxDiff)"
        )
        XCTAssertLessThan(maxDiff, 1e-12)
    }

    func testRankingMetricsByHand() {
        // gold (index 2) second of four, no ties
        let s = [0.9, 0.1, 0.5, 0.3]
        XCTAssertEqual(RankingMetrics.recall(s, gold: 2, k: 1), 0)
        XCTAssertEqual(RankingMetrics.recall(s, gold: 2, k: 2), 1)
        XCTAssertEqual(RankingMetrics.ndcg(s, gold: 2, k: 1), 0)
        XCTAssertEqual(RankingMetrics.ndcg(s, gold: 2, k: 3), 1 / log2(3.0), accuracy: 1e-15)
        XCTAssertEqual(RankingMetrics.reciprocalRank(s, gold: 2), 0.5)
        // all tied: chance
        let t = [1.0, 1.0, 1.0, 1.0]
        XCTAssertEqual(RankingMetrics.recall(t, gold: 0, k: 1), 0.25)
        XCTAssertEqual(RankingMetrics.recall(t, gold: 3, k: 3), 0.75)
        XCTAssertEqual(RankingMetrics.rank(t, gold: 1), 2.5)
        XCTAssertEqual(
            RankingMetrics.ndcg(t, gold: 0, k: 2), (1 + 1 / log2(3.0)) / 4, accuracy: 1e-15)
        // NaN ranks last
        XCTAssertEqual(RankingMetrics.recall([.nan, 0, -1], gold: 0, k: 2), 0)
        XCTAssertEqual(RankingMetrics.recall([.nan, 0, -1], gold: 2, k: 2), 1)
    }

    func testKendallTauAndOverlap() {
        // scipy.stats.kendalltau([1,2,2,3,5,4,0], [2,1,2,3,6,6,1]).statistic
        let x: [Double] = [1, 2, 2, 3, 5, 4, 0], y: [Double] = [2, 1, 2, 3, 6, 6, 1]
        XCTAssertEqual(Statistics.kendallTau(x, y), 0.7905694150420949, accuracy: 1e-12)
        XCTAssertEqual(Statistics.kendallTau(x, x.map { -$0 }), -1, accuracy: 1e-12)
        XCTAssertTrue(Statistics.kendallTau([1, 1, 1], [1, 2, 3]).isNaN)
        XCTAssertEqual(Statistics.topOverlap([5, 4, 3, 2, 1], [1, 4, 5, 0, 0], n: 2), 1)
        XCTAssertEqual(Statistics.topOverlap([5, 4, 3, 2, 1], [5, 4, 0, 0, .nan], n: 3), 3) // ties: lower index
        XCTAssertEqual(Statistics.topOverlap([5, 4, 3, 2, 1], [5, 4, 0, 1, .nan], n: 3), 2)
    }

    func testQRHeadOutlierMaskAndSetScores() {
        // mean -0.1, sample std sqrt(108.9 / 9) = 3.4785: threshold -7.057 drops -10
        let x: [Float] = [1, 1, 1, 1, 1, 1, 1, 1, 1, -10]
        XCTAssertEqual(QueryHeadsRunner.maskedSum(x[...]), 9, accuracy: 1e-6)
        // nothing below the threshold: the plain sum
        XCTAssertEqual(QueryHeadsRunner.maskedSum([0.5, 0.25, -0.25][...]), 0.5, accuracy: 1e-7)
        XCTAssertEqual(QueryHeadsRunner.maskedSum([0.75][...]), 0.75)
        // Two heads, passages of 2 and 10 tokens: per-token scores summed over the set first
        let item = CitationItem(id: "t", passages: ["a", "b"], question: "q", source: 1)
        let h0: [Float] = [0.1, 0.2] + [Float](repeating: 0.5, count: 9) + [-5]
        let h1: [Float] = [0.3, 0.0] + [Float](repeating: 0.5, count: 9) + [-5]
        let r = QueryHeadsItemResult(
            item: item, gold: 1, detect: false, promptTokens: 20, queryTokens: 4, nullQueryTokens: 3,
            passageSpans: [2..<4, 5..<15], headScores: [], headMass: [], answerLogProb: nil, calibrated: [h0, h1],
            seconds: 0)
        let both = QueryHeadsRunner.setScores(r, heads: [0, 1])
        XCTAssertEqual(both[0], 0.6, accuracy: 1e-6) // 0.4 + 0.2, no outlier among two
        XCTAssertEqual(both[1], 9, accuracy: 1e-5) // nine 1.0, the -10 masked
        XCTAssertEqual(QueryHeadsRunner.setScores(r, heads: [0])[0], 0.3, accuracy: 1e-6)
    }
}
