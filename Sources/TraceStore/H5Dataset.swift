import CNative
import Foundation

/// A dataset: an n-dimensional array of one element type, stored row-major.
///
/// Numeric writes need the Swift element type to match the dataset's type exactly, except that
/// `Float` data may be written to a `.float16` dataset (rounded to nearest-even, see `Half`).
/// Reads accept the exact type or a lossless widening (`.float16` -> `Float`/`Double`,
/// `.int32` -> `Int64`/`Int`, `.uint8` -> `Int32`, ...); anything else is a `.typeMismatch`.
public final class H5Dataset: H5Object {
    public let file: H5File
    public let name: String
    public let rawID: Int64
    /// Element type on disk.
    public let elementType: H5ElementType
    /// Number of dimensions (fixed for the dataset's lifetime).
    public let rank: Int
    /// Whether the first dimension is unlimited (rows can be appended).
    public let isExtendible: Bool

    init(file: H5File, name: String, id: Int64) throws {
        self.file = file
        self.name = name
        self.rawID = id
        let (code, r, maxDims): (hl_h5_dtype, Int32, [Int64]) = H5Lib.sync {
            let code = hl_h5d_dtype(id)
            let r = hl_h5d_rank(id)
            var maxDims = [Int64](repeating: 0, count: Int(HL_H5_MAX_RANK))
            if r > 0, hl_h5d_shape(id, nil, &maxDims) < 0 { return (code, -1, []) }
            return (code, r, maxDims)
        }
        guard r >= 0 else {
            _ = H5Lib.sync { hl_h5_close(id) }
            throw TraceStoreError.hdf5(
                file: file.path, object: name, operation: "open dataset", detail: H5Lib.lastError)
        }
        guard let type = H5ElementType(code: code) else {
            _ = H5Lib.sync { hl_h5_close(id) }
            throw TraceStoreError.typeMismatch(
                file: file.path, object: name, expected: "a numeric or string type",
                actual: "an unsupported HDF5 type (code \(code.rawValue))")
        }
        self.elementType = type
        self.rank = Int(r)
        self.isExtendible = r > 0 && maxDims[0] == -1
    }

    deinit {
        if file.isOpen { _ = H5Lib.sync { hl_h5_close(rawID) } }
    }

    // MARK: shape and storage

    /// Current shape.
    public var shape: [Int] {
        get throws {
            let id = try liveID()
            if rank == 0 { return [] }
            var dims = [Int64](repeating: 0, count: rank)
            try H5Lib.sync { if hl_h5d_shape(id, &dims, nil) < 0 { throw h5Error("get shape") } }
            return dims.map(Int.init)
        }
    }

    /// Maximum shape; nil entries are unlimited.
    public var maxShape: [Int?] {
        get throws {
            let id = try liveID()
            if rank == 0 { return [] }
            var dims = [Int64](repeating: 0, count: rank)
            try H5Lib.sync { if hl_h5d_shape(id, nil, &dims) < 0 { throw h5Error("get shape") } }
            return dims.map { $0 < 0 ? nil : Int($0) }
        }
    }

    /// Number of elements (product of the current shape). A damaged file whose shape overflows
    /// 64 bits is `.corruptFile`, never an arithmetic trap.
    public var count: Int {
        get throws {
            var n = 1
            for d in try shape {
                let (p, overflow) = n.multipliedReportingOverflow(by: d)
                if overflow {
                    throw TraceStoreError.corruptFile(
                        file: file.path, detail: "\(name): shape \(try shape) has more elements than 64 bits count")
                }
                n = p
            }
            return n
        }
    }

    /// Chunk shape, or nil for contiguous storage.
    public var chunks: [Int]? {
        get throws {
            let id = try liveID()
            var c = [Int64](repeating: 0, count: Int(HL_H5_MAX_RANK))
            let r: Int32 = try H5Lib.sync {
                let r = hl_h5d_chunk(id, &c)
                if r < 0 { throw h5Error("get chunks") }
                return r
            }
            return r == 1 ? c.prefix(rank).map(Int.init) : nil
        }
    }

