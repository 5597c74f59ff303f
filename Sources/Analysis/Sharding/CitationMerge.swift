import Foundation
import TraceStore

extension CitationRunFile {
    /// Writes into `file` the `/citation` group a single `cite` run writes: the shards' parameter
    /// attributes (equal in every shard), the items of every shard in probe order (shard row r
    /// is plan item `shard_trials[r]`), their statements renumbered, and the summary, readout
    /// columns and per-head tables computed from all statements by `CitationMetrics.summarize`
    /// and `CitationRunFile.writeRecords`, as a single run computes them.
    public static func merge(_ set: ShardSet, into file: H5File) throws -> ShardMergeResult {
        let (groups, ref) = try set.groups(group)
        var owner: [Int: (shard: Int, row: Int)] = [:]
        var records: [CitationRecords] = []
        for (s, g) in zip(set.shards, groups) {
            // A finished shard holds all its items; an interrupted one (its .partial, read with
            // --allow-incomplete) the first ones, in shard order.
            let r = try CitationRecords.read(g, file: s.path, allowIncomplete: !s.complete)
            guard r.items.count == s.info.trials.count || (!s.complete && r.items.count < s.info.trials.count) else {
                throw ShardError.incomplete(file: s.path, planned: s.info.trials.count)
            }
            records.append(r)
        }
        let (order, missing) = try set.mergeOrder(
            recorded: set.shards.indices.map { Array(set.shards[$0].info.trials.prefix(records[$0].items.count)) })
        for (s, row) in order { owner[set.shards[s].info.trials[row]] = (s, row) }

        // Items in plan (probe) order; statements follow their items, renumbered.
        var merged = CitationRecords(items: [], statements: [])
        for item in set.planOrder.sorted() {
            guard let (s, row) = owner[item] else { continue }
            let at = merged.items.count
            merged.items.append(records[s].items[row])
            for var st in records[s].statements where st.item == row {
                st.item = at
                merged.statements.append(st)
            }
        }
        let layers = try intValue(ref, "n_layers", set), heads = try intValue(ref, "n_heads", set)
        let observations = merged.observations
        guard !observations.isEmpty else {
            throw ShardError.environment(
                "no cited statement to score in \(merged.items.count) item(s) of \(set.shards.count) shard(s)")
        }
        var retrieval: [HeadIndex]?
        if ref["retrieval_heads_file"] != nil {
            retrieval = (ref["retrieval_heads_list"]?.stringsValue ?? []).compactMap { HeadIndex($0) }
        }
        let summary = CitationMetrics.summarize(
            observations, layers: layers, heads: heads, retrieval: retrieval,
            resamples: try intValue(ref, "bootstrap_resamples", set),
            seed: UInt64(bitPattern: Int64(try intValue(ref, "seed", set))))
        let g = try file.createGroup(group)
        for (k, v) in ref.sorted(by: { $0.key < $1.key }) { try g.setAttribute(k, v) }
        try writeRecords(g, merged, summary: summary, layers: layers, heads: heads)
        return ShardMergeResult(
            records: merged.items.count, missingTrials: missing,
            summary: "\(merged.items.count) items, \(summary.statements) cited statements; best head "
                + "\(summary.ranking[0]), agreement (all heads) \(summary.allHeads.agreement.estimate)")
    }

    private static func intValue(_ attrs: [String: H5AttributeValue], _ key: String, _ set: ShardSet) throws -> Int {
        guard let v = attrs[key]?.intValue else {
            throw TraceStoreError.invalidArgument(
                file: set.shards[0].path, object: "/\(group) @\(key)", detail: "missing or not an integer")
        }
        return Int(v)
    }
}
