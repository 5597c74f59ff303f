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
/// Validation follows llama.cpp's gguf.cpp: magic, version, counts bounded by
/// the file size, strings inside the file, known value types, no duplicate
/// keys or tensor names, at most 4 non-negative dims, no element-count
/// overflow, row length divisible by the type's block size, aligned tensor
/// offsets, tensor bytes inside the data section and not overlapping.
public final class GGUFFile: @unchecked Sendable {
    public static let magic: UInt32 = 0x4655_4747 // "GGUF" read little-endian
    public static let defaultAlignment = 32
    public static let maxDimensions = 4
    public static let maxTensorNameLength = 64 // GGML_MAX_NAME, including the terminator

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

        let fd = open(path, O_RDONLY)
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
        guard let p, p != MAP_FAILED else { throw fail(.cannotOpen(reason: "mmap: " + String(cString: strerror(errno)))) }
        base = UnsafeRawPointer(p)

        do {
            var r = Reader(base: base, size: size, path: path)
            let magic = try r.u32("magic")
            guard magic == Self.magic else { throw fail(.badMagic(found: magic)) }
            let version = try r.u32("version")
            guard version == 2 || version == 3 else { throw fail(.unsupportedVersion(version)) }
            self.version = version
            let nTensors = try r.u64("tensor count")
            let nKV = try r.u64("metadata count")
            // Minimum encoded sizes bound the counts: a KV is >= 8+1+4+1 bytes, a tensor info >= 8+1+4+4+8.
            let remaining = UInt64(max(size - r.offset, 0))
            guard nKV <= remaining / 14 else {
                throw fail(.countTooLarge(what: "metadata count", count: nKV, limit: remaining / 14))
            }
            guard nTensors <= remaining / 25 else {
                throw fail(.countTooLarge(what: "tensor count", count: nTensors, limit: remaining / 25))
            }

            var keys: [String] = []
            var meta: [String: GGUFValue] = [:]
            keys.reserveCapacity(Int(nKV))
            for _ in 0..<Int(nKV) {
                let keyOffset = r.offset
                let key = try r.string(context: "metadata key")
                guard meta[key] == nil else { throw fail(.duplicateKey(key, offset: keyOffset)) }
                let typeOffset = r.offset
                let rawType = try r.u32("value type of '\(key)'")
                guard let type = GGUFValueType(rawValue: rawType) else {
                    throw fail(.invalidValueType(key: key, raw: rawType, offset: typeOffset))
                }
                meta[key] = try r.value(type, key: key, allowArray: true)
                keys.append(key)
            }
            metadataKeys = keys
            metadata = meta

            var alignment = Self.defaultAlignment
            if let a = meta["general.alignment"] {
                guard case .uint32(let v) = a, v > 0, v & (v - 1) == 0 else {
                    throw fail(.invalidAlignment(key: "general.alignment", value: "\(a.summary) (\(a.typeName))"))
                }
                alignment = Int(v)
            }
            self.alignment = alignment

            var infos: [GGUFTensorInfo] = []
            var index: [String: Int] = [:]
            infos.reserveCapacity(Int(nTensors))
            for _ in 0..<Int(nTensors) {
                let nameOffset = r.offset
                let name = try r.string(context: "tensor name")
                guard !name.isEmpty else { throw fail(.emptyTensorName(offset: nameOffset)) }
                guard name.utf8.count < Self.maxTensorNameLength else {
                    throw fail(.tensorNameTooLong(name, length: name.utf8.count, limit: Self.maxTensorNameLength - 1))
                }
                guard index[name] == nil else { throw fail(.duplicateTensor(name)) }
                let nDims = try r.u32("dimension count of '\(name)'")
                guard nDims <= UInt32(Self.maxDimensions) else {
                    throw fail(.tooManyDimensions(tensor: name, count: nDims, limit: Self.maxDimensions))
                }
                var dims: [Int] = []
                for axis in 0..<Int(nDims) {
                    let d = try r.i64("dimension \(axis) of '\(name)'")
                    guard d >= 0 else { throw fail(.negativeDimension(tensor: name, axis: axis, value: d)) }
                    dims.append(Int(d))
                }
                var count = 1
                for d in dims {
                    let (m, overflow) = count.multipliedReportingOverflow(by: d)
                    guard !overflow else { throw fail(.elementCountOverflow(tensor: name)) }
                    count = m
                }
                let rawType = try r.u32("type of '\(name)'")
                guard let type = GGMLType(rawValue: rawType) else {
                    throw fail(.unknownTensorType(tensor: name, raw: rawType))
                }
                let rowLength = dims.first ?? 1
                guard rowLength % type.blockSize == 0 else {
                    throw fail(.rowNotBlockAligned(tensor: name, rowLength: rowLength, type: type.name,
                                                   blockSize: type.blockSize))
                }
                let blocks = count / type.blockSize
                let (bytes, overflow) = blocks.multipliedReportingOverflow(by: type.bytesPerBlock)
                guard !overflow else { throw fail(.elementCountOverflow(tensor: name)) }
                let offset = try r.u64("data offset of '\(name)'")
                guard offset % UInt64(alignment) == 0 else {
                    throw fail(.misalignedTensorOffset(tensor: name, offset: offset, alignment: alignment))
                }
                guard offset <= UInt64(Int.max) else {
                    throw fail(.tensorDataOutOfBounds(tensor: name, start: offset, bytes: UInt64(bytes), dataSize: 0))
                }
                index[name] = infos.count
                infos.append(GGUFTensorInfo(name: name, dims: dims, type: type, offset: Int(offset),
                                            elementCount: count, byteCount: bytes))
            }

            // The data section starts at the next multiple of the alignment.
            let headerEnd = r.offset
            let dataStart = (headerEnd + alignment - 1) / alignment * alignment
            if !infos.isEmpty && dataStart > size {
                throw fail(.truncated(reading: "data section", offset: headerEnd, needed: dataStart - headerEnd,
                                      fileSize: size))
            }
            dataOffset = dataStart
            let dataSize = max(size - dataStart, 0)
            for t in infos {
                let (end, overflow) = t.offset.addingReportingOverflow(t.byteCount)
                guard !overflow, end <= dataSize else {
                    throw fail(.tensorDataOutOfBounds(tensor: t.name, start: UInt64(t.offset),
                                                      bytes: UInt64(t.byteCount), dataSize: dataSize))
                }
            }
            let sorted = infos.filter { $0.byteCount > 0 }.sorted { $0.offset < $1.offset }
            for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.byteCount > b.offset {
                throw fail(.overlappingTensors(a.name, b.name))
            }
            tensors = infos
            tensorIndex = index
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
    public func data(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + dataOffset + tensor.offset, count: tensor.byteCount)
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

    public func string(_ key: String) throws -> String {
        let v = try value(key)
        guard let s = v.stringValue else { throw fail(.wrongValueType(key: key, expected: "string", found: v.typeName)) }
        return s
    }

    public func int(_ key: String) throws -> Int {
        let v = try value(key)
        guard let i = v.intValue else { throw fail(.wrongValueType(key: key, expected: "integer", found: v.typeName)) }
        return i
    }

    public func double(_ key: String) throws -> Double {
        let v = try value(key)
        guard let d = v.doubleValue else { throw fail(.wrongValueType(key: key, expected: "number", found: v.typeName)) }
        return d
    }

    public func bool(_ key: String) throws -> Bool {
        let v = try value(key)
        guard let b = v.boolValue else { throw fail(.wrongValueType(key: key, expected: "bool", found: v.typeName)) }
        return b
    }

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
              let ints = Optional(a.compactMap { $0.intValue }), ints.count == a.count else {
            throw fail(.wrongValueType(key: key, expected: "integer array", found: v.typeName))
        }
        return ints
    }

    /// The architecture prefix for hyperparameter keys, from `general.architecture`.
    public func architecture() throws -> String { try string("general.architecture") }
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
        guard len <= UInt64(size - offset) else {
            throw fail(.stringTooLong(context: context(), length: len, offset: lenOffset))
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
            let count = try u64("array length of '\(key)'")
            // Each element takes at least its fixed size (strings: 8 bytes of length).
            let minSize = UInt64(elementType.fixedSize ?? 8)
            let limit = UInt64(max(size - offset, 0)) / minSize
            guard count <= limit else {
                throw fail(.countTooLarge(what: "array length of '\(key)'", count: count, limit: limit))
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(count))
            for _ in 0..<Int(count) {
                items.append(try value(elementType, key: key, allowArray: false))
            }
            return .array(elementType, items)
        }
    }
}
