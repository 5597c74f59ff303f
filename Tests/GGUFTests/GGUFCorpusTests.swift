import Foundation
import GGUF
#if canImport(Glibc)
    import Glibc
#endif
import XCTest

/// The broken-file corpus: every way a GGUF file can be malformed that llama.cpp's
/// gguf.cpp checks (and a few more), each built from the valid base fixture, each
/// asserting the exact `GGUFError.Kind` and that the message names the file and the
/// key or tensor.
final class GGUFCorpusTests: XCTestCase {
    var tmp: TempDir!
    override func setUpWithError() throws { tmp = try TempDir() }
    override func tearDown() { tmp = nil }

    /// Loads `bytes` and returns the error's kind (failing the test if it loads or throws something else).
    @discardableResult
    func reject(
        _ bytes: [UInt8], _ expected: GGUFError.Kind? = nil, naming names: [String] = [],
        file: StaticString = #filePath, line: UInt = #line
    ) -> GGUFError.Kind? {
        let url: URL
        do { url = try tmp.write(bytes) } catch {
            XCTFail("\(error)", file: file, line: line)
            return nil
        }
        do {
            _ = try GGUFFile(url: url)
            XCTFail("file loaded, expected \(expected.map { "\($0)" } ?? "an error")", file: file, line: line)
            return nil
        } catch let e as GGUFError {
            if let expected { XCTAssertEqual(e.kind, expected, file: file, line: line) }
            XCTAssertEqual(e.path, url.path, file: file, line: line)
            XCTAssertTrue(e.description.hasPrefix(url.path + ": "), e.description, file: file, line: line)
            XCTAssertEqual(e.errorDescription, e.description, file: file, line: line)
            for n in names {
                XCTAssertTrue(
                    e.description.contains(n), "'\(e.description)' does not name '\(n)'", file: file, line: line)
            }
            return e.kind
        } catch {
            XCTFail("unexpected error type: \(error)", file: file, line: line)
            return nil
        }
    }

    func withBase(_ edit: (inout GGUFWriter) -> Void) -> [UInt8] {
        var w = Fixture.base()
        edit(&w)
        return w.encoded()
    }

    // MARK: - Truncation

    /// Every proper prefix of the base file is rejected with the right kind of error.
    func testTruncationAtEveryOffset() throws {
        let enc = Fixture.base().encodedWithLayout()
        let full = enc.bytes
        XCTAssertNoThrow(try GGUFFile(url: tmp.write(full)))
        let path = tmp.url.appendingPathComponent("truncated.gguf")
        var histogram: [String: Int] = [:]
        for n in 0..<full.count {
            try Data(full[0..<n]).write(to: path)
            do {
                _ = try GGUFFile(url: path)
                XCTFail("prefix of \(n) bytes loaded")
            } catch let e as GGUFError {
                XCTAssertEqual(e.path, path.path)
                switch e.kind {
                case .truncated(let what, let offset, let needed, let size):
                    histogram["truncated", default: 0] += 1
                    XCTAssertEqual(size, n)
                    XCTAssertTrue(offset <= n && offset + needed > n, "\(n): \(e)")
                    if n < 4 {
                        XCTAssertEqual(what, "magic")
                    } else if n < 8 {
                        XCTAssertEqual(what, "version")
                    } else if n < 16 {
                        XCTAssertEqual(what, "tensor count")
                    } else if n < 24 {
                        XCTAssertEqual(what, "metadata count")
                    }
                    if n >= enc.headerEnd { XCTAssertEqual(what, "padding before the data section", "\(n)") }
                    XCTAssertLessThan(n, enc.dataOffset, "\(n): \(e)")
                case .stringTooLong(_, let length, let limit, _):
                    histogram["stringTooLong", default: 0] += 1
                    XCTAssertGreaterThan(length, limit)
                    XCTAssertLessThan(n, enc.headerEnd)
                case .countTooLarge(_, let count, let limit, _):
                    histogram["countTooLarge", default: 0] += 1
                    XCTAssertGreaterThan(count, limit)
                    XCTAssertLessThan(n, enc.headerEnd)
                case .tensorDataOutOfBounds(let name, let start, let bytes, let dataSize):
                    histogram["tensorDataOutOfBounds", default: 0] += 1
                    XCTAssertGreaterThanOrEqual(n, enc.dataOffset, "\(n)")
                    XCTAssertEqual(dataSize, n - enc.dataOffset)
                    XCTAssertGreaterThan(Int(start + bytes), dataSize)
                    // The first tensor (in header order) whose bytes are cut is the one named.
                    let i = zip(enc.tensorDataStarts, Fixture.tensorNames).first { s, name in
                        s + Fixture.base().tensors.first { $0.name == name }!.bytes.count > n
                    }
                    XCTAssertEqual(name, i?.1, "\(n)")
                    XCTAssertTrue(e.description.contains(name))
                default:
                    XCTFail("prefix of \(n) bytes: unexpected \(e)")
                }
            }
        }
        // Every kind of truncation occurs: in a fixed field, a string, a count, the padding, the data.
        XCTAssertEqual(
            Set(histogram.keys), ["truncated", "stringTooLong", "countTooLarge", "tensorDataOutOfBounds"],
            "\(histogram)")
        XCTAssertEqual(histogram.values.reduce(0, +), full.count)
    }

