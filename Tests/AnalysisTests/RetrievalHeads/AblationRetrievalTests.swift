import Foundation
import XCTest
import Inference
@testable import Analysis

/// Control sets of the ablation experiment and the held-out passage.
final class AblationRetrievalTests: XCTestCase {
    /// 3 layers x 4 heads; heads 0.0, 1.2 and 2.3 are retrieval heads (> 0.1), 0.1 sits exactly on the threshold.
    let scores = RetrievalHeadScores(
        layers: 3, heads: 4,
        scores: [
            0.9, 0.1, 0, 0,
            0, 0.05, 0.5, 0,
            0, 0, 0.02, 0.3
        ], countedTrials: 5)

    func testControlSetsComeFromNonRetrievalHeadsOutsideTheTarget() throws {
        let target = scores.top(4).map(\.head) // 0.0, 1.2, 2.3, 0.1
        XCTAssertEqual(target.map(\.description), ["0.0", "1.2", "2.3", "0.1"])
        let sets = try AblationPlan.controlSets(scores: scores, threshold: 0.1, target: target, count: 5, seed: 42)
        XCTAssertEqual(sets.count, 5)
        let allowed = Set(scores.atOrBelow(0.1)).subtracting(target)
        XCTAssertEqual(allowed.count, 8)
        for s in sets {
            XCTAssertEqual(s.count, 4)
            XCTAssertEqual(Set(s).count, 4)
            XCTAssertTrue(Set(s).isSubset(of: allowed), "\(s)")
            XCTAssertEqual(s, s.sorted())
        }
        // Seeded: the same seed gives the same sets, another seed (almost surely) others.
        XCTAssertEqual(
            try AblationPlan.controlSets(scores: scores, threshold: 0.1, target: target, count: 5, seed: 42), sets)
        XCTAssertNotEqual(
            try AblationPlan.controlSets(scores: scores, threshold: 0.1, target: target, count: 5, seed: 43), sets)
        // The draws are SeededRandom.sample over the pool in (layer, head) order.
        var g = SeededGenerator(seed: 42)
        let pool = scores.atOrBelow(0.1).filter { !Set(target).contains($0) }
        XCTAssertEqual(SeededRandom.sample(pool, count: 4, using: &g).sorted(), sets[0])
    }

    func testControlSetsNeedAPoolLargeEnough() {
        let target = scores.top(7).map(\.head) // 3 retrieval heads + 4 others: 5 left in the pool
        XCTAssertThrowsError(
            try AblationPlan.controlSets(scores: scores, threshold: 0.1, target: target, count: 1, seed: 0))
        XCTAssertNoThrow(
            try AblationPlan.controlSets(scores: scores, threshold: 0.1, target: target, count: 0, seed: 0))
    }

    func testConditionsAreBaselineTargetControls() {
        let c = AblationPlan.conditions(
            target: [HeadIndex(layer: 1, head: 2)], targetName: "top_1",
            controls: [[HeadIndex(layer: 0, head: 3)], [HeadIndex(layer: 2, head: 0)]])
        XCTAssertEqual(c.map(\.name), ["baseline", "top_1", "control_1", "control_2"])
        XCTAssertEqual(c.map(\.kind), [.baseline, .target, .control, .control])
        XCTAssertEqual(c[1].headList, "1.2")
        XCTAssertEqual(c[0].heads, [])
    }

    func testHeldOutPassageLiesOutsideTheTrials() throws {
        let env = try RetrievalTestModel.load()
        let probe = try NIAHProbe.load(contentsOf: RepoPaths.probes.appendingPathComponent("default.json"))
        let p = try XCTUnwrap(try HeldOutPassage.make(probe: probe, tokenizer: env.tokenizer, count: 1024))
        XCTAssertEqual(p.tokens.count, 1024)
        XCTAssertEqual(p.meanReference.count, 1024)
        XCTAssertEqual(p.start + 1024, p.haystackTokens)
        XCTAssertGreaterThanOrEqual(p.meanReferenceStart, probe.suite.lengths.max()!)
        XCTAssertGreaterThan(p.haystackTokens, 70_000) // the Jargon File excerpt: 71,640 tokens
        XCTAssertNil(try HeldOutPassage.make(probe: probe, tokenizer: env.tokenizer, count: 40_000))
    }
}
