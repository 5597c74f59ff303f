import Foundation

/// A failure to read or validate a GGUF file. `kind` says what went wrong,
/// naming the key or tensor and the byte offset; `path` names the file.
public struct GGUFError: LocalizedError, CustomStringConvertible, Equatable {
    public let path: String
    public let kind: Kind

    public init(path: String, kind: Kind) {
        self.path = path
        self.kind = kind
    }

    /// Every distinct way a GGUF file can be rejected (modelled on llama.cpp's gguf.cpp checks).
    public enum Kind: Equatable, Sendable {
        case cannotOpen(reason: String)
        case notARegularFile
        case badMagic(found: UInt32)
        case unsupportedVersion(UInt32)
        case truncated(reading: String, offset: Int, needed: Int, fileSize: Int)
        case countTooLarge(what: String, count: UInt64, limit: UInt64)
        case stringTooLong(context: String, length: UInt64, offset: Int)
        case invalidUTF8(context: String, offset: Int)
        case duplicateKey(String, offset: Int)
        case invalidValueType(key: String, raw: UInt32, offset: Int)
        case nestedArray(key: String, offset: Int)
        case invalidBool(key: String, value: UInt8, offset: Int)
        case invalidAlignment(key: String, value: String)
        case emptyTensorName(offset: Int)
        case tensorNameTooLong(String, length: Int, limit: Int)
        case duplicateTensor(String)
        case tooManyDimensions(tensor: String, count: UInt32, limit: Int)
        case negativeDimension(tensor: String, axis: Int, value: Int64)
        case elementCountOverflow(tensor: String)
        case unknownTensorType(tensor: String, raw: UInt32)
        case rowNotBlockAligned(tensor: String, rowLength: Int, type: String, blockSize: Int)
        case misalignedTensorOffset(tensor: String, offset: UInt64, alignment: Int)
        case tensorDataOutOfBounds(tensor: String, start: UInt64, bytes: UInt64, dataSize: Int)
        case overlappingTensors(String, String)
        case tensorNotFound(String)
        case unsupportedTensorType(tensor: String, type: String)
        case missingKey(String)
        case wrongValueType(key: String, expected: String, found: String)
        case invalidValue(key: String, reason: String)
    }

    public var errorDescription: String? { description }

    public var description: String {
        "\(path): \(message)"
    }

    public var message: String {
        switch kind {
        case .cannotOpen(let reason): return "cannot open GGUF file: \(reason)"
        case .notARegularFile: return "not a regular file"
        case .badMagic(let found):
            return String(format: "not a GGUF file: magic is 0x%08x, expected 0x46554747 (\"GGUF\")", found)
        case .unsupportedVersion(let v):
            return "unsupported GGUF version \(v) (Headlight reads versions 2 and 3)"
        case .truncated(let what, let offset, let needed, let size):
            return "file truncated while reading \(what) at offset \(offset): needs \(needed) bytes, file has \(size)"
        case .countTooLarge(let what, let count, let limit):
            return "\(what) \(count) is larger than the file can hold (at most \(limit))"
        case .stringTooLong(let ctx, let len, let offset):
            return "string of \(ctx) at offset \(offset) claims \(len) bytes, past the end of the file"
        case .invalidUTF8(let ctx, let offset): return "\(ctx) at offset \(offset) is not valid UTF-8"
        case .duplicateKey(let key, let offset): return "duplicate metadata key '\(key)' at offset \(offset)"
        case .invalidValueType(let key, let raw, let offset):
            return "metadata key '\(key)' has unknown value type \(raw) at offset \(offset)"
        case .nestedArray(let key, let offset):
            return "metadata key '\(key)' holds an array of arrays at offset \(offset) (not supported by GGUF readers)"
        case .invalidBool(let key, let v, let offset):
            return "metadata key '\(key)' has boolean byte \(v) at offset \(offset) (must be 0 or 1)"
        case .invalidAlignment(let key, let value):
            return "'\(key)' = \(value) is not a valid alignment (must be a non-zero power of two, u32)"
        case .emptyTensorName(let offset): return "tensor at offset \(offset) has an empty name"
        case .tensorNameTooLong(let name, let len, let limit):
            return "tensor name '\(name.prefix(80))' is \(len) bytes long (limit \(limit))"
        case .duplicateTensor(let name): return "duplicate tensor name '\(name)'"
        case .tooManyDimensions(let name, let count, let limit):
            return "tensor '\(name)' has \(count) dimensions (limit \(limit))"
        case .negativeDimension(let name, let axis, let value):
            return "tensor '\(name)' has negative size \(value) in dimension \(axis)"
        case .elementCountOverflow(let name): return "tensor '\(name)': element count overflows 64 bits"
        case .unknownTensorType(let name, let raw): return "tensor '\(name)' has unknown GGML type id \(raw)"
        case .rowNotBlockAligned(let name, let n, let type, let bs):
            return "tensor '\(name)': row length \(n) is not a multiple of the \(type) block size \(bs)"
        case .misalignedTensorOffset(let name, let offset, let alignment):
            return "tensor '\(name)': data offset \(offset) is not a multiple of the alignment \(alignment)"
        case .tensorDataOutOfBounds(let name, let start, let bytes, let size):
            return "tensor '\(name)': data [\(start), \(start &+ bytes)) lies outside the data section of \(size) bytes"
        case .overlappingTensors(let a, let b): return "tensors '\(a)' and '\(b)' overlap in the data section"
        case .tensorNotFound(let name): return "no tensor named '\(name)'"
        case .unsupportedTensorType(let name, let type):
            return "tensor '\(name)' has type \(type), which Headlight cannot dequantize yet"
        case .missingKey(let key): return "missing metadata key '\(key)'"
        case .wrongValueType(let key, let expected, let found):
            return "metadata key '\(key)' is \(found), expected \(expected)"
        case .invalidValue(let key, let reason): return "metadata key '\(key)': \(reason)"
        }
    }
}
