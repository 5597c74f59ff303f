import Foundation

/// Builds GGUF files in memory: metadata, then tensors with raw (already
/// encoded) bytes. Used by tests to make tiny random-weight models and
/// broken files, so most tests need no download.
///
/// Besides valid files it can write deliberately broken ones: duplicate keys
/// (`append`), raw key bytes, type ids and payloads (`appendRaw`), tensors with
/// any name bytes, dims, type id or data offset (`addRawTensor`), and wrong
/// magic, version or counts (`magic`, `version`, `*CountOverride`).
public struct GGUFWriter {
    public var version: UInt32 = 3
    public var magic: UInt32 = GGUFFile.magic
    /// Alignment of the data section and of each tensor's data. `set("general.alignment", .uint32(n))`
    /// adopts `n` when it is a power of two; an invalid value is written but the layout keeps this one.
    public var alignment: Int = GGUFFile.defaultAlignment
    /// Counts to write in the header instead of the real ones.
    public var tensorCountOverride: UInt64?
    public var metadataCountOverride: UInt64?

    /// One metadata entry as it will be encoded.
    public enum MetadataEntry {
        case value(String, GGUFValue)
        /// Arbitrary key bytes, value type id and value bytes.
        case raw(key: [UInt8], typeID: UInt32, payload: [UInt8])
    }

    /// One tensor info plus its data. `offset` nil means "where the writer puts the data".
    public struct TensorEntry {
        public var name: [UInt8]
        public var dims: [Int64]
        public var typeID: UInt32
        public var offset: UInt64?
        public var bytes: [UInt8]
    }

    public private(set) var entries: [MetadataEntry] = []
    public private(set) var tensorEntries: [TensorEntry] = []

    public init(version: UInt32 = 3) { self.version = version }

    /// The well-formed metadata, in order.
    public var metadata: [(String, GGUFValue)] {
        entries.compactMap { if case .value(let k, let v) = $0 { return (k, v) } else { return nil } }
    }

    /// The well-formed tensors (UTF-8 name, known type), in order.
    public var tensors: [(name: String, dims: [Int], type: GGMLType, bytes: [UInt8])] {
        tensorEntries.compactMap { t in
            guard let name = String(validating: t.name, as: UTF8.self), let type = GGMLType(rawValue: t.typeID)
            else { return nil }
            return (name, t.dims.map { Int($0) }, type, t.bytes)
        }
    }

    /// Sets `key`, replacing an existing value of that key.
    public mutating func set(_ key: String, _ value: GGUFValue) {
        let i = entries.firstIndex { if case .value(let k, _) = $0 { return k == key } else { return false } }
        if let i { entries[i] = .value(key, value) } else { entries.append(.value(key, value)) }
        if key == "general.alignment", case .uint32(let a) = value, a > 0, a & (a - 1) == 0 { alignment = Int(a) }
    }

    /// Appends `key` even if it is already present (for duplicate-key tests).
    public mutating func append(_ key: String, _ value: GGUFValue) {
        entries.append(.value(key, value))
    }

    /// Appends an entry with arbitrary key bytes, value type id and value bytes.
    public mutating func appendRaw(key: [UInt8], typeID: UInt32, payload: [UInt8]) {
        entries.append(.raw(key: key, typeID: typeID, payload: payload))
    }

    /// Adds a tensor whose data is already encoded in `type`'s block format.
    /// `dims` are in ggml order (row length first).
    public mutating func addTensor(_ name: String, dims: [Int], type: GGMLType, bytes: [UInt8]) {
        addRawTensor(name: Array(name.utf8), dims: dims.map { Int64($0) }, typeID: type.rawValue, bytes: bytes)
    }

