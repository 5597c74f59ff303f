import Foundation
import Inference
import TraceStore

/// The `/kv_policy` group of a run file (the one writer and the one reader).
///
/// ```
/// /kv_policy                 @analysis "kv_policy", @analysis_version 1, @suite, @needles, @trials, @metrics,
///                            @condition_names, @condition_kinds (baseline | uniform | retrieval | random | heads),
///                            @condition_rest (str[]: the policy of the non-full heads, e.g. "window:128+4"),
///                            @condition_full_heads (str[] "L.H,L.H,..."), @condition_n (int64[]: full heads),
///                            @condition_control (int64[]: random set 1..., else 0), @seed, @bootstrap_resamples,
///                            @level, @perplexity_tokens, @perplexity_passage, @perplexity_block, @context_tokens
///                            (longest prompt + max_new_tokens), @memory_contexts (int64[]), @bytes_per_value,
///                            @memory_formula, @scores_file, @threshold, @seconds
///   records/            one row per (trial, condition), execution order, checkpointed: trial_index, condition
///                       int64; response str; generated_tokens int64; stop str; rouge1_recall_x100,
///                       needlebench_v1 (NaN: needle without keyword), exact_recovery_x100 float64;
///                       prefilled_tokens int64; seconds float64
///   perplexity_records/ condition int64, mean_nll float64 (nats/token), tokens int64,
///                       block_nll float64 [record, block] (mean NLL of each block of @perplexity_block positions)
///   when finished:
///   trial_scores        float64 [condition, trial, metric]
///   mean, ci_lower, ci_upper  float64 [condition, metric]   percentile bootstrap over trials
///   cells               float64 [condition, metric, length, depth]  mean over needles (@lengths, @depths)
///   perplexity, perplexity_lower, perplexity_upper  float64 [condition]  exp(mean NLL), block bootstrap
///   kv_bytes            int64 [condition, context]  KV-cache bytes at @contexts (the run's, then 32k, 128k)
///   difference_vs_baseline  float64 [condition, metric, 4]  paired bootstrap: estimate, lower, upper, p
///   difference_vs_random    float64 [condition, metric, 4]  retrieval/heads conditions minus the mean of
///                                                             their random sets (same N, same rest); NaN otherwise
/// ```
public final class KVPolicyRunFile {
    public static let group = "kv_policy"
    public static let analysisVersion = 1
    public static let memoryFormula =
        "bytes(T) = sum over layers l and KV heads g of 2 (K and V) x d_head x bytes_per_value x n(l, g, T); "
        + "n = max over the query heads of group g of: full, topk -> T (topk keeps every key to choose from); "
        + "window W+S -> min(T, W + S); drop -> 0; each capped by the layer's own sliding window"

    let root: H5Group
    let records: RecordTable
    let perplexity: RecordTable
    let runner: KVPolicyRunner
    let trials: Int
    /// Columns of `perplexity_records/block_nll`.
    let blocks: Int

    static let recordColumns = AblationRunFile.baseRecordColumns

    static func perplexityColumns(blocks: Int) -> [RecordTable.Column] {
        [
            .init("condition", .int64), .init("mean_nll", .float64), .init("tokens", .int64),
            .init("block_nll", .float64Block([blocks]), axes: ["record", "block"])
        ]
    }

    private init(
        root: H5Group, records: RecordTable, perplexity: RecordTable, runner: KVPolicyRunner, trials: Int, blocks: Int
    ) {
        self.blocks = blocks
        self.root = root
        self.records = records
        self.perplexity = perplexity
        self.runner = runner
        self.trials = trials
    }

    static func blocks(tokens: Int, block: Int) -> Int { max(1, (tokens - 1) / block) }

    static func open(
        _ file: H5File, runner: KVPolicyRunner, trials: Int, heldOut: HeldOutPassage?, contextTokens: Int
    ) throws -> KVPolicyRunFile {
        let o = runner.options, cs = runner.conditions
        var attrs: [String: H5AttributeValue] = [
            "suite": .string(try RetrievalRunFile.suiteJSON(runner.probe.suite)),
            "needles": .string(try RetrievalRunFile.needlesJSONL(runner.probe.needles)),
            "condition_names": .strings(cs.map(\.name)),
            "condition_kinds": .strings(cs.map(\.kind.rawValue)),
            "condition_rest": .strings(cs.map(\.rest.description)),
            "condition_full_heads": .strings(cs.map(\.headList)),
            "condition_n": .ints(cs.map { Int64($0.fullHeads.count) }),
            "condition_control": .ints(cs.map { Int64($0.control) }),
            "trials": .int(Int64(trials)),
            "perplexity_tokens": .int(Int64(heldOut?.tokens.count ?? 0)),
            "perplexity_block": .int(Int64(o.perplexityBlock)),
            "context_tokens": .int(Int64(contextTokens)),
            "memory_contexts": .ints(([contextTokens] + o.memoryContexts).map(Int64.init)),
            "bytes_per_value": .int(Int64(o.bytesPerValue))
        ]
        for (k, v) in runner.attributes { attrs[k] = v }
        let (g, created) = try SweepGroup.openOrCreate(
            file, group, analysis: "kv_policy", version: analysisVersion, attributes: attrs)
        if created {
            try g.setAttribute("metrics", AblationMetric.allCases.map(\.name))
            try g.setAttribute("seed", Int64(bitPattern: o.seed))
            try g.setAttribute("bootstrap_resamples", o.bootstrapResamples)
            try g.setAttribute("level", o.level)
            try g.setAttribute("memory_formula", memoryFormula)
            if let h = heldOut { try g.setAttribute("perplexity_passage", h.description) }
        }
        let rec = try RecordTable(group: try g.requireGroup("records"), columns: recordColumns)
        let nb = blocks(tokens: heldOut?.tokens.count ?? 2, block: o.perplexityBlock)
        let ppl = try RecordTable(
            group: try g.requireGroup("perplexity_records"), columns: perplexityColumns(blocks: nb))
        return KVPolicyRunFile(root: g, records: rec, perplexity: ppl, runner: runner, trials: trials, blocks: nb)
    }

