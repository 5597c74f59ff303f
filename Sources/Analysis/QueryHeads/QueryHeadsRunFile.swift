import Foundation
import TraceStore

// The `/query_heads` group of a run file (`headlight query-heads`; docs/run-file.md).
//
//   /query_heads                 @analysis = "query_heads", @analysis_version, parameters and
//                                summary attributes (see `write`): probes, chat, null_query,
//                                prompt_rule, score_rule, likelihood_rule, n_layers, n_heads,
//                                n_items, n_detect, n_eval, top_n, methods, method_descriptions,
//                                wu_file / wu_rule / spearman_wu / spearman_wu_p / kendall_wu (with
//                                a retrieval-heads file)
//   /query_heads/items/<col>     one row per item: id, split ("detect" / "eval"), kind, gold
//                                (1-based), n_passages, prompt_tokens, query_tokens, seconds
//   /query_heads/passages/<col>  one row per (item, passage): item (row), passage (1-based), gold,
//                                span_start, span_end, score_<method> for every method, head_score
//                                float32 [row, layer, head] (calibrated, outlier-masked QRHead
//                                score), head_mass float32 [row, layer, head] (uncalibrated mass of
//                                the query tokens on the span)
//   /query_heads/qr_scores       float64 [layer, head]: QRScore (mean gold-passage score over the
//                                detection items)
//   /query_heads/head_ranking    int64 [rank, 2] (layer, head), best first
//   /query_heads/top_heads       int64 [n, 2]: the QRHead re-ranker's heads
//   /query_heads/wu_scores       float64 [layer, head] and wu_heads int64 [n, 2] (with a file)
//   /query_heads/recall          float64 [method, k]: mean recall@k over eval items, k = 1...K
//   /query_heads/ndcg            float64 [method, k]
//   /query_heads/mrr             float64 [method]
//   /query_heads/recall_at_1_ci  float64 [method, 2]: 95% bootstrap CI
//   /query_heads/recall_at_1_by_kind  float64 [kind, method] (@kinds, @kind_counts) when items
//                                have a meta.kind
//   /query_heads/overlap/<col>   (with a file) n, overlap, expected: top-N overlap with Wu's heads
//   /query_heads/overlap_ci      (with a file) float64 [n, 2]: 95% bootstrap bounds of each overlap
//                                over the detection items; @spearman_wu_ci, @kendall_wu_ci float64[2]

public enum QueryHeadsRunFile {
    public static let group = "query_heads"
    public static let analysisVersion = 1

    public struct Parameters: Sendable {
        public var probes: String
        public var chat: Bool
        public var nullQuery: String
        public var wuFile: String?
        public var wuRule: String?
        public init(probes: String, chat: Bool, nullQuery: String, wuFile: String?, wuRule: String?) {
            self.probes = probes
            self.chat = chat
            self.nullQuery = nullQuery
            self.wuFile = wuFile
            self.wuRule = wuRule
        }
    }

    public static let promptRule =
        "user turn ' Here are some paragraphs:' + '\\n\\n[i] <passage>' each + '\\n\\nPlease find information that "
        + "are relevant to the following query in the paragraphs above.\\n\\nQuery: <question>', chat template with "
        + "generation prompt; query span = 'Please find ...' to the end of the prompt; passage span = '[i] <passage>'"
    public static let scoreRule =
        "per head: attention of the query-span tokens averaged over them, minus the same for the null query; per "
        + "passage, tokens <= mean - 2 std (Bessel) zeroed, the rest summed. QRScore = mean gold-passage score over the "
        + "detection items. Head sets: per-token scores summed over the set, then masked and summed"

    public static let itemColumns: [RecordTable.Column] = [
        .init("id", .string), .init("split", .string), .init("kind", .string), .init("gold", .int64),
        .init("n_passages", .int64), .init("prompt_tokens", .int64), .init("query_tokens", .int64),
        .init("seconds", .float64)
    ]

    public static func passageColumns(methods: [String], layers: Int, heads: Int) -> [RecordTable.Column] {
        var c: [RecordTable.Column] = [
            .init("item", .int64), .init("passage", .int64), .init("gold", .int8),
            .init("span_start", .int64), .init("span_end", .int64)
        ]
        for m in methods { c.append(.init("score_\(m)", .float64)) }
        c.append(.init("head_score", .float32Block([layers, heads]), axes: ["row", "layer", "head"]))
        c.append(.init("head_mass", .float32Block([layers, heads]), axes: ["row", "layer", "head"]))
        return c
    }

