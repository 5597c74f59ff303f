import Foundation
import GGUF
import XCTest

// Reading valid files: the corpus base file built with GGUFWriter, a file written by
// gguf-py (llama.cpp's Python writer), layouts gguf.cpp accepts, and the typed accessors.
// Shared helpers for all GGUF tests are at the bottom of this file.

final class GGUFReaderTests: XCTestCase {
    var tmp: TempDir!
    override func setUpWithError() throws { tmp = try TempDir() }
    override func tearDown() { tmp = nil }

    func testBaseFixtureMetadata() throws {
        let f = try GGUFFile(url: tmp.write(Fixture.base().encoded()))
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f.alignment, 32)
        XCTAssertEqual(f.metadataKeys, Fixture.base().metadata.map { $0.0 })
        for (k, v) in Fixture.base().metadata { XCTAssertEqual(f.metadata[k], v, k) }
        XCTAssertEqual(try f.architecture(), "llama")
        XCTAssertEqual(try f.string("general.name"), "corpus ✓")
        XCTAssertEqual(try f.int("llama.block_count"), 2)
        XCTAssertEqual(try f.int("llama.context_length"), 4096)
        XCTAssertEqual(try f.int("test.i8"), -128)
        XCTAssertEqual(try f.int("test.i64"), Int(Int64.min))
        XCTAssertEqual(try f.double("test.f32"), 0.5)
        XCTAssertEqual(try f.double("test.f64"), -1e300)
        XCTAssertEqual(try f.double("llama.block_count"), 2)
        XCTAssertEqual(try f.bool("test.bool"), true)
        XCTAssertEqual(try f.stringArray("tokenizer.ggml.tokens"), ["<s>", "</s>", "a", "é", ""])
        XCTAssertEqual(try f.doubleArray("tokenizer.ggml.scores"), [0, -1, -2.5, -3, 0])
        XCTAssertEqual(try f.intArray("tokenizer.ggml.token_type"), [3, 3, 1, 1, 1])
        XCTAssertEqual(try f.intArray("test.empty"), [])
        // u64 values beyond Int.max: no crash, a clear error from int/intArray, exact-ish doubles.
        XCTAssertEqual(try f.doubleArray("test.u64s"), [0, Double(UInt64.max)])
        XCTAssertThrowsError(try f.intArray("test.u64s"))
        XCTAssertEqual(f.metadata["test.u64s"], .array(.uint64, [.uint64(0), .uint64(.max)]))
    }

    func testTypedAccessorErrors() throws {
        let url = try tmp.write(Fixture.base().encoded())
        let f = try GGUFFile(url: url)
        func kind(_ body: () throws -> Any) -> GGUFError.Kind? {
            do {
                _ = try body()
                return nil
            } catch let e as GGUFError {
                XCTAssertEqual(e.path, url.path)
                return e.kind
            } catch { return nil }
        }
        XCTAssertEqual(kind { try f.string("nope") }, .missingKey("nope"))
        XCTAssertEqual(
            kind { try f.string("llama.block_count") },
            .wrongValueType(key: "llama.block_count", expected: "string", found: "u32"))
        XCTAssertEqual(
            kind { try f.int("general.name") },
            .wrongValueType(key: "general.name", expected: "integer", found: "string"))
        XCTAssertEqual(kind { try f.bool("test.u8") }, .wrongValueType(key: "test.u8", expected: "bool", found: "u8"))
        XCTAssertEqual(
            kind { try f.stringArray("tokenizer.ggml.scores") },
            .wrongValueType(key: "tokenizer.ggml.scores", expected: "array[string]", found: "array[f32]"))
        XCTAssertEqual(
            kind { try f.intArray("tokenizer.ggml.scores") },
            .wrongValueType(key: "tokenizer.ggml.scores", expected: "integer array", found: "array[f32]"))
        XCTAssertEqual(
            kind { try f.doubleArray("tokenizer.ggml.tokens") },
            .wrongValueType(key: "tokenizer.ggml.tokens", expected: "numeric array", found: "array[string]"))
        XCTAssertEqual(kind { try f.requireTensor("missing.weight") }, .tensorNotFound("missing.weight"))
        XCTAssertEqual(kind { try f.dequantize("missing.weight") }, .tensorNotFound("missing.weight"))
        XCTAssertNil(f.tensor(named: "missing.weight"))
    }

    func testBaseFixtureTensorsAndData() throws {
        let enc = Fixture.base().encodedWithLayout()
        let f = try GGUFFile(url: tmp.write(enc.bytes))
        XCTAssertEqual(f.fileSize, enc.bytes.count)
        XCTAssertEqual(f.dataOffset, enc.dataOffset)
        XCTAssertEqual(f.tensors.map(\.name), Fixture.tensorNames)
        XCTAssertEqual(f.tensors.map(\.type), [.q8_0, .q4_0, .q4_1, .f16, .f32])
        let q8 = try f.requireTensor("tok.q8_0")
        XCTAssertEqual(q8.dims, [64, 2])
        XCTAssertEqual(q8.shape, [2, 64])
        XCTAssertEqual(q8.elementCount, 128)
        XCTAssertEqual(q8.byteCount, 4 * 34)
        XCTAssertEqual(q8.rowLength, 64)
        XCTAssertEqual(q8.rowCount, 2)
        for (t, start) in zip(f.tensors, enc.tensorDataStarts) {
            XCTAssertEqual(f.dataOffset + t.offset, start, t.name)
            XCTAssertEqual(t.offset % f.alignment, 0)
            let raw = f.data(of: t)
            XCTAssertEqual(Array(raw), Array(enc.bytes[start..<start + t.byteCount]), t.name)
        }
        XCTAssertEqual(f.totalTensorBytes, f.tensors.reduce(0) { $0 + $1.byteCount })
        XCTAssertEqual(f.totalElements, 128 + 96 + 32 + 16 + 8)
        for name in Fixture.tensorNames {
            XCTAssertEqual(try f.dequantize(name), Fixture.expectedValues[name]!, name)
        }
    }

    /// Layouts gguf.cpp's reader or llama.cpp's mmap loader accept must load too.
    func testAcceptedLayouts() throws {
        // GGUF v2.
        var w = Fixture.base()
        w.version = 2
        XCTAssertEqual(try GGUFFile(url: tmp.write(w.encoded())).version, 2)

        // No tensors and no metadata: a 24-byte file (the writer pads it to 32; padding is optional here).
        let empty = Array(GGUFWriter().encoded().prefix(24))
        let e = try GGUFFile(url: tmp.write(empty))
        XCTAssertTrue(e.tensors.isEmpty && e.metadata.isEmpty)

        // Missing padding after the last tensor (llama.cpp's mmap loader checks only the tensor bytes).
        var pad = GGUFWriter()
        pad.addTensor("odd", dims: [3], values: [1, 2, 3])
        let padded = pad.encoded()
        let trimmed = Array(padded.prefix(padded.count - 32 + 12))
        XCTAssertEqual(try GGUFFile(url: tmp.write(trimmed)).dequantize("odd"), [1, 2, 3])

        // Zero-element tensors (any dim 0), stored nowhere; huge other dims do not overflow.
        var z = GGUFWriter()
        z.addRawTensor(name: Array("zero".utf8), dims: [0, 1 << 62, 1 << 62], typeID: GGMLType.f32.rawValue, bytes: [])
        z.addTensor("one", dims: [1], values: [7])
        let zf = try GGUFFile(url: tmp.write(z.encoded()))
        XCTAssertEqual(zf.tensor(named: "zero")?.elementCount, 0)
        XCTAssertEqual(try zf.dequantize("zero"), [])
        XCTAssertEqual(try zf.dequantize("one"), [7])

        // A 0-dim tensor is a scalar of one element.
        var s = GGUFWriter()
        s.addTensor("scalar", dims: [], values: [42])
        XCTAssertEqual(try GGUFFile(url: tmp.write(s.encoded())).dequantize("scalar"), [42])

        // Data stored in a different order from the header, and a larger alignment.
        var o = GGUFWriter()
        o.set("general.alignment", .uint32(64))
        o.addRawTensor(name: Array("b".utf8), dims: [2], typeID: 0, offset: 64, bytes: floats([1, 2]))
        o.addRawTensor(name: Array("a".utf8), dims: [2], typeID: 0, offset: 0, bytes: floats([3, 4]))
        let of = try GGUFFile(url: tmp.write(o.encoded()))
        XCTAssertEqual(of.alignment, 64)
        XCTAssertEqual(of.dataOffset % 64, 0)
        XCTAssertEqual(try of.dequantize("a"), [1, 2])
        XCTAssertEqual(try of.dequantize("b"), [3, 4])

        // Longest allowed tensor name: 63 bytes.
        var n = GGUFWriter()
        n.addTensor(String(repeating: "n", count: 63), dims: [1], values: [1])
        XCTAssertNotNil(try GGUFFile(url: tmp.write(n.encoded())).tensor(named: String(repeating: "n", count: 63)))
    }

    /// A file written by gguf-py (see Tests/Fixtures/gguf/make_fixtures.py) reads back as gguf-py reads it.
    func testGGUFPyWrittenFile() throws {
        let url = Fixture.dir.appendingPathComponent("gguf_py_small.bin")
        let ref = try Fixture.json("gguf_py_small.json")
        let f = try GGUFFile(url: url)
        XCTAssertEqual(f.fileSize, ref["size"] as? Int)
        XCTAssertEqual(Int(f.version), ref["version"] as? Int)
        let meta = ref["metadata"] as! [String: Any]
        XCTAssertEqual(Set(f.metadataKeys), Set(meta.keys))
        for (key, entry) in meta {
            let types = (entry as! [String: Any])["types"] as! [String]
            let v = f.metadata[key]!
            let expectedType =
                types.count == 2 ? "array[\(Fixture.shortType[types[1]]!)]" : Fixture.shortType[types[0]]!
            XCTAssertEqual(v.typeName, expectedType, key)
        }
        XCTAssertEqual(f.metadata["test.u8"], .uint8(200))
        XCTAssertEqual(f.metadata["test.i8"], .int8(-100))
        XCTAssertEqual(f.metadata["test.u16"], .uint16(60000))
        XCTAssertEqual(f.metadata["test.i16"], .int16(-30000))
        XCTAssertEqual(f.metadata["test.u32"], .uint32(4_000_000_000))
        XCTAssertEqual(f.metadata["test.i32"], .int32(-2_000_000_000))
        XCTAssertEqual(f.metadata["test.u64"], .uint64(18_000_000_000_000_000_000))
        XCTAssertEqual(f.metadata["test.i64"], .int64(-9_000_000_000_000_000_000))
        XCTAssertEqual(f.metadata["test.f32"], .float32(0.15625))
        XCTAssertEqual(f.metadata["test.f64"], .float64(-2.5e-300))
        XCTAssertEqual(f.metadata["test.bool"], .bool(true))
        XCTAssertEqual(try f.string("test.string"), "héllo, GGUF ✓")
        XCTAssertEqual(try f.stringArray("test.strings"), ["a", "", "ü", "<|im_start|>"])
        XCTAssertEqual(try f.intArray("test.ints"), [1, -2, 3])
        XCTAssertEqual(try f.doubleArray("test.floats"), [0.5, -1.25])
        XCTAssertEqual(f.metadata["test.bools"], .array(.bool, [.bool(true), .bool(false), .bool(true)]))
        XCTAssertEqual(try f.architecture(), "tinyllama")

        let tensors = ref["tensors"] as! [[String: Any]]
        XCTAssertEqual(f.tensors.map(\.name), tensors.map { $0["name"] as! String })
        for t in tensors {
            let name = t["name"] as! String
            let info = try f.requireTensor(name)
            XCTAssertEqual(info.type.name, t["type"] as? String, name)
            XCTAssertEqual(info.dims, t["dims"] as? [Int], name)
            XCTAssertEqual(f.dataOffset + info.offset, t["absolute_offset"] as? Int, name)
            XCTAssertEqual(info.byteCount, t["bytes"] as? Int, name)
            let expected = (t["values"] as! [NSNumber]).map { $0.floatValue }
            XCTAssertEqual(try f.dequantize(name), expected, name)
        }
    }

    /// gguf-py with endianess=BIG writes the magic as bytes but the version big-endian.
    func testBigEndianFileIsReportedAsByteSwapped() throws {
        let url = Fixture.dir.appendingPathComponent("gguf_py_bigendian.bin")
        XCTAssertThrowsError(try GGUFFile(url: url)) { error in
            let e = error as! GGUFError
            XCTAssertEqual(e.kind, .byteSwappedVersion(0x0300_0000))
            XCTAssertTrue(e.description.contains("gguf_py_bigendian.bin"))
            XCTAssertTrue(e.description.contains("big-endian"), e.description)
        }
    }

    func testWriterRoundTripsEveryValueType() throws {
        var w = GGUFWriter()
        let values: [(String, GGUFValue)] = [
            ("a.u8", .uint8(1)), ("a.i8", .int8(-1)), ("a.u16", .uint16(65535)), ("a.i16", .int16(-32768)),
            ("a.u32", .uint32(.max)), ("a.i32", .int32(.min)), ("a.u64", .uint64(.max)), ("a.i64", .int64(.min)),
            ("a.f32", .float32(-0.0)), ("a.f64", .float64(.infinity)), ("a.bool", .bool(false)),
            ("a.str", .string("")), ("a.arr.str", .array(.string, [])),
            ("a.arr.f64", .array(.float64, [.float64(1.5)])), ("a.arr.i16", .array(.int16, [.int16(-2), .int16(3)]))
        ]
        for (k, v) in values { w.set(k, v) }
        w.set("a.u8", .uint8(9)) // set replaces
        let f = try GGUFFile(url: tmp.write(w.encoded()))
        XCTAssertEqual(f.metadataKeys, values.map { $0.0 })
        XCTAssertEqual(f.metadata["a.u8"], .uint8(9))
        for (k, v) in values.dropFirst() { XCTAssertEqual(f.metadata[k], v, k) }
    }
}

