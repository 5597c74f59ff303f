import Foundation

/// Builds GGUF files in memory: metadata, then tensors with raw (already
/// encoded) bytes. Used by tests to make tiny random-weight models and
/// broken files, so most tests need no download.
public struct GGUFWriter {
    public var version: UInt32 = 3
    public var alignment: Int = GGUFFile.defaultAlignment
    public private(set) var metadata: [(String, GGUFValue)] = []
    public private(set) var tensors: [(name: String, dims: [Int], type: GGMLType, bytes: [UInt8])] = []

    public init(version: UInt32 = 3) { self.version = version }

    public mutating func set(_ key: String, _ value: GGUFValue) {
        if let i = metadata.firstIndex(where: { $0.0 == key }) { metadata[i].1 = value } else { metadata.append((key, value)) }
        if key == "general.alignment", case .uint32(let a) = value { alignment = Int(a) }
    }

    /// Adds a tensor whose data is already encoded in `type`'s block format.
    /// `dims` are in ggml order (row length first).
    public mutating func addTensor(_ name: String, dims: [Int], type: GGMLType, bytes: [UInt8]) {
        tensors.append((name, dims, type, bytes))
    }

    /// Adds an F32 tensor.
    public mutating func addTensor(_ name: String, dims: [Int], values: [Float]) {
        var bytes = [UInt8]()
        bytes.reserveCapacity(values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        addTensor(name, dims: dims, type: .f32, bytes: bytes)
    }

    /// The encoded file. Tensor data is laid out in order, each padded to the alignment.
    public func encoded() -> [UInt8] {
        var out = ByteBuffer()
        out.u32(GGUFFile.magic)
        out.u32(version)
        out.u64(UInt64(tensors.count))
        out.u64(UInt64(metadata.count))
        for (key, value) in metadata {
            out.string(key)
            out.u32(value.type.rawValue)
            out.value(value)
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset += (t.bytes.count + alignment - 1) / alignment * alignment
        }
        for (t, off) in zip(tensors, offsets) {
            out.string(t.name)
            out.u32(UInt32(t.dims.count))
            for d in t.dims { out.u64(UInt64(bitPattern: Int64(d))) }
            out.u32(t.type.rawValue)
            out.u64(UInt64(off))
        }
        out.pad(to: alignment)
        for t in tensors {
            out.bytes.append(contentsOf: t.bytes)
            out.pad(to: alignment)
        }
        return out.bytes
    }

    /// Writes the file atomically (temporary file, then rename).
    public func write(to url: URL) throws {
        try Data(encoded()).write(to: url, options: .atomic)
    }
}

/// Little-endian byte sink for the GGUF encoding.
struct ByteBuffer {
    var bytes: [UInt8] = []

    mutating func int<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func u32(_ v: UInt32) { int(v) }
    mutating func u64(_ v: UInt64) { int(v) }
    mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        bytes.append(contentsOf: s.utf8)
    }
    mutating func pad(to alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }

    mutating func value(_ v: GGUFValue) {
        switch v {
        case .uint8(let x): int(x)
        case .int8(let x): int(x)
        case .uint16(let x): int(x)
        case .int16(let x): int(x)
        case .uint32(let x): int(x)
        case .int32(let x): int(x)
        case .uint64(let x): int(x)
        case .int64(let x): int(x)
        case .float32(let x): int(x.bitPattern)
        case .float64(let x): int(x.bitPattern)
        case .bool(let b): int(UInt8(b ? 1 : 0))
        case .string(let s): string(s)
        case .array(let t, let items):
            u32(t.rawValue)
            u64(UInt64(items.count))
            for item in items { value(item) }
        }
    }
}
