import Foundation
import TraceStore

/// What an ablation run's summary is computed from: the conditions, the grid cell of every
/// trial and the statistics options. A single run builds it from its runner
/// (`AblationRunner.analysis`); `headlight merge` from the `/ablation` group of a shard file
/// (`AblationAnalysis.read`), so a merged file's summary is computed by this same code.
public struct AblationAnalysis: Sendable {
    public var conditions: [AblationCondition]
    /// (length, depth) of every trial, by grid index.
    public var cells: [(length: Int, depth: Double)]
    public var lengths: [Int]
    public var depths: [Double]
    public var seed: UInt64
    public var bootstrapResamples: Int
    public var level: Double
    public var causalTargets: [HeadIndex]
    /// `AblationMethod.description` and `InterventionPhase.rawValue`, as stored.
    public var method: String
    public var phase: String

    public init(
        conditions: [AblationCondition], cells: [(length: Int, depth: Double)], lengths: [Int], depths: [Double],
        seed: UInt64, bootstrapResamples: Int, level: Double, causalTargets: [HeadIndex], method: String,
        phase: String
    ) {
        self.conditions = conditions
        self.cells = cells
        self.lengths = lengths
        self.depths = depths
        self.seed = seed
        self.bootstrapResamples = bootstrapResamples
        self.level = level
        self.causalTargets = causalTargets
        self.method = method
        self.phase = phase
    }

    /// Fills in per-condition summaries and the differences.
    public func summarize(_ r: inout AblationResult, perplexityNLL: [Int: Double]) {
        let C = conditions.count, T = cells.count, M = AblationMetric.allCases.count
        let trialCells = self.cells
        var v = [[[Double]]](repeating: [[Double]](repeating: [Double](repeating: .nan, count: M), count: T), count: C)
        for rec in r.records { v[rec.condition][rec.trialIndex] = rec.metrics }
        func seed(_ a: Int, _ b: Int) -> UInt64 { self.seed &+ UInt64(1000 + a * 16 + b) }
        func column(_ c: Int, _ m: Int) -> [Double] { (0..<T).map { v[c][$0][m] } }
        func finite(_ xs: [Double]) -> [Double] { xs.filter(\.isFinite) }
        for c in 0..<C {
            var means: [ConfidenceInterval] = []
            var cells: [[Double]] = []
            for m in 0..<M {
                means.append(
                    Statistics.bootstrapMean(
                        finite(column(c, m)), resamples: bootstrapResamples,
                        level: level, seed: seed(c, m)))
                var grid: [Double] = []
                for l in lengths {
                    for d in depths {
                        let xs = (0..<T).filter { trialCells[$0].length == l && trialCells[$0].depth == d }.map {
                            v[c][$0][m]
                        }
                        grid.append(Statistics.mean(finite(xs)))
                    }
                }
                cells.append(grid)
            }
            let nll = perplexityNLL[c] ?? .nan
            r.conditions.append(
                AblationConditionSummary(
                    condition: conditions[c], means: means, cells: cells,
                    perplexity: Foundation.exp(nll), meanNLL: nll))
        }
        guard let target = conditions.firstIndex(where: { $0.kind == .target }) else { return }
        let controls = conditions.indices.filter { conditions[$0].kind == .control }
        let baseline = conditions.firstIndex(where: { $0.kind == .baseline })
        var controlMeans: [ConfidenceInterval] = []
        // Paired bootstrap of mean(a - b) over the trials where both are finite.
        func paired(_ metric: AblationMetric, _ a: [Double], _ b: [Double], seed: UInt64) -> AblationDifference {
            let keep = (0..<T).filter { a[$0].isFinite && b[$0].isFinite }
            return AblationDifference(
                metric: metric,
                result: Statistics.pairedBootstrapMeanDifference(
                    keep.map { a[$0] }, keep.map { b[$0] }, resamples: bootstrapResamples,
                    level: level, seed: seed))
        }
        for metric in AblationMetric.allCases {
            let m = metric.rawValue
            // Trials where the metric is defined for every condition involved.
            let tv = column(target, m)
            if !controls.isEmpty {
                let cm = (0..<T).map { t in Statistics.mean(controls.map { v[$0][t][m] }) }
                r.targetVsControls.append(paired(metric, tv, cm, seed: seed(C + 1, m)))
                controlMeans.append(
                    Statistics.bootstrapMean(
                        finite(cm), resamples: bootstrapResamples,
                        level: level, seed: seed(C + 2, m)))
            }
            if let b = baseline {
                r.targetVsBaseline.append(paired(metric, tv, column(b, m), seed: seed(C + 3, m)))
            }
        }
        if !controls.isEmpty { r.controlMean = controlMeans }
    }