    /// Adds an F32 tensor.
    public mutating func addTensor(_ name: String, dims: [Int], values: [Float]) {
        var bytes = [UInt8]()
        bytes.reserveCapacity(values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        addTensor(name, dims: dims, type: .f32, bytes: bytes)
    }

    /// Adds a tensor with arbitrary name bytes, dims, type id and (optionally) a data offset to
    /// write instead of the real one. The bytes are laid out as usual either way.
    public mutating func addRawTensor(
        name: [UInt8], dims: [Int64], typeID: UInt32, offset: UInt64? = nil,
        bytes: [UInt8]
    ) {
        tensorEntries.append(TensorEntry(name: name, dims: dims, typeID: typeID, offset: offset, bytes: bytes))
    }

    /// The encoding of one value without its type id, for `appendRaw` payloads.
    public static func encode(_ value: GGUFValue) -> [UInt8] {
        var b = ByteBuffer()
        b.value(value)
        return b.bytes
    }

    /// An encoded file and where its parts are.
    public struct Encoded {
        public var bytes: [UInt8]
        /// Offsets of every integer field of the header: counts, string and array lengths,
        /// type ids, dimension counts, dimensions and tensor data offsets.
        public var headerFields: [Int]
        /// Where each metadata entry (its key length field) begins.
        public var metadataEntryOffsets: [Int]
        /// Where each tensor info (its name length field) begins.
        public var tensorInfoOffsets: [Int]
        /// Where each tensor's data offset field is.
        public var tensorOffsetFields: [Int]
        /// Where each tensor's data begins in the file.
        public var tensorDataStarts: [Int]
        /// End of the header (before the padding that precedes the data section).
        public var headerEnd: Int
        /// Start of the data section.
        public var dataOffset: Int

        public init(
            bytes: [UInt8], headerFields: [Int], metadataEntryOffsets: [Int], tensorInfoOffsets: [Int],
            tensorOffsetFields: [Int], tensorDataStarts: [Int], headerEnd: Int, dataOffset: Int
        ) {
            self.bytes = bytes
            self.headerFields = headerFields
            self.metadataEntryOffsets = metadataEntryOffsets
            self.tensorInfoOffsets = tensorInfoOffsets
            self.tensorOffsetFields = tensorOffsetFields
            self.tensorDataStarts = tensorDataStarts
            self.headerEnd = headerEnd
            self.dataOffset = dataOffset
        }
    }

    /// The encoded file. Tensor data is laid out in order, each padded to the alignment.
    public func encoded() -> [UInt8] { encodedWithLayout().bytes }

    public func encodedWithLayout() -> Encoded {
        var out = ByteBuffer()
        var fields: [Int] = []
        out.u32(magic)
        out.u32(version)
        fields.append(out.bytes.count)
        out.u64(tensorCountOverride ?? UInt64(tensorEntries.count))
        fields.append(out.bytes.count)
        out.u64(metadataCountOverride ?? UInt64(entries.count))
        var entryOffsets: [Int] = []
        for entry in entries {
            entryOffsets.append(out.bytes.count)
            switch entry {
            case .value(let key, let value):
                fields.append(out.bytes.count)
                out.string(key)
                fields.append(out.bytes.count)
                out.u32(value.type.rawValue)
                if case .array = value {
                    fields.append(out.bytes.count)
                    fields.append(out.bytes.count + 4)
                }
                out.value(value)
            case .raw(let key, let typeID, let payload):
                fields.append(out.bytes.count)
                out.u64(UInt64(key.count))
                out.bytes.append(contentsOf: key)
                fields.append(out.bytes.count)
                out.u32(typeID)
                out.bytes.append(contentsOf: payload)
            }
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensorEntries {
            offsets.append(offset)
            offset += (t.bytes.count + alignment - 1) / alignment * alignment
        }
        var offsetFields: [Int] = []
        var infoOffsets: [Int] = []
        for (t, off) in zip(tensorEntries, offsets) {
            infoOffsets.append(out.bytes.count)
            fields.append(out.bytes.count)
            out.u64(UInt64(t.name.count))
            out.bytes.append(contentsOf: t.name)
            fields.append(out.bytes.count)
            out.u32(UInt32(t.dims.count))
            for d in t.dims {
                fields.append(out.bytes.count)
                out.u64(UInt64(bitPattern: d))
            }
            fields.append(out.bytes.count)
            out.u32(t.typeID)
            fields.append(out.bytes.count)
            offsetFields.append(out.bytes.count)
            out.u64(t.offset ?? UInt64(off))
        }
        let headerEnd = out.bytes.count
        out.pad(to: alignment)
        let dataOffset = out.bytes.count
        for t in tensorEntries {
            out.bytes.append(contentsOf: t.bytes)
            out.pad(to: alignment)
        }
        return Encoded(
            bytes: out.bytes, headerFields: fields, metadataEntryOffsets: entryOffsets,
            tensorInfoOffsets: infoOffsets, tensorOffsetFields: offsetFields,
            tensorDataStarts: offsets.map { dataOffset + $0 }, headerEnd: headerEnd,
            dataOffset: dataOffset)
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
        guard alignment > 0 else { return }
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
