import Foundation

/// Small, exact statistics used by the analyses (retrieval heads, ablation,
/// citation and membership). Each function documents its convention.
public enum Statistics {
    /// Arithmetic mean; NaN for an empty input.
    public static func mean(_ xs: [Double]) -> Double {
        xs.isEmpty ? .nan : xs.reduce(0, +) / Double(xs.count)
    }

    /// Quantile with linear interpolation between order statistics (numpy's default, "linear").
    public static func quantile(_ xs: [Double], _ q: Double) -> Double {
        guard !xs.isEmpty, q >= 0, q <= 1 else { return .nan }
        let s = xs.sorted()
        let h = q * Double(s.count - 1)
        let lo = Int(h.rounded(.down)), hi = min(lo + 1, s.count - 1)
        return s[lo] + (h - Double(lo)) * (s[hi] - s[lo])
    }

    public static func median(_ xs: [Double]) -> Double { quantile(xs, 0.5) }
}
