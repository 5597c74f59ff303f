import Foundation
import TraceStore

/// A table of records stored as parallel extendible datasets in one HDF5 group, one row per
/// record (docs/run-file.md: "one extendible table dataset with one row per trial"; several
/// parallel ones, as h5py users read columns). Used for the resumable per-trial records of
/// `retrieval-heads` and `ablate`.
///
/// A kill between two column appends can leave columns of unequal length; `open` cuts every
/// column back to the shortest, so a resumed run continues from the last complete record.
final class RecordTable {
    enum Kind: Equatable {
        case int64
        case int8
        case float64
        case string
        /// float64 rows of the given trailing shape, e.g. [layers, heads].
        case float64Block([Int])
    }

    struct Column {
        var name: String
        var kind: Kind
        /// Names of the axes (written as the dataset's `axes` attribute).
        var axes: [String]
        init(_ name: String, _ kind: Kind, axes: [String] = ["record"]) {
            self.name = name; self.kind = kind; self.axes = axes
        }
    }

    enum Value {
        case int(Int)
        case double(Double)
        case string(String)
        case doubles([Double])
    }

    let group: H5Group
    let columns: [Column]
    private var datasets: [String: H5Dataset] = [:]
    private(set) var count = 0

    /// Opens (creating what is missing) the table in `group`.
    init(group: H5Group, columns: [Column]) throws {
        self.group = group
        self.columns = columns
        var counts: [Int] = []
        for c in columns {
            let ds: H5Dataset
            if try group.exists(c.name) {
                ds = try group.dataset(c.name)
            } else {
                switch c.kind {
                case .int64:
                    ds = try group.createDataset(c.name, type: .int64, shape: [0], chunks: [256], extendible: true)
                case .int8:
                    ds = try group.createDataset(c.name, type: .int8, shape: [0], chunks: [256], extendible: true)
                case .float64:
                    ds = try group.createDataset(c.name, type: .float64, shape: [0], chunks: [256], extendible: true)
                case .string:
                    ds = try group.createDataset(c.name, type: .string, shape: [0], chunks: [64], extendible: true)
                case .float64Block(let dims):
                    ds = try group.createDataset(c.name, type: .float64, shape: [0] + dims, chunks: [1] + dims,
                                                 gzip: 4, shuffle: true, extendible: true)
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
            if s[0] != n { s[0] = n; try ds.resize(to: s) }
        }
        count = n
    }

    /// Appends one record; every column must be given.
    func append(_ row: [String: Value]) throws {
        for c in columns {
            guard let v = row[c.name] else {
                throw RetrievalHeadsError.invalid("record table \(group.name): no value for column \(c.name)")
            }
            let ds = datasets[c.name]!
            switch (c.kind, v) {
            case (.int64, .int(let x)): try ds.append(rows: [Int64(x)])
            case (.int8, .int(let x)): try ds.append(rows: [Int8(clamping: x)])
            case (.float64, .double(let x)): try ds.append(rows: [x])
            case (.string, .string(let s)): try ds.append(strings: [s])
            case (.float64Block(let dims), .doubles(let xs)):
                guard xs.count == dims.reduce(1, *) else {
                    throw RetrievalHeadsError.invalid("record table \(group.name): column \(c.name) needs \(dims.reduce(1, *)) values, got \(xs.count)")
                }
                try ds.append(rows: xs)
            default:
                throw RetrievalHeadsError.invalid("record table \(group.name): wrong value type for column \(c.name)")
            }
        }
        count += 1
    }

    func ints(_ name: String) throws -> [Int] {
        let ds = try group.dataset(name)
        if ds.elementType == .int8 { return try ds.read(Int8.self).map(Int.init) }
        return try ds.read(Int64.self).map(Int.init)
    }

    func doubles(_ name: String) throws -> [Double] { try group.dataset(name).read(Double.self) }

    func strings(_ name: String) throws -> [String] {
        let ds = try group.dataset(name)
        return try ds.shape[0] == 0 ? [] : ds.readStrings()
    }

    /// Rows of a block column, each flattened.
    func blocks(_ name: String) throws -> [[Double]] {
        let ds = try group.dataset(name)
        let s = try ds.shape
        let per = s.dropFirst().reduce(1, *)
        guard s[0] > 0 else { return [] }
        let flat = try ds.read(Double.self)
        return (0..<s[0]).map { Array(flat[($0 * per)..<(($0 + 1) * per)]) }
    }
}
