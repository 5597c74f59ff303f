import Foundation
import TraceStore

/// How a sweep's trials are split into shards, and what a shard run file records about it.
///
/// Balance is by token cost, not trial count: `assign` is longest-processing-time greedy (trials
/// by cost, highest first, ties by trial index; each goes to the shard with the least cost so
/// far, ties to the lowest shard). It only uses integers, so every machine computes the same
/// split from the same plan, and a shard's cost is within the largest trial's cost of the mean.
public enum ShardPlan {
    /// Cost of one trial in token units: its prompt tokens `p` (prefill, linear), attention
    /// (`p^2 / 8000`: quadratic, equal to the linear part at 8k tokens) and `decodeSteps` steps
    /// of greedy decoding at ~10 prefill tokens each. The sweep's progress estimate uses the same
    /// weights.
    public static func trialCost(promptTokens p: Int, decodeSteps d: Int) -> Int {
        p + p * p / 8000 + 10 * d
    }

    /// The trial indices of every shard (each list ascending), for `costs[i]` = cost of trial i.
    public static func assign(costs: [Int], shards n: Int) -> [[Int]] {
        precondition(n >= 1)
        let byCost = costs.indices.sorted { costs[$0] != costs[$1] ? costs[$0] > costs[$1] : $0 < $1 }
        var load = [Int](repeating: 0, count: n)
        var out = [[Int]](repeating: [], count: n)
        for i in byCost {
            var best = 0
            for s in 1..<max(n, 1) where load[s] < load[best] { best = s }
            load[best] += costs[i]
            out[best].append(i)
        }
        return out.map { $0.sorted() }
    }

    /// The trials of `shard` (ascending).
    public static func trials(costs: [Int], shard: ShardSpec) -> [Int] {
        assign(costs: costs, shards: shard.count)[shard.index]
    }
}

/// The root attributes of a shard run file (docs/run-file.md, "Shards"):
///
/// ```
/// @shard         str     "K/N" (also part of the resume identity)
/// @shard_index   int64   K (0-based)
/// @shard_count   int64   N
/// @shard_trials  int64[] trial indices of this shard, ascending
/// @plan_order    int64[] every trial index of the plan, in the order a single run executes them
///                        (the record order `headlight merge` restores)
/// @host          str     host name of the machine that ran the shard
/// ```
public struct ShardInfo: Equatable, Sendable {
    public var spec: ShardSpec
    public var trials: [Int]
    public var planOrder: [Int]
    public var host: String

    public init(spec: ShardSpec, trials: [Int], planOrder: [Int], host: String = ShardInfo.hostName()) {
        self.spec = spec
        self.trials = trials
        self.planOrder = planOrder
        self.host = host
    }

    public enum Attr {
        public static let shard = "shard"
        public static let index = "shard_index"
        public static let count = "shard_count"
        public static let trials = "shard_trials"
        public static let planOrder = "plan_order"
        public static let host = "host"
        /// Every root attribute a shard has and a single run does not.
        public static let all = [shard, index, count, trials, planOrder, host]
    }

    public func write(to file: H5File) throws {
        try file.setAttribute(Attr.shard, spec.description)
        try file.setAttribute(Attr.index, spec.index)
        try file.setAttribute(Attr.count, spec.count)
        try file.setAttribute(Attr.trials, trials)
        try file.setAttribute(Attr.planOrder, planOrder)
        try file.setAttribute(Attr.host, host)
    }

    /// The shard attributes of `file`; nil when it has none (not a shard).
    public static func read(from file: H5File) throws -> ShardInfo? {
        guard try file.hasAttribute(Attr.index) else { return nil }
        let spec = try ShardSpec(index: try file.intAttribute(Attr.index), count: try file.intAttribute(Attr.count))
        return ShardInfo(
            spec: spec, trials: try file.intsAttribute(Attr.trials), planOrder: try file.intsAttribute(Attr.planOrder),
            host: try file.attributeIfPresent(Attr.host)?.stringValue ?? "")
    }

    /// This machine's host name (`gethostname`).
    public static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "unknown" }
        return String(cString: buf)
    }
}