    /// Compression settings: deflate level (nil if none) and whether the shuffle filter is on.
    public var compression: (gzip: Int?, shuffle: Bool) {
        get throws {
            let id = try liveID()
            var g: Int32 = -1, s: Int32 = 0
            try H5Lib.sync { if hl_h5d_filters(id, &g, &s) < 0 { throw h5Error("get filters") } }
            return (g >= 0 ? Int(g) : nil, s != 0)
        }
    }

    /// Bytes the raw data occupies in the file (after compression; H5Dget_storage_size).
    public var storageSize: Int {
        get throws {
            let id = try liveID()
            return Int(H5Lib.sync { hl_h5d_storage_size(id) })
        }
    }

    /// Changes the current shape (within `maxShape`). Shrinking discards data.
    public func resize(to newShape: [Int]) throws {
        try requireWritable()
        guard newShape.count == rank else {
            throw TraceStoreError.shapeMismatch(
                file: file.path, object: name, detail: "resize to rank \(newShape.count), dataset has rank \(rank)")
        }
        let id = try liveID()
        let dims = newShape.map(Int64.init)
        try H5Lib.sync {
            if hl_h5d_set_extent(id, Int32(rank), dims) < 0 { throw h5Error("resize to \(newShape)") }
        }
    }

    // MARK: numeric writes

    /// Writes the whole dataset; `values.count` must equal the number of elements.
    public func write<T: H5Scalar>(_ values: [T]) throws {
        try values.withUnsafeBufferPointer { try write($0) }
    }

    public func write<T: H5Scalar>(_ values: UnsafeBufferPointer<T>) throws {
        let n = try count
        guard values.count == n else {
            throw TraceStoreError.shapeMismatch(
                file: file.path, object: name,
                detail: "writing \(values.count) elements into shape \(try shape) (\(n) elements)")
        }
        try writeSelection(values, start: nil, count: nil)
    }

    /// Writes the block `start[i] ..< start[i] + count[i]` (row-major `values`).
    public func write<T: H5Scalar>(_ values: [T], start: [Int], count: [Int]) throws {
        try values.withUnsafeBufferPointer { try write($0, start: start, count: count) }
    }

    public func write<T: H5Scalar>(_ values: UnsafeBufferPointer<T>, start: [Int], count: [Int]) throws {
        try checkBlock(start: start, count: count, elements: values.count)
        try writeSelection(values, start: start, count: count)
    }

    /// Writes whole rows `row ..< row + n` of a dataset (n = values.count / row size).
    public func writeRows<T: H5Scalar>(_ values: [T], at row: Int) throws {
        let s = try shape
        let (start, count) = try rowBlock(shape: s, firstRow: row, elements: values.count)
        try write(values, start: start, count: count)
    }

    /// Appends rows to an extendible dataset: grows the first dimension by
    /// `values.count / rowSize` and writes them. Returns the range of row indices written.
    /// Memory stays bounded by the chunk cache, so a forward pass can stream layer by layer.
    @discardableResult
    public func append<T: H5Scalar>(rows values: [T]) throws -> Range<Int> {
        try values.withUnsafeBufferPointer { try append(rows: $0) }
    }

    @discardableResult
    public func append<T: H5Scalar>(rows values: UnsafeBufferPointer<T>) throws -> Range<Int> {
        try checkWritable(T.self)
        return try grow(elements: values.count) { start, count in
            try writeSelection(values, start: start, count: count)
        }
    }

    // MARK: numeric reads

    /// Reads the whole dataset as `T` (exact type or lossless widening).
    public func read<T: H5Scalar>(_ type: T.Type = T.self) throws -> [T] {
        try readSelection(T.self, start: nil, count: nil, elements: try count)
    }

    /// Reads the block `start[i] ..< start[i] + count[i]`, row-major.
    public func read<T: H5Scalar>(_ type: T.Type = T.self, start: [Int], count: [Int]) throws -> [T] {
        let n = count.reduce(1, *)
        try checkBlock(start: start, count: count, elements: n)
        return try readSelection(T.self, start: start, count: count, elements: n)
    }

