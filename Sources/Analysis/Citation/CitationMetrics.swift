import Foundation

// Headlight's attention-citation metrics (methods.md section 3). The unit is a cited
// statement; for it we have, per head, the attention mass on each passage's token span
// averaged over the query positions that produce the statement's tokens. From a mass vector v
// over the S passages and the set C of cited passages:
//
//   argmax      the passage with the most mass (lowest index on ties)
//   agreement   argmax ∈ C
//   spearman    Spearman's rho between v and the 0/1 citation indicator (scipy convention, NaN
//               when every passage is cited)
//   point-bis.  point-biserial r between the indicator and v (Pearson on 0/1)
//
// Vectors come from one head, the mean over all heads, or the mean over a retrieval-head set.
// Statements whose cited set misses the known true source ("wrong citations": deliberate ones
// when teacher forcing, the model's own mistakes when generating) are kept apart: for them we
// ask whether the argmax follows the citation or the true source instead.

/// One cited statement's attention, ready for scoring.
public struct StatementObservation: Sendable, Equatable {
    /// Number of passages S.
    public var passages: Int
    /// Cited passages, 0-based, valid ones only (non-empty).
    public var cited: [Int]
    /// 0-based passage that truly holds the answer, if known.
    public var trueSource: Int?
    /// Mean attention mass, [layers, heads, S] row-major: index (l * heads + h) * S + s.
    public var mass: [Float]
    /// Tokens in each passage span (for the length-normalized variant); may be empty.
    public var spanTokens: [Int]

    public init(passages: Int, cited: [Int], trueSource: Int?, mass: [Float], spanTokens: [Int] = []) {
        self.passages = passages
        self.cited = cited
        self.trueSource = trueSource
        self.mass = mass
        self.spanTokens = spanTokens
    }

    /// The cited set misses the known true source.
    public var isWrongCitation: Bool { trueSource.map { !cited.contains($0) } ?? false }
}

/// Scores of one mass vector against one statement's citations.
public struct VectorScore: Sendable, Equatable {
    public var argmax: Int
    public var agree: Bool
    public var spearman: Double
    public var pointBiserial: Double
    /// argmax == true source (nil if unknown).
    public var onTrueSource: Bool?
}

/// Summary of one way of reading attention (all heads, retrieval heads, one head, ...).
public struct AttentionReadout: Sendable {
    public var name: String
    /// Agreement over statements whose citation is consistent with the true source (or where it
    /// is unknown): the primary figure.
    public var agreement: ConfidenceInterval
    public var meanSpearman: ConfidenceInterval
    public var meanPointBiserial: ConfidenceInterval
    /// Over wrong citations: the argmax is the (wrong) cited passage / the true source.
    public var wrongFollowsCitation: ConfidenceInterval
    public var wrongFollowsTrueSource: ConfidenceInterval
    /// Agreement over every statement (consistent and wrong).
    public var agreementAllStatements: Double
    /// Per-statement scores, in observation order.
    public var scores: [VectorScore]
}

/// Everything `CitationMetrics.summarize` computes.
public struct CitationSummary: Sendable {
    public var layers: Int
    public var heads: Int
    public var statements: Int
    public var consistent: Int
    public var wrong: Int
    /// Expected agreement of a uniformly random argmax: mean |C| / S over consistent statements.
    public var chanceAgreement: Double
    public var allHeads: AttentionReadout
    /// All-heads mass divided by span length before the argmax (per-token density).
    public var allHeadsPerToken: AttentionReadout?
    public var retrievalHeads: AttentionReadout?
    public var retrievalHeadSet: [HeadIndex]
    /// Per head, [layers * heads]: agreement over consistent statements, mean Spearman and mean
    /// point-biserial (NaN entries skipped), and over wrong citations the rates of following the
    /// citation / the true source (NaN when there are none).
    public var headAgreement: [Double]
    public var headMeanSpearman: [Double]
    public var headMeanPointBiserial: [Double]
    public var headWrongFollowsCitation: [Double]
    public var headWrongFollowsTrueSource: [Double]
    /// Heads by agreement (descending), ties by mean point-biserial (descending), then (layer, head).
    public var ranking: [HeadIndex]
    /// The top-ranked head, read out like the aggregates (its agreement is optimistic: it was
    /// chosen on the same statements).
    public var bestHead: AttentionReadout
    /// Split-half estimate: the best head chosen on even-numbered consistent statements is scored
    /// on odd-numbered ones and vice versa; the mean of the two agreements. NaN with < 2 statements.
    public var bestHeadHeldOutAgreement: Double
}

public enum CitationMetrics {
    /// Index of the largest value, the lowest index on ties; -1 for an empty vector. NaN never wins.
    public static func argmax(_ v: [Double]) -> Int {
        var best = -1, bv = -Double.infinity
        for i in v.indices where v[i] > bv || (best < 0 && v[i] == bv) {
            best = i
            bv = v[i]
        }
        return best
    }

