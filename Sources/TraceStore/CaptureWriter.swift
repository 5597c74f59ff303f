import CNative
import Foundation

/// Streams captured tensors into datasets under `/captures` of a run file (docs/run-file.md,
/// "Captures"): one dataset per hook, created with its final shape (chunked, so only the chunks
/// actually written take space, and tiles never written read back as 0), filled block by block as
/// the forward pass produces them. Values are converted to float16 (round to nearest even, the
/// same rounding as `Half`) or stored as float32; optional gzip + shuffle.
///
/// Memory: one conversion buffer the size of the largest block plus HDF5's chunk cache (1 MiB per
/// open dataset), so a run's memory does not grow with what it captures.
public final class CaptureWriter {
    public struct Options: Sendable, Equatable {
        /// Store floats as IEEE half precision.
        public var float16: Bool
        /// Deflate level 0...9, nil for none.
        public var gzip: Int?
        /// Byte-shuffle before deflate (only with gzip).
        public var shuffle: Bool

        public init(float16: Bool = false, gzip: Int? = nil, shuffle: Bool = true) {
            self.float16 = float16
            self.gzip = gzip
            self.shuffle = shuffle
        }
    }

    public let file: H5File
    public let group: H5Group
    public let options: Options
    public private(set) var datasets: [H5Dataset] = []
    /// Bytes handed to HDF5 so far (before compression).
    public private(set) var bytesWritten = 0
    private var half: [UInt16] = []
    private var single: [Float] = []

    /// Opens (creating if needed) `/captures` in `file`.
    public init(file: H5File, options: Options = Options(), groupPath: String = RunFile.captures) throws {
        self.file = file
        self.options = options
        group = try file.requireGroup(groupPath)
    }

    /// Creates a dataset `name` under the captures group and returns its handle. Float datasets get
    /// the float16/float32 type of the options; `chunks` as in `H5Container.createDataset`.
    @discardableResult
    public func createDataset(
        _ name: String, floats: Bool = true, type: H5ElementType? = nil, shape: [Int],
        chunks: [Int]?, attributes: [(String, H5AttributeValue)] = []
    ) throws -> Int {
        let t = type ?? (floats ? (options.float16 ? .float16 : .float32) : .int32)
        let gz = options.gzip
        let ds = try group.createDataset(
            name, type: t, shape: shape, chunks: chunks.map { c in zip(c, shape).map { max(1, min($0, max($1, 1))) } },
            gzip: gz, shuffle: gz != nil && options.shuffle)
        for (k, v) in attributes { try ds.setAttribute(k, v) }
        datasets.append(ds)
        return datasets.count - 1
    }

    /// Writes the block `start`/`count` of dataset `handle` from `rows` rows of `width` floats:
    /// row i is `row(i)[0..<valid]` followed by zeros.
    public func write(
        _ handle: Int, start: [Int], count: [Int], rows: Int, width: Int, valid: Int,
        row: (Int) -> UnsafePointer<Float>
    ) throws {
        let ds = datasets[handle]
        let n = rows * width
        precondition(count.reduce(1, *) == n, "block \(count) holds \(n) values")
        let v = min(valid, width)
        if ds.elementType == .float16 {
            if half.count < n { half = [UInt16](repeating: 0, count: n) }
            try half.withUnsafeMutableBufferPointer { buf in
                let out = buf.baseAddress!
                for i in 0..<rows {
                    let src = row(i), dst = out + i * width
                    Self.encodeHalf(src, count: v, into: dst)
                    if v < width { (dst + v).update(repeating: 0, count: width - v) }
                }
                try raw(ds, .float16, start, count, UnsafeRawPointer(out))
            }
            bytesWritten += n * 2
        } else {
            if single.count < n { single = [Float](repeating: 0, count: n) }
            try single.withUnsafeMutableBufferPointer { buf in
                let out = buf.baseAddress!
                for i in 0..<rows {
                    let dst = out + i * width
                    dst.update(from: row(i), count: v)
                    if v < width { (dst + v).update(repeating: 0, count: width - v) }
                }
                try raw(ds, .float32, start, count, UnsafeRawPointer(out))
            }
            bytesWritten += n * 4
        }
    }

    /// Writes an int32 block (top-k indices).
    public func write(_ handle: Int, start: [Int], count: [Int], values: UnsafeBufferPointer<Int32>) throws {
        let ds = datasets[handle]
        precondition(count.reduce(1, *) == values.count)
        try raw(ds, .int32, start, count, UnsafeRawPointer(values.baseAddress!))
        bytesWritten += values.count * 4
    }

    /// Changes the shape of dataset `handle` (shrinking is allowed: the datasets are chunked).
    public func resize(_ handle: Int, to shape: [Int]) throws {
        try datasets[handle].resize(to: shape)
    }

    private func raw(
        _ ds: H5Dataset, _ mem: H5ElementType, _ start: [Int], _ count: [Int], _ buf: UnsafeRawPointer
    ) throws {
        guard file.isOpen else { throw TraceStoreError.fileClosed(file: file.path) }
        let s64 = start.map(Int64.init), c64 = count.map(Int64.init), id = ds.rawID, rank = Int32(ds.rank)
        try H5Lib.sync {
            if hl_h5d_write(id, mem.code, rank, s64, c64, buf) < 0 {
                throw TraceStoreError.hdf5(
                    file: file.path, object: ds.name, operation: "write block \(start) + \(count)",
                    detail: H5Lib.lastError)
            }
        }
    }

    /// Float -> binary16 bits, round to nearest even (`Half.bits`'s algorithm, written with selects
    /// instead of branches so that the loop vectorizes).
    static func encodeHalf(_ src: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutablePointer<UInt16>) {
        let bits = UnsafeRawPointer(src).assumingMemoryBound(to: UInt32.self)
        for i in 0..<n { dst[i] = halfBits(bits[i]) }
    }

    @inline(__always)
    static func halfBits(_ x: UInt32) -> UInt16 {
        let sign = x & 0x8000_0000
        let u = x ^ sign
        let mantOdd = (u >> 13) & 1
        let normal = (u &+ 0xC800_0FFF &+ mantOdd) >> 13 // rebias, round to nearest even
        let sub = (Float(bitPattern: u) + 0.5).bitPattern &- 0x3F00_0000 // subnormal: the FPU rounds
        let infnan: UInt32 = u > 0x7F80_0000 ? 0x7E00 : 0x7C00
        var o = u < 0x3880_0000 ? sub : normal
        o = u >= 0x4780_0000 ? infnan : o
        return UInt16(truncatingIfNeeded: o | (sign >> 16))
    }
}
