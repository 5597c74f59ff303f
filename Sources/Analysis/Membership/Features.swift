import CNative
import Foundation

// Document-level membership features after Meeus et al. 2024, "Did the Neurons Read your
// Book? Document-level Membership Inference for Large Language Models" (code:
// computationalprivacy/document-level-membership-inference, src/normalization.py,
// src/feature_extraction.py, src/meta_classifier.py, src/compute_baselines.py).
// What the original code does, and where Headlight follows or departs from it, is written
// next to each function.

/// Token-level normalization of the per-token scores (Meeus et al. §3.2).
public enum MembershipNormalization: String, Sendable, CaseIterable, Codable {
    /// The raw NLL_i = -log p_i. (Original: `norm_type = 'none'`.)
    case none
    /// -log(p_i / lambda(t_i)). (Original: `'ratio'`.)
    case ratio
    /// -log((1 - (p_max,i - p_i)) / lambda(t_i)). (Original: `'diff_max_token_proba'`.)
    case max
}

/// The reference distribution lambda over token ids: token frequency (TF) on the training
/// split, or the general probability (GP) — the model's mean softmax over positions.
///
/// Unseen tokens: the original `get_norm_val` returns `min(token_norm_dict.values()) / 2`,
/// the smallest lambda of any token present in the dictionary, halved. For TF the dictionary
/// holds only tokens counted in the training split, so unseen = absent from the training
/// split; for GP it holds the whole vocabulary and nothing is unseen. Headlight keeps exactly
/// this: `unseenValue = min(lambda over stored tokens) / 2`.
public struct ReferenceDistribution: Sendable {
    /// lambda(t) for every stored token id.
    public let lambda: [Int: Double]
    /// The value for a token absent from `lambda`: min(lambda) / 2.
    public let unseenValue: Double

    /// From an explicit table (values > 0 expected).
    public init(_ lambda: [Int: Double]) {
        precondition(!lambda.isEmpty, "ReferenceDistribution: empty table")
        self.lambda = lambda
        self.unseenValue = lambda.values.min()! / 2
    }

    /// Token frequency: count(t) / total count over all tokens of the given (training)
    /// documents — `get_token_freq` of the original (which counts members and non-members of
    /// the training split together). The original's per-chunk tables weighted by token counts
    /// (`get_train_token_norm`) add up to exactly this table over all training documents.
    public static func tokenFrequency<S: Sequence>(documents: S) -> ReferenceDistribution
    where S.Element == [Int] {
        var counts: [Int: Int] = [:]
        var total = 0
        for doc in documents {
            for t in doc { counts[t, default: 0] += 1 }
            total += doc.count
        }
        let tot = Double(total)
        return ReferenceDistribution(counts.mapValues { Double($0) / tot })
    }

    /// General probability: a dense table over the vocabulary (index = token id), e.g. the
    /// mean softmax over all positions of the training split. Every id is stored.
    public static func generalProbability(_ meanProbabilities: [Double]) -> ReferenceDistribution {
        var table: [Int: Double] = [:]
        table.reserveCapacity(meanProbabilities.count)
        for (i, p) in meanProbabilities.enumerated() { table[i] = p }
        return ReferenceDistribution(table)
    }

    /// lambda(token), or `unseenValue` if the token is not stored.
    public func callAsFunction(_ token: Int) -> Double { lambda[token] ?? unseenValue }
}

/// Feature extraction for document-level membership inference.
public enum MembershipFeatures {
    /// The value the original code substitutes for a NaN or infinite normalized score:
    /// `norm_loss = 10e-6` (that is 1e-5, not 1e-6).
    public static let originalNonFiniteReplacement = 10e-6

    /// Normalized per-token scores of one document.
    ///
    /// - Parameters:
    ///   - tokens: the scored token ids t_i (the targets, aligned with `nll`).
    ///   - nll: NLL_i = -log p_i of each target token.
    ///   - pMax: the top predicted probability at each position (only for `.max`).
    ///   - reference: lambda (unused for `.none`).
    ///   - nonFiniteReplacement: a NaN/inf result is replaced by this value, as the original
    ///     does (default: its 10e-6); pass nil to keep non-finite values.
    /// p_i is recomputed as exp(-NLL_i) and the formulas are evaluated literally, as in the
    /// original. `.none` returns the NLLs unchanged (the original applies no replacement there).
    public static func normalize(
        tokens: [Int], nll: [Double], pMax: [Double]? = nil,
        reference: ReferenceDistribution?,
        normalization: MembershipNormalization,
        nonFiniteReplacement: Double? = originalNonFiniteReplacement
    ) -> [Double] {
        switch normalization {
        case .none:
            return nll
        case .ratio, .max:
            guard let reference else {
                preconditionFailure("normalize: .\(normalization) needs a reference distribution")
            }
            precondition(tokens.count == nll.count, "normalize: tokens and nll differ in length")
            var out = [Double](repeating: 0, count: nll.count)
            if normalization == .max {
                guard let pMax, pMax.count == nll.count else {
                    preconditionFailure("normalize: .max needs pMax aligned with nll")
                }
                for i in 0..<nll.count {
                    let p = exp(-nll[i])
                    out[i] = -log((1 - (pMax[i] - p)) / reference(tokens[i]))
                }
            } else {
                for i in 0..<nll.count {
                    let p = exp(-nll[i])
                    out[i] = -log(p / reference(tokens[i]))
                }
            }
            if let r = nonFiniteReplacement {
                for i in 0..<out.count where !out[i].isFinite { out[i] = r }
            }
            return out
        }
    }