    public static let overlapColumns: [RecordTable.Column] = [
        .init("n", .int64), .init("overlap", .int64), .init("expected", .float64)
    ]

    /// The item's `meta.kind` ("lexical" / "paraphrase" in the default set), else "".
    static func kind(_ meta: String?) -> String {
        guard let m = meta, let d = m.data(using: .utf8),
            let o = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any], let k = o["kind"] as? String
        else { return "" }
        return k
    }

    public static func write(
        to file: H5File, results: [QueryHeadsItemResult], summary s: QueryHeadsSummary, parameters p: Parameters
    ) throws {
        let g = try file.createGroup(group)
        let methods = s.rerankers.map(\.name)
        try g.setAttribute("analysis", "query_heads")
        try g.setAttribute("analysis_version", analysisVersion)
        try g.setAttribute("probes", p.probes)
        try g.setAttribute("chat", p.chat)
        try g.setAttribute("null_query", p.nullQuery)
        try g.setAttribute("prompt_rule", promptRule)
        try g.setAttribute("score_rule", scoreRule)
        try g.setAttribute("likelihood_rule", QueryHeadsRunner.likelihoodRule)
        try g.setAttribute("n_layers", s.layers)
        try g.setAttribute("n_heads", s.heads)
        try g.setAttribute("n_items", results.count)
        try g.setAttribute("n_detect", s.detectItems)
        try g.setAttribute("n_eval", s.evalItems)
        try g.setAttribute("top_n", s.topHeads.count)
        try g.setAttribute("methods", methods)
        try g.setAttribute("method_descriptions", s.rerankers.map(\.description))
        if let f = p.wuFile { try g.setAttribute("wu_file", f) }
        if let r = p.wuRule { try g.setAttribute("wu_rule", r) }
        if let v = s.spearman { try g.setAttribute("spearman_wu", v) }
        if let v = s.spearmanP { try g.setAttribute("spearman_wu_p", v) }
        if let v = s.kendall { try g.setAttribute("kendall_wu", v) }
        if let v = s.spearmanCI { try g.setAttribute("spearman_wu_ci", [v.lower, v.upper]) }
        if let v = s.kendallCI { try g.setAttribute("kendall_wu_ci", [v.lower, v.upper]) }

        try RecordTable.write(
            group: try g.createGroup("items"), columns: itemColumns,
            rows: results.map { r in
                [
                    "id": .string(r.item.id), "split": .string(r.detect ? "detect" : "eval"),
                    "kind": .string(kind(r.item.meta)), "gold": .int(r.gold + 1),
                    "n_passages": .int(r.item.passages.count), "prompt_tokens": .int(r.promptTokens),
                    "query_tokens": .int(r.queryTokens), "seconds": .double(r.seconds)
                ]
            })
        let nh = s.layers * s.heads
        var rows: [[String: RecordTable.Value]] = []
        for (i, r) in results.enumerated() {
            for j in r.item.passages.indices {
                var row: [String: RecordTable.Value] = [
                    "item": .int(i), "passage": .int(j + 1), "gold": .int(j == r.gold ? 1 : 0),
                    "span_start": .int(r.passageSpans[j].lowerBound), "span_end": .int(r.passageSpans[j].upperBound),
                    "head_score": .floats(Array(r.headScores[(j * nh)..<((j + 1) * nh)])),
                    "head_mass": .floats(Array(r.headMass[(j * nh)..<((j + 1) * nh)]))
                ]
                for m in s.rerankers { row["score_\(m.name)"] = .double(m.scores[i][j]) }
                rows.append(row)
            }
        }
        try RecordTable.write(
            group: try g.createGroup("passages"),
            columns: passageColumns(methods: methods, layers: s.layers, heads: s.heads), rows: rows)

        func table(_ name: String, _ v: [Double]) throws {
            let ds = try g.createDataset(name, data: v, shape: [s.layers, s.heads])
            try ds.setAttribute("axes", ["layer", "head"])
        }
        func pairs(_ name: String, _ hs: [HeadIndex]) throws {
            let ds = try g.createDataset(
                name, data: hs.flatMap { [Int64($0.layer), Int64($0.head)] }, shape: [hs.count, 2])
            try ds.setAttribute("axes", ["index", "layer_head"])
        }
        try table("qr_scores", s.qrScores)
        try pairs("head_ranking", s.ranking)
        try pairs("top_heads", s.topHeads)
        if let w = s.wuScores { try table("wu_scores", w) }
        if let w = s.wuHeads { try pairs("wu_heads", w) }
        let k = s.maxPassages
        func perMethod(_ name: String, _ v: [Double], _ width: Int, _ axes: [String]) throws {
            let ds = try g.createDataset(name, data: v, shape: width == 0 ? [methods.count] : [methods.count, width])
            try ds.setAttribute("axes", axes)
        }
        try perMethod("recall", s.rerankers.flatMap(\.recall), k, ["method", "k"])
        try perMethod("ndcg", s.rerankers.flatMap(\.ndcg), k, ["method", "k"])
        try perMethod("mrr", s.rerankers.map(\.mrr), 0, ["method"])
        try perMethod(
            "recall_at_1_ci", s.rerankers.flatMap { [$0.recallAt1CI.0, $0.recallAt1CI.1] }, 2, ["method", "bound"])
        if !s.kinds.isEmpty {
            let ds = try g.createDataset(
                "recall_at_1_by_kind", data: s.recallAt1ByKind.flatMap { $0 }, shape: [s.kinds.count, methods.count])
            try ds.setAttribute("axes", ["kind", "method"])
            try ds.setAttribute("kinds", s.kinds)
            try ds.setAttribute("kind_counts", s.kindCounts)
        }
        if !s.overlaps.isEmpty {
            try RecordTable.write(
                group: try g.createGroup("overlap"), columns: overlapColumns,
                rows: s.overlaps.map {
                    ["n": .int($0.n), "overlap": .int($0.overlap), "expected": .double($0.expected)]
                })
            let ci = try g.createDataset(
                "overlap_ci", data: s.overlaps.flatMap { [$0.lower, $0.upper] }, shape: [s.overlaps.count, 2])
            try ci.setAttribute("axes", ["n", "lower_upper"])
            try ci.setAttribute(
                "note", "95% percentile bootstrap over the detection items (QRScores recomputed per resample)")
        }
    }

    // MARK: Reading

    /// What a `/query_heads` group holds (everything but `passages/`: read it with
    /// `RecordTable.read` and `passageColumns`).
    public struct Contents: Sendable {
        public var layers: Int
        public var heads: Int
        public var items: Int
        public var detect: Int
        public var eval: Int
        public var methods: [String]
        public var methodDescriptions: [String]
        /// [method][k - 1]
        public var recall: [[Double]]
        public var ndcg: [[Double]]
        public var mrr: [Double]
        public var recallAt1CI: [(Double, Double)]
        public var qrScores: [Double]
        public var ranking: [HeadIndex]
        public var topHeads: [HeadIndex]
        public var wuScores: [Double]?
        public var wuHeads: [HeadIndex]
        public var spearman: Double?
        public var kendall: Double?
        /// 95% bootstrap bounds (files written before the CIs: nil).
        public var spearmanCI: [Double]?
        public var kendallCI: [Double]?
        public var overlaps: [QueryHeadsSummary.Overlap]
        public var itemRows: RecordTable.Rows
        /// Item kinds, their evaluation counts and [kind][method] recall@1 (empty without kinds).
        public var kinds: [String] = []
        public var kindCounts: [Int] = []
        public var recallAt1ByKind: [[Double]] = []
    }

    public static func read(_ f: H5File) throws -> Contents? {
        guard try f.kind(of: group) != nil else { return nil }
        let g = try f.group(group)
        let layers = try g.intAttribute("n_layers"), heads = try g.intAttribute("n_heads")
        let methods = try g.stringsAttribute("methods")
        func bad(_ object: String, _ detail: String) -> TraceStoreError {
            .shapeMismatch(file: f.path, object: "\(g.name)/\(object)", detail: detail)
        }
        func table(_ name: String) throws -> [Double] {
            let ds = try g.dataset(name)
            guard try ds.shape == [layers, heads] else {
                throw bad(name, "shape \(try ds.shape), expected [\(layers), \(heads)]")
            }
            return try ds.read(Double.self)
        }
        func pairs(_ name: String) throws -> [HeadIndex] {
            let ds = try g.dataset(name)
            let shape = try ds.shape
            guard shape.count == 2, shape[1] == 2 else { throw bad(name, "shape \(shape), expected [n, 2]") }
            let v = shape[0] == 0 ? [] : try ds.read(Int64.self).map(Int.init)
            return stride(from: 0, to: v.count, by: 2).map { HeadIndex(layer: v[$0], head: v[$0 + 1]) }
        }
        func matrix(_ name: String, width: Int?) throws -> [[Double]] {
            let ds = try g.dataset(name)
            let shape = try ds.shape
            guard shape.count == 2, shape[0] == methods.count, width == nil || shape[1] == width! else {
                throw bad(name, "shape \(shape), expected [\(methods.count), \(width.map(String.init) ?? "k")]")
            }
            let v = try ds.read(Double.self), w = shape[1]
            return (0..<methods.count).map { Array(v[($0 * w)..<(($0 + 1) * w)]) }
        }
        let mrrDS = try g.dataset("mrr")
        guard try mrrDS.shape == [methods.count] else { throw bad("mrr", "shape \(try mrrDS.shape)") }
        var overlaps: [QueryHeadsSummary.Overlap] = []
        if try g.kind(of: "overlap") != nil {
            let o = try RecordTable.read(group: try g.group("overlap"), columns: overlapColumns)
            let n = o.ints("n"), ov = o.ints("overlap"), e = o.doubles("expected")
            overlaps = (0..<o.count).map { QueryHeadsSummary.Overlap(n: n[$0], overlap: ov[$0], expected: e[$0]) }
            if try g.kind(of: "overlap_ci") != nil {
                let ds = try g.dataset("overlap_ci")
                guard try ds.shape == [o.count, 2] else {
                    throw bad("overlap_ci", "shape \(try ds.shape), expected [\(o.count), 2]")
                }
                let v = o.count == 0 ? [] : try ds.read(Double.self)
                for i in 0..<o.count {
                    overlaps[i].lower = v[2 * i]
                    overlaps[i].upper = v[2 * i + 1]
                }
            }
        }
        let hasWu = try g.kind(of: "wu_scores") != nil
        var c = Contents(
            layers: layers, heads: heads, items: try g.intAttribute("n_items"), detect: try g.intAttribute("n_detect"),
            eval: try g.intAttribute("n_eval"), methods: methods,
            methodDescriptions: try g.stringsAttribute("method_descriptions"),
            recall: try matrix("recall", width: nil), ndcg: try matrix("ndcg", width: nil),
            mrr: try mrrDS.read(Double.self),
            recallAt1CI: try matrix("recall_at_1_ci", width: 2).map { ($0[0], $0[1]) },
            qrScores: try table("qr_scores"), ranking: try pairs("head_ranking"), topHeads: try pairs("top_heads"),
            wuScores: hasWu ? try table("wu_scores") : nil,
            wuHeads: try g.kind(of: "wu_heads") != nil ? try pairs("wu_heads") : [],
            spearman: try g.attributeIfPresent("spearman_wu")?.doubleValue,
            kendall: try g.attributeIfPresent("kendall_wu")?.doubleValue, overlaps: overlaps,
            itemRows: try RecordTable.read(group: try g.group("items"), columns: itemColumns))
        for (name, key) in [("spearman_wu_ci", \Contents.spearmanCI), ("kendall_wu_ci", \Contents.kendallCI)] {
            guard let v = try g.attributeIfPresent(name) else { continue }
            guard let d = v.doublesValue, d.count == 2 else { throw bad("@\(name)", "expected 2 float64 values") }
            c[keyPath: key] = d
        }
        if try g.kind(of: "recall_at_1_by_kind") != nil {
            let ds = try g.dataset("recall_at_1_by_kind")
            c.kinds = try ds.stringsAttribute("kinds")
            c.kindCounts = try ds.intsAttribute("kind_counts")
            guard try ds.shape == [c.kinds.count, methods.count], c.kindCounts.count == c.kinds.count else {
                throw bad(
                    "recall_at_1_by_kind", "shape \(try ds.shape), expected [\(c.kinds.count), \(methods.count)]")
            }
            let v = try ds.read(Double.self)
            c.recallAt1ByKind = c.kinds.indices.map { Array(v[($0 * methods.count)..<(($0 + 1) * methods.count)]) }
        }
        return c
    }
}
