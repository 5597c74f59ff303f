// Dequantization tests:
//  - golden fixtures written by Tests/Fixtures/dequant/make_fixtures.py (gguf-py's numpy
//    decoders, independent of this code), compared bit for bit — no ulp tolerance is
//    needed, because both sides do the same Float32 operations in the same order;
//  - the fast (SIMD) decoders against the reference transcriptions on seeded random blocks;
//  - f16/bf16 <-> f32 conversions over all 65536 bit patterns.

import Foundation
import XCTest
@testable import GGUF

final class DequantTests: XCTestCase {

    // MARK: Supported set

    func testCanDequantizeIsExactlyTheTestedSet() {
        let expected: Set<GGMLType> = [
            .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0,
            .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K
        ]
        XCTAssertEqual(Set(GGMLType.allCases.filter(\.canDequantize)), expected)
    }

    // MARK: Golden fixtures

    private struct Manifest: Decodable {
        struct Entry: Decodable {
            struct Section: Decodable {
                let name: String
                let blocks: Int
            }
            let type: String
            let id: UInt32
            let block_size: Int
            let type_size: Int
            let blocks: Int
            let raw: String
            let expected: String
            let sections: [Section]
        }
        let gguf_py_version: String
        let types: [Entry]
    }

    private static let fixtureDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent() // GGUFTests
        .deletingLastPathComponent() // Tests
        .appendingPathComponent("Fixtures/dequant")

    func testGoldenFixtures() throws {
        let manifestData = try Data(contentsOf: Self.fixtureDirectory.appendingPathComponent("manifest.json"))
        let manifest = try JSONDecoder().decode(Manifest.self, from: manifestData)
        print("dequant fixtures: gguf-py \(manifest.gguf_py_version), \(manifest.types.count) types")

        var covered = Set<GGMLType>()
        for entry in manifest.types {
            let type = try XCTUnwrap(GGMLType(rawValue: entry.id), "unknown type id \(entry.id)")
            XCTAssertEqual(type.name, entry.type)
            XCTAssertEqual(type.blockSize, entry.block_size, "\(entry.type) block size")
            XCTAssertEqual(type.bytesPerBlock, entry.type_size, "\(entry.type) bytes per block")
            XCTAssertTrue(type.canDequantize, "\(entry.type) has a fixture but cannot be dequantized")
            covered.insert(type)

            let raw = try Data(contentsOf: Self.fixtureDirectory.appendingPathComponent(entry.raw))
            let expected = try floats(Data(contentsOf: Self.fixtureDirectory.appendingPathComponent(entry.expected)))
            let count = entry.blocks * entry.block_size
            XCTAssertEqual(raw.count, entry.blocks * entry.type_size, "\(entry.type) raw size")
            XCTAssertEqual(expected.count, count, "\(entry.type) expected size")
            XCTAssertEqual(entry.sections.reduce(0) { $0 + $1.blocks }, entry.blocks)

            let fast = decode(type, raw, count: count, reference: false)
            let reference = decode(type, raw, count: count, reference: true)
            let fastStats = compare(fast, expected)
            let referenceStats = compare(reference, expected)

            // The first few non-zero values (the leading edge-case blocks are mostly zeros).
            let sample = expected.indices.filter { expected[$0] != 0 }.prefix(4)
            let shown = sample.map { "[\($0)] \(expected[$0]) -> \(fast[$0])" }.joined(separator: ", ")
            print(
                "  \(entry.type.padding(toLength: 5, withPad: " ", startingAt: 0)) \(count) values, "
                    + "max |diff| fast \(fastStats.maxAbsDiff) / reference \(referenceStats.maxAbsDiff), "
                    + "bit mismatches \(fastStats.mismatches) / \(referenceStats.mismatches); "
                    + "expected -> got: \(shown)")

            XCTAssertEqual(
                fastStats.mismatches, 0,
                "\(entry.type): fast decoder differs at element \(fastStats.firstMismatch ?? -1) "
                    + "(\(sectionName(entry, fastStats.firstMismatch)))")
            XCTAssertEqual(
                referenceStats.mismatches, 0,
                "\(entry.type): reference decoder differs at element \(referenceStats.firstMismatch ?? -1) "
                    + "(\(sectionName(entry, referenceStats.firstMismatch)))")
        }
        XCTAssertEqual(covered, Set(GGMLType.allCases.filter(\.canDequantize)), "every supported type has a fixture")
    }

    // MARK: Fast == reference