    /// Names of the 14 aggregate features, in `aggregates` order (the original's column names).
    public static let aggregateNames: [String] =
        ["mean", "min", "max", "std", "count"] + aggregatePercentiles.map { "perc_\(Int($0))" }

    /// Percentiles of the aggregate features.
    public static let aggregatePercentiles: [Double] = [1, 5, 10, 25, 50, 75, 90, 95, 99]

    /// The 14 aggregates of one document's scores, as `simple_agg_feat_extraction`: mean, min,
    /// max, std (population, ddof 0 — numpy.std), count, and the numpy "linear" percentiles
    /// 1, 5, 10, 25, 50, 75, 90, 95, 99. An empty document gives NaNs (count 0).
    public static func aggregates(_ values: [Double]) -> [Double] {
        guard !values.isEmpty else {
            return (0..<14).map { $0 == 4 ? 0 : .nan }
        }
        let s = values.sorted()
        var out: [Double] = [
            Statistics.mean(values), s.first!, s.last!,
            Statistics.standardDeviation(values, ddof: 0), Double(values.count)
        ]
        for p in aggregatePercentiles { out.append(Statistics.quantileSorted(s, p / 100)) }
        return out
    }

    /// The default number of histogram bins (the paper's 1000; the code's default is 100).
    public static let defaultHistogramBins = 1000
}

/// Fixed-edge histogram features (`histogram_feats` of the original).
///
/// The edges are fit once on the training split: numpy.histogram(all training scores,
/// bins: n) — n + 1 equally spaced edges from the minimum to the maximum (± 0.5 if they are
/// equal), computed as numpy.linspace does. Each document is then described by
/// numpy.histogram(scores, edges, density: true): count per bin / (count in range × bin
/// width). Bins are half-open [e_i, e_i+1) except the last, which is closed; values outside
/// [e_0, e_n] are dropped, so a test document with no value in range gives NaN densities
/// (numpy gives NaN too, with a warning).
public struct HistogramBinning: Sendable, Equatable {
    /// n + 1 increasing bin edges.
    public let edges: [Double]
    public var binCount: Int { edges.count - 1 }

    public init(edges: [Double]) {
        precondition(edges.count >= 2, "HistogramBinning: needs at least two edges")
        self.edges = edges
    }

    /// Fits the edges on the pooled training scores of all training documents.
    public init<S: Sequence>(fitting documents: S, bins: Int = MembershipFeatures.defaultHistogramBins)
    where S.Element == [Double] {
        precondition(bins >= 1, "HistogramBinning: bins must be >= 1")
        var lo = Double.infinity, hi = -Double.infinity, any = false
        for doc in documents {
            for v in doc {
                precondition(v.isFinite, "HistogramBinning: non-finite training value")
                lo = Swift.min(lo, v)
                hi = Swift.max(hi, v)
                any = true
            }
        }
        if !any {
            lo = 0
            hi = 1
        } // numpy's range for an empty array
        if lo == hi {
            lo -= 0.5
            hi += 0.5
        }
        // numpy.linspace(lo, hi, bins + 1): i * step + lo, last edge exactly hi.
        let step = (hi - lo) / Double(bins)
        var e = [Double](repeating: 0, count: bins + 1)
        for i in 0...bins { e[i] = Double(i) * step + lo }
        e[bins] = hi
        self.edges = e
    }

    /// Raw counts per bin (values outside the edges dropped).
    public func counts(_ values: [Double]) -> [Int] {
        let n = binCount
        var c = [Int](repeating: 0, count: n)
        let first = edges[0], last = edges[n]
        for v in values where v >= first && v <= last {
            // largest i with edges[i] <= v, capped at n - 1 (closed last bin)
            var lo = 0, hi = n // invariant: edges[lo] <= v, and v < edges[hi] or hi == n
            while hi - lo > 1 {
                let mid = (lo + hi) / 2
                if edges[mid] <= v { lo = mid } else { hi = mid }
            }
            c[lo] += 1
        }
        return c
    }

