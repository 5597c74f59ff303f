import Foundation

/// Errors of `RecordTable`: a row that does not fit the columns (writing), or a stored table
/// that does not have the columns a reader expects (reading). Each names the file and table.
public enum RecordTableError: LocalizedError, Equatable, Sendable {
    /// `append` was given no value for a column.
    case missingValue(file: String, table: String, column: String)
    /// `append` was given a value of the wrong kind or size for a column.
    case wrongValue(file: String, table: String, column: String, detail: String)
    /// A stored column is missing.
    case missingColumn(file: String, table: String, column: String)
    /// A stored column has another element type or row shape than expected.
    case wrongColumn(file: String, table: String, column: String, detail: String)
    /// Columns of unequal length in a strict read (a run stopped between two column appends).
    case unequalColumns(file: String, table: String, lengths: [String: Int])

    public var errorDescription: String? {
        switch self {
        case let .missingValue(f, t, c): return "\(f): record table \(t): no value for column \(c)"
        case let .wrongValue(f, t, c, d): return "\(f): record table \(t): column \(c): \(d)"
        case let .missingColumn(f, t, c): return "\(f): record table \(t): no column \(c)"
        case let .wrongColumn(f, t, c, d): return "\(f): record table \(t): column \(c): \(d)"
        case let .unequalColumns(f, t, l):
            let text = l.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            return "\(f): record table \(t): columns of unequal length (\(text))"
        }
    }

    public var recoverySuggestion: String? {
        switch self {
        case .missingValue, .wrongValue: return "this is a bug in the writer of the table"
        case .missingColumn, .wrongColumn:
            return "the file was not written by this version of Headlight, or was modified; rerun the command"
        case .unequalColumns:
            return "the run did not finish; read it as an incomplete file (--allow-incomplete) or resume the run"
        }
    }
}

/// A table of records stored as parallel datasets in one HDF5 group, one row per record
/// (docs/run-file.md, "Record tables"): one dataset per column, row i of every column being
/// record i. The same column list gives the writer and the reader, so a table's layout is
/// defined once.
///
/// Two layouts:
/// - checkpointed (`init(group:columns:)` + `append`): every column extendible along its first
///   axis, with an `axes` attribute; scalar columns chunked by 256 rows (64 for strings), block
///   columns one row per chunk, gzip 4 + shuffle. A kill between two column appends can leave
///   columns of unequal length; `init` cuts every column back to the shortest, so a resumed run
///   continues from the last complete record. Used by `retrieval-heads` and `ablate`.
/// - written in one go (`write(group:columns:rows:)`): fixed-size, contiguous 1-D columns without
///   `axes`; block columns chunked by up to 256 rows, gzip 4 + shuffle, with `axes`. Used by
///   `cite`.
///
/// `read(group:columns:allowIncomplete:)` reads either layout back.
public final class RecordTable {
    public enum Kind: Equatable, Sendable {
        case int64
        case int8
        case float64
        case string
        /// float64 rows of the given trailing shape, e.g. [layers, heads].
        case float64Block([Int])
        /// float32 rows of the given trailing shape.
        case float32Block([Int])

        var elementType: H5ElementType {
            switch self {
            case .int64: return .int64
            case .int8: return .int8
            case .float64, .float64Block: return .float64
            case .string: return .string
            case .float32Block: return .float32
            }
        }

        var rowShape: [Int] {
            switch self {
            case .float64Block(let d), .float32Block(let d): return d
            default: return []
            }
        }
    }

    public struct Column: Equatable, Sendable {
        public var name: String
        public var kind: Kind
        /// Names of the axes (written as the dataset's `axes` attribute).
        public var axes: [String]
        public init(_ name: String, _ kind: Kind, axes: [String] = ["record"]) {
            self.name = name
            self.kind = kind
            self.axes = axes
        }
    }

    public enum Value: Sendable {
        case int(Int)
        case double(Double)
        case string(String)
        case doubles([Double])
        case floats([Float])
    }

    public let group: H5Group
    public let columns: [Column]
    private var datasets: [String: H5Dataset] = [:]
    public private(set) var count = 0

    /// Opens (creating what is missing) the checkpointed table in `group`.
    public init(group: H5Group, columns: [Column]) throws {
        self.group = group
        self.columns = columns
        var counts: [Int] = []
        for c in columns {
            let ds: H5Dataset
            if try group.exists(c.name) {
                ds = try group.dataset(c.name)
            } else {
                switch c.kind {
                case .int64, .int8, .float64:
                    ds = try group.createDataset(
                        c.name, type: c.kind.elementType, shape: [0], chunks: [256],
                        extendible: true)
                case .string:
                    ds = try group.createDataset(c.name, type: .string, shape: [0], chunks: [64], extendible: true)
                case .float64Block(let dims), .float32Block(let dims):
                    ds = try group.createDataset(
                        c.name, type: c.kind.elementType, shape: [0] + dims,
                        chunks: [1] + dims, gzip: 4, shuffle: true, extendible: true)
                }
                try ds.setAttribute("axes", c.axes)
            }
            datasets[c.name] = ds
            counts.append(try ds.shape[0])
        }
        let n = counts.min() ?? 0
        for c in columns {
            let ds = datasets[c.name]!
            var s = try ds.shape
            if s[0] != n {
                s[0] = n
                try ds.resize(to: s)
            }
        }
        count = n
    }

