import Foundation
import XCTest
@testable import Analysis

/// Scoring against fixtures made by Tests/Fixtures/scoring/make_fixtures.py
/// from rouge_score 0.1.2 and NLTK's PorterStemmer.
final class ScoringTests: XCTestCase {
    func fixture(_ name: String) throws -> Data {
        try Data(contentsOf: RepoPaths.scoringFixtures.appendingPathComponent(name))
    }

    func testPorterStemsMatchNLTKInAllModes() throws {
        let text = try XCTUnwrap(String(data: fixture("porter_stems.tsv"), encoding: .utf8))
        var lines = text.split(separator: "\n").map {
            $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        }
        let header = lines.removeFirst()
        let modes = header.dropFirst().map { PorterStemmer.Mode(rawValue: $0)! }
        XCTAssertEqual(modes, [.nltkExtensions, .martinExtensions, .originalAlgorithm])
        XCTAssertGreaterThanOrEqual(lines.count, 2000)
        for (k, mode) in modes.enumerated() {
            let st = PorterStemmer(mode: mode)
            var bad: [String] = []
            for row in lines where st.stem(row[0]) != row[k + 1] {
                bad.append("\(row[0]): got \(st.stem(row[0])), NLTK \(row[k + 1])")
            }
            print(
                "Porter \(mode.rawValue): \(lines.count - bad.count)/\(lines.count) stems identical; first: "
                    + lines.prefix(5).map { "\($0[0])->\(st.stem($0[0]))" }.joined(separator: " "))
            XCTAssertEqual(bad, [], "\(mode.rawValue): \(bad.count) mismatches")
        }
    }

    func testPorterSpecialCases() {
        let st = PorterStemmer()
        let expect = [
            "skies": "sky", "dying": "die", "news": "news", "innings": "inning", "proceed": "proceed",
            "ties": "tie", "cries": "cri", "died": "die", "spied": "spi", "happy": "happi", "enjoy": "enjoy",
            "radically": "radic", "hopefully": "hope", "archaeology": "archaeolog", "is": "is",
            "generalizations": "gener", "oscillators": "oscil", "Caresses": "caress"
        ]
        for (w, s) in expect { XCTAssertEqual(st.stem(w), s, w) }
    }

    struct RougeCase: Decodable {
        var target: String
        var prediction: String
        var target_tokens: [String]
        var prediction_tokens: [String]
        var rouge1: [Double]
        var rouge2: [Double]
        var rouge1_recall_nostem: Double
    }

    func testRougeMatchesRougeScore() throws {
        let cases = try JSONDecoder().decode([RougeCase].self, from: fixture("rouge_cases.json"))
        XCTAssertGreaterThan(cases.count, 200)
        let scorer = RougeScorer(useStemmer: true)
        let plain = RougeScorer(useStemmer: false)
        var maxDiff = 0.0
        for c in cases {
            XCTAssertEqual(scorer.tokenize(c.target), c.target_tokens, c.target)
            XCTAssertEqual(scorer.tokenize(c.prediction), c.prediction_tokens, c.prediction)
            let r1 = scorer.rougeN(1, target: c.target, prediction: c.prediction)
            let r2 = scorer.rougeN(2, target: c.target, prediction: c.prediction)
            let got = [
                r1.precision, r1.recall, r1.fmeasure, r2.precision, r2.recall, r2.fmeasure,
                plain.rouge1Recall(target: c.target, prediction: c.prediction)
            ]
            let want = c.rouge1 + c.rouge2 + [c.rouge1_recall_nostem]
            for (g, w) in zip(got, want) {
                maxDiff = max(maxDiff, abs(g - w))
                XCTAssertEqual(g, w, accuracy: 1e-12, "\(c.target) | \(c.prediction)")
            }
        }
        print("ROUGE: \(cases.count) cases, first recall \(cases[0].rouge1[1]), max |diff| \(maxDiff)")
    }

    func testWuSuccessRule() {
        let a = "take a walk in Chaoyang Park and have a cup of Espresso in the evening"
        XCTAssertEqual(NeedleRetrievalScore.score(realNeedle: a, response: a), 100)
        XCTAssertTrue(
            NeedleRetrievalScore.succeeded(
                NeedleRetrievalScore.score(
                    realNeedle: a, response: "Taking walks in Chaoyang Park, and having Espresso in the evenings.")))
        XCTAssertFalse(NeedleRetrievalScore.succeeded(50))
        XCTAssertFalse(NeedleRetrievalScore.succeeded(NeedleRetrievalScore.score(realNeedle: a, response: "")))
    }