    func testEmptyFileAndNonFiles() throws {
        reject([], .truncated(reading: "magic", offset: 0, needed: 4, fileSize: 0))
        reject(Array("GGU".utf8), .truncated(reading: "magic", offset: 0, needed: 4, fileSize: 3))

        let missing = tmp.url.appendingPathComponent("does-not-exist.gguf")
        XCTAssertThrowsError(try GGUFFile(url: missing)) { error in
            let e = error as! GGUFError
            guard case .cannotOpen = e.kind else { return XCTFail("\(e)") }
            XCTAssertTrue(e.description.contains("does-not-exist.gguf"))
        }
        XCTAssertThrowsError(try GGUFFile(url: tmp.url)) { error in
            XCTAssertEqual((error as! GGUFError).kind, .notARegularFile)
        }
        // A FIFO with no writer: must be rejected at once, not block in open().
        let fifo = tmp.url.appendingPathComponent("fifo.gguf")
        XCTAssertEqual(mkfifo(fifo.path, 0o600), 0)
        XCTAssertThrowsError(try GGUFFile(url: fifo)) { error in
            XCTAssertEqual((error as! GGUFError).kind, .notARegularFile)
        }
    }

    // MARK: - Header

    func testBadMagic() {
        var b = Fixture.base().encoded()
        b.replaceSubrange(0..<4, with: Array("GGML".utf8))
        reject(b, .badMagic(found: 0x4C4D_4747))
        b.replaceSubrange(0..<4, with: [0x46, 0x55, 0x47, 0x47]) // "FUGG": the magic written as a big-endian u32
        reject(b, .badMagic(found: 0x4747_5546))
    }

    func testVersions() {
        var b = Fixture.base().encoded()
        for v: UInt32 in [0, 1, 4, 0xFFFF] {
            b.put32(v, at: 4)
            reject(b, .unsupportedVersion(v), naming: ["version \(v)"])
        }
        for v: UInt32 in [0x0300_0000, 0x0200_0000, 0x0001_0000] {
            b.put32(v, at: 4)
            reject(b, .byteSwappedVersion(v), naming: ["byte-swapped"])
        }
    }

    func testAbsurdCounts() {
        let b = Fixture.base().encoded()
        let limitT = UInt64(b.count - 24) / 25, limitKV = UInt64(b.count - 24) / 14
        for count: UInt64 in [1 << 63, .max, limitT + 1] {
            var t = b
            t.put64(count, at: 8)
            reject(
                t, .countTooLarge(what: "tensor count", count: count, limit: limitT, offset: 8),
                naming: ["tensor count"])
        }
        for count: UInt64 in [1 << 63, .max, limitKV + 1] {
            var t = b
            t.put64(count, at: 16)
            reject(
                t, .countTooLarge(what: "metadata count", count: count, limit: limitKV, offset: 16),
                naming: ["metadata count"])
        }
        // A count that fits the file but is more than the entries present runs into the tensor infos.
        var t = b
        t.put64(UInt64(Fixture.base().metadata.count + 1), at: 16)
        XCTAssertNotNil(reject(t))
    }

    // MARK: - Strings

