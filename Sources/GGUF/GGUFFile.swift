import Foundation
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One tensor's description from the GGUF header.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// Sizes in ggml order: `dims[0]` is the row length (fastest-varying), at most 4 entries.
    public let dims: [Int]
    public let type: GGMLType
    /// Offset of the tensor's bytes from the start of the data section.
    public let offset: Int
    public let elementCount: Int
    public let byteCount: Int

    /// Shape in row-major order, outermost first (the reverse of `dims`), as PyTorch prints it.
    public var shape: [Int] { dims.reversed() }
    public var rowLength: Int { dims.first ?? 1 }
    public var rowCount: Int { dims.count > 1 ? elementCount / max(dims[0], 1) : 1 }
}

/// A memory-mapped, validated GGUF file (versions 2 and 3).
///
/// Validation follows llama.cpp's gguf.cpp: magic, version (0, 1 and > 3 are
/// rejected, a byte-swapped version is reported as such), counts bounded by
/// the file size, strings inside the file and valid UTF-8, known value types,
/// no nested arrays, bools 0 or 1, non-empty unique keys, `general.alignment`
/// a u32 power of two, non-empty unique tensor names shorter than 64 bytes, at
/// most 4 non-negative dims, no element-count or byte-size overflow, row length
/// divisible by the type's block size, aligned tensor offsets, tensor bytes
/// inside the file and not overlapping. Every failure is a `GGUFError` naming
/// the file, the key or tensor and the byte offset; no input makes the reader
/// trap, hang or allocate more than a small multiple of the file size.
///
/// Unlike gguf.cpp (which demands that tensors are stored back to back in
/// header order) any aligned, non-overlapping layout is accepted, and padding
/// after the last tensor may be missing (as llama.cpp's mmap loader allows).
public final class GGUFFile: @unchecked Sendable {
    public static let magic: UInt32 = 0x4655_4747 // "GGUF" read little-endian
    public static let defaultAlignment = 32
    public static let maxDimensions = 4
    public static let maxTensorNameLength = 64 // GGML_MAX_NAME, including the terminator
    /// Longest string and longest array accepted (GGUF_MAX_STRING_LENGTH / GGUF_MAX_ARRAY_ELEMENTS).
    public static let maxStringLength: UInt64 = 1 << 30
    public static let maxArrayElements: UInt64 = 1 << 30

    public let url: URL
    public let version: UInt32
    public let fileSize: Int
    /// Metadata in file order.
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Byte offset of the data section from the start of the file.
    public let dataOffset: Int

    private let base: UnsafeRawPointer
    private let mappedLength: Int
    private let tensorIndex: [String: Int]

    /// Opens and validates `url`. Throws `GGUFError` naming the file, key or tensor and the offset.
    public convenience init(path: String) throws {
        try self.init(url: URL(fileURLWithPath: path))
    }