    /// Reads whole rows.
    public func readRows<T: H5Scalar>(_ rows: Range<Int>, as type: T.Type = T.self) throws -> [T] {
        let s = try shape
        guard rank >= 1 else {
            throw TraceStoreError.shapeMismatch(file: file.path, object: name, detail: "a scalar dataset has no rows")
        }
        var start = [Int](repeating: 0, count: rank), count = s
        start[0] = rows.lowerBound
        count[0] = rows.count
        return try read(T.self, start: start, count: count)
    }

    // MARK: strings

    /// Writes a whole string dataset.
    public func write(strings: [String]) throws {
        let n = try count
        guard strings.count == n else {
            throw TraceStoreError.shapeMismatch(
                file: file.path, object: name,
                detail: "writing \(strings.count) strings into shape \(try shape) (\(n) elements)")
        }
        try writeStrings(strings, start: nil, count: nil)
    }

    /// Writes a block of a string dataset.
    public func write(strings: [String], start: [Int], count: [Int]) throws {
        try checkBlock(start: start, count: count, elements: strings.count)
        try writeStrings(strings, start: start, count: count)
    }

    /// Appends strings to an extendible string dataset (rows of the first dimension).
    @discardableResult
    public func append(strings: [String]) throws -> Range<Int> {
        try checkStringType()
        return try grow(elements: strings.count) { start, count in
            try writeStrings(strings, start: start, count: count)
        }
    }

    /// Reads a whole string dataset (variable- or fixed-length strings).
    public func readStrings() throws -> [String] {
        try readStrings(start: nil, count: nil, elements: try count)
    }

    /// Reads a block of a string dataset.
    public func readStrings(start: [Int], count: [Int]) throws -> [String] {
        let n = count.reduce(1, *)
        try checkBlock(start: start, count: count, elements: n)
        return try readStrings(start: start, count: count, elements: n)
    }

    // MARK: - implementation

    private func mismatch(_ detail: String) -> TraceStoreError {
        .shapeMismatch(file: file.path, object: name, detail: detail)
    }

    private func checkBlock(start: [Int], count: [Int], elements: Int) throws {
        guard start.count == rank, count.count == rank else {
            throw mismatch("selection start \(start) count \(count) does not have the dataset's rank \(rank)")
        }
        guard count.allSatisfy({ $0 >= 0 }), start.allSatisfy({ $0 >= 0 }) else {
            throw mismatch("negative selection start \(start) count \(count)")
        }
        let s = try shape
        for i in 0..<rank where start[i] + count[i] > s[i] {
            throw mismatch("selection start \(start) count \(count) exceeds shape \(s) in dimension \(i)")
        }
        let n = count.reduce(1, *)
        guard n == elements else {
            throw mismatch("selection of \(n) elements (count \(count)) given \(elements) values")
        }
    }

    /// start/count of rows [firstRow, firstRow + elements / rowSize).
    private func rowBlock(shape s: [Int], firstRow: Int, elements: Int) throws -> ([Int], [Int]) {
        guard rank >= 1 else { throw mismatch("a scalar dataset has no rows") }
        let rowSize = s.dropFirst().reduce(1, *)
        guard rowSize > 0 else { throw mismatch("rows of shape \(Array(s.dropFirst())) are empty") }
        guard elements % rowSize == 0 else {
            throw mismatch("\(elements) values are not a whole number of rows of \(rowSize) elements (shape \(s))")
        }
        var start = [Int](repeating: 0, count: rank), count = s
        start[0] = firstRow
        count[0] = elements / rowSize
        return (start, count)
    }

    /// Extends the first dimension to hold `elements` more values and calls `write` with the new
    /// block; shrinks back if the write fails, so a failed append leaves no half-filled rows.
    private func grow(elements: Int, _ write: ([Int], [Int]) throws -> Void) throws -> Range<Int> {
        try requireWritable()
        guard isExtendible else {
            throw TraceStoreError.invalidArgument(
                file: file.path, object: name,
                detail: "append needs an extendible dataset (created with extendible: true)")
        }
        let s = try shape
        let (start0, count) = try rowBlock(shape: s, firstRow: s[0], elements: elements)
        if count[0] == 0 { return s[0]..<s[0] }
        var grown = s
        grown[0] += count[0]
        try resize(to: grown)
        do {
            try write(start0, count)
        } catch {
            try? resize(to: s)
            throw error
        }
        return s[0]..<grown[0]
    }

