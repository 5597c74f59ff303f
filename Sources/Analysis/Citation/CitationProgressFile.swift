import Foundation
import TraceStore

/// The `/citation` group of a resumable `cite` run (`<output>.partial`) and of a shard's run
/// file: the parameters and the records of the items done so far, appended item by item in run
/// order (`CitationRunFile.writeRecords` without a summary: no readout columns). Reopened after
/// a kill, it keeps the whole items whose rows reached a checkpoint.
public final class CitationProgressFile {
    let items: RecordTable
    let statements: RecordTable
    let passages: RecordTable
    let layers: Int
    let heads: Int

    /// Items recorded (the first `done` items of the run's plan order).
    public var done: Int { items.count }

    /// Opens `/citation` in `file`, creating it with the parameters if it is new.
    public init(
        file: H5File, parameters: CitationRunFile.Parameters, layers: Int, heads: Int, retrievalSet: [HeadIndex]
    ) throws {
        let g: H5Group
        if try file.kind(of: CitationRunFile.group) == .group {
            g = try file.group(CitationRunFile.group)
        } else {
            g = try file.createGroup(CitationRunFile.group)
            try CitationRunFile.writeParameters(
                g, parameters, layers: layers, heads: heads, retrievalSet: retrievalSet)
        }
        self.layers = layers
        self.heads = heads
        items = try RecordTable(group: try g.requireGroup("items"), columns: CitationRunFile.itemColumns)
        statements = try RecordTable(
            group: try g.requireGroup("statements"), columns: CitationRunFile.statementColumns([]))
        passages = try RecordTable(
            group: try g.requireGroup("statement_passages"),
            columns: CitationRunFile.passageColumns(layers: layers, heads: heads, retrievalHeads: false))
        // An item's row is appended after its statements and passages: rows past the last whole
        // item are the remains of one killed before its checkpoint.
        let n = items.count
        let stItems = try RecordTable.read(
            group: statements.group, columns: [.init("item", .int64)], allowIncomplete: true
        ).ints("item")
        let keepStatements = stItems.prefix { $0 < n }.count
        if keepStatements < statements.count { try statements.truncate(to: keepStatements) }
        let ppStatements = try RecordTable.read(
            group: passages.group, columns: [.init("statement", .int64)], allowIncomplete: true
        ).ints("statement")
        let keepPassages = ppStatements.prefix { $0 < keepStatements }.count
        if keepPassages < passages.count { try passages.truncate(to: keepPassages) }
    }

    /// Appends one item's records (the caller checkpoints the file after it).
    public func append(_ result: CitationItemResult) throws {
        let rec = CitationRecords([result])
        let rows = CitationRunFile.recordRows(
            rec, summary: nil, layers: layers, heads: heads, firstItem: items.count, firstStatement: statements.count)
        for r in rows.statements { try statements.append(r) }
        for r in rows.passages { try passages.append(r) }
        try items.append(rec.items[0])
    }
}
