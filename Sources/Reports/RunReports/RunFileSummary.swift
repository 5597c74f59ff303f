import Foundation
import TraceStore

/// A run file without analysis groups, as report blocks: its root attributes as a table and its
/// top-level objects. Never throws: unreadable files give a note.
public struct RunFileSummary: Sendable {
    /// Arrays longer than this are abbreviated in the table.
    public var maxArrayItems = 12

    public init() {}

    public func blocks(forRunFile url: URL) -> [ReportDocument.Block] {
        let file: H5File
        do {
            file = try RunFile.open(url.path, allowIncomplete: true)
        } catch {
            return [.note("\(url.lastPathComponent): not a readable Headlight run file (\(describe(error))).")]
        }
        defer { try? file.close() }
        do {
            let attrs = try file.attributes()
            let rows = attrs.keys.sorted().map { [$0, format(attrs[$0]!)] }
            var out: [ReportDocument.Block] = [
                .table(
                    ReportDocument.Table(
                        headers: ["attribute", "value"], rows: rows,
                        caption: "Run file \(url.lastPathComponent): root attributes", alignNumbers: false))
            ]
            let children = try file.children()
            if !children.isEmpty {
                out.append(.paragraph("Contents of \(url.lastPathComponent): " + children.joined(separator: ", ")))
            }
            return out
        } catch {
            return [.note("\(url.lastPathComponent): could not read its attributes (\(describe(error))).")]
        }
    }

    func format(_ v: H5AttributeValue) -> String {
        func list<T>(_ a: [T], _ f: (T) -> String) -> String {
            let shown = a.prefix(maxArrayItems).map(f).joined(separator: ", ")
            return "[" + shown + (a.count > maxArrayItems ? ", … (\(a.count) items)" : "") + "]"
        }
        switch v {
        case .string(let s): return s
        case .int(let i): return "\(i)"
        case .double(let d): return "\(d)"
        case .strings(let a): return list(a) { $0.debugDescription }
        case .ints(let a): return list(a) { "\($0)" }
        case .doubles(let a): return list(a) { "\($0)" }
        }
    }

    private func describe(_ error: Error) -> String {
        (error as? LocalizedError)?.errorDescription ?? String(describing: error)
    }
}