    public init(url: URL) throws {
        self.url = url
        let path = url.path
        func fail(_ kind: GGUFError.Kind) -> GGUFError { GGUFError(path: path, kind: kind) }

        // O_NONBLOCK: opening a FIFO must not hang; it is then rejected as not a regular file.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw fail(.cannotOpen(reason: String(cString: strerror(errno)))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw fail(.cannotOpen(reason: String(cString: strerror(errno)))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw fail(.notARegularFile) }
        let size = Int(st.st_size)
        fileSize = size
        // mmap of length 0 is invalid; map at least one page so an empty file reports "truncated".
        mappedLength = max(size, 1)
        let p = mmap(nil, mappedLength, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw fail(.cannotOpen(reason: "mmap: " + String(cString: strerror(errno))))
        }
        base = UnsafeRawPointer(p)

        do {
            let h = try Header(base: base, size: size, path: path)
            version = h.version
            metadataKeys = h.keys
            metadata = h.metadata
            alignment = h.alignment
            dataOffset = h.dataOffset
            tensors = h.tensors
            tensorIndex = h.index
        } catch {
            munmap(UnsafeMutableRawPointer(mutating: base), mappedLength)
            throw error
        }
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), mappedLength)
    }

    // MARK: - Tensors

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    public func requireTensor(_ name: String) throws -> GGUFTensorInfo {
        guard let t = tensor(named: name) else { throw GGUFError(path: url.path, kind: .tensorNotFound(name)) }
        return t
    }

    /// The raw bytes of a tensor, valid for the lifetime of this object.
    /// `tensor` must come from this file (checked even in -Ounchecked builds: a
    /// tensor info from another file could otherwise point outside the mapping).
    public func data(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        let dataSize = fileSize - dataOffset
        if tensor.offset < 0 || tensor.byteCount < 0 || tensor.offset > dataSize
            || tensor.byteCount > dataSize - tensor.offset
        {
            fatalError("GGUFFile.data(of:): tensor '\(tensor.name)' does not belong to \(url.path)")
        }
        return UnsafeRawBufferPointer(start: base + dataOffset + tensor.offset, count: tensor.byteCount)
    }

    /// Dequantizes a whole tensor to Float32 (row-major, `dims[0]` fastest).
    public func dequantize(_ name: String) throws -> [Float] {
        let t = try requireTensor(name)
        guard t.type.canDequantize else {
            throw GGUFError(path: url.path, kind: .unsupportedTensorType(tensor: t.name, type: t.type.name))
        }
        let src = data(of: t)
        return [Float](unsafeUninitializedCapacity: t.elementCount) { buf, n in
            if t.elementCount > 0 { t.type.dequantize(src.baseAddress!, count: t.elementCount, into: buf.baseAddress!) }
            n = t.elementCount
        }
    }

    public var totalTensorBytes: Int { tensors.reduce(0) { $0 + $1.byteCount } }
    public var totalElements: Int { tensors.reduce(0) { $0 + $1.elementCount } }

    // MARK: - Typed metadata access

    private func fail(_ kind: GGUFError.Kind) -> GGUFError { GGUFError(path: url.path, kind: kind) }

    public func value(_ key: String) throws -> GGUFValue {
        guard let v = metadata[key] else { throw fail(.missingKey(key)) }
        return v
    }

    /// The value at `key` read by `read`; a value of another type is `wrongValueType` naming `expected`.
    private func typed<T>(_ key: String, _ expected: String, _ read: (GGUFValue) -> T?) throws -> T {
        let v = try value(key)
        guard let x = read(v) else { throw fail(.wrongValueType(key: key, expected: expected, found: v.typeName)) }
        return x
    }

    public func string(_ key: String) throws -> String { try typed(key, "string") { $0.stringValue } }

    public func int(_ key: String) throws -> Int {
        if case .uint64(let u) = try value(key), u > UInt64(Int.max) {
            throw fail(.invalidValue(key: key, reason: "\(u) does not fit in a 64-bit signed integer"))
        }
        return try typed(key, "integer") { $0.intValue }
    }

    public func double(_ key: String) throws -> Double { try typed(key, "number") { $0.doubleValue } }

    public func bool(_ key: String) throws -> Bool { try typed(key, "bool") { $0.boolValue } }

    public func stringArray(_ key: String) throws -> [String] {
        let v = try value(key)
        guard case .array(.string, let a) = v else {
            throw fail(.wrongValueType(key: key, expected: "array[string]", found: v.typeName))
        }
        return a.map { $0.stringValue! }
    }

    public func doubleArray(_ key: String) throws -> [Double] {
        let v = try value(key)
        guard case .array(let t, let a) = v, t != .string, t != .array, t != .bool else {
            throw fail(.wrongValueType(key: key, expected: "numeric array", found: v.typeName))
        }
        return a.map { $0.doubleValue! }
    }

    public func intArray(_ key: String) throws -> [Int] {
        let v = try value(key)
        guard case .array(let t, let a) = v, t != .string, t != .array, t != .bool, t != .float32, t != .float64,
            let ints = Optional(a.compactMap { $0.intValue }), ints.count == a.count
        else {
            throw fail(.wrongValueType(key: key, expected: "integer array", found: v.typeName))
        }
        return ints
    }

    /// The architecture prefix for hyperparameter keys, from `general.architecture`.
    public func architecture() throws -> String { try string("general.architecture") }
}

