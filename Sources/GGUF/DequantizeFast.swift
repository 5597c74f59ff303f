// Vectorised decoders for the formats that dominate inference: F16, Q4_0, Q4_1, Q8_0,
// Q4_K and Q6_K. They perform exactly the Float32 operations of the reference decoders in
// Dequantize.swift, in the same order (no fused multiply-add, integer offsets applied
// where they are exact), so the output is bit-identical; DequantTests checks this on
// random blocks. Work is done on 16-lane SIMD vectors loaded straight from the block
// bytes, with no per-element bounds checks. (Swift's SIMD conversion initialisers and
// `replace(with:where:)` compile to scalar loops or calls, so the helpers at the end
// spell out conversions and selects in forms LLVM vectorises.)
//
// Layouts are documented on the reference decoders (`ReferenceDequant`).

enum FastDequant {
    typealias Output = UnsafeMutablePointer<Float>

    // MARK: F16

    /// `count` binary16 values to Float32, 16 lanes at a time (scalar tail).
    static func f16(_ src: UnsafeRawPointer, count: Int, into y: Output) {
        var i = 0
        #if _endian(little) // the vector load reads the 16-bit lanes in host order
            while i + 16 <= count {
                store(halfToFloat(load(src, 2 * i, as: SIMD16<UInt16>.self)), y + i)
                i += 16
            }
        #endif
        while i < count {
            y[i] = GGUF.halfToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            i += 1
        }
    }

    /// Branch-free lane-wise `halfToFloat` (same bits for every input, NaN payloads included).
    /// Lane masks come from arithmetic shifts (SIMD `replace(with:where:)` does not vectorise).
    @inline(__always)
    static func halfToFloat(_ h: SIMD16<UInt16>) -> SIMD16<Float> {
        let w = widen(h)
        let magnitude = w & 0x7FFF
        let isInfOrNaN = (0x7BFF &- magnitude) &>> 31 // all ones where magnitude ≥ 0x7C00
        let isSubnormal = (magnitude &- 0x0400) &>> 31 // all ones where magnitude < 0x0400
        // Normal numbers: rebias the exponent by +112 (0x3800_0000 once shifted into place);
        // Inf/NaN need twice that to land on exponent 255.
        let normal = (magnitude &<< 13) &+ 0x3800_0000 &+ (isInfOrNaN & 0x3800_0000)
        // Zero/subnormal: magnitude * 2^-24, computed exactly as (0.5 + magnitude * 2^-24) - 0.5.
        let subnormal = unsafeBitCast(
            unsafeBitCast(magnitude | 0x3F00_0000, to: SIMD16<Float>.self) - 0.5, to: SIMD16<Int32>.self)
        let bits = (normal & ~isSubnormal) | (subnormal & isSubnormal) | ((w & 0x8000) &<< 16)
        return unsafeBitCast(bits, to: SIMD16<Float>.self)
    }

    // MARK: 32-weight blocks

    static func q4_0(_ src: UnsafeRawPointer, blocks: Int, into y: Output) {
        for i in 0..<blocks {
            let block = src + i * 18, out = y + i * 32
            let d = scalarF16(block, 0)
            let qs = load(block, 2, as: SIMD16<UInt8>.self)
            store(floats(qs & 0x0F, minus: 8) * d, out)
            store(floats(qs &>> 4, minus: 8) * d, out + 16)
        }
    }

    static func q4_1(_ src: UnsafeRawPointer, blocks: Int, into y: Output) {
        for i in 0..<blocks {
            let block = src + i * 20, out = y + i * 32
            let d = scalarF16(block, 0), m = scalarF16(block, 2)
            let qs = load(block, 4, as: SIMD16<UInt8>.self)
            store(floats(qs & 0x0F) * d + m, out)
            store(floats(qs &>> 4) * d + m, out + 16)
        }
    }

    static func q8_0(_ src: UnsafeRawPointer, blocks: Int, into y: Output) {
        for i in 0..<blocks {
            let block = src + i * 34, out = y + i * 32
            let d = scalarF16(block, 0)
            // Signed bytes: flip the sign bit to get q + 128, then remove the 128 exactly.
            store(floats(load(block, 2, as: SIMD16<UInt8>.self) ^ 0x80, minus: 128) * d, out)
            store(floats(load(block, 18, as: SIMD16<UInt8>.self) ^ 0x80, minus: 128) * d, out + 16)
        }
    }

    // MARK: K-quants