// MARK: - Shared test helpers

/// A temporary directory removed when the test ends.
final class TempDir {
    let url: URL
    private var counter = 0

    /// In /dev/shm when there is one: the corpus and fuzz tests write thousands of small files,
    /// and rewriting a file on a disk file system (ext4 with discard) costs milliseconds each.
    init() throws {
        let shm = URL(fileURLWithPath: "/dev/shm")
        let root = access(shm.path, W_OK) == 0 ? shm : FileManager.default.temporaryDirectory
        url = root.appendingPathComponent("headlight-gguf-tests-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Writes `bytes` to a fresh file (or to `name`, overwriting it) and returns its URL.
    func write(_ bytes: [UInt8], name: String? = nil) throws -> URL {
        counter += 1
        let file = url.appendingPathComponent(name ?? "file\(counter).gguf")
        try Data(bytes).write(to: file)
        return file
    }
}

func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
func le64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
func floats(_ values: [Float]) -> [UInt8] { values.flatMap { le32($0.bitPattern) } }

extension Array where Element == UInt8 {
    mutating func put32(_ v: UInt32, at i: Int) { replaceSubrange(i..<i + 4, with: le32(v)) }
    mutating func put64(_ v: UInt64, at i: Int) { replaceSubrange(i..<i + 8, with: le64(v)) }
    /// Offset of the first occurrence of `needle`.
    func offset(of needle: [UInt8]) -> Int? {
        guard needle.count <= count else { return nil }
        for i in 0...(count - needle.count) where self[i..<i + needle.count].elementsEqual(needle) { return i }
        return nil
    }
    /// Offset of the length field of the GGUF string `s` (its first occurrence).
    func stringField(_ s: String) -> Int { offset(of: le64(UInt64(s.utf8.count)) + Array(s.utf8))! }
}

/// The valid small GGUF file the reader, corpus and fuzz tests start from, and the data it holds.
enum Fixture {
    static let tensorNames = ["tok.q8_0", "w.q4_0", "w.q4_1", "norm.f16", "norm.f32"]

    /// Several metadata types (every scalar type, arrays of strings and numbers), then
    /// Q8_0, Q4_0, Q4_1, F16 and F32 tensors. The last tensor is exactly 32 bytes, so the
    /// file ends without padding and every shorter prefix of it is invalid.
    static func base() -> GGUFWriter {
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("general.name", .string("corpus ✓"))
        w.set("llama.block_count", .uint32(2))
        w.set("llama.context_length", .uint64(4096))
        w.set("llama.embedding_length", .int32(64))
        w.set("llama.attention.layer_norm_rms_epsilon", .float32(1e-5))
        w.set("test.u8", .uint8(255))
        w.set("test.i8", .int8(-128))
        w.set("test.u16", .uint16(65535))
        w.set("test.i16", .int16(-2))
        w.set("test.i64", .int64(.min))
        w.set("test.f32", .float32(0.5))
        w.set("test.f64", .float64(-1e300))
        w.set("test.bool", .bool(true))
        w.set("tokenizer.ggml.tokens", .array(.string, ["<s>", "</s>", "a", "é", ""].map { .string($0) }))
        w.set("tokenizer.ggml.scores", .array(.float32, [0, -1, -2.5, -3, 0].map { .float32($0) }))
        w.set("tokenizer.ggml.token_type", .array(.int32, [3, 3, 1, 1, 1].map { .int32($0) }))
        w.set("test.u64s", .array(.uint64, [.uint64(0), .uint64(.max)]))
        w.set("test.bools", .array(.bool, [.bool(true), .bool(false)]))
        w.set("test.empty", .array(.uint8, []))
        w.addTensor("tok.q8_0", dims: [64, 2], type: .q8_0, bytes: q8Bytes)
        w.addTensor("w.q4_0", dims: [32, 3], type: .q4_0, bytes: q4_0Bytes)
        w.addTensor("w.q4_1", dims: [32, 1], type: .q4_1, bytes: q4_1Bytes)
        w.addTensor("norm.f16", dims: [16], type: .f16, bytes: f16Bytes)
        w.addTensor("norm.f32", dims: [8], values: f32Values)
        return w
    }

    // Block contents with exactly representable scales, so expected values are exact.
    static let q8Scales: [Float] = [0.5, -0.25, 2, 0.125]
    static let q8Bytes: [UInt8] = (0..<4).flatMap { b -> [UInt8] in
        le16(floatBits16(q8Scales[b])) + (0..<32).map { UInt8(bitPattern: Int8($0 - 16 + b)) }
    }
    static let q4_0Scales: [Float] = [1, 0.5, -2]
    static let q4_0Bytes: [UInt8] = (0..<3).flatMap { b -> [UInt8] in
        le16(floatBits16(q4_0Scales[b])) + (0..<16).map { j in UInt8((j + b) % 16) | UInt8((15 - j) << 4) }
    }
    static let q4_1Bytes: [UInt8] =
        le16(floatBits16(0.25)) + le16(floatBits16(-1))
        + (0..<16).map { j in UInt8(j) | UInt8(((j * 7) % 16) << 4) }
    static let f16Values: [Float] = (0..<16).map { Float($0) * 0.5 - 4 }
    static let f16Bytes: [UInt8] = f16Values.flatMap { le16(floatBits16($0)) }
    static let f32Values: [Float] = [1, -2, 3.5, 0, .greatestFiniteMagnitude, -0.0, 1e-30, 6]

    /// What each tensor dequantizes to, computed from the block layouts in ggml-common.h.
    static let expectedValues: [String: [Float]] = [
        "tok.q8_0": (0..<4).flatMap { b in (0..<32).map { Float($0 - 16 + b) * q8Scales[b] } },
        "w.q4_0": (0..<3).flatMap { b -> [Float] in
            let lo = (0..<16).map { j in Float((j + b) % 16 - 8) * q4_0Scales[b] }
            let hi = (0..<16).map { j in Float(15 - j - 8) * q4_0Scales[b] }
            return lo + hi
        },
        "w.q4_1": (0..<16).map { Float($0) * 0.25 - 1 } + (0..<16).map { Float(($0 * 7) % 16) * 0.25 - 1 },
        "norm.f16": f16Values,
        "norm.f32": f32Values
    ]

    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
    static func floatBits16(_ f: Float) -> UInt16 { floatToHalf(f) }

    /// Tests/Fixtures/gguf, found from this source file.
    static var dir: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/gguf")
    }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: dir.appendingPathComponent(name))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// gguf-py's GGUFValueType names -> Headlight's short type names.
    static let shortType = [
        "UINT8": "u8", "INT8": "i8", "UINT16": "u16", "INT16": "i16", "UINT32": "u32",
        "INT32": "i32", "FLOAT32": "f32", "BOOL": "bool", "STRING": "string",
        "UINT64": "u64", "INT64": "i64", "FLOAT64": "f64"
    ]
}