    func append(_ r: AblationRecord) throws {
        try records.append([
            "trial_index": .int(r.trialIndex), "condition": .int(r.condition), "response": .string(r.response),
            "generated_tokens": .int(r.generatedTokens), "stop": .string(r.stop),
            "rouge1_recall_x100": .double(r.metrics[0]), "needlebench_v1": .double(r.metrics[1]),
            "exact_recovery_x100": .double(r.metrics[2]), "prefilled_tokens": .int(r.prefilledTokens),
            "seconds": .double(r.seconds)
        ])
    }

    /// One condition's per-token NLLs: their mean, and the means of complete blocks of `block` positions.
    func appendPerplexity(condition: Int, nll: [Double], block: Int) throws {
        let nb = Self.blocks(tokens: nll.count + 1, block: block)
        let means = (0..<nb).map { b in Statistics.mean(Array(nll[(b * block)..<min(nll.count, (b + 1) * block)])) }
        try perplexity.append([
            "condition": .int(condition), "mean_nll": .double(Statistics.mean(nll)), "tokens": .int(nll.count),
            "block_nll": .doubles(means)
        ])
    }

    func readRecords() throws -> [AblationRecord] {
        try AblationRunFile.readRecords(records.group, causalTargets: 0, allowIncomplete: false)
    }

    public struct Perplexity: Sendable {
        public var meanNLL: Double
        public var tokens: Int
        public var blocks: [Double]
    }

    func readPerplexity() throws -> [Int: Perplexity] {
        try Self.readPerplexity(perplexity.group, blocks: blocks)
    }

    static func readPerplexity(_ g: H5Group, blocks: Int) throws -> [Int: Perplexity] {
        let t = try RecordTable.read(group: g, columns: perplexityColumns(blocks: blocks))
        var out: [Int: Perplexity] = [:]
        let c = t.ints("condition"), m = t.doubles("mean_nll"), n = t.ints("tokens"), b = t.blocks("block_nll")
        for i in 0..<t.count { out[c[i]] = Perplexity(meanNLL: m[i], tokens: n[i], blocks: b[i]) }
        return out
    }

    func writeSummary(_ r: KVPolicyResult) throws {
        let C = r.conditions.count, M = AblationMetric.allCases.count, T = trials
        let names = [
            "perplexity", "perplexity_lower", "perplexity_upper", "kv_bytes", "difference_vs_baseline",
            "difference_vs_random"
        ]
        for n in names where try root.exists(n) { try root.remove(n) }
        try ConditionSweepDatasets.writeScores(
            into: root, records: r.records, trials: T, means: r.conditions.map(\.means),
            cells: r.conditions.map(\.cells), lengths: r.lengths, depths: r.depths, trialNote: nil)
        func put(_ name: String, _ values: [Double], _ shape: [Int], _ axes: [String]) throws {
            try root.createDataset(name, data: values, shape: shape).setAttribute("axes", axes)
        }
        try put("perplexity", r.conditions.map { Foundation.exp($0.meanNLL) }, [C], ["condition"])
        try put("perplexity_lower", r.conditions.map { Foundation.exp($0.nllLower) }, [C], ["condition"])
        try put("perplexity_upper", r.conditions.map { Foundation.exp($0.nllUpper) }, [C], ["condition"])
        let X = r.conditions.first?.kvBytes.count ?? 0
        let kb = try root.createDataset(
            "kv_bytes", data: r.conditions.flatMap { $0.kvBytes.map(Int64.init) }, shape: [C, X])
        try kb.setAttribute("axes", ["condition", "context"])
        try kb.setAttribute("contexts", ([r.contextTokens] + runner.options.memoryContexts).map(Int64.init))
        func diffs(
            _ name: String, _ pick: (KVPolicyConditionSummary) -> [PairedBootstrapResult]?, _ note: String
        )
            throws
        {
            var v: [Double] = []
            for c in r.conditions {
                let ds = pick(c)
                for m in 0..<M {
                    if let d = ds?[m] {
                        v += [d.difference.estimate, d.difference.lower, d.difference.upper, d.pValue]
                    } else {
                        v += [.nan, .nan, .nan, .nan]
                    }
                }
            }
            let x = try root.createDataset(name, data: v, shape: [C, M, 4])
            try x.setAttribute("axes", ["condition", "metric", "estimate_lower_upper_p"])
            try x.setAttribute("note", note)
        }
        try diffs(
            "difference_vs_baseline", { $0.vsBaseline.isEmpty ? nil : $0.vsBaseline },
            "paired bootstrap over trials of condition - baseline (every head full)")
        try diffs(
            "difference_vs_random", \.vsRandom,
            "paired bootstrap over trials of a retrieval/heads condition - the mean of its random sets "
                + "(same number of full heads, same rest policy); NaN for other conditions")
        try root.setAttribute("seconds", r.seconds)
    }