    func testAbsurdStringLengths() {
        let b = Fixture.base().encoded()
        // The first key's length field is at offset 24.
        for len: UInt64 in [1 << 62, .max, UInt64(b.count - 32 + 1)] {
            var t = b
            t.put64(len, at: 24)
            reject(
                t, .stringTooLong(context: "metadata key #0", length: len, limit: UInt64(b.count - 32), offset: 24),
                naming: ["metadata key #0"])
        }
        // A string value.
        var t = b
        let at = b.stringField("corpus ✓")
        t.put64(1 << 40, at: at)
        reject(
            t,
            .stringTooLong(
                context: "value of 'general.name'", length: 1 << 40,
                limit: UInt64(b.count - at - 8), offset: at), naming: ["general.name"])
        // A tensor name.
        t = b
        let nameAt = b.stringField("w.q4_0")
        t.put64(1 << 50, at: nameAt)
        reject(
            t,
            .stringTooLong(
                context: "name of tensor #1", length: 1 << 50, limit: UInt64(b.count - nameAt - 8),
                offset: nameAt), naming: ["tensor #1"])
    }

    func testInvalidUTF8() {
        let key: [UInt8] = Array("bad.".utf8) + [0xFF, 0xFE, 0xC3]
        let b = withBase { $0.appendRaw(key: key, typeID: GGUFValueType.uint8.rawValue, payload: [1]) }
        let n = Fixture.base().metadata.count
        reject(
            b, .invalidUTF8(context: "metadata key #\(n)", offset: b.offset(of: key)! - 8),
            naming: ["metadata key #\(n)"])

        var w = Fixture.base()
        w.addRawTensor(name: [0x61, 0xC0, 0x80], dims: [1], typeID: 0, bytes: floats([1])) // overlong NUL
        let tb = w.encodedWithLayout()
        reject(
            tb.bytes, .invalidUTF8(context: "name of tensor #5", offset: tb.tensorInfoOffsets[5]), naming: ["tensor #5"]
        )

        // A string value and a string array element.
        let v = withBase { $0.appendRaw(key: Array("bad.value".utf8), typeID: 8, payload: le64(2) + [0xE2, 0x82]) }
        reject(
            v, .invalidUTF8(context: "value of 'bad.value'", offset: v.offset(of: Array("bad.value".utf8))! + 9 + 4),
            naming: ["bad.value"])
        let a = withBase {
            $0.appendRaw(
                key: Array("bad.array".utf8), typeID: 9,
                payload: le32(8) + le64(2) + le64(1) + [0x41] + le64(1) + [0x80])
        }
        let elem = a.offset(of: Array("bad.array".utf8))! + 9 + 4 + 4 + 8 + 9
        reject(a, .invalidUTF8(context: "value of 'bad.array'", offset: elem), naming: ["bad.array"])
    }

    // MARK: - Metadata values

    func testAbsurdArrayLengths() {
        for (elementType, count) in [
            (GGUFValueType.uint8, UInt64(1) << 62), (.string, 1 << 40), (.float64, .max),
            (.uint16, 1 << 31)
        ] {
            let key = "test.huge.\(elementType)"
            let b = withBase {
                $0.appendRaw(
                    key: Array(key.utf8), typeID: 9, payload: le32(elementType.rawValue) + le64(count) + [0, 0])
            }
            let countAt = b.offset(of: Array(key.utf8))! + key.utf8.count + 4 + 4
            let elementSize: UInt64 = [.uint8: 1, .string: 8, .float64: 8, .uint16: 2][elementType]!
            let limit = min(UInt64(b.count - countAt - 8) / elementSize, GGUFFile.maxArrayElements)
            reject(
                b, .countTooLarge(what: "array length of '\(key)'", count: count, limit: limit, offset: countAt),
                naming: [key])
        }
    }

    func testUnknownValueTypes() {
        for raw: UInt32 in [13, 255, .max] {
            let b = withBase { $0.appendRaw(key: Array("test.bad".utf8), typeID: raw, payload: [0, 0, 0, 0]) }
            let typeAt = b.offset(of: Array("test.bad".utf8))! + 8
            reject(b, .invalidValueType(key: "test.bad", raw: raw, offset: typeAt), naming: ["test.bad"])
        }
        // Unknown array element type.
        let b = withBase { $0.appendRaw(key: Array("test.badarr".utf8), typeID: 9, payload: le32(99) + le64(0)) }
        let elemTypeAt = b.offset(of: Array("test.badarr".utf8))! + 11 + 4
        reject(b, .invalidValueType(key: "test.badarr", raw: 99, offset: elemTypeAt), naming: ["test.badarr"])
    }

