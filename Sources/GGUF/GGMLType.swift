// The GGML tensor type table: one row per type id, as in ggml's `type_traits`
// (ggml.c) and the block layouts of ggml-common.h. Validation of any GGUF uses
// the block size and bytes per block; dequantizers live in Dequantize.swift.

/// A GGML tensor element type, numbered as in `enum ggml_type` (ggml.h).
public enum GGMLType: UInt32, CaseIterable, Sendable, CustomStringConvertible {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3
    case q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20
    case iq3_s = 21, iq2_s = 22, iq4_xs = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30
    case tq1_0 = 34, tq2_0 = 35, mxfp4 = 39

    /// Elements per block (1 for plain scalar types).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .i64: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_nl, .mxfp4: return 32
        default: return 256 // QK_K
        }
    }

    /// Bytes per block (`type_size` in ggml).
    public var bytesPerBlock: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .f64: return 8
        case .i8: return 1
        case .i16: return 2
        case .i32: return 4
        case .i64: return 8
        case .q4_0: return 18 // f16 d; u8 qs[16]
        case .q4_1: return 20 // f16 d, m; u8 qs[16]
        case .q5_0: return 22 // f16 d; u8 qh[4]; u8 qs[16]
        case .q5_1: return 24 // f16 d, m; u8 qh[4]; u8 qs[16]
        case .q8_0: return 34 // f16 d; i8 qs[32]
        case .q8_1: return 36 // f16 d, s; i8 qs[32]
        case .q2_K: return 84 // u8 scales[16]; u8 qs[64]; f16 d, dmin
        case .q3_K: return 110 // u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d
        case .q4_K: return 144 // f16 d, dmin; u8 scales[12]; u8 qs[128]
        case .q5_K: return 176 // f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]
        case .q6_K: return 210 // u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d
        case .q8_K: return 292 // f32 d; i8 qs[256]; i16 bsums[16]
        case .iq2_xxs: return 66
        case .iq2_xs: return 74
        case .iq3_xxs: return 98
        case .iq1_s: return 50
        case .iq4_nl: return 18
        case .iq3_s: return 110
        case .iq2_s: return 82
        case .iq4_xs: return 136
        case .iq1_m: return 56
        case .tq1_0: return 54
        case .tq2_0: return 66
        case .mxfp4: return 17
        }
    }

    /// The name ggml prints for this type ("Q4_1", "F32", ...).
    public var name: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        case .f64: return "F64"
        case .i8: return "I8"
        case .i16: return "I16"
        case .i32: return "I32"
        case .i64: return "I64"
        case .q4_0: return "Q4_0"
        case .q4_1: return "Q4_1"
        case .q5_0: return "Q5_0"
        case .q5_1: return "Q5_1"
        case .q8_0: return "Q8_0"
        case .q8_1: return "Q8_1"
        case .q2_K: return "Q2_K"
        case .q3_K: return "Q3_K"
        case .q4_K: return "Q4_K"
        case .q5_K: return "Q5_K"
        case .q6_K: return "Q6_K"
        case .q8_K: return "Q8_K"
        case .iq2_xxs: return "IQ2_XXS"
        case .iq2_xs: return "IQ2_XS"
        case .iq3_xxs: return "IQ3_XXS"
        case .iq1_s: return "IQ1_S"
        case .iq4_nl: return "IQ4_NL"
        case .iq3_s: return "IQ3_S"
        case .iq2_s: return "IQ2_S"
        case .iq4_xs: return "IQ4_XS"
        case .iq1_m: return "IQ1_M"
        case .tq1_0: return "TQ1_0"
        case .tq2_0: return "TQ2_0"
        case .mxfp4: return "MXFP4"
        }
    }

    public var description: String { name }

    /// Bytes needed for a row of `n` elements, or nil if `n` is not a multiple of the block size.
    public func rowBytes(_ n: Int) -> Int? {
        guard n >= 0, n % blockSize == 0 else { return nil }
        return (n / blockSize) * bytesPerBlock
    }
}
