import Foundation

/// Re-ranking metrics for one relevant passage among n candidates (the query-focused retrieval
/// set has one gold passage per question).
///
/// Ties are resolved in expectation, over every order of the tied passages equally likely: with
/// g passages scored strictly above the gold one and t others tied with it, the gold passage's
/// position is uniform on g+1 ... g+t+1. A scorer that gives every passage the same score thus
/// gets chance recall (k / n), never a lucky or unlucky fixed order. Non-finite scores rank last.
public enum RankingMetrics {
    /// (strictly better, tied) counts for the gold passage.
    static func position(_ scores: [Double], gold: Int) -> (better: Int, tied: Int) {
        func key(_ x: Double) -> Double { x.isFinite ? x : -.infinity }
        let g = key(scores[gold])
        var better = 0, tied = 0
        for (i, s) in scores.enumerated() where i != gold {
            let v = key(s)
            if v > g { better += 1 } else if v == g { tied += 1 }
        }
        return (better, tied)
    }

    /// P(gold passage in the top k).
    public static func recall(_ scores: [Double], gold: Int, k: Int) -> Double {
        let (g, t) = position(scores, gold: gold)
        return min(max(Double(k - g) / Double(t + 1), 0), 1)
    }

    /// Expected nDCG@k with binary relevance (ideal DCG = 1): E[1 / log2(1 + position)] over the
    /// positions <= k.
    public static func ndcg(_ scores: [Double], gold: Int, k: Int) -> Double {
        let (g, t) = position(scores, gold: gold)
        var sum = 0.0
        for p in (g + 1)...(g + t + 1) where p <= k { sum += 1 / log2(Double(p) + 1) }
        return sum / Double(t + 1)
    }

    /// Expected reciprocal rank of the gold passage.
    public static func reciprocalRank(_ scores: [Double], gold: Int) -> Double {
        let (g, t) = position(scores, gold: gold)
        var sum = 0.0
        for p in (g + 1)...(g + t + 1) { sum += 1 / Double(p) }
        return sum / Double(t + 1)
    }

    /// Expected 1-based rank of the gold passage.
    public static func rank(_ scores: [Double], gold: Int) -> Double {
        let (g, t) = position(scores, gold: gold)
        return Double(g + 1) + Double(t) / 2
    }
}

extension Statistics {
    /// Kendall's tau-b (scipy.stats.kendalltau's default): (concordant - discordant) /
    /// sqrt((n0 - ties in x) (n0 - ties in y)) over the n0 = n(n-1)/2 pairs; pairs tied in both
    /// count in neither. NaN when either input is constant, the lengths differ, or n < 2. O(n^2).
    public static func kendallTau(_ x: [Double], _ y: [Double]) -> Double {
        let n = x.count
        guard n == y.count, n >= 2 else { return .nan }
        var concordant = 0.0, discordant = 0.0, tiesX = 0.0, tiesY = 0.0
        for i in 0..<(n - 1) {
            for j in (i + 1)..<n {
                let dx = x[i] - x[j], dy = y[i] - y[j]
                if dx == 0 && dy == 0 {
                    tiesX += 1
                    tiesY += 1
                } else if dx == 0 {
                    tiesX += 1
                } else if dy == 0 {
                    tiesY += 1
                } else if (dx > 0) == (dy > 0) {
                    concordant += 1
                } else {
                    discordant += 1
                }
            }
        }
        let n0 = Double(n * (n - 1) / 2)
        let denom = ((n0 - tiesX) * (n0 - tiesY)).squareRoot()
        guard denom > 0 else { return .nan }
        return (concordant - discordant) / denom
    }

    /// Size of the intersection of the top-`n` index sets of two score vectors (ties by index).
    public static func topOverlap(_ x: [Double], _ y: [Double], n: Int) -> Int {
        func top(_ raw: [Double]) -> Set<Int> {
            let v = raw.map { $0.isNaN ? -Double.infinity : $0 }
            return Set(v.indices.sorted { (v[$0], -$0) > (v[$1], -$1) }.prefix(n))
        }
        return top(x).intersection(top(y)).count
    }
}