    func testNestedArray() {
        let inner = le32(GGUFValueType.uint8.rawValue) + le64(1) + [7]
        let b = withBase {
            $0.appendRaw(key: Array("test.nested".utf8), typeID: 9, payload: le32(9) + le64(1) + inner)
        }
        let at = b.offset(of: Array("test.nested".utf8))! + 11 + 4
        reject(b, .nestedArray(key: "test.nested", offset: at), naming: ["test.nested"])
    }

    func testInvalidBool() {
        let b = withBase { $0.appendRaw(key: Array("test.flag".utf8), typeID: 7, payload: [2]) }
        let at = b.offset(of: Array("test.flag".utf8))! + 9 + 4
        reject(b, .invalidBool(key: "test.flag", value: 2, offset: at), naming: ["test.flag"])
        let a = withBase {
            $0.appendRaw(key: Array("test.flags".utf8), typeID: 9, payload: le32(7) + le64(3) + [1, 0, 0xFF])
        }
        let elem = a.offset(of: Array("test.flags".utf8))! + 10 + 4 + 12 + 2
        reject(a, .invalidBool(key: "test.flags", value: 255, offset: elem), naming: ["test.flags"])
    }

    func testBadAlignment() {
        for v: UInt32 in [0, 3, 48, 0x8000_0001] {
            let b = withBase { $0.set("general.alignment", .uint32(v)) }
            let typeAt = b.offset(of: Array("general.alignment".utf8))! + 17
            reject(
                b, .invalidAlignment(key: "general.alignment", value: "\(v)", offset: typeAt + 4),
                naming: ["general.alignment", "\(v)"])
        }
        for (v, type) in [
            (GGUFValue.uint64(32), "u64"), (.int32(32), "i32"), (.string("32"), "string"),
            (.array(.uint32, [.uint32(32)]), "array[u32]")
        ] {
            let b = withBase { $0.set("general.alignment", v) }
            let typeAt = b.offset(of: Array("general.alignment".utf8))! + 17
            reject(
                b, .alignmentNotU32(key: "general.alignment", type: type, offset: typeAt),
                naming: ["general.alignment", type])
        }
    }

    func testDuplicateAndEmptyKeys() {
        let b = withBase { $0.append("general.name", .string("again")) }
        let second = b.offset(of: le64(5) + Array("again".utf8))! - 8 - 12 - 4
        reject(b, .duplicateKey("general.name", offset: second), naming: ["general.name"])
        var w = Fixture.base()
        w.appendRaw(key: [], typeID: 0, payload: [1])
        let e = w.encodedWithLayout()
        reject(e.bytes, .emptyKey(offset: e.metadataEntryOffsets.last!))
    }

    // MARK: - Tensor infos

    func testDuplicateTensor() {
        var w = Fixture.base()
        w.addTensor("w.q4_0", dims: [32, 3], type: .q4_0, bytes: Fixture.q4_0Bytes)
        let enc = w.encodedWithLayout()
        let nameAt = enc.tensorOffsetFields[4] + 8
        reject(enc.bytes, .duplicateTensor("w.q4_0", offset: nameAt), naming: ["w.q4_0"])
    }

    func testEmptyAndLongTensorNames() {
        var w = Fixture.base()
        w.addRawTensor(name: [], dims: [1], typeID: 0, bytes: floats([1]))
        var enc = w.encodedWithLayout()
        reject(enc.bytes, .emptyTensorName(offset: enc.tensorOffsetFields[4] + 8))

        for length in [64, 65, 1000] {
            let name = String(repeating: "x", count: length)
            w = Fixture.base()
            w.addTensor(name, dims: [1], values: [1])
            enc = w.encodedWithLayout()
            reject(
                enc.bytes, .tensorNameTooLong(name, length: length, limit: 63, offset: enc.tensorOffsetFields[4] + 8),
                naming: [String(name.prefix(60))])
        }
    }

    /// Adds one tensor after the base ones and returns the file and the offset of its dimension count.
    func withTensor(
        dims: [Int64], typeID: UInt32, offset: UInt64? = nil, bytes: [UInt8] = floats([1]),
        name: String = "bad.weight"
    ) -> (bytes: [UInt8], nDimsAt: Int, typeAt: Int, offsetAt: Int) {
        var w = Fixture.base()
        w.addRawTensor(name: Array(name.utf8), dims: dims, typeID: typeID, offset: offset, bytes: bytes)
        let enc = w.encodedWithLayout()
        let offsetAt = enc.tensorOffsetFields.last!
        let typeAt = offsetAt - 4
        return (enc.bytes, typeAt - 8 * dims.count - 4, typeAt, offsetAt)
    }