    struct BenchCase: Decodable {
        var prediction: String
        var reference: String
        var keyword: String
        var levenshtein: Int
        var v1: Double
        var v1_trim: Double?
        var v2: Double
    }

    func testNeedleBenchMatchesOpenCompassRules() throws {
        let cases = try JSONDecoder().decode([BenchCase].self, from: fixture("needlebench_cases.json"))
        XCTAssertGreaterThan(cases.count, 50)
        for c in cases {
            let p = PythonText.removingSpaces(c.prediction), r = PythonText.removingSpaces(c.reference)
            XCTAssertEqual(NeedleBench.levenshtein(p, r), c.levenshtein, c.prediction)
            let v1 = NeedleBench.scoreV1(prediction: c.prediction, reference: c.reference, keyword: c.keyword)
            XCTAssertEqual(v1.score, c.v1, accuracy: 1e-12, c.prediction)
            XCTAssertEqual(v1.editDistance, c.levenshtein)
            if let t = c.v1_trim {
                let v = NeedleBench.scoreV1(
                    prediction: c.prediction, reference: c.reference, keyword: c.keyword, trim: true)
                XCTAssertEqual(v.score, t, accuracy: 1e-12, "trim: \(c.prediction)")
            }
            XCTAssertEqual(NeedleBench.scoreV2(prediction: c.prediction, keyword: c.keyword), c.v2, c.prediction)
        }
    }

    func testLevenshtein() {
        XCTAssertEqual(NeedleBench.levenshtein("kitten", "sitting"), 3)
        XCTAssertEqual(NeedleBench.levenshtein("", "abc"), 3)
        XCTAssertEqual(NeedleBench.levenshtein("abc", ""), 3)
        XCTAssertEqual(NeedleBench.levenshtein("", ""), 0)
        XCTAssertEqual(NeedleBench.levenshtein("flaw", "lawn"), 2)
        XCTAssertEqual(NeedleBench.levenshtein("e\u{301}", "\u{e9}"), 2) // scalars, not characters
        // v1: keyword present -> 100; absent -> 0.2 x similarity; case matters.
        XCTAssertEqual(NeedleBench.scoreV1(prediction: "abc", reference: "abc", keyword: "Q").score, 20)
        let lower = NeedleBench.scoreV1(
            prediction: "chaoyang park", reference: "Chaoyang Park", keyword: "Chaoyang Park")
        XCTAssertFalse(lower.keywordFound)
        XCTAssertEqual(lower.editDistance, 2) // whitespace removed, case kept
        XCTAssertEqual(lower.score, 0.2 * 100 * (1 - 2.0 / 12), accuracy: 1e-12)
        XCTAssertEqual(NeedleBench.scoreV2(prediction: "in Chaoyang Park.", keyword: "Chaoyang Park"), 100)
    }

    func testNeedleRecovery() {
        let a = "Because he is a mean person and also he can't ride a horse or dive a car."
        XCTAssertEqual(
            NeedleRecovery.normalize(a), "because he is a mean person and also he can t ride a horse or dive a car")
        XCTAssertTrue(
            NeedleRecovery.recovered(
                realNeedle: a,
                response: "Answer: because he is a MEAN person, and also he can’t ride a horse or dive a car!"))
        XCTAssertFalse(NeedleRecovery.recovered(realNeedle: a, response: "because he is a mean person"))
        XCTAssertFalse(NeedleRecovery.recovered(realNeedle: "cup", response: "cupboard")) // word boundaries
        XCTAssertTrue(NeedleRecovery.recovered(realNeedle: "Café", response: "the CAFÉ\nis open"))
        XCTAssertFalse(NeedleRecovery.recovered(realNeedle: "...", response: "..."))
    }

    func testRougeTokenizerUnicodeCorners() {
        let s = RougeScorer()
        XCTAssertEqual(s.tokenize("İstanbul \u{212A}elvin"), ["i", "stanbul", "kelvin"])
        XCTAssertEqual(s.tokenize("Café—naïve, 3.14!"), ["caf", "na", "ve", "3", "14"])
        XCTAssertEqual(s.tokenize(""), [])
    }
}
