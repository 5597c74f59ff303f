import Foundation
import Inference

/// A point estimate with a percentile-bootstrap confidence interval.
public struct ConfidenceInterval: Sendable, Equatable {
    /// The statistic on the original (not resampled) data.
    public let estimate: Double
    /// Lower and upper percentile bounds: numpy-"linear" quantiles (1 - level)/2 and
    /// (1 + level)/2 of the valid bootstrap statistics. NaN if no resample was valid.
    public let lower: Double
    public let upper: Double
    /// Nominal coverage, e.g. 0.95.
    public let level: Double
    /// Valid resamples the bounds come from.
    public let resamples: Int
    /// Resamples skipped because the statistic was undefined on them (NaN), e.g. a resample
    /// holding a single class for an AUC.
    public let skipped: Int

    public var width: Double { upper - lower }
    public func contains(_ x: Double) -> Bool { x >= lower && x <= upper }
}

/// Paired bootstrap of mean(a) - mean(b) over the same units.
public struct PairedBootstrapResult: Sendable, Equatable {
    /// mean(a - b) with its percentile interval.
    public let difference: ConfidenceInterval
    /// Two-sided bootstrap p-value for H0: difference == 0,
    /// min(1, 2 min((#{d* <= 0} + 1) / (B + 1), (#{d* >= 0} + 1) / (B + 1))).
    public let pValue: Double
}

extension Statistics {
    /// Default number of bootstrap resamples.
    public static let defaultBootstrapResamples = 2000

    /// Percentile bootstrap over n units. Each resample draws n indices uniformly with
    /// replacement (`SeededRandom.bootstrapIndices` on `SeededGenerator(seed:)`, so the result
    /// is the same on every platform for a seed) and calls `statistic` with them; a NaN
    /// statistic marks the resample as invalid and it is skipped (counted in `skipped`, not
    /// redrawn). The estimate is `statistic(0..<n)`.
    public static func bootstrap(
        count n: Int, resamples: Int = defaultBootstrapResamples,
        level: Double = 0.95, seed: UInt64,
        statistic: ([Int]) -> Double
    ) -> ConfidenceInterval {
        precondition(level > 0 && level < 1, "bootstrap: level must be in (0, 1)")
        let estimate = statistic(Array(0..<n))
        let (values, skipped) = bootstrapValues(
            count: n, resamples: resamples, seed: seed,
            statistic: statistic)
        return interval(estimate: estimate, values: values, level: level, skipped: skipped)
    }

    /// The bootstrap statistics themselves (valid ones, in resample order) and the number of
    /// skipped (NaN) resamples; the draws are those of `bootstrap` for the same seed.
    /// n == 0 gives no values and `resamples` skipped.
    public static func bootstrapValues(
        count n: Int, resamples: Int = defaultBootstrapResamples,
        seed: UInt64,
        statistic: ([Int]) -> Double
    ) -> (values: [Double], skipped: Int) {
        guard n > 0 else { return ([], resamples) }
        var rng = SeededGenerator(seed: seed)
        var values: [Double] = []
        values.reserveCapacity(resamples)
        var skipped = 0
        for _ in 0..<resamples {
            let idx = SeededRandom.bootstrapIndices(n, using: &rng)
            let v = statistic(idx)
            if v.isNaN { skipped += 1 } else { values.append(v) }
        }
        return (values, skipped)
    }

    /// Percentile interval of already computed bootstrap statistics.
    public static func interval(
        estimate: Double, values: [Double], level: Double,
        skipped: Int = 0
    ) -> ConfidenceInterval {
        let alpha = 1 - level
        let q = quantiles(values, [alpha / 2, 1 - alpha / 2])
        return ConfidenceInterval(
            estimate: estimate, lower: q[0], upper: q[1], level: level,
            resamples: values.count, skipped: skipped)
    }

