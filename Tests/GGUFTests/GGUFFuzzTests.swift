import Foundation
import GGUF
import XCTest

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny seeded generator, the same on every platform.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// Seeded mutation fuzzing of the reader: every mutant of a valid file either loads
/// and is self-consistent (tensor bytes inside the file, aligned, disjoint, dequantizable
/// without a crash) or throws a `GGUFError`. A crash or any other error fails the test.
///
/// `HEADLIGHT_FUZZ_ITERATIONS` and `HEADLIGHT_FUZZ_SEED` change the run (the defaults keep it
/// to a few seconds); a failure prints the seed and iteration, which reproduce it.
final class GGUFFuzzTests: XCTestCase {
    var tmp: TempDir!
    override func setUpWithError() throws { tmp = try TempDir() }
    override func tearDown() { tmp = nil }

    static var iterations: Int {
        ProcessInfo.processInfo.environment["HEADLIGHT_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 20_000
    }
    static var seed: UInt64 {
        ProcessInfo.processInfo.environment["HEADLIGHT_FUZZ_SEED"].flatMap { UInt64($0) } ?? 0x4845_4144_4C49_4748
    }

    func testSplitMix64IsTheReferenceSequence() {
        // First outputs for seed 1234567, from the reference C implementation (Vigna).
        var g = SplitMix64(seed: 1_234_567)
        XCTAssertEqual(g.next(), 6_457_827_717_110_365_317)
        XCTAssertEqual(g.next(), 3_203_168_211_198_807_973)
        XCTAssertEqual(g.next(), 9_817_491_932_198_370_423)
    }

    func testMutationsOfBaseFixture() throws {
        let enc = Fixture.base().encodedWithLayout()
        let stats = try fuzz(enc, iterations: Self.iterations, seed: Self.seed)
        print("GGUF fuzz (base fixture, seed \(Self.seed), \(Self.iterations) mutants): \(stats)")
        // The fuzzer must reach both outcomes and many different checks, or it is not testing much.
        XCTAssertGreaterThan(stats.loaded, Self.iterations / 50, "\(stats)")
        XCTAssertGreaterThan(stats.rejected, Self.iterations / 2, "\(stats)")
        XCTAssertGreaterThanOrEqual(stats.kinds.count, Self.iterations >= 5000 ? 15 : 5, "\(stats.kinds)")
    }

    func testMutationsOfGGUFPyFile() throws {
        let bytes = try [UInt8](Data(contentsOf: Fixture.dir.appendingPathComponent("gguf_py_small.bin")))
        let f = try GGUFFile(url: tmp.write(bytes))
        // Header field positions are not known here; mutate around the header region instead.
        let layout = GGUFWriter.Encoded(
            bytes: bytes, headerFields: Array(stride(from: 8, to: f.dataOffset - 8, by: 4)),
            metadataEntryOffsets: [], tensorInfoOffsets: [], tensorOffsetFields: [],
            tensorDataStarts: f.tensors.map { f.dataOffset + $0.offset },
            headerEnd: f.dataOffset, dataOffset: f.dataOffset)
        let stats = try fuzz(layout, iterations: max(Self.iterations / 5, 100), seed: Self.seed ^ 0xABCD)
        XCTAssertGreaterThan(stats.rejected, 0, "\(stats)")
    }

    struct Stats: CustomStringConvertible {
        var loaded = 0, rejected = 0
        var kinds: [String: Int] = [:]
        var description: String { "loaded \(loaded), rejected \(rejected), kinds \(kinds.sorted { $0.key < $1.key })" }
    }

    func fuzz(_ enc: GGUFWriter.Encoded, iterations: Int, seed: UInt64) throws -> Stats {
        var rng = SplitMix64(seed: seed)
        var stats = Stats()
        let url = tmp.url.appendingPathComponent("mutant.gguf")
        for i in 0..<iterations {
            var bytes = enc.bytes
            let rounds = 1 + (rng.below(4) == 0 ? rng.below(3) : 0)
            for _ in 0..<rounds { mutate(&bytes, enc, &rng) }
            try Data(bytes).write(to: url)
            do {
                let f = try GGUFFile(url: url)
                stats.loaded += 1
                check(f, bytes, context: "seed \(seed) iteration \(i)")
            } catch let e as GGUFError {
                stats.rejected += 1
                XCTAssertEqual(e.path, url.path)
                let label = "\(e.kind)".prefix { $0 != "(" }
                stats.kinds[String(label), default: 0] += 1
            } catch {
                XCTFail("seed \(seed) iteration \(i): not a GGUFError: \(error)")
            }
        }
        return stats
    }

    /// One random edit: bit flips, an interesting integer written over a header field, bytes
    /// inserted or deleted, a truncation, or a run of bytes overwritten.
    func mutate(_ b: inout [UInt8], _ enc: GGUFWriter.Encoded, _ rng: inout SplitMix64) {
        guard !b.isEmpty else {
            b = [0x47]
            return
        }
        // Most interesting structure is in the header; aim there three times in four.
        func position() -> Int {
            rng.below(4) == 0 || enc.headerEnd == 0 ? rng.below(b.count) : rng.below(min(enc.headerEnd, b.count))
        }
        func interesting() -> UInt64 {
            let size = UInt64(b.count)
            let pool: [UInt64] = [
                0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 31, 32, 33, 63, 64, 255, 256, 0xFFFF,
                0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 1 << 32, 1 << 62, 1 << 63, .max, .max - 1,
                UInt64(bitPattern: -1), UInt64(bitPattern: -32), size, size - 1, size + 1,
                size / 2, rng.next(), rng.next() & 0xFFFF
            ]
            return pool[rng.below(pool.count)]
        }
        var choice = rng.below(8)
        if (choice == 2 || choice == 3) && enc.headerFields.isEmpty { choice = 0 }
        switch choice {
        case 0, 1: // flip 1-4 bits
            for _ in 0..<(1 + rng.below(4)) { b[position()] ^= UInt8(1) << UInt8(rng.below(8)) }
        case 2, 3: // an interesting u64 or u32 over a header field (or near one)
            var at = enc.headerFields[rng.below(enc.headerFields.count)]
            if rng.below(8) == 0 { at += rng.below(9) - 4 }
            let v = interesting()
            let width = rng.below(2) == 0 ? 8 : 4
            for k in 0..<width where at + k >= 0 && at + k < b.count {
                b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k)))
            }
        case 4: // insert 1-16 bytes
            let at = position()
            b.insert(contentsOf: (0..<(1 + rng.below(16))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
        case 5: // delete 1-16 bytes
            let at = position()
            b.removeSubrange(at..<min(b.count, at + 1 + rng.below(16)))
        case 6: // truncate
            b.removeSubrange(rng.below(b.count)..<b.count)
        default: // overwrite a run with 0x00, 0xFF or random bytes
            let at = position(), n = min(b.count - at, 1 + rng.below(8))
            let fill = rng.below(3)
            for k in 0..<n { b[at + k] = fill == 0 ? 0 : fill == 1 ? 0xFF : UInt8(truncatingIfNeeded: rng.next()) }
        }
    }

