import Foundation
import Inference

/// Head scores, the comparison with Wu et al.'s copy-based retrieval scores, and the re-ranking
/// evaluation of a `QueryHeadsRunner` run.
public struct QueryHeadsSummary: Sendable {
    /// One re-ranker: a score per passage of every item (all items; metrics over the evaluation items).
    public struct Reranker: Sendable {
        public var name: String
        public var description: String
        /// [item][passage]
        public var scores: [[Double]]
        /// Mean over evaluation items of recall@k / nDCG@k, k = 1 ... maxPassages (index k - 1).
        public var recall: [Double]
        public var ndcg: [Double]
        public var mrr: Double
        /// 95% bootstrap CI of recall@1 over evaluation items.
        public var recallAt1CI: (Double, Double)
    }

    public struct Overlap: Sendable {
        public var n: Int
        public var overlap: Int
        /// Expected overlap of two random N-sets of the heads: N^2 / heads.
        public var expected: Double
        /// Percentile-bootstrap bounds of `overlap` over the detection items (QRScores recomputed
        /// from each resample; Wu's scores fixed); NaN when not computed.
        public var lower: Double = .nan
        public var upper: Double = .nan

        public init(n: Int, overlap: Int, expected: Double, lower: Double = .nan, upper: Double = .nan) {
            self.n = n
            self.overlap = overlap
            self.expected = expected
            self.lower = lower
            self.upper = upper
        }
    }

    public var layers: Int
    public var heads: Int
    public var detectItems: Int
    public var evalItems: Int
    /// [layer * heads + head]: mean over detection items of the head's score on the gold passage.
    public var qrScores: [Double]
    /// Heads by QRScore, best first (ties by (layer, head)).
    public var ranking: [HeadIndex]
    public var topHeads: [HeadIndex]
    /// Wu et al. retrieval scores from a retrieval-heads run file, and the heads of the Wu re-ranker.
    public var wuScores: [Double]?
    public var wuHeads: [HeadIndex]?
    public var spearman: Double?
    public var spearmanP: Double?
    public var kendall: Double?
    /// Percentile-bootstrap CIs of `spearman` and `kendall` over the detection items (as `Overlap`).
    public var spearmanCI: (lower: Double, upper: Double)?
    public var kendallCI: (lower: Double, upper: Double)?
    public var overlaps: [Overlap]
    public var rerankers: [Reranker]
    /// Passages per item (the largest, for the k axis).
    public var maxPassages: Int
    /// Item kinds (`meta.kind`) among the evaluation items, sorted; empty when no item has one.
    public var kinds: [String] = []
    /// Evaluation items of each kind.
    public var kindCounts: [Int] = []
    /// [kind][method]: mean recall@1 over the evaluation items of that kind.
    public var recallAt1ByKind: [[Double]] = []

    public static let overlapSizes = [5, 10, 20, 30, 50]

