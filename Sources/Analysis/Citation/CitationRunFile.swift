import Foundation
import TraceStore

// The `/citation` group of a run file.
//
//   /citation                       @analysis = "citation", @analysis_version, parameters and
//                                   summary attributes (see `CitationRunFile.write`)
//   /citation/items/<column>        one row per item: id, mode, line, n_passages, n_padded,
//                                   prompt_tokens, answer_tokens, response, wrong_citation,
//                                   source (1-based, 0 unknown), answer_correct (-1 unknown),
//                                   cite_recall, cite_precision, cite_f1, seconds
//   /citation/statements/<column>   one row per statement: item (row in items), text, citations
//                                   (as written, "2" or "1,3"), scored (1 if it has an observation),
//                                   wrong (cites not the true source), token_start, token_end,
//                                   n_queries, and for the all-heads / retrieval-head / best-head
//                                   readouts argmax_* (1-based, 0 if unscored), agree_*, spearman_*,
//                                   point_biserial_*
//   /citation/statement_passages/   one row per (scored statement, passage): statement, passage
//                                   (1-based), span_start, span_end, cited, true_source,
//                                   mass_all_heads, mass_retrieval_heads (if any), and
//                                   head_mass float32 [row, layer, head] (the mean span mass of
//                                   every head: everything the metrics are computed from)
//   /citation/head_agreement        float64 [layer, head]: agreement over consistent statements
//   /citation/head_mean_spearman    float64 [layer, head]
//   /citation/head_mean_point_biserial  float64 [layer, head]
//   /citation/head_wrong_follows_citation, head_wrong_follows_true_source  float64 [layer, head]
//   /citation/head_ranking          int64 [rank, 2] (layer, head), best first
//   /citation/retrieval_heads       int64 [k, 2] (layer, head), if a set was used

/// The retrieval-head set from a `retrieval-heads` run file (group `/retrieval_heads`, dataset
/// `scores` [layer, head], attribute `threshold`).
public struct RetrievalHeadSet: Sendable {
    public var heads: [HeadIndex]
    public var scores: [Double]
    public var layers: Int
    public var headsPerLayer: Int
    /// How the set was chosen, e.g. "top 10 by score" or "score > 0.1".
    public var rule: String

    /// Reads the scores; `top`: the K best heads (ties by (layer, head)); nil: the heads above the
    /// file's threshold (`threshold` attribute, else 0.1), or the 10 best if none is above it.
    public static func load(path: String, top: Int?, layers: Int, heads: Int) throws -> RetrievalHeadSet {
        func bad(_ d: String) -> CitationError { .badRetrievalHeads(file: path, detail: d) }
        guard FileManager.default.fileExists(atPath: path) else { throw bad("no such file") }
        let f: H5File
        do { f = try RunFile.open(path) } catch { throw bad("\(error.localizedDescription)") }
        defer { try? f.close() }
        guard try f.exists("retrieval_heads") else { throw bad("no /retrieval_heads group") }
        let g = try f.group("retrieval_heads")
        guard try g.exists("scores") else { throw bad("no /retrieval_heads/scores dataset (did the sweep finish?)") }
        let ds = try g.dataset("scores")
        let shape = try ds.shape
        guard shape == [layers, heads] else {
            throw bad("scores has shape \(shape), but the model has \(layers) layers x \(heads) heads (another model?)")
        }
        let scores = try ds.read(Double.self)
        let ranked = RetrievalHeadScores(layers: layers, heads: heads, scores: scores, countedTrials: 0)
        if let k = top {
            guard k >= 1 else { throw bad("--top must be at least 1") }
            return RetrievalHeadSet(heads: ranked.top(k).map(\.head), scores: scores, layers: layers, headsPerLayer: heads,
                                    rule: "top \(min(k, layers * heads)) by retrieval score")
        }
        let threshold = try g.attributeIfPresent("threshold")?.doubleValue ?? RetrievalCopyRule.defaultHeadThreshold
        let above = ranked.above(threshold).map(\.head)
        if above.isEmpty {
            return RetrievalHeadSet(heads: ranked.top(10).map(\.head), scores: scores, layers: layers, headsPerLayer: heads,
                                    rule: "top 10 by retrieval score (none above the threshold \(threshold))")
        }
        return RetrievalHeadSet(heads: above, scores: scores, layers: layers, headsPerLayer: heads,
                                rule: "retrieval score > \(threshold)")
    }
}

