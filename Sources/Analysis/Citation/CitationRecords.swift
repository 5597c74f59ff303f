import Foundation
import TraceStore

/// What `/citation` stores per item and statement, before anything computed over all statements:
/// built from a run's results, or read back from a shard's run file (`read`), so a merged file's
/// summary and readout columns are computed from exactly the values a single run holds (the
/// float32 head masses are stored exactly).
public struct CitationRecords: Sendable {
    public struct Statement: Sendable {
        /// Row of the statement's item in `items`.
        public var item: Int
        public var text: String
        /// As written (1-based; possibly out of range when generated).
        public var citations: [Int]
        public var tokens: Range<Int>
        /// Number of query positions averaged.
        public var queries: Int
        public var observation: StatementObservation?
        /// The item's passage spans (needed for scored statements only).
        public var spans: [Range<Int>]
    }

    /// `items/` rows (`CitationRunFile.itemColumns`).
    public var items: [[String: RecordTable.Value]]
    public var statements: [Statement]

    public init(items: [[String: RecordTable.Value]], statements: [Statement]) {
        self.items = items
        self.statements = statements
    }

    public init(_ results: [CitationItemResult]) {
        items = results.map { r in
            [
                "id": .string(r.item.id), "mode": .string(r.mode.rawValue), "line": .int(r.item.line),
                "n_passages": .int(r.item.passages.count), "n_padded": .int(r.paddedPassages),
                "prompt_tokens": .int(r.promptTokens), "answer_tokens": .int(r.answerTokens),
                "response": .string(r.response),
                "wrong_citation": .int(r.item.wrongCitation ? 1 : 0), "source": .int((r.item.source ?? -1) + 1),
                "answer_correct": .int(r.answerCorrect.map { $0 ? 1 : 0 } ?? -1),
                "cite_recall": .double(r.quality.recall),
                "cite_precision": .double(r.quality.precision), "cite_f1": .double(r.quality.f1),
                "seconds": .double(r.seconds)
            ]
        }
        statements = results.enumerated().flatMap { i, r in
            r.statements.map {
                Statement(
                    item: i, text: $0.text, citations: $0.citations, tokens: $0.tokens, queries: $0.queries.count,
                    observation: $0.observation, spans: r.passageSpans)
            }
        }
    }

    /// A float64 column of `items`, in item order.
    public func doubles(_ name: String) -> [Double] {
        items.map {
            if case .double(let x)? = $0[name] { return x }
            return .nan
        }
    }

    /// An int64 column of `items`, in item order.
    public func ints(_ name: String) -> [Int] {
        items.map {
            if case .int(let x)? = $0[name] { return x }
            return 0
        }
    }

    /// A string column of `items`, in item order.
    public func strings(_ name: String) -> [String] {
        items.map {
            if case .string(let x)? = $0[name] { return x }
            return ""
        }
    }

    /// `answer_correct` of the items judged (generated with a gold answer), in item order.
    public var answersJudged: [Bool] {
        items.compactMap {
            guard case .int(let x)? = $0["answer_correct"], x >= 0 else { return nil }
            return x == 1
        }
    }

    /// The observations of the scored statements, in order (what `CitationMetrics.summarize` takes).
    public var observations: [StatementObservation] { statements.compactMap(\.observation) }

    /// Reads the records of a `/citation` group (a shard's or a single run's): items, statements
    /// and, for each scored statement, its observation rebuilt from `statement_passages/` (head
    /// masses, spans, cited and true-source passages) as `CitationRunner` built it.
    /// With `allowIncomplete` (an interrupted run's `.partial`), statements of items past the
    /// last recorded one are left out.
    public static func read(_ g: H5Group, file: String, allowIncomplete: Bool = false) throws -> CitationRecords {
        let layers = try g.intAttribute("n_layers"), heads = try g.intAttribute("n_heads")
        let itemRows = try RecordTable.read(
            group: try g.group("items"), columns: CitationRunFile.itemColumns, allowIncomplete: allowIncomplete)
        let items = (0..<itemRows.count).map { itemRows.row($0, columns: CitationRunFile.itemColumns) }
        let st = try RecordTable.read(
            group: try g.group("statements"), columns: CitationRunFile.statementColumns([]),
            allowIncomplete: allowIncomplete)
        let pp = try RecordTable.read(
            group: try g.group("statement_passages"),
            columns: CitationRunFile.passageColumns(layers: layers, heads: heads, retrievalHeads: false),
            allowIncomplete: allowIncomplete)
        var passageRows: [Int: [Int]] = [:] // statement row -> its passage rows, in passage order
        for (i, s) in pp.ints("statement").enumerated() { passageRows[s, default: []].append(i) }
        let nPassages = itemRows.ints("n_passages"), source = itemRows.ints("source")
        let mass = pp.floatBlocks("head_mass"), start = pp.ints("span_start"), end = pp.ints("span_end")
        var statements: [Statement] = []
        for k in 0..<st.count {
            let item = st.ints("item")[k]
            if allowIncomplete && item >= items.count { break }
            guard item >= 0, item < items.count else {
                throw TraceStoreError.invalidArgument(
                    file: file, object: "\(g.name)/statements/item",
                    detail: "row \(k) names item \(item) of \(items.count)")
            }
            let citations = st.strings("citations")[k].split(separator: ",").compactMap { Int($0) }
            var obs: StatementObservation?
            var spans: [Range<Int>] = []
            if st.ints("scored")[k] == 1 {
                let rows = passageRows[k] ?? []
                let S = nPassages[item]
                guard rows.count == S else {
                    throw TraceStoreError.invalidArgument(
                        file: file, object: "\(g.name)/statement_passages",
                        detail: "statement \(k) has \(rows.count) passage rows, its item \(S) passages")
                }
                spans = rows.map { start[$0]..<end[$0] }
                var m = [Float](repeating: 0, count: layers * heads * S) // [layers, heads, S]
                for (j, r) in rows.enumerated() { for lh in 0..<(layers * heads) { m[lh * S + j] = mass[r][lh] } }
                var seen = Set<Int>()
                let cited = citations.filter { $0 >= 1 && $0 <= S }.map { $0 - 1 }.filter { seen.insert($0).inserted }
                obs = StatementObservation(
                    passages: S, cited: cited, trueSource: source[item] > 0 ? source[item] - 1 : nil, mass: m,
                    spanTokens: spans.map(\.count))
            }
            statements.append(
                Statement(
                    item: item, text: st.strings("text")[k], citations: citations,
                    tokens: st.ints("token_start")[k]..<st.ints("token_end")[k], queries: st.ints("n_queries")[k],
                    observation: obs, spans: spans))
        }
        return CitationRecords(items: items, statements: statements)
    }
}
