import CNative
import Foundation
@testable import Inference
import XCTest

/// The binary16 KV-cache kernels (hl_kernels.c, "Attention over an IEEE binary16 KV cache") at
/// every level the CPU supports (KernelTests prints which levels were skipped).
///
/// Exactness claims checked here:
/// - hl_f32_to_f16 rounds to nearest even like Swift's `Float16(_:)`, and every level gives the
///   same bits; hl_f16_to_f32 is exact (all 65,536 halves) on every level.
/// - hl_attention_decode_f16 / hl_attention_prefill_f16 equal the Float32 kernels of the same
///   level on the widened cache bit for bit (the f16 kernels only add exact widening).
/// - Across levels (FMA contraction and vector widths differ): 1e-5 absolute on z, as the Float32
///   attention tests; against the Float32 kernels on the unrounded cache: the rounding of K and V
///   (relative 2^-11 each) moves z by at most ~2e-3 here (inputs in [-2, 2], |z| <= 1); checked
///   at 1e-2 and printed.
final class HalfKVKernelTests: XCTestCase {
    /// Every level the CPU supports.
    var levels: [Int32] { (0..<Int32(HL_KERNELS_LEVELS)).filter { hl_kernels_level_supported($0) != 0 } }

    override func tearDown() {
        _ = hl_kernels_set_level(hl_kernels_max_level())
        hl_attention_set_tiles(0, 0)
        super.tearDown()
    }

    static func name(_ level: Int32) -> String { String(cString: hl_kernels_level_name(level)) }

    static func narrow(_ x: [Float]) -> [UInt16] {
        var out = [UInt16](repeating: 0, count: x.count)
        hl_f32_to_f16(x, &out, x.count)
        return out
    }

    static func widen(_ h: [UInt16]) -> [Float] {
        var out = [Float](repeating: 0, count: h.count)
        hl_f16_to_f32(h, &out, h.count)
        return out
    }

