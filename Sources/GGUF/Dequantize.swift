// Dequantization of GGML tensor data to Float32.
//
// Each supported format has one plain reference decoder below: a direct Swift
// transcription of `dequantize_row_*` in ggml's ggml-quants.c, reading the block
// layouts of ggml-common.h. Arithmetic is done in Float32 in the same order as the C
// code, so results are bit-identical to ggml's reference (and to gguf-py's numpy
// decoders, which the golden tests use). The hot formats also have a vectorised
// decoder in DequantizeFast.swift, which `dequantize(_:count:into:)` prefers; tests
// check it against the reference bit for bit.
//
// Blocks are read with unaligned little-endian loads, so `src` needs no alignment.

/// Weights per K-quant super-block (`QK_K` in ggml-common.h).
let qkK = 256

extension GGMLType {
    /// Whether `dequantize(_:count:into:)` supports this type. True for F32, F16, BF16,
    /// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the K-quants Q2_K ... Q8_K.
    public var canDequantize: Bool { referenceDecoder != nil }

    /// Decodes `count` elements of this type from `src` into `dst` as Float32, bit-identical
    /// to ggml's `dequantize_row_*` (vectorised for F16, Q4_0, Q4_1, Q8_0, Q4_K and Q6_K).
    ///
    /// - Parameters:
    ///   - src: `count / blockSize` consecutive blocks (`rowBytes(count)` bytes), any alignment.
    ///   - count: number of elements; must be a non-negative multiple of `blockSize`.
    ///   - dst: room for `count` floats.
    /// - Precondition: `canDequantize` is true (callers check it and throw otherwise).
    public func dequantize(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        let blocks = checkedBlockCount(count)
        switch self {
        #if _endian(little)
            case .f32: UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
        #endif
        case .f16: FastDequant.f16(src, count: count, into: dst)
        case .q4_0: FastDequant.q4_0(src, blocks: blocks, into: dst)
        case .q4_1: FastDequant.q4_1(src, blocks: blocks, into: dst)
        case .q8_0: FastDequant.q8_0(src, blocks: blocks, into: dst)
        case .q4_K: FastDequant.q4_K(src, blocks: blocks, into: dst)
        case .q6_K: FastDequant.q6_K(src, blocks: blocks, into: dst)
        default: dequantizeReference(src, count: count, into: dst)
        }
    }

    /// Decodes with the plain reference transcription only (no fast paths).
    /// Same contract as `dequantize(_:count:into:)`; used for the colder formats and by tests.
    func dequantizeReference(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        let blocks = checkedBlockCount(count)
        let decode = referenceDecoder!
        for i in 0..<blocks {
            decode(BlockView(src + i * bytesPerBlock), dst + i * blockSize)
        }
    }

    /// The reference decoder of one block, or nil if the type is unsupported.
    var referenceDecoder: ((BlockView, UnsafeMutablePointer<Float>) -> Void)? {
        switch self {
        case .f32: return ReferenceDequant.f32
        case .f16: return ReferenceDequant.f16
        case .bf16: return ReferenceDequant.bf16
        case .q4_0: return ReferenceDequant.q4_0
        case .q4_1: return ReferenceDequant.q4_1
        case .q5_0: return ReferenceDequant.q5_0
        case .q5_1: return ReferenceDequant.q5_1
        case .q8_0: return ReferenceDequant.q8_0
        case .q2_K: return ReferenceDequant.q2_K
        case .q3_K: return ReferenceDequant.q3_K
        case .q4_K: return ReferenceDequant.q4_K
        case .q5_K: return ReferenceDequant.q5_K
        case .q6_K: return ReferenceDequant.q6_K
        case .q8_K: return ReferenceDequant.q8_K
        default: return nil
        }
    }

    private func checkedBlockCount(_ count: Int) -> Int {
        precondition(canDequantize, "dequantization of \(name) is not supported")
        precondition(
            count >= 0 && count % blockSize == 0,
            "\(name): element count \(count) is not a multiple of the block size \(blockSize)")
        return count / blockSize
    }
}

/// Little-endian reads at byte offsets inside one block; no alignment required.
struct BlockView {
    let base: UnsafeRawPointer

    @inline(__always) init(_ base: UnsafeRawPointer) { self.base = base }

