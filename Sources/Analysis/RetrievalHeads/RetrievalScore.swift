import Foundation

// The retrieval score of Wu et al. 2024 (methods.md section 1; their
// `retrieval_head_detection.py`, `retrieval_calculate` and `retrieval_head_accumulate`).
//
// Per decode step t and per query head (layer l, head h): i* = argmax_j a_{t,l,h}[j], the key
// the head attends to most from this step's query (the token fed at this step). If the needle
// span [s, s+n) contains i* and prompt[i*] equals the token w_t generated at this step, the
// head's trial score gains 1/n. Ties in the argmax go to the lowest index, as `torch.topk(1)`
// does on CPU (checked on torch 2.x: topk([.1, .5, .2, .5]) -> index 1). A trial counts when
// its answer is right (ROUGE-1 recall x100 of `real_needle` in the response > 50); a head's
// score is the mean of its trial scores over the counted trials.

/// A query head, addressed as (layer, head); written "L.H" (e.g. "14.3").
public struct HeadIndex: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    public var layer: Int
    public var head: Int
    public init(layer: Int, head: Int) {
        self.layer = layer
        self.head = head
    }

    public var description: String { "\(layer).\(head)" }
    public static func < (a: HeadIndex, b: HeadIndex) -> Bool { (a.layer, a.head) < (b.layer, b.head) }

    /// Parses "L.H" (also "L:H" and "L-H", the last being Wu et al.'s JSON key form).
    public init?(_ text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces)
            .split(omittingEmptySubsequences: false, whereSeparator: { ".:-".contains($0) })
        guard parts.count == 2,
            parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
            let l = Int(parts[0]), let h = Int(parts[1])
        else { return nil }
        layer = l
        head = h
    }

    /// Flat index into a row-major [layers, heads] array.
    public func flat(heads: Int) -> Int { layer * heads + head }
}

public enum RetrievalCopyRule {
    /// Wu et al.'s success threshold: ROUGE-1 recall x100 strictly above 50.
    public static let successThreshold = NeedleRetrievalScore.successThreshold
    /// Wu et al.'s retrieval-head threshold: score strictly above 0.1.
    public static let defaultHeadThreshold = 0.1

    /// Index of the largest value, the lowest index on ties (`torch.topk(1)` / `torch.argmax`).
    /// NaNs never win. -1 for an empty row.
    @inlinable
    public static func topAttended(_ row: UnsafeBufferPointer<Float>) -> Int {
        guard !row.isEmpty else { return -1 }
        var best = -1
        var bestValue = -Float.infinity
        for i in 0..<row.count where row[i] > bestValue || (best < 0 && row[i] == bestValue) {
            best = i
            bestValue = row[i]
        }
        return best
    }

    public static func topAttended(_ row: [Float]) -> Int {
        row.withUnsafeBufferPointer { topAttended($0) }
    }

    /// One decode step: for every head (flat index k, `top[k]` = its top-1 key), adds 1/n to
    /// `scores[k]` when the key lies in `span` (and inside the prompt) and the prompt token
    /// there equals `generated`. Returns how many heads scored.
    @discardableResult
    public static func accumulate(
        scores: inout [Double], top: [Int], generated: Int32,
        prompt: [Int32], span: Range<Int>
    ) -> Int {
        precondition(scores.count == top.count, "accumulate: \(scores.count) scores for \(top.count) heads")
        let n = span.count
        guard n > 0 else { return 0 }
        let inc = 1 / Double(n)
        var hits = 0
        for k in 0..<top.count {
            let i = top[k]
            if i >= span.lowerBound && i < span.upperBound && i < prompt.count && prompt[i] == generated {
                scores[k] += inc
                hits += 1
            }
        }
        return hits
    }
}

/// Head scores of a sweep: the mean trial score of each head over the counted trials.
public struct RetrievalHeadScores: Equatable, Sendable {
    public var layers: Int
    public var heads: Int
    /// Row-major [layers, heads]; 0 everywhere when no trial counted.
    public var scores: [Double]
    /// Trials that entered the mean (answer right and needle span located).
    public var countedTrials: Int

    public init(layers: Int, heads: Int, scores: [Double], countedTrials: Int) {
        precondition(scores.count == layers * heads)
        self.layers = layers
        self.heads = heads
        self.scores = scores
        self.countedTrials = countedTrials
    }

    /// Mean of `trialScores` (each [layers * heads]) over the trials where `counted` is true,
    /// summed in trial order.
    public static func aggregate(
        trialScores: [[Double]], counted: [Bool], layers: Int, heads: Int
    ) -> RetrievalHeadScores {
        precondition(trialScores.count == counted.count)
        var sum = [Double](repeating: 0, count: layers * heads)
        var n = 0
        for (s, c) in zip(trialScores, counted) where c {
            precondition(s.count == sum.count)
            for k in 0..<sum.count { sum[k] += s[k] }
            n += 1
        }
        if n > 0 { for k in 0..<sum.count { sum[k] /= Double(n) } }
        return RetrievalHeadScores(layers: layers, heads: heads, scores: sum, countedTrials: n)
    }

    public func score(_ h: HeadIndex) -> Double { scores[h.flat(heads: heads)] }

    /// Every head with its score, highest first; ties by (layer, head).
    public var ranked: [(head: HeadIndex, score: Double)] {
        var out: [(head: HeadIndex, score: Double)] = []
        out.reserveCapacity(scores.count)
        for l in 0..<layers { for h in 0..<heads { out.append((HeadIndex(layer: l, head: h), scores[l * heads + h])) } }
        out.sort { $0.score > $1.score || ($0.score == $1.score && $0.head < $1.head) }
        return out
    }

    /// The `n` highest-scoring heads.
    public func top(_ n: Int) -> [(head: HeadIndex, score: Double)] { Array(ranked.prefix(max(n, 0))) }

    /// Retrieval heads: score strictly above `threshold`, highest first.
    public func above(
        _ threshold: Double = RetrievalCopyRule.defaultHeadThreshold
    ) -> [(head: HeadIndex, score: Double)] {
        ranked.filter { $0.score > threshold }
    }

    /// Heads that are not retrieval heads (score <= `threshold`), in (layer, head) order.
    public func atOrBelow(_ threshold: Double = RetrievalCopyRule.defaultHeadThreshold) -> [HeadIndex] {
        var out: [HeadIndex] = []
        for l in 0..<layers {
            for h in 0..<heads where scores[l * heads + h] <= threshold {
                out.append(HeadIndex(layer: l, head: h))
            }
        }
        return out
    }
}