    /// Causal-target retrieval scores per condition (nil without causal targets): the mean trial
    /// score over the trials the *baseline* counts (answer right, ROUGE-1 recall > 50, and the
    /// needle located), so every condition is averaged over the same trials — a head whose
    /// ablation makes the model miss the needle lowers the others' scores instead of dropping
    /// out of the mean. `counted` holds, per condition, how many of those trials the condition
    /// itself still answers right.
    public func causalScores(_ records: [AblationRecord]) -> CausalScores? {
        let targets = causalTargets
        guard !targets.isEmpty, let b = conditions.firstIndex(where: { $0.kind == .baseline }) else { return nil }
        let base = Set(records.filter { $0.condition == b && $0.counted }.map(\.trialIndex))
        var scores: [[Double]] = [], counted: [Int] = []
        for c in conditions.indices {
            let rs = records.filter { $0.condition == c && base.contains($0.trialIndex) }.sorted {
                $0.trialIndex < $1.trialIndex
            }
            let agg = RetrievalHeadScores.aggregate(
                trialScores: rs.map(\.targetScores), counted: rs.map { _ in true },
                layers: 1, heads: targets.count)
            scores.append(agg.scores)
            counted.append(rs.filter(\.counted).count)
        }
        return CausalScores(targets: targets, scores: scores, counted: counted)
    }

    /// The summary datasets of a finished run into `root` (an `/ablation` group); replaces any there.
    /// `perplexity`: the run measured a held-out passage (datasets perplexity, mean_nll, delta).
    public func writeSummary(_ r: AblationResult, into root: H5Group, perplexity: Bool) throws {
        let C = r.conditions.count, M = AblationMetric.allCases.count, T = cells.count
        let names = [
            "perplexity", "mean_nll", "perplexity_delta", "difference_target_vs_controls",
            "difference_target_vs_baseline", "control_mean"
        ]
        for n in names + ["causal"] where try root.exists(n) { try root.remove(n) }
        try ConditionSweepDatasets.writeScores(
            into: root, records: r.records, trials: T, means: r.conditions.map(\.means),
            cells: r.conditions.map(\.cells), lengths: r.lengths, depths: r.depths,
            trialNote: "trial = index in the suite's grid (needles x lengths x depths)")
        func put(_ name: String, _ values: [Double], _ shape: [Int], _ axes: [String]) throws {
            let ds = try root.createDataset(name, data: values, shape: shape)
            try ds.setAttribute("axes", axes)
        }
        if perplexity {
            let base = r.conditions.first { $0.condition.kind == .baseline }?.perplexity ?? .nan
            try put("perplexity", r.conditions.map(\.perplexity), [C], ["condition"])
            try put("mean_nll", r.conditions.map(\.meanNLL), [C], ["condition"])
            try put("perplexity_delta", r.conditions.map { $0.perplexity - base }, [C], ["condition"])
        }
        func diffs(_ name: String, _ ds: [AblationDifference], _ note: String) throws {
            guard !ds.isEmpty else { return }
            let v = ds.flatMap {
                [
                    $0.result.difference.estimate, $0.result.difference.lower, $0.result.difference.upper,
                    $0.result.pValue
                ]
            }
            let x = try root.createDataset(name, data: v, shape: [ds.count, 4])
            try x.setAttribute("axes", ["metric", "estimate_lower_upper_p"])
            try x.setAttribute("note", note)
        }
        try diffs(
            "difference_target_vs_controls", r.targetVsControls,
            "paired bootstrap over trials of target - mean over control sets (negative: the target heads hurt more)")
        try diffs(
            "difference_target_vs_baseline", r.targetVsBaseline, "paired bootstrap over trials of target - baseline")
        if let cm = r.controlMean {
            try put(
                "control_mean", cm.flatMap { [$0.estimate, $0.lower, $0.upper] }, [M, 3],
                ["metric", "estimate_lower_upper"])
        }
        if let cs = r.causal { try writeCausal(cs, into: root) }
        try root.setAttribute("seconds", r.seconds)
    }

