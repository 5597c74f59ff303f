import Foundation

/// Points of a ROC curve, as `sklearn.metrics.roc_curve(y, s, drop_intermediate=False)`:
/// one point per distinct score, thresholds decreasing, preceded by the (0, 0) point whose
/// threshold is +infinity (sklearn >= 1.3; older versions used max(score) + 1).
public struct ROCCurve: Sendable, Equatable {
    /// False positive rate at each threshold, non-decreasing, from 0 to 1.
    public let fpr: [Double]
    /// True positive rate at each threshold, non-decreasing, from 0 to 1.
    public let tpr: [Double]
    /// Score thresholds: a point counts samples with score >= threshold as positive.
    public let thresholds: [Double]

    /// Area under the curve by the trapezoidal rule (equals `Statistics.rocAUC`).
    public var area: Double {
        var a = 0.0
        for i in 1..<max(fpr.count, 1) {
            a += (fpr[i] - fpr[i - 1]) * (tpr[i] + tpr[i - 1]) / 2
        }
        return a
    }
}

extension Statistics {
    /// ROC AUC as `sklearn.metrics.roc_auc_score(labels, scores)` for binary labels
    /// (true = positive class): the Mann-Whitney probability that a random positive scores
    /// above a random negative, ties counted 1/2. Computed from average ranks, O(n log n).
    /// NaN when either class is absent (sklearn raises) or the lengths differ.
    public static func rocAUC(labels: [Bool], scores: [Double]) -> Double {
        guard labels.count == scores.count else { return .nan }
        let nPos = labels.reduce(0) { $0 + ($1 ? 1 : 0) }
        let nNeg = labels.count - nPos
        guard nPos > 0, nNeg > 0 else { return .nan }
        let ranks = averageRanks(scores)
        var rankSum = 0.0
        for i in 0..<labels.count where labels[i] { rankSum += ranks[i] }
        let np = Double(nPos), nn = Double(nNeg)
        return (rankSum - np * (np + 1) / 2) / (np * nn)
    }

    /// 0/1 labels (1 = positive, anything else = negative) — convenience for `rocAUC`.
    public static func rocAUC(labels: [Int], scores: [Double]) -> Double {
        rocAUC(labels: labels.map { $0 == 1 }, scores: scores)
    }

    /// The full ROC curve, as `sklearn.metrics.roc_curve(..., drop_intermediate=False)`.
    /// With no negatives (positives) the fpr (tpr) entries are NaN, as sklearn's (which warns).
    public static func rocCurve(labels: [Bool], scores: [Double]) -> ROCCurve {
        precondition(labels.count == scores.count, "rocCurve: labels and scores differ in length")
        let n = scores.count
        // Descending score; the order within ties does not change the output.
        let order = (0..<n).sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        var fps: [Double] = [0], tps: [Double] = [0], thresholds: [Double] = [.infinity]
        var tp = 0.0, fp = 0.0
        for k in 0..<n {
            let i = order[k]
            if labels[i] { tp += 1 } else { fp += 1 }
            if k == n - 1 || scores[order[k + 1]] != scores[i] {
                tps.append(tp)
                fps.append(fp)
                thresholds.append(scores[i])
            }
        }
        let totalFP = fps.last!, totalTP = tps.last!
        return ROCCurve(
            fpr: fps.map { $0 / totalFP }, tpr: tps.map { $0 / totalTP },
            thresholds: thresholds)
    }
}
