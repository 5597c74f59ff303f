import Analysis
import XCTest

/// `ShardPlan.assign` (LPT by token cost) and `ShardSpec.parse`.
final class ShardPlanTests: XCTestCase {
    func testAssignCoversOnceDeterministicAndBalanced() {
        let costs = (0..<60).map { ShardPlan.trialCost(promptTokens: 1000 * (1 + $0 % 4), decodeSteps: 50) }
        for n in 1...7 {
            let parts = ShardPlan.assign(costs: costs, shards: n)
            XCTAssertEqual(parts.flatMap { $0 }.sorted(), Array(0..<60))
            XCTAssertEqual(parts, ShardPlan.assign(costs: costs, shards: n))
            let loads = parts.map { $0.reduce(0) { $0 + costs[$1] } }
            XCTAssertLessThanOrEqual(loads.max()! - loads.min()!, costs.max()!, "n = \(n): \(loads)")
        }
        // Long trials are spread: two expensive trials never share one of two shards.
        XCTAssertEqual(ShardPlan.assign(costs: [100, 1, 100, 1], shards: 2), [[0, 1], [2, 3]])
    }

    func testParse() throws {
        XCTAssertEqual(try ShardSpec.parse("0/4"), try ShardSpec(index: 0, count: 4))
        XCTAssertEqual(try ShardSpec.parse("3/4").description, "3/4")
        for bad in ["4/4", "-1/4", "1/0", "1", "x/2", "1/2/3", ""] {
            XCTAssertThrowsError(try ShardSpec.parse(bad), bad)
        }
    }
}
