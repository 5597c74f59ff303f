import Foundation
import TraceStore

/// What a merge of shard run files wrote.
public struct ShardMergeResult: Sendable {
    /// Records written, in the merged file's (single-run execution) order.
    public var records: Int
    /// Plan trials no shard recorded (only with --allow-incomplete), ascending.
    public var missingTrials: [Int]
    /// One line describing the merged result (e.g. counted trials and retrieval heads).
    public var summary: String
}

extension RetrievalRunFile {
    /// Group attributes that must agree across the shards of one plan (the plan hash covers the
    /// trial cells and input files; these also cover options such as --threshold).
    static let mergeChecked = [
        "suite", "needles", "n_layers", "n_heads", "planned_trials", "threshold", "reuse_prefix",
        "shared_prefix_order"
    ]

    /// Writes into `file` the `/retrieval_heads` group a single run of the plan writes: the first
    /// shard's group attributes, the trial records of every shard in single-run execution order
    /// (`ShardSet.planOrder`), and the summary (`scores`, threshold heads, counts) recomputed
    /// from the merged records by the sweep's own code (`RetrievalHeadScores.aggregate` over the
    /// records in trial-index order, `writeSummary`), so the scores agree bit for bit.
    public static func merge(_ set: ShardSet, into file: H5File) throws -> ShardMergeResult {
        let (groups, ref) = try set.groups(group, checked: mergeChecked)
        let layers = try groups[0].intAttribute("n_layers"), heads = try groups[0].intAttribute("n_heads")
        let stored = try zip(set.shards, groups).map { s, g in
            try readRecords(try g.group("trials"), layers: layers, heads: heads, allowIncomplete: !s.complete)
        }
        let (order, missing) = try set.mergeOrder(recorded: stored.map { $0.map(\.trialIndex) })

        let g = try file.createGroup(group)
        let summaryAttrs: Set = [
            "trials", "counted_trials", "located_trials", "successful_trials", "threshold_heads"
        ]
        for (k, v) in ref.sorted(by: { $0.key < $1.key }) where !summaryAttrs.contains(k) {
            try g.setAttribute(k, v)
        }
        let table = try RecordTable(group: try g.requireGroup("trials"), columns: columns(layers: layers, heads: heads))
        let out = RetrievalRunFile(root: g, table: table, layers: layers, heads: heads)
        var merged: [RetrievalTrialRecord] = []
        merged.reserveCapacity(order.count)
        for (s, row) in order {
            let r = stored[s][row]
            try out.append(r)
            merged.append(r)
        }
        // As RetrievalHeadSweep.run: aggregate over the records sorted by trial index.
        let records = merged.sorted { $0.trialIndex < $1.trialIndex }
        let scores = RetrievalHeadScores.aggregate(
            trialScores: records.map(\.headScores), counted: records.map(\.counted), layers: layers, heads: heads)
        let threshold = ref["threshold"]?.doubleValue ?? RetrievalCopyRule.defaultHeadThreshold
        try out.writeSummary(scores: scores, records: records, threshold: threshold)
        let above = scores.above(threshold)
        return ShardMergeResult(
            records: records.count, missingTrials: missing,
            summary: "\(records.count) trials, \(scores.countedTrials) counted; \(above.count) heads > "
                + "\(threshold): \(above.prefix(10).map { $0.head.description }.joined(separator: ", "))")
    }
}