    private func checkWritable<T: H5Scalar>(_: T.Type) throws {
        let t = T.h5ElementType
        guard t == elementType || (t == .float32 && elementType == .float16) else {
            throw TraceStoreError.typeMismatch(
                file: file.path, object: name, expected: "\(t) values",
                actual: "\(elementType) (writes need the dataset's type; Float may go to float16)")
        }
    }

    private func checkStringType() throws {
        guard elementType == .string else {
            throw TraceStoreError.typeMismatch(
                file: file.path, object: name, expected: "string", actual: elementType.rawValue)
        }
    }

    private func writeSelection<T: H5Scalar>(_ values: UnsafeBufferPointer<T>, start: [Int]?, count: [Int]?) throws {
        try requireWritable()
        try checkWritable(T.self)
        let id = try liveID()
        let start64 = start?.map(Int64.init), count64 = count?.map(Int64.init)
        if T.h5ElementType == .float32 && elementType == .float16 {
            let half = values.withMemoryRebound(to: Float.self) { Half.encode($0) }
            try half.withUnsafeBytes { raw in
                try rawWrite(id, .float16, start64, count64, raw.baseAddress)
            }
        } else {
            try rawWrite(id, T.h5ElementType, start64, count64, UnsafeRawPointer(values.baseAddress))
        }
    }

    private func rawWrite(
        _ id: Int64, _ mem: H5ElementType, _ start: [Int64]?, _ count: [Int64]?,
        _ buf: UnsafeRawPointer?
    ) throws {
        try H5Lib.sync {
            let r = withOptionalPointer(start) { sp in
                withOptionalPointer(count) { cp in hl_h5d_write(id, mem.code, Int32(rank), sp, cp, buf) }
            }
            if r < 0 { throw h5Error("write") }
        }
    }