    /// Bootstrap CI of the mean.
    public static func bootstrapMean(
        _ xs: [Double], resamples: Int = defaultBootstrapResamples,
        level: Double = 0.95, seed: UInt64
    ) -> ConfidenceInterval {
        bootstrap(count: xs.count, resamples: resamples, level: level, seed: seed) { idx in
            var s = 0.0
            for i in idx { s += xs[i] }
            return idx.isEmpty ? .nan : s / Double(idx.count)
        }
    }

    /// Bootstrap CI of the ROC AUC.
    ///
    /// `stratified: true` (default) resamples positives and negatives separately, each with
    /// replacement and keeping its size (positives drawn first, then negatives), so every
    /// resample has both classes and the interval is conditional on the class sizes — the
    /// default of R's pROC. `stratified: false` resamples all units together and skips
    /// resamples that hold one class only (reported in `skipped`).
    public static func bootstrapAUC(
        labels: [Bool], scores: [Double], stratified: Bool = true,
        resamples: Int = defaultBootstrapResamples,
        level: Double = 0.95, seed: UInt64
    ) -> ConfidenceInterval {
        precondition(labels.count == scores.count, "bootstrapAUC: labels and scores differ in length")
        let estimate = rocAUC(labels: labels, scores: scores)
        if !stratified {
            return bootstrap(count: labels.count, resamples: resamples, level: level, seed: seed) { idx in
                rocAUC(labels: idx.map { labels[$0] }, scores: idx.map { scores[$0] })
            }
        }
        let pos = labels.indices.filter { labels[$0] }, neg = labels.indices.filter { !labels[$0] }
        guard !pos.isEmpty, !neg.isEmpty else {
            return ConfidenceInterval(
                estimate: estimate, lower: .nan, upper: .nan, level: level,
                resamples: 0, skipped: resamples)
        }
        var rng = SeededGenerator(seed: seed)
        var values: [Double] = []
        values.reserveCapacity(resamples)
        let l = [Bool](repeating: true, count: pos.count) + [Bool](repeating: false, count: neg.count)
        for _ in 0..<resamples {
            var s: [Double] = []
            s.reserveCapacity(l.count)
            for _ in 0..<pos.count { s.append(scores[pos[SeededRandom.uniformInt(below: pos.count, using: &rng)]]) }
            for _ in 0..<neg.count { s.append(scores[neg[SeededRandom.uniformInt(below: neg.count, using: &rng)]]) }
            values.append(rocAUC(labels: l, scores: s))
        }
        return interval(estimate: estimate, values: values, level: level)
    }

    /// Paired bootstrap for mean(a) - mean(b), a[i] and b[i] measured on the same unit i
    /// (e.g. the same prompt with and without an ablation): units are resampled with
    /// replacement and the difference of means recomputed on each resample.
    public static func pairedBootstrapMeanDifference(
        _ a: [Double], _ b: [Double],
        resamples: Int = defaultBootstrapResamples,
        level: Double = 0.95,
        seed: UInt64
    ) -> PairedBootstrapResult {
        precondition(a.count == b.count, "pairedBootstrapMeanDifference: a and b differ in length")
        precondition(level > 0 && level < 1, "bootstrap: level must be in (0, 1)")
        let d = zip(a, b).map { $0 - $1 }
        let meanOf: ([Int]) -> Double = { idx in
            guard !idx.isEmpty else { return .nan }
            var s = 0.0
            for i in idx { s += d[i] }
            return s / Double(idx.count)
        }
        let (values, skipped) = bootstrapValues(
            count: d.count, resamples: resamples, seed: seed,
            statistic: meanOf)
        let ci = interval(estimate: mean(d), values: values, level: level, skipped: skipped)
        let le = values.reduce(0) { $0 + ($1 <= 0 ? 1 : 0) }
        let ge = values.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
        let b1 = Double(values.count + 1)
        let p = values.isEmpty ? Double.nan : min(1, 2 * min(Double(le + 1) / b1, Double(ge + 1) / b1))
        return PairedBootstrapResult(difference: ci, pValue: p)
    }
}