    static func q4_K(_ src: UnsafeRawPointer, blocks: Int, into y: Output) {
        for i in 0..<blocks {
            let block = src + i * 144, out = y + i * qkK
            let view = BlockView(block)
            let d = scalarF16(block, 0), dmin = scalarF16(block, 2)
            for chunk in 0..<4 {
                let (sc1, mn1) = view.scaleMinK4(2 * chunk, at: 4)
                let (sc2, mn2) = view.scaleMinK4(2 * chunk + 1, at: 4)
                let d1 = d * Float(sc1), m1 = dmin * Float(mn1)
                let d2 = d * Float(sc2), m2 = dmin * Float(mn2)
                let o = out + 64 * chunk
                for half in 0..<2 { // 16 bytes of the chunk's 32 at a time
                    let qs = load(block, 16 + 32 * chunk + 16 * half, as: SIMD16<UInt8>.self)
                    store(d1 * floats(qs & 0x0F) - m1, o + 16 * half)
                    store(d2 * floats(qs &>> 4) - m2, o + 32 + 16 * half)
                }
            }
        }
    }

    static func q6_K(_ src: UnsafeRawPointer, blocks: Int, into y: Output) {
        for i in 0..<blocks {
            let block = src + i * 210, out = y + i * qkK
            let d = scalarF16(block, 208)
            for half in 0..<2 { // 128 weights: ql 64 B, qh 32 B, 8 scales
                let ql = 64 * half, qh = 128 + 32 * half, sc = 192 + 8 * half
                for lanes in 0..<2 { // l in 16*lanes ..< 16*lanes+16 share scale group `lanes`
                    let l = 16 * lanes
                    let lowA = load(block, ql + l, as: SIMD16<UInt8>.self)
                    let lowB = load(block, ql + l + 32, as: SIMD16<UInt8>.self)
                    let high = load(block, qh + l, as: SIMD16<UInt8>.self)
                    let q1 = (lowA & 0x0F) | ((high & 0x03) &<< 4)
                    let q2 = (lowB & 0x0F) | ((high & 0x0C) &<< 2)
                    let q3 = (lowA &>> 4) | (high & 0x30)
                    let q4 = (lowB &>> 4) | ((high &>> 2) & 0x30)
                    let o = out + 128 * half + l
                    store(d * scalarI8(block, sc + lanes) * floats(q1, minus: 32), o)
                    store(d * scalarI8(block, sc + lanes + 2) * floats(q2, minus: 32), o + 32)
                    store(d * scalarI8(block, sc + lanes + 4) * floats(q3, minus: 32), o + 64)
                    store(d * scalarI8(block, sc + lanes + 6) * floats(q4, minus: 32), o + 96)
                }
            }
        }
    }

    // MARK: Helpers

    @inline(__always)
    static func load<V: SIMD>(_ base: UnsafeRawPointer, _ offset: Int, as type: V.Type) -> V {
        base.loadUnaligned(fromByteOffset: offset, as: V.self)
    }

    @inline(__always)
    static func store(_ v: SIMD16<Float>, _ p: Output) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
    }

    // Lane-wise integer -> Float conversions, written out so that they inline and LLVM
    // emits vector conversions (the generic stdlib initialisers stay out-of-line calls).
    @inline(__always)
    static func floats(_ v: SIMD16<UInt8>) -> SIMD16<Float> {
        var r = SIMD16<Float>()
        for i in 0..<16 { r[i] = Float(v[i]) }
        return r
    }

    /// `Float(v) - bias`, exactly, for a small integer bias: the bytes go into the mantissa of
    /// 2^23 and `2^23 + bias` is subtracted. Plain `Float(v) - bias` gets rewritten by LLVM
    /// into a signed byte widening, which is slow on baseline x86-64 (SSE2); this stays a
    /// zero-extension, an OR and one subtraction.
    @inline(__always)
    static func floats(_ v: SIMD16<UInt8>, minus bias: Float) -> SIMD16<Float> {
        var w = SIMD16<UInt32>()
        for i in 0..<16 { w[i] = UInt32(v[i]) }
        return unsafeBitCast(w | 0x4B00_0000, to: SIMD16<Float>.self) - (0x1p23 + bias)
    }

    @inline(__always)
    static func widen(_ v: SIMD16<UInt16>) -> SIMD16<Int32> {
        var r = SIMD16<Int32>()
        for i in 0..<16 { r[i] = Int32(v[i]) }
        return r
    }

    @inline(__always)
    static func scalarF16(_ base: UnsafeRawPointer, _ offset: Int) -> Float {
        GGUF.halfToFloat(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    @inline(__always)
    static func scalarI8(_ base: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(base.load(fromByteOffset: offset, as: Int8.self))
    }
}