    func testFastDecodersMatchReferenceOnRandomBlocks() {
        var rng = DequantRNG(seed: 0xDE0_0A47)
        for type in GGMLType.allCases where type.canDequantize {
            let blocks = type.blockSize == 1 ? 4099 : (type.blockSize == 32 ? 4096 : 1024)
            let count = blocks * type.blockSize
            // One spare leading byte so the blocks can also be read from an odd address.
            var bytes = [UInt8](repeating: 0, count: type.rowBytes(count)! + 1)
            for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }

            for misalign in 0...1 {
                let data = Data(bytes[misalign..<(misalign + type.rowBytes(count)!)])
                let fast = decode(type, data, count: count, reference: false)
                let reference = decode(type, data, count: count, reference: true)
                var mismatches = 0
                for i in 0..<count where !sameValue(fast[i], reference[i]) { mismatches += 1 }
                XCTAssertEqual(mismatches, 0, "\(type.name): fast vs reference, misalignment \(misalign)")
            }
        }
    }

    func testF16FastPathCoversEveryPatternAndTail() {
        // All 65536 patterns plus a 5-element tail that takes the scalar path.
        let patterns = (0..<65536 + 5).map { UInt16(truncatingIfNeeded: $0 &* 40503) }
        let data = patterns.withUnsafeBytes { Data($0) }
        let out = decode(.f16, data, count: patterns.count, reference: false)
        for (i, bits) in patterns.enumerated() {
            XCTAssertEqual(out[i].bitPattern, halfToFloat(bits).bitPattern, "pattern 0x\(String(bits, radix: 16))")
        }
    }

    func testZeroCountIsANoOp() {
        var sentinel: Float = 42
        for type in GGMLType.allCases where type.canDequantize {
            [UInt8](repeating: 0xFF, count: 4).withUnsafeBytes {
                type.dequantize($0.baseAddress!, count: 0, into: &sentinel)
            }
        }
        XCTAssertEqual(sentinel, 42)
    }

    // MARK: Half / bfloat16 conversions

    func testHalfToFloatExhaustive() {
        for bits in 0...UInt16.max {
            let got = halfToFloat(bits)
            let sign = bits & 0x8000 != 0
            let exponent = Int((bits >> 10) & 0x1F), mantissa = Int(bits & 0x3FF)
            if exponent == 31 && mantissa != 0 {
                // NaN: sign, quiet bit and payload all carried over; low 13 bits zero.
                XCTAssertTrue(got.isNaN)
                XCTAssertEqual(got.sign == .minus, sign)
                XCTAssertEqual(got.bitPattern & 0x7FFF_FFFF, 0x7F80_0000 | UInt32(mantissa) << 13)
                continue
            }
            let want = arithmeticValue(
                negative: sign, exponent: exponent, mantissa: mantissa,
                mantissaBits: 10, bias: 15, maxExponent: 31)
            XCTAssertEqual(got.bitPattern, want.bitPattern, "f16 0x\(String(bits, radix: 16))")
            // Cross-check with the standard library's binary16 (non-NaN only: hardware may quiet NaNs).
            XCTAssertEqual(got.bitPattern, Float(Float16(bitPattern: bits)).bitPattern)
        }
    }

    func testBF16ToFloatExhaustive() {
        for bits in 0...UInt16.max {
            let got = bf16ToFloat(bits)
            let sign = bits & 0x8000 != 0
            let exponent = Int((bits >> 7) & 0xFF), mantissa = Int(bits & 0x7F)
            if exponent == 255 && mantissa != 0 {
                XCTAssertTrue(got.isNaN)
                XCTAssertEqual(got.bitPattern, UInt32(bits) << 16, "NaN payload kept")
                continue
            }
            let want = arithmeticValue(
                negative: sign, exponent: exponent, mantissa: mantissa,
                mantissaBits: 7, bias: 127, maxExponent: 255)
            XCTAssertEqual(got.bitPattern, want.bitPattern, "bf16 0x\(String(bits, radix: 16))")
        }
    }

    func testFloatToHalfRoundTripsEveryHalf() {
        for bits in 0...UInt16.max where bits & 0x7C00 != 0x7C00 || bits & 0x03FF == 0 {
            XCTAssertEqual(floatToHalf(halfToFloat(bits)), bits, "round trip 0x\(String(bits, radix: 16))")
        }
    }

    func testFloatToHalfRoundsToNearestEven() {
        // Between each pair of adjacent finite halves (and between 65504 and the overflow
        // point 65536): the exact midpoint goes to the even pattern, its neighbours to the nearer side.
        for low in UInt16(0)...0x7BFF {
            let a = halfToFloat(low)
            let b = low == 0x7BFF ? Float(65536) : halfToFloat(low + 1)
            let mid = (a + b) / 2
            XCTAssertEqual((a + b) / 2 - a, b - (a + b) / 2, "midpoint exact")
            let even = low & 1 == 0 ? low : low + 1 // 0x7C00 (Inf) is the even side of 65520
            for sign in [UInt16(0), 0x8000] {
                let s: Float = sign == 0 ? 1 : -1
                XCTAssertEqual(floatToHalf(s * mid), sign | even, "tie at \(s * mid)")
                XCTAssertEqual(floatToHalf(s * mid.nextDown), sign | low, "below tie at \(s * mid)")
                XCTAssertEqual(floatToHalf(s * mid.nextUp), sign | (low + 1), "above tie at \(s * mid)")
            }
        }
        XCTAssertEqual(floatToHalf(1e-8), 0) // below half the smallest subnormal
        XCTAssertEqual(floatToHalf(-1e-8), 0x8000)
        XCTAssertEqual(floatToHalf(1e6), 0x7C00)
        XCTAssertEqual(floatToHalf(-.infinity), 0xFC00)
        XCTAssertEqual(floatToHalf(.greatestFiniteMagnitude), 0x7C00)
    }

    func testFloatToHalfNaNsAndAgreementWithStandardLibrary() {
        XCTAssertEqual(floatToHalf(Float(bitPattern: 0x7FC0_0000)), 0x7E00)
        XCTAssertEqual(floatToHalf(Float(bitPattern: 0x7F80_0001)), 0x7E00) // signalling -> quiet, payload lost
        XCTAssertEqual(floatToHalf(Float(bitPattern: 0xFF81_2345)), 0xFE09) // sign and top payload bits kept
        var rng = DequantRNG(seed: 16)
        for _ in 0..<300_000 {
            let x = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            let mine = floatToHalf(x)
            if x.isNaN {
                XCTAssertTrue(halfToFloat(mine).isNaN)
                XCTAssertEqual(mine & 0x8000 != 0, x.sign == .minus)
            } else {
                XCTAssertEqual(mine, Float16(x).bitPattern, "\(x)")
            }
        }
    }

    // MARK: Helpers

    private func decode(_ type: GGMLType, _ raw: Data, count: Int, reference: Bool) -> [Float] {
        var out = [Float](repeating: .nan, count: count)
        raw.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { dst in
                guard let base = src.baseAddress, let y = dst.baseAddress else { return }
                if reference {
                    type.dequantizeReference(base, count: count, into: y)
                } else {
                    type.dequantize(base, count: count, into: y)
                }
            }
        }
        return out
    }

    /// Little-endian Float32 values.
    private func floats(_ data: Data) -> [Float] {
        data.withUnsafeBytes { buffer in
            (0..<buffer.count / 4).map {
                Float(bitPattern: UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
            }
        }
    }

    private struct Comparison {
        var mismatches = 0
        var firstMismatch: Int?
        var maxAbsDiff: Float = 0
    }

    /// Bitwise comparison (NaNs must match bit for bit too); max |diff| over finite pairs.
    private func compare(_ got: [Float], _ want: [Float]) -> Comparison {
        var result = Comparison()
        for i in want.indices {
            if got[i].bitPattern != want[i].bitPattern {
                result.mismatches += 1
                if result.firstMismatch == nil { result.firstMismatch = i }
            }
            if got[i].isFinite && want[i].isFinite {
                result.maxAbsDiff = max(result.maxAbsDiff, abs(got[i] - want[i]))
            } else if got[i].bitPattern != want[i].bitPattern {
                result.maxAbsDiff = .infinity
            }
        }
        return result
    }

    private func sectionName(_ entry: Manifest.Entry, _ element: Int?) -> String {
        guard let element else { return "-" }
        var block = element / entry.block_size
        for section in entry.sections {
            if block < section.blocks { return section.name }
            block -= section.blocks
        }
        return "?"
    }

    /// Equal bits, or both NaN (NaN payload propagation through arithmetic is not specified).
    private func sameValue(_ a: Float, _ b: Float) -> Bool {
        a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN)
    }

    /// The value of a non-NaN binary float from its fields, by plain arithmetic (no bit tricks).
    private func arithmeticValue(
        negative: Bool, exponent: Int, mantissa: Int,
        mantissaBits: Int, bias: Int, maxExponent: Int
    ) -> Float {
        let magnitude: Float
        if exponent == maxExponent {
            magnitude = .infinity
        } else if exponent == 0 {
            magnitude = Float(mantissa) * Float(sign: .plus, exponent: 1 - bias - mantissaBits, significand: 1)
        } else {
            magnitude =
                Float((1 << mantissaBits) + mantissa)
                * Float(sign: .plus, exponent: exponent - bias - mantissaBits, significand: 1)
        }
        return negative ? -magnitude : magnitude
    }
}

/// Small seeded generator (DequantRNG) so random tests are reproducible.
struct DequantRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