/// The parsed and validated header of a GGUF file: everything but the tensor bytes.
private struct Header {
    var version: UInt32 = 0
    var keys: [String] = []
    var metadata: [String: GGUFValue] = [:]
    var alignment = GGUFFile.defaultAlignment
    var dataOffset = 0
    var tensors: [GGUFTensorInfo] = []
    var index: [String: Int] = [:]

    /// Smallest encodings, which bound the counts: a key-value pair is at least
    /// 8 (key length) + 1 (non-empty key) + 4 (type) + 1 (u8/bool value) bytes; a
    /// tensor info at least 8 + 1 (name) + 4 (n_dims = 0) + 4 (type) + 8 (offset).
    static let minKVSize: UInt64 = 14
    static let minTensorInfoSize: UInt64 = 25
    /// Capacity reserved up front for counts read from the file; longer lists grow as they are
    /// read, so a hostile count never reserves more than this before its bytes are seen.
    static let maxReserve = 1 << 16

    init(base: UnsafeRawPointer, size: Int, path: String) throws {
        func fail(_ kind: GGUFError.Kind) -> GGUFError { GGUFError(path: path, kind: kind) }
        var r = Reader(base: base, size: size, path: path)

        let magic = try r.u32("magic")
        guard magic == GGUFFile.magic else { throw fail(.badMagic(found: magic)) }
        let version = try r.u32("version")
        guard version != 0 else { throw fail(.unsupportedVersion(version)) }
        // A big-endian v3 file reads as 0x03000000 here (the check gguf.cpp makes).
        guard version & 0xFFFF != 0 else { throw fail(.byteSwappedVersion(version)) }
        guard version == 2 || version == 3 else { throw fail(.unsupportedVersion(version)) }
        self.version = version

        let tensorCountOffset = r.offset
        let nTensors = try r.u64("tensor count")
        let kvCountOffset = r.offset
        let nKV = try r.u64("metadata count")
        let remaining = UInt64(size - r.offset)
        guard nTensors <= remaining / Self.minTensorInfoSize else {
            throw fail(
                .countTooLarge(
                    what: "tensor count", count: nTensors,
                    limit: remaining / Self.minTensorInfoSize, offset: tensorCountOffset))
        }
        guard nKV <= remaining / Self.minKVSize else {
            throw fail(
                .countTooLarge(
                    what: "metadata count", count: nKV,
                    limit: remaining / Self.minKVSize, offset: kvCountOffset))
        }

        // Metadata.
        keys.reserveCapacity(min(Int(nKV), Self.maxReserve))
        var alignmentOffset = 0
        for i in 0..<Int(nKV) {
            let keyOffset = r.offset
            let key = try r.string(context: "metadata key #\(i)")
            guard !key.isEmpty else { throw fail(.emptyKey(offset: keyOffset)) }
            // Swift compares strings by canonical equivalence, so two keys that differ only in Unicode
            // normalisation count as duplicates here (gguf.cpp compares bytes); `metadata` could not hold both.
            guard metadata[key] == nil else { throw fail(.duplicateKey(key, offset: keyOffset)) }
            let typeOffset = r.offset
            let rawType = try r.u32("value type of '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw fail(.invalidValueType(key: key, raw: rawType, offset: typeOffset))
            }
            if key == "general.alignment" { alignmentOffset = typeOffset }
            metadata[key] = try r.value(type, key: key, allowArray: true)
            keys.append(key)
        }

        if let a = metadata["general.alignment"] {
            guard case .uint32(let v) = a else {
                throw fail(.alignmentNotU32(key: "general.alignment", type: a.typeName, offset: alignmentOffset))
            }
            guard v > 0, v & (v - 1) == 0 else {
                throw fail(.invalidAlignment(key: "general.alignment", value: "\(v)", offset: alignmentOffset + 4))
            }
            alignment = Int(v)
        }

        // Tensor infos. Data offsets are checked against the file once the data section's start is known.
        var pending: [(info: GGUFTensorInfo, dataOffset: UInt64)] = []
        pending.reserveCapacity(min(Int(nTensors), Self.maxReserve))
        for i in 0..<Int(nTensors) {
            let nameOffset = r.offset
            let name = try r.string(context: "name of tensor #\(i)")
            guard !name.isEmpty else { throw fail(.emptyTensorName(offset: nameOffset)) }
            guard name.utf8.count < GGUFFile.maxTensorNameLength else {
                throw fail(
                    .tensorNameTooLong(
                        name, length: name.utf8.count,
                        limit: GGUFFile.maxTensorNameLength - 1, offset: nameOffset))
            }
            guard index[name] == nil else { throw fail(.duplicateTensor(name, offset: nameOffset)) }

            let dimsOffset = r.offset
            let nDims = try r.u32("dimension count of '\(name)'")
            guard nDims <= UInt32(GGUFFile.maxDimensions) else {
                throw fail(
                    .tooManyDimensions(
                        tensor: name, count: nDims, limit: GGUFFile.maxDimensions,
                        offset: dimsOffset))
            }
            var dims: [Int] = []
            dims.reserveCapacity(Int(nDims))
            for axis in 0..<Int(nDims) {
                let dimOffset = r.offset
                let d = try r.i64("dimension \(axis) of '\(name)'")
                guard d >= 0 else {
                    throw fail(.negativeDimension(tensor: name, axis: axis, value: d, offset: dimOffset))
                }
                dims.append(Int(d))
            }
            // A zero dimension makes the tensor empty whatever the others are (as in gguf.cpp).
            var count = 1
            if dims.contains(0) {
                count = 0
            } else {
                for d in dims {
                    let (m, overflow) = count.multipliedReportingOverflow(by: d)
                    guard !overflow else { throw fail(.elementCountOverflow(tensor: name, offset: dimsOffset)) }
                    count = m
                }
            }

            let typeOffset = r.offset
            let rawType = try r.u32("type of '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw fail(.unknownTensorType(tensor: name, raw: rawType, offset: typeOffset))
            }
            let rowLength = dims.first ?? 1
            guard rowLength % type.blockSize == 0 else {
                throw fail(
                    .rowNotBlockAligned(
                        tensor: name, rowLength: rowLength, type: type.name,
                        blockSize: type.blockSize, offset: typeOffset))
            }
            let (bytes, overflow) = (count / type.blockSize).multipliedReportingOverflow(by: type.bytesPerBlock)
            guard !overflow else { throw fail(.byteSizeOverflow(tensor: name, offset: typeOffset)) }

            let offsetOffset = r.offset
            let offset = try r.u64("data offset of '\(name)'")
            guard offset % UInt64(alignment) == 0 else {
                throw fail(
                    .misalignedTensorOffset(
                        tensor: name, dataOffset: offset, alignment: alignment,
                        offset: offsetOffset))
            }
            index[name] = pending.count
            // `offset` is filled in below, once it is known to be inside the file.
            pending.append(
                (
                    GGUFTensorInfo(
                        name: name, dims: dims, type: type, offset: 0,
                        elementCount: count, byteCount: bytes), offset
                ))
        }

        // The data section starts at the next multiple of the alignment after the header.
        let headerEnd = r.offset
        let dataStart = (headerEnd + alignment - 1) / alignment * alignment
        if !pending.isEmpty && dataStart > size {
            throw fail(
                .truncated(
                    reading: "padding before the data section", offset: headerEnd,
                    needed: dataStart - headerEnd, fileSize: size))
        }
        dataOffset = dataStart
        let dataSize = max(size - dataStart, 0)
        tensors.reserveCapacity(pending.count)
        for (t, offset) in pending {
            guard offset <= UInt64(dataSize), UInt64(t.byteCount) <= UInt64(dataSize) - offset else {
                throw fail(
                    .tensorDataOutOfBounds(
                        tensor: t.name, start: offset, bytes: UInt64(t.byteCount),
                        dataSize: dataSize))
            }
            tensors.append(
                GGUFTensorInfo(
                    name: t.name, dims: t.dims, type: t.type, offset: Int(offset),
                    elementCount: t.elementCount, byteCount: t.byteCount))
        }

        // No two non-empty tensors share a byte: sorted by start, each must end before the next begins.
        let order = tensors.indices.filter { tensors[$0].byteCount > 0 }
            .sorted { (tensors[$0].offset, $0) < (tensors[$1].offset, $1) }
        for (i, j) in zip(order, order.dropFirst()) {
            let a = tensors[i], b = tensors[j]
            if a.offset + a.byteCount > b.offset {
                throw fail(.overlappingTensors(a.name, b.name, dataOffset: b.offset))
            }
        }
    }
}