    public static func summarize(
        _ results: [QueryHeadsItemResult], layers: Int, heads: Int, topHeads n: Int, wuScores: [Double]?,
        wuHeads: [HeadIndex]?, resamples: Int = Statistics.defaultBootstrapResamples, seed: UInt64 = 0
    ) -> QueryHeadsSummary {
        let nh = layers * heads
        let detect = results.filter(\.detect), eval = results.enumerated().filter { !$0.element.detect }.map(\.offset)
        var qr = [Double](repeating: 0, count: nh)
        for r in detect { for h in 0..<nh { qr[h] += Double(r.headScores[r.gold * nh + h]) } }
        if !detect.isEmpty { qr = qr.map { $0 / Double(detect.count) } }
        let order = (0..<nh).sorted { (qr[$0], -$0) > (qr[$1], -$1) }
        let ranking = order.map { HeadIndex(layer: $0 / heads, head: $0 % heads) }
        let top = Array(ranking.prefix(n))
        func flat(_ hs: [HeadIndex]) -> [Int] { hs.map { $0.layer * heads + $0.head } }

        var rerankers: [Reranker] = []
        let maxP = results.map(\.item.passages.count).max() ?? 0
        func add(_ name: String, _ desc: String, _ scores: [[Double]]) {
            var recall = [Double](repeating: 0, count: maxP), ndcg = recall
            var mrr = 0.0
            var r1: [Double] = []
            for i in eval {
                let g = results[i].gold
                for k in 1...max(maxP, 1) where maxP > 0 {
                    recall[k - 1] += RankingMetrics.recall(scores[i], gold: g, k: k)
                    ndcg[k - 1] += RankingMetrics.ndcg(scores[i], gold: g, k: k)
                }
                mrr += RankingMetrics.reciprocalRank(scores[i], gold: g)
                r1.append(RankingMetrics.recall(scores[i], gold: g, k: 1))
            }
            let m = Double(max(eval.count, 1))
            let ci = Statistics.bootstrapMean(r1, resamples: resamples, seed: seed)
            rerankers.append(
                Reranker(
                    name: name, description: desc, scores: scores, recall: recall.map { $0 / m },
                    ndcg: ndcg.map { $0 / m }, mrr: mrr / m, recallAt1CI: (ci.lower, ci.upper)))
        }
        add(
            "qrhead", "QRHead: the top \(top.count) heads by QRScore on the detection items",
            results.map { QueryHeadsRunner.setScores($0, heads: flat(top)) })
        if let w = wuHeads {
            add(
                "wu_heads", "the same scoring with Wu et al.'s top \(w.count) retrieval heads",
                results.map { QueryHeadsRunner.setScores($0, heads: flat(w)) })
        }
        add(
            "all_heads", "the same scoring with every head (QRHead's full-head baseline)",
            results.map { QueryHeadsRunner.setScores($0, heads: Array(0..<nh)) })
        add(
            "bm25", "BM25 (Okapi, k1 1.5, b 0.75; the question against the item's passages)",
            results.map { BM25(texts: $0.item.passages).scores(query: $0.item.question) })
        if results.allSatisfy({ $0.answerLogProb != nil }) {
            add(
                "answer_likelihood", "log P(gold answer | passage, question) of the plain model",
                results.map { $0.answerLogProb! })
        }
        var spearman: Double?, spearmanP: Double?, kendall: Double?
        var spearmanCI: (lower: Double, upper: Double)?, kendallCI: (lower: Double, upper: Double)?
        var overlaps: [Overlap] = []
        if let w = wuScores, w.count == nh {
            let t = Statistics.spearmanTest(qr, w)
            spearman = t.r
            spearmanP = t.pValue
            kendall = Statistics.kendallTau(qr, w)
            let sizes = Self.overlapSizes.filter { $0 <= nh }
            let boot = compareBootstrap(
                detect.map { r in (0..<nh).map { Double(r.headScores[r.gold * nh + $0]) } }, wu: w, sizes: sizes,
                resamples: resamples, seed: seed &+ 7919)
            spearmanCI = boot.spearman
            kendallCI = boot.kendall
            for (i, s) in sizes.enumerated() {
                overlaps.append(
                    Overlap(
                        n: s, overlap: Statistics.topOverlap(qr, w, n: s),
                        expected: Double(s * s) / Double(nh), lower: boot.overlaps[i].lower,
                        upper: boot.overlaps[i].upper))
            }
        }
        var out = QueryHeadsSummary(
            layers: layers, heads: heads, detectItems: detect.count, evalItems: eval.count, qrScores: qr,
            ranking: ranking, topHeads: top, wuScores: wuScores, wuHeads: wuHeads, spearman: spearman,
            spearmanP: spearmanP, kendall: kendall, spearmanCI: spearmanCI, kendallCI: kendallCI, overlaps: overlaps,
            rerankers: rerankers, maxPassages: maxP)
        let kindOf = eval.map { QueryHeadsRunFile.kind(results[$0].item.meta) }
        out.kinds = Array(Set(kindOf.filter { !$0.isEmpty })).sorted()
        for k in out.kinds {
            let members = zip(eval, kindOf).filter { $0.1 == k }.map(\.0)
            out.kindCounts.append(members.count)
            out.recallAt1ByKind.append(
                rerankers.map { r in
                    Statistics.mean(members.map { RankingMetrics.recall(r.scores[$0], gold: results[$0].gold, k: 1) })
                })
        }
        return out
    }

    /// Percentile-bootstrap CIs (95%) over the detection items of the comparison with Wu's scores:
    /// each resample of `detect` ([item][head] gold-passage scores) gives QRScores (their mean), then
    /// the top-N overlap for each of `sizes`, Spearman's ρ and Kendall's τ-b with `wu`. NaN bounds
    /// with fewer than two items.
    public static func compareBootstrap(
        _ detect: [[Double]], wu: [Double], sizes: [Int], resamples: Int, seed: UInt64
    ) -> (
        overlaps: [(lower: Double, upper: Double)], spearman: (lower: Double, upper: Double),
        kendall: (lower: Double, upper: Double)
    ) {
        let nan = (lower: Double.nan, upper: Double.nan)
        guard detect.count >= 2, resamples >= 1 else { return (sizes.map { _ in nan }, nan, nan) }
        let nh = wu.count
        var ov = [[Double]](repeating: [], count: sizes.count), rho: [Double] = [], tau: [Double] = []
        var rng = SeededGenerator(seed: seed)
        for _ in 0..<resamples {
            let idx = SeededRandom.bootstrapIndices(detect.count, using: &rng)
            var qr = [Double](repeating: 0, count: nh)
            for i in idx { for h in 0..<nh { qr[h] += detect[i][h] } }
            for h in 0..<nh { qr[h] /= Double(idx.count) }
            for (j, n) in sizes.enumerated() { ov[j].append(Double(Statistics.topOverlap(qr, wu, n: n))) }
            rho.append(Statistics.spearman(qr, wu))
            tau.append(Statistics.kendallTau(qr, wu))
        }
        func bounds(_ v: [Double]) -> (lower: Double, upper: Double) {
            let f = v.filter { !$0.isNaN }
            guard !f.isEmpty else { return nan }
            let q = Statistics.quantiles(f, [0.025, 0.975])
            return (q[0], q[1])
        }
        return (ov.map(bounds), bounds(rho), bounds(tau))
    }
}
