import Foundation
import TraceStore

extension MembershipRunFile {
    /// Group attributes that differ between the shards of one plan (timing, worker count).
    static let mergeVolatile: Set = ["workers", "scoring_seconds"]

    /// Writes into `file` the `/membership` group a single `membership` run writes: the
    /// documents of every shard in input order (plan item order), evaluated together by
    /// `MembershipAnalysis.evaluate` (baselines, cross-validated classifiers, bootstrap CIs) and
    /// written by `MembershipRunFile.write`, as a single run does. `scoring_seconds` is the
    /// slowest shard's, `workers` the first shard's.
    public static func merge(_ set: ShardSet, into file: H5File) throws -> ShardMergeResult {
        let (groups, ref) = try set.groups(group, ignoring: mergeVolatile)
        let config = try MembershipConfig.read(from: groups[0], file: set.shards[0].path)
        let stored = try zip(set.shards, groups).map { s, g in try MembershipShardRecords.read(from: g, file: s.path) }
        let (order, missing) = try set.mergeOrder(recorded: stored.map(\.items))
        let documents = order.map { stored[$0.shard].documents[$0.row] }
        let evaluation: MembershipEvaluation
        do { evaluation = try MembershipAnalysis.evaluate(documents, config: config) } catch let e
            as MembershipInputError
        {
            throw ShardError.environment("\(documents.count) merged document(s): \(e.message)")
        }
        let names = ref["skipped_names"]?.stringsValue ?? [], reasons = ref["skipped_reasons"]?.stringsValue ?? []
        let result = MembershipRunResult(
            setName: ref["set_name"]?.stringValue, setPath: ref["set_path"]?.stringValue, config: config,
            documents: documents, evaluation: evaluation, skipped: zip(names, reasons).map { ($0, $1) },
            warnings: ref["warnings"]?.stringsValue ?? [],
            scoringSeconds: try groups.map { try $0.doubleAttribute("scoring_seconds") }.max() ?? 0,
            workers: try groups[0].intAttribute("workers"))
        try write(result, to: file)
        let best = evaluation.methods.max { $0.auc.estimate < $1.auc.estimate }
        return ShardMergeResult(
            records: documents.count, missingTrials: missing,
            summary: "\(documents.count) documents (\(result.memberCount) members, \(result.nonmemberCount) "
                + "non-members, \(result.unlabeledCount) unlabeled)"
                + (best.map { "; best AUC \($0.name) \(String(format: "%.3f", $0.auc.estimate))" } ?? ""))
    }
}