    /// `/ablation/causal`: sources are the single-head conditions, baseline the baseline condition.
    func writeCausal(_ cs: CausalScores, into root: H5Group) throws {
        let conds = conditions
        let singles = conds.indices.filter { conds[$0].kind == .single }
        guard let b = conds.firstIndex(where: { $0.kind == .baseline }), !singles.isEmpty else { return }
        let g = try root.createGroup("causal")
        let sources = singles.map { conds[$0].heads[0].description }
        try g.createDataset("sources", strings: sources).setAttribute("axes", ["source"])
        try g.createDataset("targets", strings: cs.targets.map(\.description)).setAttribute("axes", ["target"])
        try g.createDataset("baseline_scores", data: cs.scores[b], shape: [cs.targets.count]).setAttribute(
            "axes", ["target"])
        let m = try g.createDataset(
            "scores", data: singles.flatMap { cs.scores[$0] }, shape: [singles.count, cs.targets.count])
        try m.setAttribute("axes", ["source", "target"])
        try g.createDataset("counted_trials", data: singles.map { Int64(cs.counted[$0]) }, shape: [singles.count])
            .setAttribute("axes", ["source"])
        try g.setAttribute("baseline_counted_trials", cs.counted[b])
        try g.setAttribute(
            "counted_trials_note",
            "counted_trials[s]: of the baseline's counted trials, those still answered "
                + "right (ROUGE-1 recall > 50) with s ablated")
        try g.setAttribute("method", method)
        try g.setAttribute(
            "note",
            "scores[s][t]: retrieval score (Wu et al.'s copy rule) of target t, mean over the "
                + "trials the baseline counts (answer right, needle located; the same trials for every source), "
                + "with source s ablated alone (phase \(phase)); "
                + "an edge s -> t in the causal graph is scores[s][t] - baseline_scores[t]")
    }

}

extension AblationAnalysis {
    /// The analysis of the `/ablation` group `g` as a run stored it: conditions (names, kinds,
    /// heads), the grid from `@suite` (needles x lengths x depths, `@trials` cells), seed,
    /// bootstrap resamples, level, causal targets, method and phase.
    public static func read(_ g: H5Group, file: String) throws -> AblationAnalysis {
        let names = try g.stringsAttribute("condition_names")
        let kinds = try g.stringsAttribute("condition_kinds")
        let heads = try g.stringsAttribute("condition_heads")
        func bad(_ key: String, _ detail: String) -> TraceStoreError {
            .invalidArgument(file: file, object: "\(g.name) @\(key)", detail: detail)
        }
        guard kinds.count == names.count, heads.count == names.count else {
            throw bad("condition_kinds", "\(kinds.count) kinds and \(heads.count) head lists for \(names.count) names")
        }
        func headList(_ text: String, _ key: String) throws -> [HeadIndex] {
            try text.split(separator: ",").map {
                guard let h = HeadIndex(String($0)) else { throw bad(key, "\"\($0)\" is not a head L.H") }
                return h
            }
        }
        var conditions: [AblationCondition] = []
        for i in names.indices {
            guard let kind = AblationCondition.Kind(rawValue: kinds[i]) else {
                throw bad("condition_kinds", "unknown kind \"\(kinds[i])\"")
            }
            conditions.append(
                AblationCondition(name: names[i], kind: kind, heads: try headList(heads[i], "condition_heads")))
        }
        let suite: NIAHSuite
        do {
            suite = try JSONDecoder().decode(NIAHSuite.self, from: Data(try g.stringAttribute("suite").utf8))
        } catch let e as TraceStoreError {
            throw e
        } catch {
            throw bad("suite", "not a suite: \(error.localizedDescription)")
        }
        let trials = try g.intAttribute("trials")
        let perNeedle = suite.lengths.count * suite.depths.count
        guard perNeedle > 0, trials % perNeedle == 0 else {
            throw bad("trials", "\(trials) trials do not fill a grid of \(suite.lengths.count) x \(suite.depths.count)")
        }
        let cells = (0..<trials).map { t in
            (
                length: suite.lengths[(t / suite.depths.count) % suite.lengths.count],
                depth: suite.depths[t % suite.depths.count]
            )
        }
        let targets = try (g.attributeIfPresent("causal_targets")?.stringsValue ?? []).map {
            try headList($0, "causal_targets")[0]
        }
        return AblationAnalysis(
            conditions: conditions, cells: cells, lengths: suite.lengths, depths: suite.depths,
            seed: UInt64(bitPattern: Int64(try g.intAttribute("seed"))),
            bootstrapResamples: try g.intAttribute("bootstrap_resamples"), level: try g.doubleAttribute("level"),
            causalTargets: targets, method: try g.stringAttribute("method"), phase: try g.stringAttribute("phase"))
    }
}