    /// Densities per bin, as numpy.histogram(values, edges, density=True).
    public func density(_ values: [Double]) -> [Double] {
        let c = counts(values)
        let total = Double(c.reduce(0, +))
        return (0..<binCount).map { i in Double(c[i]) / (edges[i + 1] - edges[i]) / total }
    }
}

/// Per-column min-max scaling fit on the training rows and applied unchanged to test rows
/// (`scale_features` of the original): (x - min) / (max - min); a column constant on the
/// training rows becomes 0 for train and test alike. Test values may fall outside [0, 1].
public struct MinMaxScaler: Sendable, Equatable {
    public let minimums: [Double]
    public let maximums: [Double]

    public init(fitting rows: [[Double]]) {
        precondition(!rows.isEmpty, "MinMaxScaler: no rows")
        let d = rows[0].count
        var lo = [Double](repeating: .infinity, count: d), hi = [Double](repeating: -.infinity, count: d)
        for r in rows {
            precondition(r.count == d, "MinMaxScaler: ragged rows")
            for j in 0..<d {
                lo[j] = Swift.min(lo[j], r[j])
                hi[j] = Swift.max(hi[j], r[j])
            }
        }
        minimums = lo
        maximums = hi
    }

    public func transform(_ row: [Double]) -> [Double] {
        precondition(row.count == minimums.count, "MinMaxScaler: wrong row width")
        var out = [Double](repeating: 0, count: row.count)
        for j in 0..<row.count where maximums[j] != minimums[j] {
            let range: Double = maximums[j] - minimums[j]
            out[j] = (row[j] - minimums[j]) / range
        }
        return out
    }

    public func transform(_ rows: [[Double]]) -> [[Double]] { rows.map { transform($0) } }
}

/// Reference-free per-window (or per-document) baselines the paper compares against.
public enum MembershipBaselines {
    /// Perplexity exp(mean NLL) (the HF `exp(loss)` of the original). NaN if empty.
    public static func perplexity(nll: [Double]) -> Double { exp(Statistics.mean(nll)) }

    /// Length in bytes of zlib.compress(bytes(text, "utf-8")) — Python's default level
    /// (-1 = Z_DEFAULT_COMPRESSION = 6), through zlib's compress2 in CNative.
    public static func zlibCompressedLength(_ text: String, level: Int32 = -1) -> Int {
        var bytes = Array(text.utf8)
        let n = bytes.withUnsafeMutableBufferPointer { buf in
            hl_zlib_compressed_length(buf.baseAddress, buf.count, level)
        }
        precondition(n >= 0, "zlib compress2 failed (status \(n))")
        return Int(n)
    }

    /// zlib ratio of the original: log(ppl) / zlib-compressed length of the UTF-8 text.
    /// Lower means "more surprising to the model than to zlib"; members tend to be lower.
    public static func zlibRatio(perplexity: Double, text: String) -> Double {
        log(perplexity) / Double(zlibCompressedLength(text))
    }

    /// zlib ratio from the NLLs (log(ppl) = mean NLL).
    public static func zlibRatio(nll: [Double], text: String) -> Double {
        zlibRatio(perplexity: perplexity(nll: nll), text: text)
    }

    /// Number of tokens Min-K% averages over: `int(len(all_prob) * ratio)` in the Min-K% paper
    /// code (swj0419/detect-pretrain-code, src/run.py; copied into the Meeus baselines), i.e.
    /// floor(n × k) in double arithmetic. The original takes no minimum, so n × k < 1 gives an
    /// empty slice and a NaN score; Headlight clamps to at least `minimumCount` (default 1;
    /// pass 0 for the original behaviour) and at most n.
    public static func minKCount(tokens n: Int, fraction k: Double, minimumCount: Int = 1) -> Int {
        Swift.min(n, Swift.max(minimumCount, Int(Double(n) * k)))
    }

    /// Min-K% Prob: the mean log-probability of the `minKCount` least likely tokens (k in
    /// 0.05...0.60, default 0.20). Sign: Headlight returns the mean log-prob itself (higher =
    /// more likely a member); the original code reports its negation, -mean. NaN if the
    /// count is 0.
    public static func minKPercentProb(
        logProbs: [Double], fraction k: Double = 0.2,
        minimumCount: Int = 1
    ) -> Double {
        precondition(k > 0 && k <= 1, "minKPercentProb: fraction must be in (0, 1]")
        let m = minKCount(tokens: logProbs.count, fraction: k, minimumCount: minimumCount)
        guard m > 0 else { return .nan }
        let s = logProbs.sorted()
        return Statistics.mean(Array(s[0..<m]))
    }

    /// Min-K% Prob from NLLs (log p_i = -NLL_i).
    public static func minKPercentProb(
        nll: [Double], fraction k: Double = 0.2,
        minimumCount: Int = 1
    ) -> Double {
        minKPercentProb(logProbs: nll.map { -$0 }, fraction: k, minimumCount: minimumCount)
    }
}
