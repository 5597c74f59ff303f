import Foundation

/// Small, exact statistics used by the analyses (retrieval heads, ablation,
/// citation and membership). Each function documents its convention and the
/// reference implementation it agrees with (numpy / scipy / sklearn); the
/// fixtures under Tests/Fixtures/stats pin that agreement.
///
/// Related files: Stats/Correlation.swift (Pearson, Spearman, point-biserial, p-values),
/// Stats/ROC.swift (ROC AUC and curve), Stats/Bootstrap.swift (percentile bootstrap CIs),
/// Stats/Random.swift (deterministic shuffles and samples over `SeededGenerator`).
///
/// Conventions shared by all of them: empty or too-short inputs give NaN rather than
/// trapping; inputs are assumed free of NaN (a NaN propagates as in numpy).
public enum Statistics {
    /// Arithmetic mean; NaN for an empty input.
    public static func mean(_ xs: [Double]) -> Double {
        xs.isEmpty ? .nan : xs.reduce(0, +) / Double(xs.count)
    }

    /// Variance with `ddof` delta degrees of freedom: sum((x - mean)^2) / (n - ddof).
    /// `ddof: 0` (the default) is the population variance, as `numpy.var`; `ddof: 1` is the
    /// unbiased sample variance, as `statistics.variance` / pandas `.var()`.
    /// NaN when n - ddof <= 0. Two-pass (centred) for accuracy.
    public static func variance(_ xs: [Double], ddof: Int = 0) -> Double {
        let n = xs.count
        guard n - ddof > 0, n > 0 else { return .nan }
        let m = mean(xs)
        var s = 0.0
        for x in xs {
            let d = x - m
            s += d * d
        }
        return s / Double(n - ddof)
    }

    /// Standard deviation, sqrt(variance(xs, ddof:)). `ddof: 0` (default) matches `numpy.std`,
    /// which is what the Meeus et al. "std" aggregate uses.
    public static func standardDeviation(_ xs: [Double], ddof: Int = 0) -> Double {
        variance(xs, ddof: ddof).squareRoot()
    }

    /// Quantile with linear interpolation between order statistics (numpy's default, "linear",
    /// Hyndman & Fan type 7): virtual index h = (n - 1) q, interpolated exactly as numpy's
    /// `_lerp` does (bit-identical results). NaN for an empty input or q outside [0, 1].
    public static func quantile(_ xs: [Double], _ q: Double) -> Double {
        guard !xs.isEmpty, q >= 0, q <= 1 else { return .nan }
        return quantileSorted(xs.sorted(), q)
    }

    /// Several quantiles of the same data, sorting once. Same convention as `quantile`.
    public static func quantiles(_ xs: [Double], _ qs: [Double]) -> [Double] {
        guard !xs.isEmpty else { return qs.map { _ in .nan } }
        let s = xs.sorted()
        return qs.map { ($0 >= 0 && $0 <= 1) ? quantileSorted(s, $0) : .nan }
    }

    /// `numpy.percentile(xs, p)` with p in [0, 100] (q = p / 100, then `quantile`).
    public static func percentile(_ xs: [Double], _ p: Double) -> Double {
        quantile(xs, p / 100)
    }

    /// Quantile of already ascending-sorted data (no check). Same convention as `quantile`.
    public static func quantileSorted(_ s: [Double], _ q: Double) -> Double {
        guard !s.isEmpty else { return .nan }
        let h = Double(s.count - 1) * q
        let lo = Int(h.rounded(.down)), hi = min(lo + 1, s.count - 1)
        let t = h - Double(lo)
        let a = s[lo], b = s[hi]
        let d = b - a
        // numpy `_lerp`: a + d t, but b - d (1 - t) when t >= 0.5.
        return t >= 0.5 ? b - d * (1 - t) : a + d * t
    }

    public static func median(_ xs: [Double]) -> Double { quantile(xs, 0.5) }

    /// Ranks 1...n with ties given their average rank (scipy.stats.rankdata, method "average").
    public static func averageRanks(_ xs: [Double]) -> [Double] {
        let n = xs.count
        let order = (0..<n).sorted { xs[$0] < xs[$1] || (xs[$0] == xs[$1] && $0 < $1) }
        var ranks = [Double](repeating: 0, count: n)
        var i = 0
        while i < n {
            var j = i
            while j + 1 < n && xs[order[j + 1]] == xs[order[i]] { j += 1 }
            // positions i...j (0-based) share the average of ranks i+1 ... j+1
            let r = Double(i + j + 2) / 2
            for k in i...j { ranks[order[k]] = r }
            i = j + 1
        }
        return ranks
    }
}