    func testConversionsMatchSwiftFloat16OnEveryLevel() {
        var rng = SeededGenerator(seed: 11)
        // Ties, subnormals, the overflow edge, signed zeros, Inf and NaN, then random values of
        // every magnitude (lengths not multiples of 8 or 16, so the scalar tails run too).
        var xs: [Float] = [
            0, -0, 1, -1, 65504, 65519.99, 65520, -65520, 1e10, .infinity, -.infinity,
            Float(bitPattern: 0x3380_0000), Float(bitPattern: 0x3300_0000), Float(bitPattern: 0x3300_0001),
            5.9604645e-8, 2.9802322e-8, 2.9802326e-8, 6.1035156e-5, 6.1035152e-5, 1.0009766, 1.0004883,
            1.0014648, 2049, 2051, Float.leastNonzeroMagnitude, Float.leastNormalMagnitude
        ]
        for _ in 0..<3000 {
            let e = Float.random(in: -30...17, using: &rng)
            xs.append(Float.random(in: -1...1, using: &rng) * Float(pow(2.0, Double(e))))
        }
        for _ in 0..<500 { xs.append(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))) }
        xs.append(contentsOf: [1, 2, 3]) // 3,529 + 3 values
        let want = xs.map { Float16($0).bitPattern }
        let allHalves = (0...UInt16.max).map { $0 }
        for level in levels {
            _ = hl_kernels_set_level(level)
            let got = Self.narrow(xs)
            for (i, x) in xs.enumerated() where got[i] != want[i] {
                if x.isNaN {
                    XCTAssertTrue(Float16(bitPattern: got[i]).isNaN, "NaN \(x.bitPattern) -> \(got[i])")
                } else {
                    XCTFail(
                        "\(Self.name(level)): \(x) (0x\(String(x.bitPattern, radix: 16))) -> \(got[i]), want \(want[i])"
                    )
                }
            }
            let wide = Self.widen(allHalves)
            for h in allHalves {
                let ref = Float(Float16(bitPattern: h))
                let w = wide[Int(h)]
                if ref.isNaN {
                    XCTAssertTrue(w.isNaN, "\(Self.name(level)): half 0x\(String(h, radix: 16)) -> \(w)")
                    // Round trip: the payload comes back, quieted (signalling NaNs get the quiet bit).
                    XCTAssertEqual(Self.narrow([w])[0], h | 0x0200, "NaN 0x\(String(h, radix: 16)) round trip")
                } else {
                    XCTAssertEqual(w.bitPattern, ref.bitPattern, "\(Self.name(level)): half 0x\(String(h, radix: 16))")
                }
            }
            // Strided rows: [3, 40] out of rows 56 halves apart.
            let src = (0..<(3 * 56)).map { UInt16($0 * 97 & 0x7bff) }
            var rows = [Float](repeating: .nan, count: 3 * 40)
            hl_f16_to_f32_rows(src, 56, 3, 40, &rows)
            for r in 0..<3 {
                for c in 0..<40 { XCTAssertEqual(rows[r * 40 + c], Float(Float16(bitPattern: src[r * 56 + c]))) }
            }
        }
        // The generic level's NaNs: quiet, top payload bits kept (as vcvtps2ph).
        _ = hl_kernels_set_level(Int32(HL_KERNELS_GENERIC))
        XCTAssertEqual(Self.narrow([Float(bitPattern: 0x7f80_0001)])[0], 0x7e00)
        XCTAssertEqual(Self.narrow([Float(bitPattern: 0xffc0_2000)])[0], 0xfe01)
    }

    struct Case {
        var t, p, h, hkv, dh, window: Int
    }

    /// Runs one case at every level: f16 kernel vs the Float32 kernel on the widened cache (bit
    /// for bit), vs the generic level (1e-5), vs the Float32 kernel on the unrounded cache (1e-2).
    func run(_ c: Case, rng: inout SeededGenerator, tiles: [(Int32, Int32)]) -> Float {
        let s = c.p + c.t, qs = c.h * c.dh, kvs = c.hkv * c.dh
        let scale = 1 / Float(c.dh).squareRoot()
        let q = (0..<(c.t * qs)).map { _ in Float.random(in: -2...2, using: &rng) }
        let k = (0..<(s * kvs)).map { _ in Float.random(in: -2...2, using: &rng) }
        let v = (0..<(s * kvs)).map { _ in Float.random(in: -1...1, using: &rng) }
        let k16 = Self.narrow(k), v16 = Self.narrow(v)
        let kw = Self.widen(k16), vw = Self.widen(v16)
        let label = "t \(c.t) p \(c.p) h \(c.h)/\(c.hkv) dh \(c.dh) window \(c.window)"
        func f16(_ out: inout [Float]) {
            if c.t == 1 {
                let lo = c.window > 0 ? max(0, s - c.window) : 0
                k16.withUnsafeBufferPointer { kp in
                    v16.withUnsafeBufferPointer { vp in
                        hl_attention_decode_f16(
                            q, kp.baseAddress! + lo * kvs, vp.baseAddress! + lo * kvs, &out, Int32(s - lo),
                            Int32(c.h), Int32(c.hkv), Int32(c.dh), scale)
                    }
                }
            } else {
                hl_attention_prefill_f16(
                    q, k16, v16, &out, Int32(c.t), Int32(c.p), Int32(c.h), Int32(c.hkv), Int32(c.dh), scale,
                    Int32(c.window))
            }
        }
        func f32(_ kk: [Float], _ vv: [Float], _ out: inout [Float]) {
            if c.t == 1 {
                let lo = c.window > 0 ? max(0, s - c.window) : 0
                kk.withUnsafeBufferPointer { kp in
                    vv.withUnsafeBufferPointer { vp in
                        hl_attention_decode(
                            q, kp.baseAddress! + lo * kvs, vp.baseAddress! + lo * kvs, &out, Int32(s - lo),
                            Int32(c.h), Int32(c.hkv), Int32(c.dh), scale)
                    }
                }
            } else {
                hl_attention_prefill_window(
                    q, kk, vv, &out, Int32(c.t), Int32(c.p), Int32(c.h), Int32(c.hkv), Int32(c.dh), scale,
                    Int32(c.window))
            }
        }
        _ = hl_kernels_set_level(Int32(HL_KERNELS_GENERIC))
        hl_attention_set_tiles(0, 0)
        var generic = [Float](repeating: .nan, count: c.t * qs)
        f16(&generic)
        var worstRounding: Float = 0
        for level in levels {
            _ = hl_kernels_set_level(level)
            for (bq, bk) in tiles {
                hl_attention_set_tiles(bq, bk)
                let at = "\(label), level \(Self.name(level)), tiles \(bq)x\(bk)"
                var zh = [Float](repeating: .nan, count: c.t * qs), zw = zh, zf = zh
                f16(&zh)
                f32(kw, vw, &zw)
                f32(k, v, &zf)
                XCTAssertEqual(
                    zh.map(\.bitPattern), zw.map(\.bitPattern), "f16 kernel vs f32 on the widened cache, \(at)")
                let vsGeneric = zip(zh, generic).map { KernelTests.finite(Double(abs($0 - $1))) }.max()!
                XCTAssertLessThanOrEqual(vsGeneric, 1e-5, "vs generic level, \(at)")
                let rounding = zip(zh, zf).map { Float(KernelTests.finite(Double(abs($0 - $1)))) }.max()!
                XCTAssertLessThanOrEqual(rounding, 1e-2, "f16 vs f32 cache, \(at)")
                worstRounding = max(worstRounding, rounding)
            }
        }
        return worstRounding
    }

    func testDecodeF16() {
        var rng = SeededGenerator(seed: 13)
        var worst: Float = 0
        for c in [
            Case(t: 1, p: 0, h: 9, hkv: 3, dh: 64, window: 0),
            Case(t: 1, p: 1024, h: 9, hkv: 3, dh: 64, window: 0), // several splits and 32-row blocks
            Case(t: 1, p: 517, h: 4, hkv: 4, dh: 40, window: 0), // dh not a multiple of 16
            Case(t: 1, p: 66, h: 6, hkv: 2, dh: 128, window: 0),
            Case(t: 1, p: 300, h: 8, hkv: 2, dh: 256, window: 0), // dh > 128: the scalar value path
            Case(t: 1, p: 700, h: 4, hkv: 1, dh: 64, window: 100) // a window
        ] {
            worst = max(worst, run(c, rng: &rng, tiles: [(0, 0)]))
        }
        print("decode: max |z(f16 cache) - z(f32 cache)| = \(worst)")
    }

    func testPrefillF16() {
        var rng = SeededGenerator(seed: 17)
        var worst: Float = 0
        let tiles: [(Int32, Int32)] = [(0, 0), (16, 32), (7, 13)]
        for c in [
            Case(t: 77, p: 0, h: 6, hkv: 2, dh: 64, window: 0),
            Case(t: 45, p: 131, h: 6, hkv: 2, dh: 64, window: 0),
            Case(t: 33, p: 19, h: 5, hkv: 5, dh: 40, window: 0),
            Case(t: 9, p: 300, h: 8, hkv: 2, dh: 24, window: 0),
            Case(t: 60, p: 100, h: 4, hkv: 2, dh: 32, window: 50)
        ] {
            worst = max(worst, run(c, rng: &rng, tiles: tiles))
        }
        print("prefill: max |z(f16 cache) - z(f32 cache)| = \(worst)")
    }
}