    func testTooManyDimensions() {
        for n in [5, 8] {
            let t = withTensor(dims: Array(repeating: 1, count: n), typeID: 0)
            reject(
                t.bytes, .tooManyDimensions(tensor: "bad.weight", count: UInt32(n), limit: 4, offset: t.nDimsAt),
                naming: ["bad.weight"])
        }
        var b = Fixture.base().encodedWithLayout()
        let nDimsAt = b.tensorOffsetFields[0] - 4 - 16 - 4
        b.bytes.put32(.max, at: nDimsAt)
        reject(
            b.bytes, .tooManyDimensions(tensor: "tok.q8_0", count: .max, limit: 4, offset: nDimsAt),
            naming: ["tok.q8_0"])
    }

    func testNegativeDimension() {
        let t = withTensor(dims: [1, -3], typeID: 0)
        reject(
            t.bytes, .negativeDimension(tensor: "bad.weight", axis: 1, value: -3, offset: t.nDimsAt + 4 + 8),
            naming: ["bad.weight", "-3"])
        let m = withTensor(dims: [Int64.min], typeID: 0)
        reject(m.bytes, .negativeDimension(tensor: "bad.weight", axis: 0, value: .min, offset: m.nDimsAt + 4))
    }

    func testElementAndByteCountOverflow() {
        for dims: [Int64] in [[1 << 32, 1 << 32], [1 << 40, 1 << 20, 1 << 4], [.max, 2], [3, 3, .max / 4, 2]] {
            let t = withTensor(dims: dims, typeID: 0)
            reject(t.bytes, .elementCountOverflow(tensor: "bad.weight", offset: t.nDimsAt), naming: ["bad.weight"])
        }
        // 2^62 F32 elements = 2^64 bytes: the element count fits, the byte size does not.
        let f = withTensor(dims: [1 << 61, 2], typeID: GGMLType.f32.rawValue)
        reject(f.bytes, .byteSizeOverflow(tensor: "bad.weight", offset: f.typeAt), naming: ["bad.weight"])
    }

    func testUnknownTensorType() {
        // 4, 5 (Q4_2/Q4_3) and 31-33 (Q4_0_4_4...) were removed from ggml; 40+ do not exist.
        for raw: UInt32 in [4, 5, 31, 36, 40, 1000, .max] {
            let t = withTensor(dims: [32], typeID: raw)
            reject(
                t.bytes, .unknownTensorType(tensor: "bad.weight", raw: raw, offset: t.typeAt),
                naming: ["bad.weight", "\(raw)"])
        }
    }

    func testRowNotDivisibleByBlockSize() {
        for (type, row) in [(GGMLType.q4_0, 33), (.q8_0, 16), (.q4_K, 32), (.q4_1, 1)] {
            let t = withTensor(dims: [Int64(row), 1], typeID: type.rawValue, bytes: [UInt8](repeating: 0, count: 64))
            reject(
                t.bytes,
                .rowNotBlockAligned(
                    tensor: "bad.weight", rowLength: row, type: type.name,
                    blockSize: type.blockSize, offset: t.typeAt),
                naming: ["bad.weight", type.name])
        }
        // A 0-dim (scalar) quantized tensor has a row of 1.
        let s = withTensor(dims: [], typeID: GGMLType.q8_0.rawValue)
        reject(
            s.bytes,
            .rowNotBlockAligned(tensor: "bad.weight", rowLength: 1, type: "Q8_0", blockSize: 32, offset: s.typeAt))
    }

    func testMisalignedOffset() {
        for off: UInt64 in [1, 16, 31, 33, .max] {
            let t = withTensor(dims: [1], typeID: 0, offset: off)
            reject(
                t.bytes,
                .misalignedTensorOffset(tensor: "bad.weight", dataOffset: off, alignment: 32, offset: t.offsetAt),
                naming: ["bad.weight", "\(off)"])
        }
        // With general.alignment = 64, a multiple of 32 is not enough.
        var w = Fixture.base()
        w.set("general.alignment", .uint32(64))
        w.addRawTensor(name: Array("bad.weight".utf8), dims: [1], typeID: 0, offset: 96, bytes: floats([1]))
        let enc = w.encodedWithLayout()
        reject(
            enc.bytes,
            .misalignedTensorOffset(
                tensor: "bad.weight", dataOffset: 96, alignment: 64,
                offset: enc.tensorOffsetFields.last!))
    }