    /// Drops the rows from `n` on (`n <= count`): a resumed table whose last rows belong to
    /// work that did not reach its checkpoint.
    public func truncate(to n: Int) throws {
        precondition(n >= 0 && n <= count, "RecordTable.truncate: \(n) of \(count) rows")
        for c in columns {
            let ds = datasets[c.name]!
            var s = try ds.shape
            s[0] = n
            try ds.resize(to: s)
        }
        count = n
    }

    /// Appends one record; every column must be given.
    public func append(_ row: [String: Value]) throws {
        // Check the whole row first, so a bad row leaves the table as it was.
        for c in columns {
            guard let v = row[c.name] else {
                throw RecordTableError.missingValue(file: group.file.path, table: group.name, column: c.name)
            }
            try Self.check(v, c, group)
        }
        for c in columns {
            let ds = datasets[c.name]!
            switch row[c.name]! {
            case .int(let x) where c.kind == .int8: try ds.append(rows: [Int8(clamping: x)])
            case .int(let x): try ds.append(rows: [Int64(x)])
            case .double(let x): try ds.append(rows: [x])
            case .string(let s): try ds.append(strings: [s])
            case .doubles(let xs): try ds.append(rows: xs)
            case .floats(let xs): try ds.append(rows: xs)
            }
        }
        count += 1
    }

    static func check(_ v: Value, _ c: Column, _ group: H5Group) throws {
        func bad(_ d: String) -> RecordTableError {
            .wrongValue(file: group.file.path, table: group.name, column: c.name, detail: d)
        }
        let per = c.kind.rowShape.reduce(1, *)
        switch (c.kind, v) {
        case (.int64, .int), (.int8, .int), (.float64, .double), (.string, .string): return
        case (.float64Block, .doubles(let xs)):
            guard xs.count == per else { throw bad("needs \(per) values, got \(xs.count)") }
        case (.float32Block, .floats(let xs)):
            guard xs.count == per else { throw bad("needs \(per) values, got \(xs.count)") }
        default: throw bad("wrong value type for a \(c.kind) column")
        }
    }

    /// Writes a whole table into `group` in one go (fixed-size datasets; see the type's comment).
    public static func write(group: H5Group, columns: [Column], rows: [[String: Value]]) throws {
        for r in rows {
            for c in columns {
                guard let v = r[c.name] else {
                    throw RecordTableError.missingValue(file: group.file.path, table: group.name, column: c.name)
                }
                try check(v, c, group)
            }
        }
        let n = rows.count
        for c in columns {
            switch c.kind {
            case .int64:
                try group.createDataset(
                    c.name,
                    data: rows.map { r -> Int64 in
                        if case .int(let x) = r[c.name]! { return Int64(x) }
                        return 0
                    })
            case .int8:
                try group.createDataset(
                    c.name,
                    data: rows.map { r -> Int8 in
                        if case .int(let x) = r[c.name]! { return Int8(clamping: x) }
                        return 0
                    })
            case .float64:
                try group.createDataset(
                    c.name,
                    data: rows.map { r -> Double in
                        if case .double(let x) = r[c.name]! { return x }
                        return .nan
                    })
            case .string:
                try group.createDataset(
                    c.name,
                    strings: rows.map { r -> String in
                        if case .string(let s) = r[c.name]! { return s }
                        return ""
                    })
            case .float64Block(let dims):
                let flat = rows.flatMap { r -> [Double] in
                    if case .doubles(let xs) = r[c.name]! { return xs }
                    return []
                }
                try Self.writeBlock(flat, rows: n, dims: dims, column: c, in: group)
            case .float32Block(let dims):
                let flat = rows.flatMap { r -> [Float] in
                    if case .floats(let xs) = r[c.name]! { return xs }
                    return []
                }
                try Self.writeBlock(flat, rows: n, dims: dims, column: c, in: group)
            }
        }
    }

    /// A `[rows] + dims` block column, chunked by up to 256 rows and compressed (when not empty).
    private static func writeBlock<T: H5Scalar>(
        _ flat: [T], rows n: Int, dims: [Int], column c: Column, in group: H5Group
    ) throws {
        let ds = try group.createDataset(
            c.name, data: flat, shape: [n] + dims,
            chunks: n > 0 ? [min(n, 256)] + dims : nil, gzip: n > 0 ? 4 : nil,
            shuffle: n > 0)
        try ds.setAttribute("axes", c.axes)
    }

    // MARK: Reading

    /// The stored rows of a table, column by column.
    public struct Rows: Sendable {
        public let count: Int
        var ints: [String: [Int]] = [:]
        var doubles: [String: [Double]] = [:]
        var strings: [String: [String]] = [:]
        var blocks: [String: [[Double]]] = [:]
        var floatBlocks: [String: [[Float]]] = [:]

