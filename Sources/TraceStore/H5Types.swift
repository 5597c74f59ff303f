import CNative
import Foundation

/// Element types of datasets (and the on-disk types Headlight writes; all little-endian).
public enum H5ElementType: String, Sendable, CaseIterable, CustomStringConvertible {
    /// IEEE binary16 on disk, written from `Float` (rounded to nearest, ties to even) and read back
    /// as `Float`/`Double`. h5py reads it as numpy float16; h5dump prints it as a 16-bit float.
    case float16
    case float32, float64
    case int8, uint8, int16, uint16, int32, uint32, int64, uint64
    /// Variable-length UTF-8 string.
    case string

    public var description: String { rawValue }

    /// Bytes per element on disk (a vlen string counts as its 16-byte heap reference).
    public var byteSize: Int {
        switch self {
        case .int8, .uint8: return 1
        case .float16, .int16, .uint16: return 2
        case .float32, .int32, .uint32: return 4
        case .float64, .int64, .uint64: return 8
        case .string: return 16
        }
    }

    var code: hl_h5_dtype {
        switch self {
        case .float16: return HL_H5_F16
        case .float32: return HL_H5_F32
        case .float64: return HL_H5_F64
        case .int8: return HL_H5_I8
        case .uint8: return HL_H5_U8
        case .int16: return HL_H5_I16
        case .uint16: return HL_H5_U16
        case .int32: return HL_H5_I32
        case .uint32: return HL_H5_U32
        case .int64: return HL_H5_I64
        case .uint64: return HL_H5_U64
        case .string: return HL_H5_STR
        }
    }

    /// Maps a type code from the shim; nil for types Headlight does not handle. Fixed-length
    /// strings (written by other tools) are read like `.string`.
    init?(code: hl_h5_dtype) {
        switch code {
        case HL_H5_F16: self = .float16
        case HL_H5_F32: self = .float32
        case HL_H5_F64: self = .float64
        case HL_H5_I8: self = .int8
        case HL_H5_U8: self = .uint8
        case HL_H5_I16: self = .int16
        case HL_H5_U16: self = .uint16
        case HL_H5_I32: self = .int32
        case HL_H5_U32: self = .uint32
        case HL_H5_I64: self = .int64
        case HL_H5_U64: self = .uint64
        case HL_H5_STR, HL_H5_STR_FIXED: self = .string
        default: return nil
        }
    }

    var isFloat: Bool { self == .float16 || self == .float32 || self == .float64 }
    var isSigned: Bool { [.int8, .int16, .int32, .int64].contains(self) }
    var isUnsigned: Bool { [.uint8, .uint16, .uint32, .uint64].contains(self) }

    /// Whether values stored as `self` can be read into `target` without loss
    /// (same type, or a widening such as int32 -> int64, float16/float32 -> float64).
    func widens(to target: H5ElementType) -> Bool {
        if self == target { return true }
        if self == .string || target == .string { return false }
        if isFloat { return target.isFloat && target.byteSize > byteSize }
        if target.isFloat {
            // integers that fit a float's significand exactly
            let bits = byteSize * 8 - (isSigned ? 1 : 0)
            return bits <= (target == .float64 ? 53 : target == .float32 ? 24 : 11)
        }
        if isSigned { return target.isSigned && target.byteSize > byteSize }
        return target.byteSize > byteSize || (target.isUnsigned && target.byteSize >= byteSize)
    }
}

/// Swift element types that map to an HDF5 element type.
public protocol H5Scalar {
    static var h5ElementType: H5ElementType { get }
}

extension Float: H5Scalar { public static var h5ElementType: H5ElementType { .float32 } }
extension Double: H5Scalar { public static var h5ElementType: H5ElementType { .float64 } }
extension Int8: H5Scalar { public static var h5ElementType: H5ElementType { .int8 } }
extension UInt8: H5Scalar { public static var h5ElementType: H5ElementType { .uint8 } }
extension Int16: H5Scalar { public static var h5ElementType: H5ElementType { .int16 } }
extension UInt16: H5Scalar { public static var h5ElementType: H5ElementType { .uint16 } }
extension Int32: H5Scalar { public static var h5ElementType: H5ElementType { .int32 } }
extension UInt32: H5Scalar { public static var h5ElementType: H5ElementType { .uint32 } }
extension Int64: H5Scalar { public static var h5ElementType: H5ElementType { .int64 } }
extension UInt64: H5Scalar { public static var h5ElementType: H5ElementType { .uint64 } }
/// `Int` is stored as int64 (Headlight supports 64-bit platforms only).
extension Int: H5Scalar { public static var h5ElementType: H5ElementType { .int64 } }

/// Kinds of objects inside an HDF5 file.
public enum H5ObjectKind: String, Sendable {
    case group, dataset, datatype, other
}

// MARK: - binary16 conversion

