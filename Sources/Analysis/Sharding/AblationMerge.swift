import Foundation
import Inference
import TraceStore

extension AblationRunFile {
    /// Group attributes that differ between the shards of one plan (timing).
    static let mergeVolatile: Set = ["seconds"]

    /// Writes into `file` the `/ablation` group a single run of the plan writes: the first
    /// shard's group attributes and `condition_head_ids`, the records of every shard in the
    /// single run's execution order (trial-major in `plan_order` with decode-phase ablation,
    /// condition-major otherwise), the perplexity records by condition, and the summary
    /// (bootstrap CIs, cells, differences, causal graph) recomputed from the merged records by
    /// the run's own code (`AblationAnalysis`), so it agrees bit for bit.
    ///
    /// Plan items (`ShardInfo.trials`): trial t is item t with one record per condition; the
    /// perplexity of condition c is item T + c.
    public static func merge(_ set: ShardSet, into file: H5File) throws -> ShardMergeResult {
        let (groups, ref) = try set.groups(group, ignoring: mergeVolatile)
        let causal = ref["causal_targets"]?.stringsValue?.count ?? 0
        var stored: [[AblationRecord]] = [], storedPPL: [RecordTable.Rows] = []
        for (s, g) in zip(set.shards, groups) {
            stored.append(
                try readRecords(try g.group("records"), causalTargets: causal, allowIncomplete: !s.complete))
            storedPPL.append(
                try RecordTable.read(
                    group: try g.group("perplexity_records"), columns: perplexityColumns, allowIncomplete: !s.complete))
        }
        let refGroup = groups[0]
        let analysis = try AblationAnalysis.read(refGroup, file: set.shards[0].path)
        let C = analysis.conditions.count, T = analysis.cells.count
        let trialOrder = set.planOrder.filter { $0 < T }
        let pplItems = set.planOrder.filter { $0 >= T }
        func key(_ t: Int, _ c: Int) -> ShardRowKey { ShardRowKey(item: t, unit: c, unitName: "condition") }
        let expected =
            analysis.phase == InterventionPhase.decode.rawValue
            ? trialOrder.flatMap { t in (0..<C).map { key(t, $0) } }
            : (0..<C).flatMap { c in trialOrder.map { key($0, c) } }
        let (order, missing) = try set.mergeRows(
            recorded: stored.map { $0.map { key($0.trialIndex, $0.condition) } }, expected: expected)
        let (pplOrder, pplMissing) = try set.mergeRows(
            recorded: storedPPL.map { $0.ints("condition").map { ShardRowKey(item: T + $0) } },
            expected: pplItems.map { ShardRowKey(item: $0) })

        let g = try file.createGroup(group)
        for (k, v) in ref.sorted(by: { $0.key < $1.key }) { try g.setAttribute(k, v) }
        let ids = try refGroup.dataset("condition_head_ids")
        let idsCopy = try g.createDataset("condition_head_ids", data: try ids.read(Int64.self), shape: try ids.shape)
        for (k, v) in try ids.attributes() { try idsCopy.setAttribute(k, v) }
        let records = try RecordTable(
            group: try g.requireGroup("records"), columns: recordColumns(causalTargets: causal))
        var merged: [AblationRecord] = []
        for (s, row) in order {
            let r = stored[s][row]
            try records.append(Self.row(r, causal: causal > 0))
            merged.append(r)
        }
        let ppl = try RecordTable(group: try g.requireGroup("perplexity_records"), columns: perplexityColumns)
        var nll: [Int: Double] = [:]
        for (s, row) in pplOrder {
            let rows = storedPPL[s]
            let c = rows.ints("condition")[row], x = rows.doubles("mean_nll")[row]
            try ppl.append(["condition": .int(c), "mean_nll": .double(x), "tokens": .int(rows.ints("tokens")[row])])
            nll[c] = x
        }

        // As AblationRunner.run: the summary over the records sorted by (condition, trial).
        merged.sort { ($0.condition, $0.trialIndex) < ($1.condition, $1.trialIndex) }
        let shardSeconds = stored.map { $0.map(\.seconds).reduce(0, +) }
        var result = AblationResult(
            conditions: [], targetVsControls: [], targetVsBaseline: [], controlMean: nil,
            lengths: analysis.lengths, depths: analysis.depths, records: merged, heldOut: nil, finished: true,
            ranNow: 0, seconds: shardSeconds.max() ?? 0)
        analysis.summarize(&result, perplexityNLL: nll)
        result.causal = analysis.causalScores(merged)
        try analysis.writeSummary(result, into: g, perplexity: !pplItems.isEmpty)
        let missingItems = Set(missing.map { $0.item } + pplMissing.map { $0.item }).sorted()
        return ShardMergeResult(
            records: merged.count, missingTrials: missingItems,
            summary: "\(merged.count) runs (\(T) trials x \(C) conditions), \(nll.count) perplexity passages")
    }
}