    // MARK: Reading

    /// A float64 dataset, flattened row-major.
    public typealias Matrix = SweepMatrix

    /// Everything a `/kv_policy` group holds.
    public struct Contents: Sendable {
        public var conditionNames: [String]
        public var conditionKinds: [String]
        public var conditionRest: [String]
        public var conditionFullHeads: [String]
        public var conditionN: [Int]
        public var conditionControl: [Int]
        public var metrics: [String]
        public var level: Double
        public var trials: Int
        public var contextTokens: Int
        public var memoryContexts: [Int]
        public var memoryFormula: String
        public var perplexityTokens: Int
        public var records: [AblationRecord]
        public var finished: Bool
        /// [condition, metric]
        public var mean: Matrix?
        public var ciLower: Matrix?
        public var ciUpper: Matrix?
        /// [condition, metric, length, depth]
        public var cells: Matrix?
        public var lengths: [Int]
        public var depths: [Double]
        /// [condition] (NaN without a passage)
        public var perplexity: [Double]?
        public var perplexityLower: [Double]?
        public var perplexityUpper: [Double]?
        /// [condition][context]
        public var kvBytes: [[Int]]?
        /// [condition, metric, 4]
        public var vsBaseline: Matrix?
        public var vsRandom: Matrix?
    }

    /// Reads the `/kv_policy` group of an open run file; nil if it has none. `allowIncomplete` reads
    /// an unfinished run (records only).
    public static func read(_ f: H5File, allowIncomplete: Bool = false) throws -> Contents? {
        guard try f.kind(of: group) != nil else { return nil }
        let g = try f.group(group)
        let reader = try ConditionSweepDatasets.Reader(f, g)
        let names = reader.names
        let C = names.count
        let metrics = try g.stringsAttribute("metrics")
        let M = metrics.count
        let records = try AblationRunFile.readRecords(
            try g.group("records"), causalTargets: 0, allowIncomplete: allowIncomplete)
        let finished = try g.kind(of: "mean") != nil
        if !finished && !allowIncomplete {
            throw TraceStoreError.invalidArgument(
                file: f.path, object: g.name, detail: "the KV-policy run did not finish (no summary datasets)")
        }
        var c = Contents(
            conditionNames: names, conditionKinds: try reader.strings("condition_kinds"),
            conditionRest: try reader.strings("condition_rest"),
            conditionFullHeads: try reader.strings("condition_full_heads"),
            conditionN: try reader.ints("condition_n"),
            conditionControl: try reader.ints("condition_control"),
            metrics: metrics, level: try g.doubleAttribute("level"), trials: try g.intAttribute("trials"),
            contextTokens: try g.intAttribute("context_tokens"), memoryContexts: try g.intsAttribute("memory_contexts"),
            memoryFormula: try g.stringAttribute("memory_formula"),
            perplexityTokens: try g.intAttribute("perplexity_tokens"), records: records, finished: finished,
            lengths: [], depths: [])
        guard finished else { return c }
        func matrix(_ name: String, _ shape: [Int]) throws -> Matrix { try reader.matrix(name, shape)! }
        try reader.readScores(into: &c, metrics: M)
        c.perplexity = try matrix("perplexity", [C]).values
        c.perplexityLower = try matrix("perplexity_lower", [C]).values
        c.perplexityUpper = try matrix("perplexity_upper", [C]).values
        let X = c.memoryContexts.count
        let kb = try g.dataset("kv_bytes")
        try kb.requireShape([C, X])
        let flat = C * X == 0 ? [] : try kb.read(Int64.self).map(Int.init)
        c.kvBytes = (0..<C).map { Array(flat[($0 * X)..<(($0 + 1) * X)]) }
        c.vsBaseline = try matrix("difference_vs_baseline", [C, M, 4])
        c.vsRandom = try matrix("difference_vs_random", [C, M, 4])
        return c
    }
}
