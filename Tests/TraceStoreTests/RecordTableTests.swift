import Foundation
import XCTest
@testable import TraceStore

/// Record tables: the checkpointed layout (append, cut back on reopen), the one-go layout, and
/// the strict reader both share.
final class RecordTableTests: TraceStoreTestCase {
    let cols: [RecordTable.Column] = [.init("a", .int64), .init("s", .string), .init("x", .float64Block([2, 3]))]

    /// Two full records and a third with only column `a` written (a kill between column appends).
    func writeTorn(_ path: String) throws {
        let f = try H5File.create(path)
        let t = try RecordTable(group: try f.createGroup("g"), columns: cols)
        try t.append(["a": .int(1), "s": .string("one"), "x": .doubles([1, 2, 3, 4, 5, 6])])
        try t.append(["a": .int(2), "s": .string("two"), "x": .doubles([6, 5, 4, 3, 2, 1])])
        try f.group("g").dataset("a").append(rows: [Int64(3)])
        // A bad row is refused before anything is written.
        XCTAssertThrowsError(try t.append(["a": .int(4)])) { e in
            XCTAssertEqual(e as? RecordTableError, .missingValue(file: path, table: "/g", column: "s"))
        }
        XCTAssertThrowsError(try t.append(["a": .int(4), "s": .string("x"), "x": .doubles([1])])) { e in
            XCTAssertEqual(
                e as? RecordTableError,
                .wrongValue(file: path, table: "/g", column: "x", detail: "needs 6 values, got 1"))
        }
        XCTAssertEqual(try f.group("g").dataset("a").shape, [3])
        try f.close()
    }

    func testCutsUnequalColumnsBackOnReopen() throws {
        let path = dir.appendingPathComponent("t.h5").path
        try writeTorn(path)
        let f = try H5File.openForAppend(path)
        let t = try RecordTable(group: try f.group("g"), columns: cols)
        XCTAssertEqual(t.count, 2)
        let rows = try RecordTable.read(group: try f.group("g"), columns: cols)
        XCTAssertEqual(rows.count, 2)
        XCTAssertEqual(rows.ints("a"), [1, 2])
        XCTAssertEqual(rows.strings("s"), ["one", "two"])
        XCTAssertEqual(rows.blocks("x"), [[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]])
        let ds = try f.group("g").dataset("x")
        XCTAssertEqual(try ds.maxShape, [nil, 2, 3])
        XCTAssertEqual(try ds.stringsAttribute("axes"), ["record"])
        try f.close()
    }

    /// Strict reading refuses unequal columns; `allowIncomplete` reads the rows every column has.
    func testStrictAndIncompleteReading() throws {
        let path = dir.appendingPathComponent("t.h5").path
        try writeTorn(path)
        let f = try H5File.open(path)
        defer { try? f.close() }
        let g = try f.group("g")
        XCTAssertThrowsError(try RecordTable.read(group: g, columns: cols)) { e in
            XCTAssertEqual(
                e as? RecordTableError,
                .unequalColumns(file: path, table: "/g", lengths: ["a": 3, "s": 2, "x": 2]))
            XCTAssertNotNil((e as? LocalizedError)?.recoverySuggestion)
        }
        let rows = try RecordTable.read(group: g, columns: cols, allowIncomplete: true)
        XCTAssertEqual(rows.count, 2)
        XCTAssertEqual(rows.ints("a"), [1, 2])
        // Missing columns, other element types and row shapes are named.
        XCTAssertThrowsError(try RecordTable.read(group: g, columns: [.init("b", .int64)])) { e in
            XCTAssertEqual(e as? RecordTableError, .missingColumn(file: path, table: "/g", column: "b"))
        }
        XCTAssertThrowsError(
            try RecordTable.read(
                group: g, columns: [.init("s", .float64)],
                allowIncomplete: true)
        ) { e in
            XCTAssertEqual(
                e as? RecordTableError,
                .wrongColumn(
                    file: path, table: "/g", column: "s",
                    detail: "element type is string, expected float64"))
        }
        XCTAssertThrowsError(try RecordTable.read(group: g, columns: [.init("x", .float64Block([3, 2]))])) { e in
            XCTAssertEqual(
                e as? RecordTableError,
                .wrongColumn(
                    file: path, table: "/g", column: "x",
                    detail: "rows have shape [2, 3], expected [3, 2]"))
        }
        XCTAssertThrowsError(try RecordTable.read(group: g, columns: [.init("x", .float64)])) { e in
            guard case .wrongColumn = e as? RecordTableError else { return XCTFail("\(e)") }
        }
    }

    /// The one-go layout: fixed-size 1-D columns without `axes`, block columns chunked and
    /// compressed with `axes`; read back by the same reader. An empty table has empty columns.
    func testWriteInOneGo() throws {
        let path = dir.appendingPathComponent("w.h5").path
        let f = try H5File.create(path)
        let c: [RecordTable.Column] = [
            .init("id", .string), .init("n", .int64), .init("flag", .int8), .init("v", .float64),
            .init("m", .float32Block([2, 2]), axes: ["row", "layer", "head"])
        ]
        let rows: [[String: RecordTable.Value]] = (0..<3).map { i in
            [
                "id": .string("r\(i)"), "n": .int(i * 10), "flag": .int(i == 1 ? -1 : 1), "v": .double(Double(i) / 4),
                "m": .floats([Float(i), 1, 2, 3])
            ]
        }
        try RecordTable.write(group: try f.createGroup("t"), columns: c, rows: rows)
        try RecordTable.write(group: try f.createGroup("empty"), columns: c, rows: [])
        XCTAssertThrowsError(
            try RecordTable.write(
                group: try f.createGroup("bad"), columns: c,
                rows: [["id": .string("x")]]))
        try f.close()

        let r = try H5File.open(path)
        defer { try? r.close() }
        let t = try r.group("t")
        XCTAssertEqual(try t.dataset("n").elementType, .int64)
        XCTAssertEqual(try t.dataset("flag").elementType, .int8)
        XCTAssertEqual(try t.dataset("m").elementType, .float32)
        XCTAssertNil(try t.dataset("n").chunks)
        XCTAssertEqual(try t.dataset("n").maxShape, [3])
        XCTAssertFalse(try t.dataset("n").hasAttribute("axes"))
        XCTAssertEqual(try t.dataset("m").chunks, [3, 2, 2])
        XCTAssertEqual(try t.dataset("m").compression.gzip, 4)
        XCTAssertEqual(try t.dataset("m").stringsAttribute("axes"), ["row", "layer", "head"])
        let back = try RecordTable.read(group: t, columns: c)
        XCTAssertEqual(back.strings("id"), ["r0", "r1", "r2"])
        XCTAssertEqual(back.ints("n"), [0, 10, 20])
        XCTAssertEqual(back.ints("flag"), [1, -1, 1])
        XCTAssertEqual(back.doubles("v"), [0, 0.25, 0.5])
        XCTAssertEqual(back.floatBlocks("m"), [[0, 1, 2, 3], [1, 1, 2, 3], [2, 1, 2, 3]])
        let empty = try RecordTable.read(group: try r.group("empty"), columns: c)
        XCTAssertEqual(empty.count, 0)
        XCTAssertEqual(try r.group("empty").dataset("m").shape, [0, 2, 2])
        XCTAssertNil(try r.group("empty").dataset("m").chunks)
    }
}