/// A bounds-checked little-endian cursor over the mapped file. Every read
/// checks the remaining length first, so a truncated file is an error, never a crash.
private struct Reader {
    let base: UnsafeRawPointer
    let size: Int
    let path: String
    var offset = 0

    private func fail(_ kind: GGUFError.Kind) -> GGUFError { GGUFError(path: path, kind: kind) }

    mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws {
        guard n >= 0, offset <= size, size - offset >= n else {
            throw fail(.truncated(reading: what(), offset: offset, needed: n, fileSize: size))
        }
    }

    mutating func load<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        try need(MemoryLayout<T>.size, what())
        let v = base.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 { try load(UInt32.self, what()) }
    mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 { try load(UInt64.self, what()) }
    mutating func i64(_ what: @autoclosure () -> String) throws -> Int64 { try load(Int64.self, what()) }

    mutating func string(context: @autoclosure () -> String) throws -> String {
        let lenOffset = offset
        let len = try u64("length of \(context())")
        let limit = min(UInt64(size - offset), GGUFFile.maxStringLength)
        guard len <= limit else {
            throw fail(.stringTooLong(context: context(), length: len, limit: limit, offset: lenOffset))
        }
        let n = Int(len)
        let bytes = UnsafeRawBufferPointer(start: base + offset, count: n)
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw fail(.invalidUTF8(context: context(), offset: lenOffset))
        }
        offset += n
        return s
    }

    mutating func value(_ type: GGUFValueType, key: String, allowArray: Bool) throws -> GGUFValue {
        let start = offset
        switch type {
        case .uint8: return .uint8(try load(UInt8.self, "value of '\(key)'"))
        case .int8: return .int8(try load(Int8.self, "value of '\(key)'"))
        case .uint16: return .uint16(try load(UInt16.self, "value of '\(key)'"))
        case .int16: return .int16(try load(Int16.self, "value of '\(key)'"))
        case .uint32: return .uint32(try load(UInt32.self, "value of '\(key)'"))
        case .int32: return .int32(try load(Int32.self, "value of '\(key)'"))
        case .uint64: return .uint64(try load(UInt64.self, "value of '\(key)'"))
        case .int64: return .int64(try load(Int64.self, "value of '\(key)'"))
        case .float32: return .float32(Float(bitPattern: try load(UInt32.self, "value of '\(key)'")))
        case .float64: return .float64(Double(bitPattern: try load(UInt64.self, "value of '\(key)'")))
        case .bool:
            let b = try load(UInt8.self, "value of '\(key)'")
            guard b <= 1 else { throw fail(.invalidBool(key: key, value: b, offset: start)) }
            return .bool(b == 1)
        case .string: return .string(try string(context: "value of '\(key)'"))
        case .array:
            guard allowArray else { throw fail(.nestedArray(key: key, offset: start)) }
            let rawType = try u32("array element type of '\(key)'")
            guard let elementType = GGUFValueType(rawValue: rawType) else {
                throw fail(.invalidValueType(key: key, raw: rawType, offset: start))
            }
            guard elementType != .array else { throw fail(.nestedArray(key: key, offset: start)) }
            let countOffset = offset
            let count = try u64("array length of '\(key)'")
            // Each element takes at least its fixed size (strings: 8 bytes of length).
            let minSize = UInt64(elementType.fixedSize ?? 8)
            let limit = min(UInt64(size - offset) / minSize, GGUFFile.maxArrayElements)
            guard count <= limit else {
                throw fail(
                    .countTooLarge(
                        what: "array length of '\(key)'", count: count, limit: limit,
                        offset: countOffset))
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(min(Int(count), Header.maxReserve))
            for _ in 0..<Int(count) {
                items.append(try value(elementType, key: key, allowArray: false))
            }
            return .array(elementType, items)
        }
    }
}
