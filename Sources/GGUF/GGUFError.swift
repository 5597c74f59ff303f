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
    ///
    /// Unless a label says otherwise, `offset` is the absolute byte position in the
    /// file of the field that failed (for tensor problems: of the field inside the
    /// tensor's header entry). Data-section positions are labelled `dataOffset`/`start`.
    public enum Kind: Equatable, Sendable {
        // Opening.
        case cannotOpen(reason: String)
        case notARegularFile
        // Header (magic at offset 0, version at offset 4).
        case badMagic(found: UInt32)
        /// Version 0, 1 (GGUFv1, long obsolete) or newer than 3.
        case unsupportedVersion(UInt32)
        /// The version has zero low 16 bits, e.g. 0x03000000: the file is big-endian
        /// (or written on a host of the other endianness).
        case byteSwappedVersion(UInt32)
        case truncated(reading: String, offset: Int, needed: Int, fileSize: Int)
        /// A tensor, key-value or array count larger than the rest of the file could hold
        /// (or than GGUF's limit of 2^30 array elements).
        case countTooLarge(what: String, count: UInt64, limit: UInt64, offset: Int)
        // Strings.
        /// A string whose length exceeds the bytes left in the file (or GGUF's 1 GiB limit).
        case stringTooLong(context: String, length: UInt64, limit: UInt64, offset: Int)
        case invalidUTF8(context: String, offset: Int)
        // Metadata.
        case emptyKey(offset: Int)
        case duplicateKey(String, offset: Int)
        case invalidValueType(key: String, raw: UInt32, offset: Int)
        case nestedArray(key: String, offset: Int)
        case invalidBool(key: String, value: UInt8, offset: Int)
        /// `general.alignment` is a u32 but zero or not a power of two.
        case invalidAlignment(key: String, value: String, offset: Int)
        /// `general.alignment` has a type other than u32.
        case alignmentNotU32(key: String, type: String, offset: Int)
        // Tensor infos.
        case emptyTensorName(offset: Int)
        case tensorNameTooLong(String, length: Int, limit: Int, offset: Int)
        case duplicateTensor(String, offset: Int)
        case tooManyDimensions(tensor: String, count: UInt32, limit: Int, offset: Int)
        case negativeDimension(tensor: String, axis: Int, value: Int64, offset: Int)
        case elementCountOverflow(tensor: String, offset: Int)
        case unknownTensorType(tensor: String, raw: UInt32, offset: Int)
        case rowNotBlockAligned(tensor: String, rowLength: Int, type: String, blockSize: Int, offset: Int)
        /// The tensor's size in bytes does not fit in `Int`.
        case byteSizeOverflow(tensor: String, offset: Int)
        /// `dataOffset` (relative to the data section) is not a multiple of the alignment.
        case misalignedTensorOffset(tensor: String, dataOffset: UInt64, alignment: Int, offset: Int)
        // Data section.
        /// Bytes `[start, start + bytes)` of the data section are not all inside the file.
        case tensorDataOutOfBounds(tensor: String, start: UInt64, bytes: UInt64, dataSize: Int)
        /// The second tensor starts at `dataOffset`, inside the first one's bytes.
        case overlappingTensors(String, String, dataOffset: Int)
        // Lookups on a valid file.
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
            return String(format: "not a GGUF file: magic at offset 0 is 0x%08x, expected 0x46554747 (\"GGUF\")", found)
        case .unsupportedVersion(let v):
            return "unsupported GGUF version \(v) at offset 4 (Headlight reads versions 2 and 3)"
        case .byteSwappedVersion(let v):
            return String(
                format: "GGUF version at offset 4 reads as 0x%08x: the file is byte-swapped "
                    + "(big-endian GGUF); convert it to little-endian", v)
        case .truncated(let what, let offset, let needed, let size):
            return "file truncated while reading \(what) at offset \(offset): needs \(needed) bytes, file has \(size)"
        case .countTooLarge(let what, let count, let limit, let offset):
            return "\(what) \(count) at offset \(offset) is larger than the rest of the file can hold "
                + "(at most \(limit)): the file is truncated or corrupt"
        case .stringTooLong(let ctx, let len, let limit, let offset):
            return "string of \(ctx) at offset \(offset) claims \(len) bytes, more than the \(limit) possible there"
        case .invalidUTF8(let ctx, let offset): return "\(ctx) at offset \(offset) is not valid UTF-8"
        case .emptyKey(let offset): return "empty metadata key at offset \(offset)"
        case .duplicateKey(let key, let offset): return "duplicate metadata key '\(key)' at offset \(offset)"
        case .invalidValueType(let key, let raw, let offset):
            return "metadata key '\(key)' has unknown value type \(raw) at offset \(offset)"
        case .nestedArray(let key, let offset):
            return "metadata key '\(key)' holds an array of arrays at offset \(offset) (not supported by GGUF readers)"
        case .invalidBool(let key, let v, let offset):
            return "metadata key '\(key)' has boolean byte \(v) at offset \(offset) (must be 0 or 1)"
        case .invalidAlignment(let key, let value, let offset):
            return "'\(key)' = \(value) at offset \(offset) is not a valid alignment (must be a non-zero power of two)"
        case .alignmentNotU32(let key, let type, let offset):
            return "'\(key)' at offset \(offset) has type \(type), but the alignment must be a u32"
        case .emptyTensorName(let offset): return "tensor info at offset \(offset) has an empty name"
        case .tensorNameTooLong(let name, let len, let limit, let offset):
            return "tensor name '\(name.prefix(80))' at offset \(offset) is \(len) bytes long (limit \(limit))"
        case .duplicateTensor(let name, let offset): return "duplicate tensor name '\(name)' at offset \(offset)"
        case .tooManyDimensions(let name, let count, let limit, let offset):
            return "tensor '\(name)' has \(count) dimensions at offset \(offset) (limit \(limit))"
        case .negativeDimension(let name, let axis, let value, let offset):
            return "tensor '\(name)' has negative size \(value) in dimension \(axis) at offset \(offset)"
        case .elementCountOverflow(let name, let offset):
            return "tensor '\(name)' (dimensions at offset \(offset)): element count overflows 64 bits"
        case .unknownTensorType(let name, let raw, let offset):
            return "tensor '\(name)' has unknown GGML type id \(raw) at offset \(offset)"
        case .rowNotBlockAligned(let name, let n, let type, let bs, let offset):
            return
                "tensor '\(name)' (type at offset \(offset)): row length \(n) is not a multiple of the \(type) block "
                + "size \(bs)"
        case .byteSizeOverflow(let name, let offset):
            return "tensor '\(name)' (type at offset \(offset)): size in bytes overflows 64 bits"
        case .misalignedTensorOffset(let name, let dataOffset, let alignment, let offset):
            return
                "tensor '\(name)': data offset \(dataOffset) (at offset \(offset)) is not a multiple of the alignment "
                + "\(alignment)"
        case .tensorDataOutOfBounds(let name, let start, let bytes, let size):
            return
                "tensor '\(name)': \(bytes) bytes at data offset \(start) lie outside the data section of \(size) bytes"
        case .overlappingTensors(let a, let b, let offset):
            return "tensors '\(a)' and '\(b)' overlap in the data section (at data offset \(offset))"
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