/// IEEE binary16 <-> binary32 conversion on bit patterns.
///
/// Headlight converts in Swift instead of letting HDF5 convert on H5Dwrite, because HDF5 1.10's
/// float -> custom-float conversion does not round to nearest-even: measured on 1.10.8, ties
/// round away from zero (1 + 2^-11 -> 0x3c01, RNE gives 0x3c00), subnormal results are truncated
/// (1.5 * 2^-24 -> 0x0001, RNE gives 0x0002) and 65520 becomes 65504 instead of +inf. The
/// routines below are exact for representable values and round to nearest, ties to even,
/// otherwise (the "fast3_rtne" construction of F. Giesen's public-domain half.c).
public enum Half {
    /// Nearest binary16 to `f` (ties to even); overflow gives +-inf, NaN stays NaN (quiet).
    @inline(__always)
    public static func bits(from f: Float) -> UInt16 {
        var u = f.bitPattern
        let sign = u & 0x8000_0000
        u ^= sign
        var o: UInt32
        if u >= 0x4780_0000 { // >= 65536: inf or NaN (2^16 = (127 + 16) << 23)
            o = u > 0x7F80_0000 ? 0x7E00 : 0x7C00
        } else if u < 0x3880_0000 { // < 2^-14: result subnormal or zero
            // Adding 0.5 aligns the 10 result bits at the bottom of the float's significand;
            // the float addition rounds to nearest-even.
            let magic = Float(bitPattern: 0x3F00_0000) // ((127 - 15) + (23 - 10) + 1) << 23 = 0.5
            let sum = Float(bitPattern: u) + magic
            o = sum.bitPattern &- magic.bitPattern
        } else {
            let mantOdd = (u >> 13) & 1
            u = u &+ 0xC800_0FFF // ((15 - 127) << 23) + 0xfff: rebias, rounding bias part 1
            u = u &+ mantOdd // part 2: ties to even
            o = u >> 13
        }
        return UInt16(truncatingIfNeeded: o | (sign >> 16))
    }

    /// The binary32 value of a binary16 bit pattern (always exact).
    @inline(__always)
    public static func float(from h: UInt16) -> Float {
        let shiftedExp: UInt32 = 0x7C00 << 13
        var o = (UInt32(h) & 0x7FFF) << 13
        let exp = shiftedExp & o
        o = o &+ ((127 - 15) << 23)
        if exp == shiftedExp { // inf / NaN
            o = o &+ ((128 - 16) << 23)
        } else if exp == 0 { // zero / subnormal
            o = o &+ (1 << 23)
            o = (Float(bitPattern: o) - Float(bitPattern: 113 << 23)).bitPattern
        }
        return Float(bitPattern: o | ((UInt32(h) & 0x8000) << 16))
    }

    /// `Float` rounded through binary16 (what a float16 dataset returns).
    public static func round(_ f: Float) -> Float { float(from: bits(from: f)) }

    static func decode(_ src: [UInt16]) -> [Float] {
        [Float](unsafeUninitializedCapacity: src.count) { buf, n in
            src.withUnsafeBufferPointer { s in
                for i in 0..<s.count { buf[i] = float(from: s[i]) }
            }
            n = src.count
        }
    }

    static func encode(_ src: UnsafeBufferPointer<Float>) -> [UInt16] {
        [UInt16](unsafeUninitializedCapacity: src.count) { buf, n in
            for i in 0..<src.count { buf[i] = bits(from: src[i]) }
            n = src.count
        }
    }
}

// MARK: - shim plumbing

/// Serializes calls into HDF5 when the library was built without thread safety (the Debian
/// build is thread-safe; Homebrew's default build is not).
enum H5Lib {
    static let threadsafe = hl_h5_is_threadsafe() != 0
    static let lock = NSRecursiveLock()

    @inline(__always)
    static func sync<R>(_ body: () throws -> R) rethrows -> R {
        if threadsafe { return try body() }
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Message of the last failed shim call on this thread.
    static var lastError: String { String(cString: hl_h5_last_error()) }

    /// HDF5 library version, e.g. "1.10.8".
    static var version: String {
        var buf = [CChar](repeating: 0, count: 32)
        _ = hl_h5_version(&buf, Int32(buf.count))
        return String(cString: buf)
    }

    /// Calls `body` with C strings for `strings` (NUL-free, checked by the caller).
    static func withCStrings<R>(
        _ strings: [String],
        _ body: (UnsafePointer<UnsafePointer<CChar>?>) throws -> R
    ) rethrows -> R {
        var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        if ptrs.isEmpty { ptrs.append(nil) } // a valid base address for empty lists
        defer { for p in ptrs { free(p) } }
        return try ptrs.withUnsafeBufferPointer { buf in
            try buf.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buf.count) {
                try body($0)
            }
        }
    }

    /// Reads `n` strings through `fill` (which fills malloc'd C strings) and frees them.
    static func readCStrings(
        count n: Int, _ fill: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32
    ) -> [String]? {
        var out = [UnsafeMutablePointer<CChar>?](repeating: nil, count: max(n, 1))
        let status = out.withUnsafeMutableBufferPointer { fill($0.baseAddress!) }
        defer { hl_h5_free_strings(&out, Int64(n)) }
        if status < 0 { return nil }
        return (0..<n).map { out[$0].map { String(cString: $0) } ?? "" }
    }
}

/// Joins an HDF5 path to a parent's absolute path ("/" + "a/b" -> "/a/b"); absolute paths win.
func h5Join(_ parent: String, _ path: String) -> String {
    let combined = path.hasPrefix("/") ? path : (parent == "/" ? "/" + path : parent + "/" + path)
    let parts = combined.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
    return "/" + parts.joined(separator: "/")
}