public enum CitationRunFile {
    public static let group = "citation"
    public static let analysisVersion = 1

    /// Run parameters recorded as attributes.
    public struct Parameters: Sendable {
        public var probes: String
        public var mode: String
        public var padTo: Int?
        public var maxNewTokens: Int
        public var chat: Bool
        public var instruction: String
        public var retrievalFile: String?
        public var retrievalRule: String?
        public var judge: CitationJudge
        public var seed: UInt64
        public var resamples: Int
        public init(probes: String, mode: String, padTo: Int?, maxNewTokens: Int, chat: Bool, instruction: String,
                    retrievalFile: String?, retrievalRule: String?, judge: CitationJudge, seed: UInt64, resamples: Int) {
            self.probes = probes; self.mode = mode; self.padTo = padTo; self.maxNewTokens = maxNewTokens; self.chat = chat
            self.instruction = instruction; self.retrievalFile = retrievalFile; self.retrievalRule = retrievalRule
            self.judge = judge; self.seed = seed; self.resamples = resamples
        }
    }

    public static let queryRule = "statement tokens t_a..t_{b-1} are produced at query positions a-1..b-2; their attention "
        + "is averaged. The statement is the text before its citation marker: the marker tokens ([k]) and the text after it "
        + "are excluded"
    public static let spanRule = "a passage span is the tokens overlapping the passage text; the '[k] ' number marker and "
        + "the newline before it are excluded"