    /// Scores one mass vector.
    public static func score(_ v: [Double], cited: [Int], trueSource: Int? = nil) -> VectorScore {
        let set = Set(cited)
        let indicator = v.indices.map { set.contains($0) }
        let a = argmax(v)
        return VectorScore(
            argmax: a, agree: set.contains(a),
            spearman: Statistics.spearman(v, indicator.map { $0 ? 1 : 0 }),
            pointBiserial: Statistics.pointBiserial(indicator, v),
            onTrueSource: trueSource.map { $0 == a })
    }

    /// Head (l, h)'s mass vector.
    public static func headVector(_ o: StatementObservation, layer l: Int, head h: Int, heads: Int) -> [Double] {
        let s = o.passages, base = (l * heads + h) * s
        return (0..<s).map { Double(o.mass[base + $0]) }
    }

    /// Mean of the mass vectors of `set` (every head when nil).
    public static func meanVector(_ o: StatementObservation, heads: Int, set: [HeadIndex]?) -> [Double] {
        let s = o.passages
        var v = [Double](repeating: 0, count: s)
        let flat: [Int] = set.map { $0.map { $0.flat(heads: heads) } } ?? Array(0..<(o.mass.count / max(s, 1)))
        guard !flat.isEmpty else { return v }
        for k in flat {
            for j in 0..<s { v[j] += Double(o.mass[k * s + j]) }
        }
        for j in 0..<s { v[j] /= Double(flat.count) }
        return v
    }

    /// Mean of the finite values; NaN if none.
    static func finiteMean(_ xs: [Double]) -> Double {
        let f = xs.filter { $0.isFinite }
        return f.isEmpty ? .nan : f.reduce(0, +) / Double(f.count)
    }

    /// Bootstrap CI of the mean of the finite values (NaN values are dropped first).
    static func meanCI(_ xs: [Double], resamples: Int, seed: UInt64) -> ConfidenceInterval {
        let f = xs.filter { $0.isFinite }
        if f.isEmpty {
            return ConfidenceInterval(
                estimate: .nan, lower: .nan, upper: .nan, level: 0.95, resamples: 0, skipped: resamples)
        }
        return Statistics.bootstrapMean(f, resamples: resamples, seed: seed)
    }

    /// Reads out one family of vectors over every observation.
    public static func readout(
        name: String, observations obs: [StatementObservation], resamples: Int, seed: UInt64,
        vector: (StatementObservation) -> [Double]
    ) -> AttentionReadout {
        let scores = obs.map { o in score(vector(o), cited: o.cited, trueSource: o.trueSource) }
        var agree: [Double] = [], rho: [Double] = [], pb: [Double] = [], wc: [Double] = [], wt: [Double] = []
        for (o, s) in zip(obs, scores) {
            if o.isWrongCitation {
                wc.append(s.agree ? 1 : 0)
                wt.append(s.onTrueSource == true ? 1 : 0)
            } else {
                agree.append(s.agree ? 1 : 0)
                rho.append(s.spearman)
                pb.append(s.pointBiserial)
            }
        }
        return AttentionReadout(
            name: name,
            agreement: meanCI(agree, resamples: resamples, seed: seed),
            meanSpearman: meanCI(rho, resamples: resamples, seed: seed &+ 1),
            meanPointBiserial: meanCI(pb, resamples: resamples, seed: seed &+ 2),
            wrongFollowsCitation: meanCI(wc, resamples: resamples, seed: seed &+ 3),
            wrongFollowsTrueSource: meanCI(wt, resamples: resamples, seed: seed &+ 4),
            agreementAllStatements: scores.isEmpty ? .nan : Double(scores.filter(\.agree).count) / Double(scores.count),
            scores: scores)
    }

    /// Per-head agreement and mean point-biserial over the consistent observations `idx`.
    static func headTable(
        _ obs: [StatementObservation], _ idx: [Int], layers: Int, heads: Int
    )
        -> (agree: [Double], rho: [Double], pb: [Double])
    {
        let n = layers * heads
        var agree = [Double](repeating: .nan, count: n), rho = agree, pb = agree
        guard !idx.isEmpty else { return (agree, rho, pb) }
        for l in 0..<layers {
            for h in 0..<heads {
                var a = 0.0, rs: [Double] = [], ps: [Double] = []
                for i in idx {
                    let o = obs[i]
                    let s = score(headVector(o, layer: l, head: h, heads: heads), cited: o.cited)
                    if s.agree { a += 1 }
                    rs.append(s.spearman)
                    ps.append(s.pointBiserial)
                }
                let k = l * heads + h
                agree[k] = a / Double(idx.count)
                rho[k] = finiteMean(rs)
                pb[k] = finiteMean(ps)
            }
        }
        return (agree, rho, pb)
    }

