import Foundation
import TraceStore

extension CitationRunFile {
    /// Writes into `file` the `/citation` group a single `cite` run writes: the shards' parameter
    /// attributes (equal in every shard), the items of every shard in probe order (shard row r
    /// is plan item `shard_trials[r]`), their statements renumbered, and the summary, readout
    /// columns and per-head tables computed from all statements by `CitationMetrics.summarize`
    /// and `CitationRunFile.writeRecords`, as a single run computes them.
    public static func merge(_ set: ShardSet, into file: H5File) throws -> ShardMergeResult {
        var ref: [String: H5AttributeValue] = [:]
        var owner: [Int: (shard: Int, row: Int)] = [:]
        var records: [CitationRecords] = []
        for (i, s) in set.shards.enumerated() {
            guard try s.file.kind(of: group) == .group else {
                throw ShardError.unsupported(file: s.path, command: "(no /\(group) group)")
            }
            let g = try s.file.group(group)
            let attrs = try g.attributes()
            if i == 0 {
                ref = attrs
            } else if let k = Set(attrs.keys).union(ref.keys).sorted().first(where: { attrs[$0] != ref[$0] }) {
                throw ShardError.foreign(
                    file: s.path, key: "/\(group)@\(k)", have: attrs[k].map { "\($0)" } ?? "(none)",
                    want: ref[k].map { "\($0)" } ?? "(none)", reference: set.shards[0].path)
            }
            let r = try CitationRecords.read(g, file: s.path)
            guard r.items.count == s.info.trials.count else {
                throw ShardError.incomplete(file: s.path, planned: s.info.trials.count)
            }
            records.append(r)
        }
        let (order, missing) = try set.mergeOrder(
            recorded: set.shards.indices.map { set.shards[$0].info.trials })
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