    func testOffsetPastEnd() {
        let base = Fixture.base().encodedWithLayout()
        // The new tensor's 4 bytes are laid out after the others, padded to 32: the data section grows by 32.
        let dataSize = base.bytes.count - base.dataOffset + 32
        for off: UInt64 in [1 << 40, UInt64.max & ~31, UInt64(dataSize), UInt64(dataSize + 32)] {
            let t = withTensor(dims: [1], typeID: 0, offset: off)
            reject(
                t.bytes, .tensorDataOutOfBounds(tensor: "bad.weight", start: off, bytes: 4, dataSize: dataSize),
                naming: ["bad.weight"])
        }
        // Starts inside but runs past the end: 16 floats at the last 32-byte slot.
        let long = withTensor(dims: [16], typeID: 0, offset: UInt64(dataSize - 32), bytes: floats([1]))
        reject(
            long.bytes,
            .tensorDataOutOfBounds(
                tensor: "bad.weight", start: UInt64(dataSize - 32), bytes: 64,
                dataSize: dataSize))
    }

    func testOverlappingTensors() {
        // bad.weight (64 bytes) placed at offset 0 overlaps tok.q8_0.
        let t = withTensor(dims: [16], typeID: 0, offset: 0, bytes: floats(Array(repeating: 1, count: 16)))
        reject(
            t.bytes, .overlappingTensors("tok.q8_0", "bad.weight", dataOffset: 0), naming: ["tok.q8_0", "bad.weight"])
        // A tensor starting inside the previous one: tok.q8_0 is 136 bytes, w.q4_0 moved to 128.
        var b = Fixture.base().encodedWithLayout()
        b.bytes.put64(128, at: b.tensorOffsetFields[1])
        reject(b.bytes, .overlappingTensors("tok.q8_0", "w.q4_0", dataOffset: 128), naming: ["tok.q8_0", "w.q4_0"])
        // Empty tensors overlap nothing.
        let z = withTensor(dims: [0], typeID: 0, offset: 0, bytes: [])
        XCTAssertNoThrow(try GGUFFile(url: tmp.write(z.bytes)))
    }

    /// Each kind above is distinct: the messages differ and name what they are about.
    func testMessagesAreDistinct() {
        let kinds: [GGUFError.Kind] = [
            .badMagic(found: 1), .unsupportedVersion(1), .byteSwappedVersion(0x0300_0000),
            .truncated(reading: "x", offset: 1, needed: 2, fileSize: 3),
            .countTooLarge(what: "x", count: 1, limit: 0, offset: 8),
            .stringTooLong(context: "x", length: 1, limit: 0, offset: 24), .invalidUTF8(context: "x", offset: 24),
            .emptyKey(offset: 24), .duplicateKey("k", offset: 24), .invalidValueType(key: "k", raw: 13, offset: 30),
            .nestedArray(key: "k", offset: 30), .invalidBool(key: "k", value: 2, offset: 30),
            .invalidAlignment(key: "general.alignment", value: "3", offset: 30),
            .alignmentNotU32(key: "general.alignment", type: "u64", offset: 30),
            .emptyTensorName(offset: 40), .tensorNameTooLong("t", length: 64, limit: 63, offset: 40),
            .duplicateTensor("t", offset: 40), .tooManyDimensions(tensor: "t", count: 5, limit: 4, offset: 40),
            .negativeDimension(tensor: "t", axis: 0, value: -1, offset: 40),
            .elementCountOverflow(tensor: "t", offset: 40),
            .unknownTensorType(tensor: "t", raw: 4, offset: 40),
            .rowNotBlockAligned(tensor: "t", rowLength: 33, type: "Q4_0", blockSize: 32, offset: 40),
            .byteSizeOverflow(tensor: "t", offset: 40),
            .misalignedTensorOffset(tensor: "t", dataOffset: 1, alignment: 32, offset: 40),
            .tensorDataOutOfBounds(tensor: "t", start: 0, bytes: 8, dataSize: 4),
            .overlappingTensors("t", "u", dataOffset: 0)
        ]
        let messages = kinds.map { GGUFError(path: "/m.gguf", kind: $0).description }
        XCTAssertEqual(Set(messages).count, kinds.count)
        for m in messages {
            XCTAssertTrue(m.hasPrefix("/m.gguf: "))
            XCTAssertTrue(m.contains("offset") || m.contains("magic"), m)
        }
    }
}