    /// Heads sorted by agreement (descending), ties by mean point-biserial (descending; NaN last),
    /// then by (layer, head).
    public static func rank(agreement: [Double], pointBiserial: [Double], layers: Int, heads: Int) -> [HeadIndex] {
        func key(_ x: Double) -> Double { x.isNaN ? -.infinity : x }
        var all: [HeadIndex] = []
        for l in 0..<layers { for h in 0..<heads { all.append(HeadIndex(layer: l, head: h)) } }
        return all.sorted { a, b in
            let ka = a.flat(heads: heads), kb = b.flat(heads: heads)
            if key(agreement[ka]) != key(agreement[kb]) { return key(agreement[ka]) > key(agreement[kb]) }
            if key(pointBiserial[ka]) != key(pointBiserial[kb]) {
                return key(pointBiserial[ka]) > key(pointBiserial[kb])
            }
            return a < b
        }
    }

    /// All metrics over the observations. `retrieval`: the retrieval-head set (nil/empty: none).
    public static func summarize(
        _ obs: [StatementObservation], layers: Int, heads: Int, retrieval: [HeadIndex]? = nil,
        resamples: Int = Statistics.defaultBootstrapResamples, seed: UInt64 = 0
    ) -> CitationSummary {
        for o in obs {
            precondition(o.mass.count == layers * heads * o.passages, "mass must be [layers, heads, passages]")
        }
        let consistent = obs.indices.filter { !obs[$0].isWrongCitation }
        let wrongIdx = obs.indices.filter { obs[$0].isWrongCitation }
        let chance =
            consistent.isEmpty
            ? Double.nan
            : consistent.map { Double(obs[$0].cited.count) / Double(obs[$0].passages) }.reduce(0, +)
                / Double(consistent.count)
        let all = readout(name: "all heads", observations: obs, resamples: resamples, seed: seed) {
            meanVector($0, heads: heads, set: nil)
        }
        var perToken: AttentionReadout?
        if obs.allSatisfy({ $0.spanTokens.count == $0.passages && $0.spanTokens.allSatisfy { $0 > 0 } }) && !obs.isEmpty
        {
            perToken = readout(name: "all heads, per token", observations: obs, resamples: resamples, seed: seed &+ 10)
            { o in
                let v = meanVector(o, heads: heads, set: nil)
                return v.indices.map { v[$0] / Double(o.spanTokens[$0]) }
            }
        }
        var rh: AttentionReadout?
        if let set = retrieval, !set.isEmpty {
            rh = readout(name: "retrieval heads", observations: obs, resamples: resamples, seed: seed &+ 20) {
                meanVector($0, heads: heads, set: set)
            }
        }
        let table = headTable(obs, consistent, layers: layers, heads: heads)
        var wc = [Double](repeating: .nan, count: layers * heads), wt = wc
        if !wrongIdx.isEmpty {
            for l in 0..<layers {
                for h in 0..<heads {
                    var c = 0.0, t = 0.0
                    for i in wrongIdx {
                        let o = obs[i]
                        let a = argmax(headVector(o, layer: l, head: h, heads: heads))
                        if o.cited.contains(a) { c += 1 }
                        if o.trueSource == a { t += 1 }
                    }
                    wc[l * heads + h] = c / Double(wrongIdx.count)
                    wt[l * heads + h] = t / Double(wrongIdx.count)
                }
            }
        }
        let ranking = rank(agreement: table.agree, pointBiserial: table.pb, layers: layers, heads: heads)
        let best = ranking[0]
        let bestReadout = readout(name: "best head \(best)", observations: obs, resamples: resamples, seed: seed &+ 30)
        {
            headVector($0, layer: best.layer, head: best.head, heads: heads)
        }
        // split half
        var heldOut = Double.nan
        if consistent.count >= 2 {
            let even = consistent.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
            let odd = consistent.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
            func transfer(_ pick: [Int], _ test: [Int]) -> Double {
                let t = headTable(obs, pick, layers: layers, heads: heads)
                let b = rank(agreement: t.agree, pointBiserial: t.pb, layers: layers, heads: heads)[0]
                let hits = test.filter { i in
                    let o = obs[i]
                    return o.cited.contains(argmax(headVector(o, layer: b.layer, head: b.head, heads: heads)))
                }.count
                return Double(hits) / Double(test.count)
            }
            heldOut = (transfer(even, odd) + transfer(odd, even)) / 2
        }
        return CitationSummary(
            layers: layers, heads: heads, statements: obs.count, consistent: consistent.count,
            wrong: wrongIdx.count, chanceAgreement: chance, allHeads: all, allHeadsPerToken: perToken,
            retrievalHeads: rh, retrievalHeadSet: retrieval ?? [], headAgreement: table.agree,
            headMeanSpearman: table.rho, headMeanPointBiserial: table.pb,
            headWrongFollowsCitation: wc, headWrongFollowsTrueSource: wt, ranking: ranking,
            bestHead: bestReadout, bestHeadHeldOutAgreement: heldOut)
    }
}