    @inline(__always) func u8(_ offset: Int) -> UInt8 { base.load(fromByteOffset: offset, as: UInt8.self) }
    @inline(__always) func i8(_ offset: Int) -> Int8 { base.load(fromByteOffset: offset, as: Int8.self) }
    @inline(__always) func u16(_ offset: Int) -> UInt16 {
        UInt16(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }
    @inline(__always) func u32(_ offset: Int) -> UInt32 {
        UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
    /// An IEEE binary16 field, widened to Float32.
    @inline(__always) func f16(_ offset: Int) -> Float { halfToFloat(u16(offset)) }
    @inline(__always) func f32(_ offset: Int) -> Float { Float(bitPattern: u32(offset)) }

    /// `get_scale_min_k4`: the 6-bit (scale, min) pair `j` (0..<8) of the 12-byte array at
    /// `offset` shared by Q4_K and Q5_K. Bytes 0-3 hold scales 0-3 in their low 6 bits,
    /// bytes 4-7 mins 0-3; bytes 8-11 hold the low nibbles of scales 4-7 (low half) and
    /// mins 4-7 (high half), whose top 2 bits sit in the spare top bits of bytes 0-7.
    @inline(__always) func scaleMinK4(_ j: Int, at offset: Int) -> (scale: UInt8, min: UInt8) {
        if j < 4 {
            return (u8(offset + j) & 63, u8(offset + j + 4) & 63)
        }
        let packed = u8(offset + j + 4)
        return (
            (packed & 0x0F) | ((u8(offset + j - 4) >> 6) << 4),
            (packed >> 4) | ((u8(offset + j) >> 6) << 4)
        )
    }

    /// Q4_K/Q5_K: the scale and offset of groups 2c and 2c+1 (64 weights of chunk `c`), scales at byte 4.
    @inline(__always) func groupScalesK4(_ c: Int, d: Float, dmin: Float) -> (Float, Float, Float, Float) {
        let (sc1, mn1) = scaleMinK4(2 * c, at: 4)
        let (sc2, mn2) = scaleMinK4(2 * c + 1, at: 4)
        return (d * Float(sc1), dmin * Float(mn1), d * Float(sc2), dmin * Float(mn2))
    }
}

/// Plain per-block transcriptions of ggml's `dequantize_row_*`. Each takes one block and
/// writes `blockSize` floats. Offsets in the layout comments are bytes within the block.
enum ReferenceDequant {
    // MARK: Scalar types (one element per "block")

    /// F32: [0,4) f32 value.
    static func f32(_ b: BlockView, _ y: UnsafeMutablePointer<Float>) { y[0] = b.f32(0) }

    /// F16: [0,2) IEEE binary16 value.
    static func f16(_ b: BlockView, _ y: UnsafeMutablePointer<Float>) { y[0] = b.f16(0) }

    /// BF16: [0,2) bfloat16 value (top half of a Float32).
    static func bf16(_ b: BlockView, _ y: UnsafeMutablePointer<Float>) { y[0] = bf16ToFloat(b.u16(0)) }

    // MARK: 32-weight blocks

    /// block_q4_0, 18 bytes / 32 weights:
    ///   [0,2) f16 d | [2,18) u8 qs[16] — weight j in the low nibble of qs[j], weight j+16 in the high nibble.
    ///   y = (q - 8) * d
    static func q4_0(_ b: BlockView, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(0)
        for j in 0..<16 {
            let q = b.u8(2 + j)
            y[j] = Float(Int32(q & 0x0F) - 8) * d
            y[j + 16] = Float(Int32(q >> 4) - 8) * d
        }
    }

    /// block_q4_1, 20 bytes / 32 weights:
    ///   [0,2) f16 d | [2,4) f16 m | [4,20) u8 qs[16] — nibbles as in Q4_0.
    ///   y = q * d + m
    static func q4_1(_ b: BlockView, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(0), m = b.f16(2)
        for j in 0..<16 {
            let q = b.u8(4 + j)
            y[j] = Float(q & 0x0F) * d + m
            y[j + 16] = Float(q >> 4) * d + m
        }
    }

    /// block_q5_0, 22 bytes / 32 weights:
    ///   [0,2) f16 d | [2,6) u32 qh (bit j = 5th bit of weight j) | [6,22) u8 qs[16] — low 4 bits as in Q4_0.
    ///   y = (q - 16) * d
    static func q5_0(_ b: BlockView, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(0), qh = b.u32(2)
        for j in 0..<16 {
            let q = b.u8(6 + j)
            let high0 = UInt8(truncatingIfNeeded: (qh >> j) << 4) & 0x10
            let high1 = UInt8(truncatingIfNeeded: qh >> (j + 12)) & 0x10
            y[j] = Float(Int32((q & 0x0F) | high0) - 16) * d
            y[j + 16] = Float(Int32((q >> 4) | high1) - 16) * d
        }
    }

    /// block_q5_1, 24 bytes / 32 weights:
    ///   [0,2) f16 d | [2,4) f16 m | [4,8) u32 qh | [8,24) u8 qs[16] — bits as in Q5_0.
    ///   y = q * d + m
    static func q5_1(_ b: BlockView, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(0), m = b.f16(2), qh = b.u32(4)
        for j in 0..<16 {
            let q = b.u8(8 + j)
            let high0 = UInt8(truncatingIfNeeded: (qh >> j) << 4) & 0x10
            let high1 = UInt8(truncatingIfNeeded: qh >> (j + 12)) & 0x10
            y[j] = Float((q & 0x0F) | high0) * d + m
            y[j + 16] = Float((q >> 4) | high1) * d + m
        }
    }

    /// block_q8_0, 34 bytes / 32 weights:
    ///   [0,2) f16 d | [2,34) i8 qs[32].
    ///   y = q * d
    static func q8_0(_ b: BlockView, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(0)
        for j in 0..<32 {
            y[j] = Float(b.i8(2 + j)) * d
        }
    }

    // MARK: K-quants: 256-weight super-blocks

    /// block_q2_K, 84 bytes / 256 weights in 16 groups of 16:
    ///   [0,16) u8 scales[16] — low nibble: group scale, high nibble: group min
    ///   [16,80) u8 qs[64] — 2-bit quants; each 128-weight half uses 32 bytes, 4 bit-pairs deep
    ///   [80,82) f16 d | [82,84) f16 dmin.
    ///   y = d * scale * q - dmin * min
    static func q2_K(_ b: BlockView, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(80), dmin = b.f16(82)
        var out = 0, group = 0
        for half in 0..<2 {
            let qs = 16 + 32 * half
            for shift in stride(from: 0, to: 8, by: 2) {
                for sub in 0..<2 { // bytes 0-15, then 16-31 of this half
                    let sc = b.u8(group)
                    group += 1
                    let dl = d * Float(sc & 0x0F), ml = dmin * Float(sc >> 4)
                    for l in 0..<16 {
                        let q = (b.u8(qs + 16 * sub + l) >> shift) & 3
                        y[out] = dl * Float(q) - ml
                        out += 1
                    }
                }
            }
        }
    }

    /// block_q3_K, 110 bytes / 256 weights in 16 groups of 16:
    ///   [0,32) u8 hmask[32] — high bit of each 3-bit quant (bit k of byte l: weight 32k + l);
    ///          a *clear* bit subtracts 4
    ///   [32,96) u8 qs[64] — low 2 bits, packed as in Q2_K
    ///   [96,108) u8 scales[12] — sixteen 6-bit scales (see `q3KScale`), biased by 32
    ///   [108,110) f16 d.
    ///   y = d * (scale - 32) * (q - (hbit ? 0 : 4))
    static func q3_K(_ b: BlockView, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(108)
        var out = 0, group = 0
        var mask: UInt8 = 1
        for half in 0..<2 {
            let qs = 32 + 32 * half
            for shift in stride(from: 0, to: 8, by: 2) {
                for sub in 0..<2 {
                    let dl = d * Float(Int32(q3KScale(b, group)) - 32)
                    group += 1
                    for l in 16 * sub..<16 * sub + 16 {
                        let low = Int32((b.u8(qs + l) >> shift) & 3)
                        let high: Int32 = b.u8(l) & mask != 0 ? 0 : 4
                        y[out] = dl * Float(low - high)
                        out += 1
                    }
                }
                mask <<= 1
            }
        }
    }

    /// Scale `j` (0..<16, unbiased 0...63) of a Q3_K block: the low 4 bits are nibble `j / 8`
    /// of byte `j % 8`, the high 2 bits are bits `2 * (j / 4)` of byte `8 + j % 4`.
    /// (ggml unpacks the same bits with a 32-bit mask trick over `aux[4]`.)
    static func q3KScale(_ b: BlockView, _ j: Int) -> UInt8 {
        let low = j < 8 ? b.u8(96 + j) & 0x0F : b.u8(96 + j - 8) >> 4
        let high = (b.u8(96 + 8 + j % 4) >> (2 * (j / 4))) & 3
        return low | (high << 4)
    }

    /// block_q4_K, 144 bytes / 256 weights in 8 groups of 32:
    ///   [0,2) f16 d | [2,4) f16 dmin | [4,16) u8 scales[12] — 6-bit scale/min pairs (`scaleMinK4`)
    ///   [16,144) u8 qs[128] — per 64 weights, 32 bytes: group 2i in low nibbles, 2i+1 in high.
    ///   y = d * scale * q - dmin * min
    static func q4_K(_ b: BlockView, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(0), dmin = b.f16(2)
        for chunk in 0..<4 {
            let (d1, m1, d2, m2) = b.groupScalesK4(chunk, d: d, dmin: dmin)
            let qs = 16 + 32 * chunk, out = 64 * chunk
            for l in 0..<32 { y[out + l] = d1 * Float(b.u8(qs + l) & 0x0F) - m1 }
            for l in 0..<32 { y[out + 32 + l] = d2 * Float(b.u8(qs + l) >> 4) - m2 }
        }
    }

    /// block_q5_K, 176 bytes / 256 weights in 8 groups of 32:
    ///   [0,2) f16 d | [2,4) f16 dmin | [4,16) u8 scales[12] (as Q4_K)
    ///   [16,48) u8 qh[32] — bit g of qh[l]: 5th bit of weight l of group g
    ///   [48,176) u8 qs[128] — low 4 bits, nibbles as in Q4_K.
    ///   y = d * scale * q - dmin * min
    static func q5_K(_ b: BlockView, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(0), dmin = b.f16(2)
        for chunk in 0..<4 {
            let (d1, m1, d2, m2) = b.groupScalesK4(chunk, d: d, dmin: dmin)
            let bit1: UInt8 = 1 << (2 * chunk), bit2: UInt8 = 2 << (2 * chunk)
            let qs = 48 + 32 * chunk, out = 64 * chunk
            for l in 0..<32 {
                let high: UInt8 = b.u8(16 + l) & bit1 != 0 ? 16 : 0
                y[out + l] = d1 * Float((b.u8(qs + l) & 0x0F) + high) - m1
            }
            for l in 0..<32 {
                let high: UInt8 = b.u8(16 + l) & bit2 != 0 ? 16 : 0
                y[out + 32 + l] = d2 * Float((b.u8(qs + l) >> 4) + high) - m2
            }
        }
    }

    /// block_q6_K, 210 bytes / 256 weights in 16 groups of 16:
    ///   [0,128) u8 ql[128] — low 4 bits; per 128 weights 64 bytes: weights l, l+32 in the low
    ///           nibbles of ql[l], ql[l+32]; weights l+64, l+96 in their high nibbles
    ///   [128,192) u8 qh[64] — high 2 bits; per 128 weights 32 bytes, bit pairs 0/2/4/6 for l/l+32/l+64/l+96
    ///   [192,208) i8 scales[16] | [208,210) f16 d.
    ///   y = d * scale * (q - 32)
    static func q6_K(_ b: BlockView, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f16(208)
        for half in 0..<2 {
            let ql = 64 * half, qh = 128 + 32 * half, sc = 192 + 8 * half, out = 128 * half
            for l in 0..<32 {
                let g = l / 16
                let h = b.u8(qh + l)
                let q1 = Int32((b.u8(ql + l) & 0x0F) | ((h & 3) << 4)) - 32
                let q2 = Int32((b.u8(ql + l + 32) & 0x0F) | (((h >> 2) & 3) << 4)) - 32
                let q3 = Int32((b.u8(ql + l) >> 4) | (((h >> 4) & 3) << 4)) - 32
                let q4 = Int32((b.u8(ql + l + 32) >> 4) | (((h >> 6) & 3) << 4)) - 32
                y[out + l] = d * Float(b.i8(sc + g)) * Float(q1)
                y[out + l + 32] = d * Float(b.i8(sc + g + 2)) * Float(q2)
                y[out + l + 64] = d * Float(b.i8(sc + g + 4)) * Float(q3)
                y[out + l + 96] = d * Float(b.i8(sc + g + 6)) * Float(q4)
            }
        }
    }

    /// block_q8_K, 292 bytes / 256 weights:
    ///   [0,4) f32 d | [4,260) i8 qs[256] | [260,292) i16 bsums[16] (group sums; unused here).
    ///   y = d * q
    static func q8_K(_ b: BlockView, _ y: UnsafeMutablePointer<Float>) {
        let d = b.f32(0)
        for j in 0..<qkK {
            y[j] = d * Float(b.i8(4 + j))
        }
    }
}