        /// An int64 or int8 column (flags as 0/1).
        public func ints(_ name: String) -> [Int] { ints[name] ?? [] }
        public func doubles(_ name: String) -> [Double] { doubles[name] ?? [] }
        public func strings(_ name: String) -> [String] { strings[name] ?? [] }
        /// Rows of a float64 block column, each flattened.
        public func blocks(_ name: String) -> [[Double]] { blocks[name] ?? [] }
        /// Rows of a float32 block column, each flattened.
        public func floatBlocks(_ name: String) -> [[Float]] { floatBlocks[name] ?? [] }
        /// Row `i` as the values `RecordTable.append` takes, for `columns` (those read).
        public func row(_ i: Int, columns: [Column]) -> [String: Value] {
            var out: [String: Value] = [:]
            for c in columns {
                switch c.kind {
                case .int64, .int8: out[c.name] = ints[c.name].map { .int($0[i]) }
                case .float64: out[c.name] = doubles[c.name].map { .double($0[i]) }
                case .string: out[c.name] = strings[c.name].map { .string($0[i]) }
                case .float64Block: out[c.name] = blocks[c.name].map { .doubles($0[i]) }
                case .float32Block: out[c.name] = floatBlocks[c.name].map { .floats($0[i]) }
                }
            }
            return out
        }

        public func has(_ name: String) -> Bool {
            ints[name] != nil || doubles[name] != nil || strings[name] != nil || blocks[name] != nil
                || floatBlocks[name] != nil
        }
    }

    /// Reads the columns of the table in `group`. Every column must be present with its element
    /// type (int64 columns also accept int8 and the other way round) and row shape; a block
    /// column whose kind has an empty trailing shape accepts any. Columns must have equal
    /// lengths, unless `allowIncomplete`, which reads the rows every column has (the table of a
    /// run that was stopped).
    public static func read(group: H5Group, columns: [Column], allowIncomplete: Bool = false) throws -> Rows {
        let file = group.file.path
        var sets: [(Column, H5Dataset, [Int])] = []
        for c in columns {
            guard try group.kind(of: c.name) == .dataset else {
                throw RecordTableError.missingColumn(file: file, table: group.name, column: c.name)
            }
            let ds = try group.dataset(c.name)
            let shape = try ds.shape
            func bad(_ d: String) -> RecordTableError {
                .wrongColumn(file: file, table: group.name, column: c.name, detail: d)
            }
            let t = ds.elementType
            let ok: Bool
            switch c.kind {
            case .int64, .int8: ok = t == .int64 || t == .int8
            default: ok = t == c.kind.elementType
            }
            guard ok else { throw bad("element type is \(t), expected \(c.kind.elementType)") }
            guard shape.count >= 1 else { throw bad("is a scalar, expected one row per record") }
            let rowShape = Array(shape.dropFirst())
            switch c.kind {
            case .float64Block(let d), .float32Block(let d):
                guard d.isEmpty || rowShape == d else { throw bad("rows have shape \(rowShape), expected \(d)") }
            default:
                guard rowShape.isEmpty else { throw bad("has shape \(shape), expected one value per record") }
            }
            sets.append((c, ds, shape))
        }
        let lengths = sets.map { $0.2[0] }
        let n = lengths.min() ?? 0
        if !allowIncomplete && lengths.contains(where: { $0 != n }) {
            var l: [String: Int] = [:]
            for (c, _, s) in sets { l[c.name] = s[0] }
            throw RecordTableError.unequalColumns(file: file, table: group.name, lengths: l)
        }
        var rows = Rows(count: n)
        for (c, ds, shape) in sets {
            let per = shape.dropFirst().reduce(1, *)
            if n == 0 || per == 0 {
                switch c.kind {
                case .int64, .int8: rows.ints[c.name] = [Int](repeating: 0, count: n)
                case .float64: rows.doubles[c.name] = [Double](repeating: 0, count: n)
                case .string: rows.strings[c.name] = [String](repeating: "", count: n)
                case .float64Block: rows.blocks[c.name] = [[Double]](repeating: [], count: n)
                case .float32Block: rows.floatBlocks[c.name] = [[Float]](repeating: [], count: n)
                }
                continue
            }
            let start = [Int](repeating: 0, count: shape.count), count = [n] + shape.dropFirst()
            switch c.kind {
            case .int64, .int8:
                rows.ints[c.name] =
                    ds.elementType == .int8
                    ? try ds.read(Int8.self, start: start, count: count).map(Int.init)
                    : try ds.read(Int64.self, start: start, count: count).map(Int.init)
            case .float64: rows.doubles[c.name] = try ds.read(Double.self, start: start, count: count)
            case .string: rows.strings[c.name] = try ds.readStrings(start: start, count: count)
            case .float64Block:
                let flat = try ds.read(Double.self, start: start, count: count)
                rows.blocks[c.name] = (0..<n).map { Array(flat[($0 * per)..<(($0 + 1) * per)]) }
            case .float32Block:
                let flat = try ds.read(Float.self, start: start, count: count)
                rows.floatBlocks[c.name] = (0..<n).map { Array(flat[($0 * per)..<(($0 + 1) * per)]) }
            }
        }
        return rows
    }
}