    /// A file that loaded must be self-consistent.
    func check(_ f: GGUFFile, _ bytes: [UInt8], context: String) {
        XCTAssertEqual(f.fileSize, bytes.count, context)
        XCTAssertTrue(f.version == 2 || f.version == 3, context)
        XCTAssertTrue(f.alignment > 0 && f.alignment & (f.alignment - 1) == 0, context)
        XCTAssertEqual(f.metadataKeys.count, f.metadata.count, context)
        XCTAssertEqual(Set(f.tensors.map(\.name)).count, f.tensors.count, context)
        if !f.tensors.isEmpty {
            XCTAssertEqual(f.dataOffset % f.alignment, 0, context)
            XCTAssertLessThanOrEqual(f.dataOffset, f.fileSize, context)
        }
        var ranges: [Range<Int>] = []
        for t in f.tensors {
            XCTAssertFalse(t.name.isEmpty, context)
            XCTAssertLessThan(t.name.utf8.count, 64, context)
            XCTAssertLessThanOrEqual(t.dims.count, 4, context)
            XCTAssertTrue(t.dims.allSatisfy { $0 >= 0 }, context)
            XCTAssertEqual(t.elementCount, t.dims.contains(0) ? 0 : t.dims.reduce(1, *), context)
            XCTAssertEqual(t.rowLength % t.type.blockSize, 0, context)
            XCTAssertEqual(t.byteCount, t.elementCount / t.type.blockSize * t.type.bytesPerBlock, context)
            XCTAssertEqual(t.offset % f.alignment, 0, context)
            let start = f.dataOffset + t.offset
            XCTAssertTrue(t.offset >= 0 && start + t.byteCount <= f.fileSize, "\(context): \(t.name) outside the file")
            guard start + t.byteCount <= f.fileSize else { continue }
            let data = f.data(of: t)
            XCTAssertEqual(data.count, t.byteCount, context)
            if t.byteCount > 0 {
                XCTAssertEqual(Array(data), Array(bytes[start..<start + t.byteCount]), context)
                ranges.append(start..<start + t.byteCount)
            }
            XCTAssertTrue(f.tensor(named: t.name) == t, context)
            if t.type.canDequantize {
                do {
                    let v = try f.dequantize(t.name)
                    XCTAssertEqual(v.count, t.elementCount, context)
                } catch {
                    XCTFail("\(context): dequantize \(t.name): \(error)")
                }
            } else {
                XCTAssertThrowsError(try f.dequantize(t.name), context)
            }
        }
        ranges.sort { $0.lowerBound < $1.lowerBound }
        for (a, b) in zip(ranges, ranges.dropFirst()) { XCTAssertLessThanOrEqual(a.upperBound, b.lowerBound, context) }
        // Typed accessors never trap on whatever the mutant holds.
        for k in f.metadataKeys {
            _ = try? f.string(k)
            _ = try? f.int(k)
            _ = try? f.double(k)
            _ = try? f.bool(k)
            _ = try? f.stringArray(k)
            _ = try? f.doubleArray(k)
            _ = try? f.intArray(k)
            _ = f.metadata[k]!.summary
        }
    }
}
