import Foundation

/// A correlation coefficient with its two-sided p-value (H0: no correlation).
public struct CorrelationResult: Sendable, Equatable {
    /// The coefficient, in [-1, 1]; NaN when undefined (constant input, n < 2).
    public let r: Double
    /// Two-sided p-value from Student's t with n - 2 degrees of freedom (NaN for n < 2; 1 for
    /// n == 2, as scipy.stats.pearsonr). scipy uses this test for pearsonr (in its exact beta
    /// form, which is the same distribution), spearmanr and pointbiserialr.
    public let pValue: Double
    public let n: Int
}

extension Statistics {
    /// Pearson's r (scipy.stats.pearsonr statistic): centred cross-product over the product of
    /// the centred norms, clipped to [-1, 1]. NaN if either input is constant, the lengths
    /// differ, or n < 2.
    public static func pearson(_ x: [Double], _ y: [Double]) -> Double {
        let n = x.count
        guard n == y.count, n >= 2 else { return .nan }
        let mx = mean(x), my = mean(y)
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in 0..<n {
            let dx = x[i] - mx, dy = y[i] - my
            sxy += dx * dy
            sxx += dx * dx
            syy += dy * dy
        }
        guard sxx > 0, syy > 0 else { return .nan }
        let r = sxy / (sxx * syy).squareRoot()
        return max(-1, min(1, r))
    }

    /// Spearman's rho (scipy.stats.spearmanr): Pearson's r of the average ranks (ties get the
    /// mean of the ranks they span). NaN if either input is constant.
    public static func spearman(_ x: [Double], _ y: [Double]) -> Double {
        guard x.count == y.count else { return .nan }
        return pearson(averageRanks(x), averageRanks(y))
    }

    /// Point-biserial correlation (scipy.stats.pointbiserialr): Pearson's r between the 0/1
    /// indicator of `group` (true = 1) and `x`.
    public static func pointBiserial(_ group: [Bool], _ x: [Double]) -> Double {
        pearson(group.map { $0 ? 1 : 0 }, x)
    }

    public static func pearsonTest(_ x: [Double], _ y: [Double]) -> CorrelationResult {
        let r = pearson(x, y)
        return CorrelationResult(r: r, pValue: correlationPValue(r: r, n: x.count), n: x.count)
    }

    public static func spearmanTest(_ x: [Double], _ y: [Double]) -> CorrelationResult {
        let r = spearman(x, y)
        return CorrelationResult(r: r, pValue: correlationPValue(r: r, n: x.count), n: x.count)
    }

    public static func pointBiserialTest(_ group: [Bool], _ x: [Double]) -> CorrelationResult {
        let r = pointBiserial(group, x)
        return CorrelationResult(r: r, pValue: correlationPValue(r: r, n: x.count), n: x.count)
    }

    /// Two-sided p-value of a correlation r over n pairs: t = r sqrt((n-2) / (1-r^2)) with
    /// n - 2 degrees of freedom, p = I_{df/(df+t^2)}(df/2, 1/2). 0 when |r| == 1 (n > 2),
    /// 1 when n == 2, NaN when r is NaN or n < 2.
    public static func correlationPValue(r: Double, n: Int) -> Double {
        guard !r.isNaN, n >= 2 else { return .nan }
        if n == 2 { return 1 }
        let df = Double(n - 2)
        let r2 = r * r
        if r2 >= 1 { return 0 }
        // df / (df + t^2) with t^2 = r^2 df / (1 - r^2)  ==  1 - r^2
        let x = 1 - r2
        return regularizedIncompleteBeta(a: df / 2, b: 0.5, x: x)
    }

    /// Two-sided p-value of Student's t statistic with `df` degrees of freedom.
    public static func studentTTwoSidedPValue(t: Double, df: Double) -> Double {
        guard !t.isNaN, df > 0 else { return .nan }
        if t.isInfinite { return 0 }
        return regularizedIncompleteBeta(a: df / 2, b: 0.5, x: df / (df + t * t))
    }

    /// Regularized incomplete beta function I_x(a, b) for a, b > 0, x in [0, 1]
    /// (continued fraction, modified Lentz; relative accuracy ~1e-14).
    public static func regularizedIncompleteBeta(a: Double, b: Double, x: Double) -> Double {
        guard a > 0, b > 0, x >= 0, x <= 1 else { return .nan }
        if x == 0 { return 0 }
        if x == 1 { return 1 }
        let lnFront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x)
        let front = exp(lnFront)
        // Use the continued fraction where it converges fast; else the symmetry relation.
        if x < (a + 1) / (a + b + 2) {
            return front * betaContinuedFraction(a: a, b: b, x: x) / a
        } else {
            return 1 - front * betaContinuedFraction(a: b, b: a, x: 1 - x) / b
        }
    }

    private static func betaContinuedFraction(a: Double, b: Double, x: Double) -> Double {
        let tiny = 1e-300, eps = 1e-16
        let qab = a + b, qap = a + 1, qam = a - 1
        var c = 1.0
        var d = 1 - qab * x / qap
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...10_000 {
            let m = Double(m), m2 = 2 * m
            var aa = m * (b - m) * x / ((qam + m2) * (a + m2))
            d = 1 + aa * d
            if abs(d) < tiny { d = tiny }
            c = 1 + aa / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            h *= d * c
            aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
            d = 1 + aa * d
            if abs(d) < tiny { d = tiny }
            c = 1 + aa / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let del = d * c
            h *= del
            if abs(del - 1) < eps { break }
        }
        return h
    }
}