    /// Items, statements and metrics into `/citation` of `file` (which must not have one yet).
    public static func write(to file: H5File, results: [CitationItemResult], summary s: CitationSummary,
                             parameters p: Parameters) throws {
        let g = try file.createGroup(group)
        try g.setAttribute("analysis", "citation")
        try g.setAttribute("analysis_version", analysisVersion)
        try g.setAttribute("probes", p.probes)
        try g.setAttribute("mode", p.mode)
        try g.setAttribute("pad_to", p.padTo ?? 0)
        try g.setAttribute("max_new_tokens", p.maxNewTokens)
        try g.setAttribute("chat", p.chat)
        try g.setAttribute("instruction", p.instruction)
        try g.setAttribute("query_rule", queryRule)
        try g.setAttribute("span_rule", spanRule)
        try g.setAttribute("citation_judge", p.judge.name)
        try g.setAttribute("citation_judge_rule", p.judge.rule)
        try g.setAttribute("seed", Int64(bitPattern: p.seed))
        try g.setAttribute("bootstrap_resamples", p.resamples)
        try g.setAttribute("n_layers", s.layers)
        try g.setAttribute("n_heads", s.heads)
        if let f = p.retrievalFile { try g.setAttribute("retrieval_heads_file", f) }
        if let r = p.retrievalRule { try g.setAttribute("retrieval_heads_rule", r) }
        try g.setAttribute("retrieval_heads_list", s.retrievalHeadSet.map(\.description))

        // summary attributes
        try g.setAttribute("n_items", results.count)
        try g.setAttribute("n_statements", s.statements)
        try g.setAttribute("n_consistent", s.consistent)
        try g.setAttribute("n_wrong_citations", s.wrong)
        try g.setAttribute("chance_agreement", s.chanceAgreement)
        func readout(_ prefix: String, _ r: AttentionReadout) throws {
            func ci(_ name: String, _ c: ConfidenceInterval) throws {
                try g.setAttribute("\(name)_\(prefix)", c.estimate)
                try g.setAttribute("\(name)_\(prefix)_ci", [c.lower, c.upper])
            }
            try ci("agreement", r.agreement)
            try ci("mean_spearman", r.meanSpearman)
            try ci("mean_point_biserial", r.meanPointBiserial)
            try ci("wrong_follows_citation", r.wrongFollowsCitation)
            try ci("wrong_follows_true_source", r.wrongFollowsTrueSource)
            try g.setAttribute("agreement_all_statements_\(prefix)", r.agreementAllStatements)
        }
        try readout("all_heads", s.allHeads)
        if let r = s.allHeadsPerToken { try readout("all_heads_per_token", r) }
        if let r = s.retrievalHeads { try readout("retrieval_heads", r) }
        try readout("best_head", s.bestHead)
        try g.setAttribute("best_head", s.ranking[0].description)
        try g.setAttribute("best_head_held_out_agreement", s.bestHeadHeldOutAgreement)
        let q = results.map(\.quality)
        try g.setAttribute("citation_recall", Statistics.mean(q.map(\.recall)))
        try g.setAttribute("citation_precision", Statistics.mean(q.map(\.precision)))
        try g.setAttribute("citation_f1", Statistics.mean(q.map(\.f1)))
        let judged = results.compactMap(\.answerCorrect)
        if !judged.isEmpty {
            try g.setAttribute("answer_accuracy", Double(judged.filter { $0 }.count) / Double(judged.count))
        }

        // items
        let ig = try g.createGroup("items")
        try ig.createDataset("id", strings: results.map(\.item.id))
        try ig.createDataset("mode", strings: results.map(\.mode.rawValue))
        try ig.createDataset("line", data: results.map { Int64($0.item.line) })
        try ig.createDataset("n_passages", data: results.map { Int64($0.item.passages.count) })
        try ig.createDataset("n_padded", data: results.map { Int64($0.paddedPassages) })
        try ig.createDataset("prompt_tokens", data: results.map { Int64($0.promptTokens) })
        try ig.createDataset("answer_tokens", data: results.map { Int64($0.answerTokens) })
        try ig.createDataset("response", strings: results.map(\.response))
        try ig.createDataset("wrong_citation", data: results.map { Int8($0.item.wrongCitation ? 1 : 0) })
        try ig.createDataset("source", data: results.map { Int64(($0.item.source ?? -1) + 1) })
        try ig.createDataset("answer_correct", data: results.map { Int8($0.answerCorrect.map { $0 ? 1 : 0 } ?? -1) })
        try ig.createDataset("cite_recall", data: q.map(\.recall))
        try ig.createDataset("cite_precision", data: q.map(\.precision))
        try ig.createDataset("cite_f1", data: q.map(\.f1))
        try ig.createDataset("seconds", data: results.map(\.seconds))

        // statements (the k-th scored statement is observation k of the summary)
        var item: [Int64] = [], text: [String] = [], cites: [String] = [], scored: [Int8] = [], wrong: [Int8] = []
        var ts: [Int64] = [], te: [Int64] = [], nq: [Int64] = []
        var rows: [(obs: StatementObservation, statement: Int)] = []
        for (i, r) in results.enumerated() {
            for st in r.statements {
                item.append(Int64(i)); text.append(st.text)
                cites.append(st.citations.map(String.init).joined(separator: ","))
                scored.append(st.observation == nil ? 0 : 1)
                wrong.append(st.observation?.isWrongCitation == true ? 1 : 0)
                ts.append(Int64(st.tokens.lowerBound)); te.append(Int64(st.tokens.upperBound)); nq.append(Int64(st.queries.count))
                if let o = st.observation { rows.append((o, text.count - 1)) }
            }
        }
        precondition(rows.count == s.statements, "summary and results disagree")
        let sg = try g.createGroup("statements")
        try sg.createDataset("item", data: item)
        try sg.createDataset("text", strings: text)
        try sg.createDataset("citations", strings: cites)
        try sg.createDataset("scored", data: scored)
        try sg.createDataset("wrong", data: wrong)
        try sg.createDataset("token_start", data: ts)
        try sg.createDataset("token_end", data: te)
        try sg.createDataset("n_queries", data: nq)
        func readoutColumns(_ name: String, _ r: AttentionReadout) throws {
            var am = [Int64](repeating: 0, count: text.count), ag = [Int8](repeating: 0, count: text.count)
            var rho = [Double](repeating: .nan, count: text.count), pb = rho
            for (k, row) in rows.enumerated() {
                let sc = r.scores[k]
                am[row.statement] = Int64(sc.argmax + 1); ag[row.statement] = sc.agree ? 1 : 0
                rho[row.statement] = sc.spearman; pb[row.statement] = sc.pointBiserial
            }
            try sg.createDataset("argmax_\(name)", data: am)
            try sg.createDataset("agree_\(name)", data: ag)
            try sg.createDataset("spearman_\(name)", data: rho)
            try sg.createDataset("point_biserial_\(name)", data: pb)
        }
        try readoutColumns("all_heads", s.allHeads)
        if let r = s.retrievalHeads { try readoutColumns("retrieval_heads", r) }
        try readoutColumns("best_head", s.bestHead)

        // statement x passage rows
        var spStatement: [Int64] = [], spPassage: [Int64] = [], spStart: [Int64] = [], spEnd: [Int64] = []
        var spCited: [Int8] = [], spTrue: [Int8] = [], massAll: [Double] = [], massRH: [Double] = []
        var headMass: [Float] = []
        var k = 0
        for r in results {
            for st in r.statements {
                guard let o = st.observation else { continue }
                let all = CitationMetrics.meanVector(o, heads: s.heads, set: nil)
                let rh = s.retrievalHeads == nil ? nil : CitationMetrics.meanVector(o, heads: s.heads, set: s.retrievalHeadSet)
                for j in 0..<o.passages {
                    spStatement.append(Int64(rows[k].statement)); spPassage.append(Int64(j + 1))
                    spStart.append(Int64(r.passageSpans[j].lowerBound)); spEnd.append(Int64(r.passageSpans[j].upperBound))
                    spCited.append(o.cited.contains(j) ? 1 : 0); spTrue.append(o.trueSource == j ? 1 : 0)
                    massAll.append(all[j])
                    if let rh { massRH.append(rh[j]) }
                    for lh in 0..<(s.layers * s.heads) { headMass.append(o.mass[lh * o.passages + j]) }
                }
                k += 1
            }
        }
        let pg = try g.createGroup("statement_passages")
        try pg.createDataset("statement", data: spStatement)
        try pg.createDataset("passage", data: spPassage)
        try pg.createDataset("span_start", data: spStart)
        try pg.createDataset("span_end", data: spEnd)
        try pg.createDataset("cited", data: spCited)
        try pg.createDataset("true_source", data: spTrue)
        try pg.createDataset("mass_all_heads", data: massAll)
        if s.retrievalHeads != nil { try pg.createDataset("mass_retrieval_heads", data: massRH) }
        let n = spStatement.count
        let hm = try pg.createDataset("head_mass", data: headMass, shape: [n, s.layers, s.heads],
                                      chunks: n > 0 ? [min(n, 256), s.layers, s.heads] : nil, gzip: n > 0 ? 4 : nil,
                                      shuffle: n > 0)
        try hm.setAttribute("axes", ["row", "layer", "head"])

        // per-head tables
        func table(_ name: String, _ v: [Double]) throws {
            let ds = try g.createDataset(name, data: v, shape: [s.layers, s.heads])
            try ds.setAttribute("axes", ["layer", "head"])
        }
        try table("head_agreement", s.headAgreement)
        try table("head_mean_spearman", s.headMeanSpearman)
        try table("head_mean_point_biserial", s.headMeanPointBiserial)
        try table("head_wrong_follows_citation", s.headWrongFollowsCitation)
        try table("head_wrong_follows_true_source", s.headWrongFollowsTrueSource)
        let rk = try g.createDataset("head_ranking", data: s.ranking.flatMap { [Int64($0.layer), Int64($0.head)] },
                                     shape: [s.ranking.count, 2])
        try rk.setAttribute("axes", ["rank", "layer_head"])
        try rk.setAttribute("rule", "agreement descending, ties by mean point-biserial descending, then (layer, head)")
        if !s.retrievalHeadSet.isEmpty {
            let ds = try g.createDataset("retrieval_heads", data: s.retrievalHeadSet.flatMap { [Int64($0.layer), Int64($0.head)] },
                                         shape: [s.retrievalHeadSet.count, 2])
            try ds.setAttribute("axes", ["index", "layer_head"])
        }
    }
}