// MARK: - Citation recall / precision (L-CiteEval)

/// Decides whether passages support a statement. L-CiteEval uses an NLI model for this
/// (entailment); Headlight ships no NLI model, only the exact-match judge below.
public protocol CitationJudge: Sendable {
    /// Short name recorded in run files, e.g. "exact-match".
    var name: String { get }
    /// One-line description of the rule.
    var rule: String { get }
    /// Whether `passages` (together) support `statement`; `gold` is the item's answer fact, if known.
    func supports(passages: [String], statement: String, gold: String?) -> Bool
}

/// The exact-match stand-in for an entailment judge, for synthetic items whose answer is copied
/// from one passage: a passage supports a statement when (a) the item's gold answer occurs in
/// both the statement and the passage, or (b) the whole statement occurs in the passage (both
/// after `CitationText.normalize`). Several passages support it when one of them does (text is
/// never matched across passage boundaries).
public struct ExactMatchJudge: CitationJudge {
    public init() {}
    public var name: String { "exact-match" }
    public var rule: String {
        "exact match, not NLI entailment: a cited passage supports a statement when the item's gold answer occurs "
            + "in both the statement and the passage, or the whole statement occurs in the passage (NFKC, lowercase, "
            + "whitespace collapsed); several passages support it when one does"
    }

    public func supports(passages: [String], statement: String, gold: String?) -> Bool {
        let s = CitationText.normalize(statement)
        let g = gold.map(CitationText.normalize)
        for p in passages {
            let np = CitationText.normalize(p)
            if let g, !g.isEmpty, s.contains(g), np.contains(g) { return true }
            if !s.isEmpty, np.contains(s) { return true }
        }
        return false
    }
}

/// One response for citation recall / precision.
public struct CitationResponse: Sendable {
    public struct Statement: Sendable {
        public var text: String
        /// Cited passage numbers as written (1-based); out-of-range ones count as irrelevant.
        public var citations: [Int]
        public init(text: String, citations: [Int]) {
            self.text = text
            self.citations = citations
        }
    }
    public var passages: [String]
    public var statements: [Statement]
    public var gold: String?
    public init(passages: [String], statements: [Statement], gold: String?) {
        self.passages = passages
        self.statements = statements
        self.gold = gold
    }
}

public struct CitationQuality: Sendable, Equatable {
    public var recall: Double
    public var precision: Double
    public var f1: Double
}

extension CitationMetrics {
    /// L-CiteEval's citation recall and precision of one response, with `judge` for entailment:
    /// - recall: fraction of statements supported by the passages they cite (uncited: 0);
    /// - precision: fraction of citations that are relevant, a citation being relevant when its
    ///   passage alone supports the statement, or when the statement's cited set supports it and
    ///   the set without it does not; out-of-range citations are irrelevant;
    /// - F1 = 2PR / (P + R) (0 when both are 0). A response without statements scores 0.
    public static func citationQuality(_ r: CitationResponse, judge: CitationJudge) -> CitationQuality {
        guard !r.statements.isEmpty else { return CitationQuality(recall: 0, precision: 0, f1: 0) }
        func texts(_ ks: [Int]) -> [String] {
            ks.filter { $0 >= 1 && $0 <= r.passages.count }.map { r.passages[$0 - 1] }
        }
        var supported = 0, relevant = 0, citations = 0
        for s in r.statements {
            let all = texts(s.citations)
            let whole = !all.isEmpty && judge.supports(passages: all, statement: s.text, gold: r.gold)
            if whole { supported += 1 }
            for (i, k) in s.citations.enumerated() {
                citations += 1
                guard k >= 1 && k <= r.passages.count else { continue }
                if judge.supports(passages: [r.passages[k - 1]], statement: s.text, gold: r.gold) {
                    relevant += 1
                    continue
                }
                var rest = s.citations
                rest.remove(at: i)
                let others = texts(rest)
                if whole
                    && !(others.isEmpty ? false : judge.supports(passages: others, statement: s.text, gold: r.gold))
                {
                    relevant += 1
                }
            }
        }
        let recall = Double(supported) / Double(r.statements.count)
        let precision = citations == 0 ? 0 : Double(relevant) / Double(citations)
        let f1 = recall + precision == 0 ? 0 : 2 * recall * precision / (recall + precision)
        return CitationQuality(recall: recall, precision: precision, f1: f1)
    }
}
