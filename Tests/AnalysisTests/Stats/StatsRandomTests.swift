import XCTest
@testable import Analysis
import Inference

/// The seeded generator and the shuffle / sample helpers against a Python re-implementation
/// (make_fixtures.py), so the streams are pinned independently of Swift's standard library.
final class StatsRandomTests: XCTestCase {
    func testStreamsMatchPythonReimplementation() {
        let sec = StatsFixture.dict(StatsFixture.section("prng"))
        var g = SeededGenerator(seed: 42)
        let raw = (0..<8).map { _ in g.next() }
        XCTAssertEqual(raw, (sec["seed42_raw"] as! [String]).map { UInt64($0)! }, "xoshiro256** seed 42")

        g = SeededGenerator(seed: 7)
        for entry in StatsFixture.list(sec["seed7_bounded"]).map(StatsFixture.list) {
            let n = Int(StatsFixture.num(entry[0]))
            let got = (0..<12).map { _ in SeededRandom.uniformInt(below: n, using: &g) }
            XCTAssertEqual(got, StatsFixture.ints(entry[1]), "uniformInt(below: \(n))")
        }
        g = SeededGenerator(seed: 7)
        XCTAssertEqual((0..<5).map { _ in SeededRandom.unitDouble(using: &g) }, StatsFixture.nums(sec["seed7_doubles"]))

        g = SeededGenerator(seed: 123)
        XCTAssertEqual(SeededRandom.permutation(10, using: &g), StatsFixture.ints(sec["seed123_shuffle10"]))
        g = SeededGenerator(seed: 123)
        XCTAssertEqual(
            SeededRandom.sampleIndices(from: 100, count: 10, using: &g), StatsFixture.ints(sec["seed123_sample_100_10"])
        )
        g = SeededGenerator(seed: 99)
        XCTAssertEqual(SeededRandom.bootstrapIndices(9, using: &g), StatsFixture.ints(sec["seed99_bootstrap9"]))
    }

    func testShuffleAndSampleProperties() {
        var g = SeededGenerator(seed: 1)
        let p = SeededRandom.permutation(50, using: &g)
        XCTAssertEqual(p.sorted(), Array(0..<50))
        XCTAssertNotEqual(p, Array(0..<50))
        var g2 = SeededGenerator(seed: 1)
        XCTAssertEqual(SeededRandom.permutation(50, using: &g2), p, "same seed, same permutation")

        let s = SeededRandom.sampleIndices(from: 1_000_000_000, count: 20, using: &g)
        XCTAssertEqual(Set(s).count, 20)
        XCTAssertTrue(s.allSatisfy { $0 >= 0 && $0 < 1_000_000_000 })
        XCTAssertEqual(SeededRandom.sampleIndices(from: 5, count: 5, using: &g).sorted(), [0, 1, 2, 3, 4])
        XCTAssertEqual(SeededRandom.sample(["a", "b", "c"], count: 0, using: &g), [])

        // Sampling k of n by partial Fisher-Yates = the first k of the full shuffle drawn the
        // other way is not required; but every element must be equally likely: a coarse check.
        var counts = [Int](repeating: 0, count: 10)
        var h = SeededGenerator(seed: 2024)
        for _ in 0..<20_000 { for i in SeededRandom.sampleIndices(from: 10, count: 3, using: &h) { counts[i] += 1 } }
        for c in counts { XCTAssertEqual(Double(c), 6000, accuracy: 300) } // ~4 sigma
        var first = [Int](repeating: 0, count: 6)
        for _ in 0..<30_000 { first[SeededRandom.permutation(6, using: &h)[0]] += 1 }
        for c in first { XCTAssertEqual(Double(c), 5000, accuracy: 300) }
    }
}