    /// Checks a read of `n` elements before anything is allocated for it: a damaged file can
    /// claim any shape, so the read must fit what the file can hold (`hl_h5_check_read`: deflate's
    /// largest expansion of the file's size, reads up to 1 GiB always allowed) and this machine's
    /// memory (`memoryElementSize` bytes per element). Either failure is `.corruptFile` naming the
    /// dataset.
    func checkReadSize(_ n: Int, memoryElementSize: Int) throws {
        let id = try liveID()
        try H5Lib.sync {
            if hl_h5_check_read(id, Int64(n), Int64(elementType.byteSize), 0) < 0 {
                throw TraceStoreError.corruptFile(file: file.path, detail: "\(name): \(H5Lib.lastError)")
            }
        }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: memoryElementSize)
        let memory = ProcessInfo.processInfo.physicalMemory
        if overflow || UInt64(bytes) > memory {
            throw TraceStoreError.corruptFile(
                file: file.path,
                detail: "\(name): reading \(n) elements needs more memory than this machine's \(memory >> 20) MiB")
        }
    }

    private func readSelection<T: H5Scalar>(_: T.Type, start: [Int]?, count: [Int]?, elements n: Int) throws -> [T] {
        let target = T.h5ElementType
        guard elementType.widens(to: target) else {
            throw TraceStoreError.typeMismatch(
                file: file.path, object: name, expected: "\(target) (or a type that widens to it)",
                actual: elementType.rawValue)
        }
        try checkReadSize(n, memoryElementSize: max(target.byteSize, elementType.byteSize))
        let id = try liveID()
        let start64 = start?.map(Int64.init), count64 = count?.map(Int64.init)
        func rawRead(_ mem: H5ElementType, _ buf: UnsafeMutableRawPointer?) throws {
            try H5Lib.sync {
                let r = withOptionalPointer(start64) { sp in
                    withOptionalPointer(count64) { cp in hl_h5d_read(id, mem.code, Int32(rank), sp, cp, buf) }
                }
                if r < 0 { throw h5Error("read") }
            }
        }
        if elementType == .float16 {
            // Convert in Swift: exact, and much faster than HDF5's bit-by-bit soft conversion.
            var half = [UInt16](repeating: 0, count: n)
            try half.withUnsafeMutableBytes { try rawRead(.float16, $0.baseAddress) }
            // (concrete, non-generic loops: this generic function is not specialized across modules)
            if T.self == Float.self { return unsafeBitCast(Half.decode(half), to: [T].self) }
            if T.self == Double.self { return unsafeBitCast(Half.decode(half).map(Double.init), to: [T].self) }
            throw TraceStoreError.typeMismatch(
                file: file.path, object: name, expected: "Float or Double", actual: "float16")
        }
        var out = [T](unsafeUninitializedCapacity: n) { _, c in c = n }
        try out.withUnsafeMutableBytes { try rawRead(target, $0.baseAddress) }
        return out
    }

    private func writeStrings(_ strings: [String], start: [Int]?, count: [Int]?) throws {
        try requireWritable()
        try checkStringType()
        if let bad = strings.firstIndex(where: { $0.utf8.contains(0) }) {
            throw TraceStoreError.invalidArgument(
                file: file.path, object: name, detail: "string \(bad) contains a NUL byte")
        }
        let id = try liveID()
        let start64 = start?.map(Int64.init), count64 = count?.map(Int64.init)
        try H5Lib.sync {
            let r = H5Lib.withCStrings(strings) { cs in
                withOptionalPointer(start64) { sp in
                    withOptionalPointer(count64) { cp in hl_h5d_write_strings(id, Int32(rank), sp, cp, cs) }
                }
            }
            if r < 0 { throw h5Error("write strings") }
        }
    }

    private func readStrings(start: [Int]?, count: [Int]?, elements n: Int) throws -> [String] {
        try checkStringType()
        try checkReadSize(n, memoryElementSize: MemoryLayout<String>.stride)
        let id = try liveID()
        let start64 = start?.map(Int64.init), count64 = count?.map(Int64.init)
        return try H5Lib.sync {
            let out = H5Lib.readCStrings(count: n) { outp in
                withOptionalPointer(start64) { sp in
                    withOptionalPointer(count64) { cp in hl_h5d_read_strings(id, Int32(rank), sp, cp, outp) }
                }
            }
            guard let out else { throw h5Error("read strings") }
            return out
        }
    }

    // MARK: chunk heuristic

    /// h5py's `guess_chunk` (PyTables' rule): aim for 8 KiB ... 1 MiB depending on the dataset's
    /// size, halving dimensions round-robin; here capped at 512 KiB so that a chunk fits HDF5's
    /// default 1 MiB chunk cache. Unlimited (or empty) first dimensions count as 1024 rows.
    static func guessChunks(shape: [Int], extendible: Bool, elementSize: Int) -> [Int] {
        let chunkBase = 16.0 * 1024, chunkMin = 8.0 * 1024, chunkMax = 512.0 * 1024
        var chunks = shape.enumerated().map { i, d in Double((extendible && i == 0) || d == 0 ? max(d, 1024) : d) }
        let typeSize = Double(max(elementSize, 1))
        let dsetSize = chunks.reduce(1, *) * typeSize
        var target = chunkBase * pow(2, log10(dsetSize / (1024 * 1024)))
        target = min(max(target, chunkMin), chunkMax)
        var idx = 0
        while true {
            let bytes = chunks.reduce(1, *) * typeSize
            if (bytes < target || abs(bytes - target) / target < 0.5) && bytes < chunkMax { break }
            if chunks.reduce(1, *) == 1 { break }
            let i = idx % chunks.count
            chunks[i] = (chunks[i] / 2).rounded(.up)
            idx += 1
        }
        return chunks.enumerated().map { i, c in
            let v = Int(c)
            // a fixed dimension's chunk may not exceed it
            return (extendible && i == 0) ? max(v, 1) : max(1, min(v, max(shape[i], 1)))
        }
    }
}
