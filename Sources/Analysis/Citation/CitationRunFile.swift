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

    /// Reads the scores (`RetrievalRunFile.read`); `top`: the K best heads (ties by (layer, head));
    /// nil: the heads above the file's threshold, or the 10 best if none is above it.
    public static func load(path: String, top: Int?, layers: Int, heads: Int) throws -> RetrievalHeadSet {
        func bad(_ d: String) -> CitationError { .badRetrievalHeads(file: path, detail: d) }
        guard FileManager.default.fileExists(atPath: path) else { throw bad("no such file") }
        let f: H5File
        do { f = try RunFile.open(path) } catch { throw bad("\(error.localizedDescription)") }
        defer { try? f.close() }
        let contents: RetrievalRunFile.Contents
        do {
            guard let c = try RetrievalRunFile.read(f) else { throw bad("no /retrieval_heads group") }
            contents = c
        } catch let e as CitationError {
            throw e
        } catch {
            throw bad("\(error.localizedDescription) (did the sweep finish?)")
        }
        guard contents.layers == layers, contents.heads == heads else {
            throw bad(
                "scores has shape [\(contents.layers), \(contents.heads)], but the model has \(layers) layers x "
                    + "\(heads) heads (another model?)")
        }
        let scores = contents.scores.scores
        let ranked = RetrievalHeadScores(layers: layers, heads: heads, scores: scores, countedTrials: 0)
        if let k = top {
            guard k >= 1 else { throw bad("--top must be at least 1") }
            return RetrievalHeadSet(
                heads: ranked.top(k).map(\.head), scores: scores, layers: layers, headsPerLayer: heads,
                rule: "top \(min(k, layers * heads)) by retrieval score")
        }
        let threshold = contents.threshold
        let above = ranked.above(threshold).map(\.head)
        if above.isEmpty {
            return RetrievalHeadSet(
                heads: ranked.top(10).map(\.head), scores: scores, layers: layers, headsPerLayer: heads,
                rule: "top 10 by retrieval score (none above the threshold \(threshold))")
        }
        return RetrievalHeadSet(
            heads: above, scores: scores, layers: layers, headsPerLayer: heads,
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
        public init(
            probes: String, mode: String, padTo: Int?, maxNewTokens: Int, chat: Bool, instruction: String,
            retrievalFile: String?, retrievalRule: String?, judge: CitationJudge, seed: UInt64, resamples: Int
        ) {
            self.probes = probes
            self.mode = mode
            self.padTo = padTo
            self.maxNewTokens = maxNewTokens
            self.chat = chat
            self.instruction = instruction
            self.retrievalFile = retrievalFile
            self.retrievalRule = retrievalRule
            self.judge = judge
            self.seed = seed
            self.resamples = resamples
        }
    }

    public static let queryRule =
        "statement tokens t_a..t_{b-1} are produced at query positions a-1..b-2; their attention is averaged. The "
        + "statement is the text before its citation marker: the marker tokens ([k]) and the text after it are excluded"
    public static let spanRule =
        "a passage span is the tokens overlapping the passage text; the '[k] ' number marker and "
        + "the newline before it are excluded"

    /// Columns of `items/`, one row per item.
    public static let itemColumns: [RecordTable.Column] = [
        .init("id", .string), .init("mode", .string), .init("line", .int64), .init("n_passages", .int64),
        .init("n_padded", .int64), .init("prompt_tokens", .int64), .init("answer_tokens", .int64),
        .init("response", .string), .init("wrong_citation", .int8), .init("source", .int64),
        .init("answer_correct", .int8), .init("cite_recall", .float64), .init("cite_precision", .float64),
        .init("cite_f1", .float64), .init("seconds", .float64)
    ]

    /// Columns of `statements/`, one row per statement, with the per-statement columns of each
    /// readout (`all_heads`, `retrieval_heads` with a set, `best_head`).
    public static func statementColumns(_ readouts: [String]) -> [RecordTable.Column] {
        var c: [RecordTable.Column] = [
            .init("item", .int64), .init("text", .string), .init("citations", .string), .init("scored", .int8),
            .init("wrong", .int8), .init("token_start", .int64), .init("token_end", .int64), .init("n_queries", .int64)
        ]
        for r in readouts {
            c += [
                .init("argmax_\(r)", .int64), .init("agree_\(r)", .int8), .init("spearman_\(r)", .float64),
                .init("point_biserial_\(r)", .float64)
            ]
        }
        return c
    }

    /// Columns of `statement_passages/`, one row per (scored statement, passage).
    public static func passageColumns(layers: Int, heads: Int, retrievalHeads: Bool) -> [RecordTable.Column] {
        var c: [RecordTable.Column] = [
            .init("statement", .int64), .init("passage", .int64),
            .init("span_start", .int64), .init("span_end", .int64),
            .init("cited", .int8), .init("true_source", .int8), .init("mass_all_heads", .float64)
        ]
        if retrievalHeads { c.append(.init("mass_retrieval_heads", .float64)) }
        c.append(.init("head_mass", .float32Block([layers, heads]), axes: ["row", "layer", "head"]))
        return c
    }

    /// Items, statements and metrics into `/citation` of `file` (which must not have one yet).
    public static func write(
        to file: H5File, results: [CitationItemResult], summary s: CitationSummary,
        parameters p: Parameters
    ) throws {
        try write(to: file, records: CitationRecords(results), summary: s, parameters: p)
    }

    /// `write` from records (a resumed run's, read back from its `.partial`).
    public static func write(
        to file: H5File, records: CitationRecords, summary s: CitationSummary, parameters p: Parameters
    ) throws {
        let g = try file.createGroup(group)
        try writeParameters(g, p, layers: s.layers, heads: s.heads, retrievalSet: s.retrievalHeadSet)
        try writeRecords(g, records, summary: s, layers: s.layers, heads: s.heads)
    }

    static func writeParameters(
        _ g: H5Group, _ p: Parameters, layers: Int, heads: Int, retrievalSet: [HeadIndex]
    ) throws {
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
        try g.setAttribute("n_layers", layers)
        try g.setAttribute("n_heads", heads)
        if let f = p.retrievalFile { try g.setAttribute("retrieval_heads_file", f) }
        if let r = p.retrievalRule { try g.setAttribute("retrieval_heads_rule", r) }
        try g.setAttribute("retrieval_heads_list", retrievalSet.map(\.description))
    }

    /// Summary attributes, `items/`, `statements/`, `statement_passages/` and the per-head tables
    /// into `g`; without `s` (a shard) only the records, without the readout columns.
    static func writeRecords(
        _ g: H5Group, _ rec: CitationRecords, summary s: CitationSummary?, layers: Int, heads: Int
    ) throws {
        if let s { try writeSummaryAttributes(g, rec, s) }
        try RecordTable.write(group: try g.createGroup("items"), columns: itemColumns, rows: rec.items)
        let rows = recordRows(rec, summary: s, layers: layers, heads: heads)
        try RecordTable.write(
            group: try g.createGroup("statements"), columns: statementColumns(rows.readouts), rows: rows.statements)
        try RecordTable.write(
            group: try g.createGroup("statement_passages"),
            columns: passageColumns(layers: layers, heads: heads, retrievalHeads: rows.retrievalMass),
            rows: rows.passages)
        if let s { try writeHeadTables(g, s) }
    }

    /// The `statements/` and `statement_passages/` rows of `rec`, with the readout columns of
    /// `s` (none without it); statement rows name items from `firstItem`, passage rows statements
    /// from `firstStatement` (a resumable run appends item by item). `retrievalMass`: the rows
    /// have `mass_retrieval_heads`.
    static func recordRows(
        _ rec: CitationRecords, summary s: CitationSummary?, layers: Int, heads: Int, firstItem: Int = 0,
        firstStatement: Int = 0
    ) -> (
        statements: [[String: RecordTable.Value]], passages: [[String: RecordTable.Value]], readouts: [String],
        retrievalMass: Bool
    ) {
        // statements (the k-th scored statement is observation k of the summary)
        var readouts: [(name: String, readout: AttentionReadout)] = []
        if let s {
            readouts.append(("all_heads", s.allHeads))
            if let r = s.retrievalHeads { readouts.append(("retrieval_heads", r)) }
            readouts.append(("best_head", s.bestHead))
        }
        var statementRows: [[String: RecordTable.Value]] = []
        var observed: [Int] = [] // row in statements/ of each observation
        for st in rec.statements {
            var row: [String: RecordTable.Value] = [
                "item": .int(firstItem + st.item), "text": .string(st.text),
                "citations": .string(st.citations.map(String.init).joined(separator: ",")),
                "scored": .int(st.observation == nil ? 0 : 1),
                "wrong": .int(st.observation?.isWrongCitation == true ? 1 : 0),
                "token_start": .int(st.tokens.lowerBound), "token_end": .int(st.tokens.upperBound),
                "n_queries": .int(st.queries)
            ]
            let k: Int? = st.observation == nil ? nil : observed.count
            for (name, ro) in readouts {
                let sc = k.map { ro.scores[$0] }
                row["argmax_\(name)"] = .int(sc.map { $0.argmax + 1 } ?? 0)
                row["agree_\(name)"] = .int(sc?.agree == true ? 1 : 0)
                row["spearman_\(name)"] = .double(sc?.spearman ?? .nan)
                row["point_biserial_\(name)"] = .double(sc?.pointBiserial ?? .nan)
            }
            if st.observation != nil { observed.append(statementRows.count) }
            statementRows.append(row)
        }
        if let s { precondition(observed.count == s.statements, "summary and results disagree") }

        // statement x passage rows
        var passageRows: [[String: RecordTable.Value]] = []
        var k = 0
        let rhSet = s?.retrievalHeads == nil ? nil : s?.retrievalHeadSet
        for st in rec.statements {
            guard let o = st.observation else { continue }
            let all = CitationMetrics.meanVector(o, heads: heads, set: nil)
            let rh = rhSet.map { CitationMetrics.meanVector(o, heads: heads, set: $0) }
            for j in 0..<o.passages {
                var row: [String: RecordTable.Value] = [
                    "statement": .int(firstStatement + observed[k]), "passage": .int(j + 1),
                    "span_start": .int(st.spans[j].lowerBound),
                    "span_end": .int(st.spans[j].upperBound),
                    "cited": .int(o.cited.contains(j) ? 1 : 0), "true_source": .int(o.trueSource == j ? 1 : 0),
                    "mass_all_heads": .double(all[j]),
                    // [layer, head]: every head's mean mass on passage j
                    "head_mass": .floats((0..<(layers * heads)).map { o.mass[$0 * o.passages + j] })
                ]
                if let rh { row["mass_retrieval_heads"] = .double(rh[j]) }
                passageRows.append(row)
            }
            k += 1
        }
        return (statementRows, passageRows, readouts.map(\.name), rhSet != nil)
    }

    static func writeSummaryAttributes(_ g: H5Group, _ rec: CitationRecords, _ s: CitationSummary) throws {
        // summary attributes
        try g.setAttribute("n_items", rec.items.count)
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
        try g.setAttribute("citation_recall", Statistics.mean(rec.doubles("cite_recall")))
        try g.setAttribute("citation_precision", Statistics.mean(rec.doubles("cite_precision")))
        try g.setAttribute("citation_f1", Statistics.mean(rec.doubles("cite_f1")))
        let judged = rec.answersJudged
        if !judged.isEmpty {
            try g.setAttribute("answer_accuracy", Double(judged.filter { $0 }.count) / Double(judged.count))
        }
    }

    static func writeHeadTables(_ g: H5Group, _ s: CitationSummary) throws {
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
        let rk = try g.createDataset(
            "head_ranking", data: s.ranking.flatMap { [Int64($0.layer), Int64($0.head)] },
            shape: [s.ranking.count, 2])
        try rk.setAttribute("axes", ["rank", "layer_head"])
        try rk.setAttribute("rule", "agreement descending, ties by mean point-biserial descending, then (layer, head)")
        if !s.retrievalHeadSet.isEmpty {
            let ds = try g.createDataset(
                "retrieval_heads", data: s.retrievalHeadSet.flatMap { [Int64($0.layer), Int64($0.head)] },
                shape: [s.retrievalHeadSet.count, 2])
            try ds.setAttribute("axes", ["index", "layer_head"])
        }
    }

    // MARK: Reading

    /// A readout's summary as stored: (estimate, CI lower, upper) per statistic.
    public struct ReadoutSummary: Sendable {
        /// all_heads, all_heads_per_token, retrieval_heads or best_head.
        public var name: String
        /// agreement, mean_spearman, mean_point_biserial, wrong_follows_citation,
        /// wrong_follows_true_source -> (estimate, lower, upper).
        public var values: [String: (estimate: Double, lower: Double, upper: Double)]
        public var agreementAllStatements: Double
    }

    public static let readoutNames = ["all_heads", "retrieval_heads", "best_head", "all_heads_per_token"]
    public static let readoutStatistics = [
        "agreement", "mean_spearman",
        "mean_point_biserial", "wrong_follows_citation",
        "wrong_follows_true_source"
    ]

    /// What a `/citation` group holds (everything but `statement_passages/`, which only analyses
    /// of the raw masses need: read it with `RecordTable.read` and `passageColumns`).
    public struct Contents: Sendable {
        public var layers: Int
        public var heads: Int
        public var mode: String
        public var items: Int
        public var statements: Int
        public var consistent: Int
        public var wrongCitations: Int
        public var chanceAgreement: Double
        /// In `readoutNames` order, those present.
        public var readouts: [ReadoutSummary]
        public var bestHead: String
        public var bestHeadHeldOutAgreement: Double
        public var citationRecall: Double
        public var citationPrecision: Double
        public var citationF1: Double
        public var answerAccuracy: Double?
        /// [layers * heads] per-head tables.
        public var headAgreement: [Double]
        public var headMeanSpearman: [Double]
        public var headMeanPointBiserial: [Double]
        public var headWrongFollowsCitation: [Double]
        public var headWrongFollowsTrueSource: [Double]
        public var ranking: [HeadIndex]
        public var retrievalHeads: [HeadIndex]
        /// `items/` and `statements/` (columns as in `itemColumns` / `statementColumns`).
        public var itemRows: RecordTable.Rows
        public var statementRows: RecordTable.Rows
        /// Readouts with per-statement columns (`argmax_<r>` ...).
        public var statementReadouts: [String]
    }

    /// Reads the `/citation` group of an open run file; nil if it has none. Everything the writer
    /// always stores must be present with its type and shape (else a `TraceStoreError` or
    /// `RecordTableError` naming the object).
    public static func read(_ f: H5File) throws -> Contents? {
        guard try f.kind(of: group) != nil else { return nil }
        let g = try f.group(group)
        let layers = try g.intAttribute("n_layers"), heads = try g.intAttribute("n_heads")
        var readouts: [ReadoutSummary] = []
        for r in readoutNames {
            // all_heads and best_head are always written; the other two only with their data.
            let present = try g.hasAttribute("agreement_\(r)")
            if r != "all_heads" && r != "best_head" && !present { continue }
            var values: [String: (estimate: Double, lower: Double, upper: Double)] = [:]
            for m in readoutStatistics {
                let ci = try g.doublesAttribute("\(m)_\(r)_ci")
                guard ci.count == 2 else {
                    throw TraceStoreError.shapeMismatch(
                        file: f.path, object: "\(g.name) @\(m)_\(r)_ci",
                        detail: "\(ci.count) values, expected 2")
                }
                values[m] = (try g.doubleAttribute("\(m)_\(r)"), ci[0], ci[1])
            }
            let all = try g.doubleAttribute("agreement_all_statements_\(r)")
            readouts.append(ReadoutSummary(name: r, values: values, agreementAllStatements: all))
        }
        func table(_ name: String) throws -> [Double] {
            let ds = try g.dataset(name)
            guard try ds.shape == [layers, heads] else {
                throw TraceStoreError.shapeMismatch(
                    file: f.path, object: ds.name,
                    detail: "shape \(try ds.shape), expected [\(layers), \(heads)]")
            }
            return try ds.read(Double.self)
        }
        func pairs(_ name: String) throws -> [HeadIndex] {
            let ds = try g.dataset(name)
            let shape = try ds.shape
            guard shape.count == 2, shape[1] == 2 else {
                throw TraceStoreError.shapeMismatch(
                    file: f.path, object: ds.name,
                    detail: "shape \(shape), expected [n, 2]")
            }
            let v = shape[0] == 0 ? [] : try ds.read(Int64.self).map(Int.init)
            return stride(from: 0, to: v.count, by: 2).map { HeadIndex(layer: v[$0], head: v[$0 + 1]) }
        }
        let statementReadouts = readouts.map(\.name).filter { $0 != "all_heads_per_token" }
        return Contents(
            layers: layers, heads: heads, mode: try g.stringAttribute("mode"), items: try g.intAttribute("n_items"),
            statements: try g.intAttribute("n_statements"), consistent: try g.intAttribute("n_consistent"),
            wrongCitations: try g.intAttribute("n_wrong_citations"),
            chanceAgreement: try g.doubleAttribute("chance_agreement"), readouts: readouts,
            bestHead: try g.stringAttribute("best_head"),
            bestHeadHeldOutAgreement: try g.doubleAttribute("best_head_held_out_agreement"),
            citationRecall: try g.doubleAttribute("citation_recall"),
            citationPrecision: try g.doubleAttribute("citation_precision"),
            citationF1: try g.doubleAttribute("citation_f1"),
            answerAccuracy: try g.attributeIfPresent("answer_accuracy")?.doubleValue,
            headAgreement: try table("head_agreement"), headMeanSpearman: try table("head_mean_spearman"),
            headMeanPointBiserial: try table("head_mean_point_biserial"),
            headWrongFollowsCitation: try table("head_wrong_follows_citation"),
            headWrongFollowsTrueSource: try table("head_wrong_follows_true_source"),
            ranking: try pairs("head_ranking"),
            retrievalHeads: try g.kind(of: "retrieval_heads") == nil ? [] : try pairs("retrieval_heads"),
            itemRows: try RecordTable.read(group: try g.group("items"), columns: itemColumns),
            statementRows: try RecordTable.read(
                group: try g.group("statements"),
                columns: statementColumns(statementReadouts)),
            statementReadouts: statementReadouts)
    }
}
