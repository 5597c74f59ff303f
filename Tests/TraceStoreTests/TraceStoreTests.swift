import Foundation
import XCTest
@testable import TraceStore
#if canImport(Glibc)
    import Glibc
#endif

/// Shared helpers: a fresh temporary directory per test.
class TraceStoreTestCase: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("headlight-tracestore-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Runs an executable found on PATH; nil if it is not installed.
    func run(_ tool: String, _ args: [String]) throws -> (status: Int32, out: String, err: String)? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        guard let exe = dirs.map({ "\($0)/\(tool)" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else {
            return nil
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func assertThrows(
        _ expected: (TraceStoreError) -> Bool, _ message: String = "", file: StaticString = #filePath,
        line: UInt = #line, _ body: () throws -> Void
    ) {
        do {
            try body()
            XCTFail("expected an error \(message)", file: file, line: line)
        } catch let e as TraceStoreError {
            XCTAssertTrue(expected(e), "unexpected error: \(e) — \(e.localizedDescription)", file: file, line: line)
        } catch {
            XCTFail("not a TraceStoreError: \(error)", file: file, line: line)
        }
    }
}

final class AttributeTests: TraceStoreTestCase {
    func testRoundTripEveryKindOnFileGroupAndDataset() throws {
        let p = path("attrs.h5")
        let values: [String: H5AttributeValue] = [
            "s": .string("héllo wörld ✓ 注意"),
            "empty_s": .string(""),
            "i": .int(-1_234_567_890_123),
            "d": .double(3.141592653589793),
            "ss": .strings(["a", "", "ünï", "blocks.3.attn.hook_pattern"]),
            "ii": .ints([1, -2, Int64.max, Int64.min]),
            "dd": .doubles([0.5, -1e300, .infinity]),
            "no_ints": .ints([]),
            "no_strings": .strings([])
        ]
        do {
            let f = try H5File.create(p)
            let g = try f.createGroup("a/b")
            let d = try g.createDataset("x", data: [Float(1), 2, 3])
            for obj in [f, g, d] as [H5Object] {
                for (k, v) in values { try obj.setAttribute(k, v) }
            }
            // convenience overloads
            try f.setAttribute("complete", 1)
            try f.setAttribute("flag", true)
            try f.setAttribute("ratio", 0.25)
            try f.setAttribute("layers", [0, 3, 7])
            try f.setAttribute("argv", ["headlight", "run"])
            // replacing an attribute with a different type
            try d.setAttribute("i", "now a string")
            try f.close()
        }
        let f = try H5File.open(p)
        let g = try f.group("a/b")
        let d = try g.dataset("x")
        for obj in [f, g, d] as [H5Object] {
            for (k, v) in values where !(obj === d && k == "i") {
                XCTAssertEqual(try obj.attribute(k), v, "\(obj.name) @\(k)")
            }
            XCTAssertEqual(Set(try obj.attributeNames()).intersection(values.keys).count, values.count)
        }
        XCTAssertEqual(try d.stringAttribute("i"), "now a string")
        XCTAssertEqual(try f.intAttribute("complete"), 1)
        XCTAssertEqual(try f.intAttribute("flag"), 1)
        XCTAssertEqual(try f.doubleAttribute("ratio"), 0.25)
        XCTAssertEqual(try f.doubleAttribute("complete"), 1.0) // ints widen to double
        XCTAssertEqual(try f.intsAttribute("layers"), [0, 3, 7])
        XCTAssertEqual(try f.stringsAttribute("argv"), ["headlight", "run"])
        XCTAssertEqual(try f.attributeNames(), try f.attributeNames().sorted())
        XCTAssertNil(try f.attributeIfPresent("nope"))
        XCTAssertFalse(try f.hasAttribute("nope"))
        assertThrows({
            if case .notFound(let file, let obj) = $0 { return file == p && obj == "/ @nope" }
            return false
        }) {
            _ = try f.attribute("nope")
        }
        assertThrows({
            if case .typeMismatch = $0 { return true }
            return false
        }) { _ = try f.intAttribute("s") }
        assertThrows({
            if case .readOnly = $0 { return true }
            return false
        }) { try f.setAttribute("x", 1) }
    }

    func testRemoveAttribute() throws {
        let f = try H5File.create(path("rm.h5"))
        try f.setAttribute("a", 1)
        try f.removeAttribute("a")
        XCTAssertFalse(try f.hasAttribute("a"))
        assertThrows({
            if case .notFound = $0 { return true }
            return false
        }) { try f.removeAttribute("a") }
        assertThrows({
            if case .invalidArgument = $0 { return true }
            return false
        }) { try f.setAttribute("bad", "a\u{0}b") }
    }
}

final class GroupTests: TraceStoreTestCase {
    func testNestedGroupsChildrenAndExists() throws {
        let p = path("groups.h5")
        let f = try H5File.create(p)
        let deep = try f.createGroup("captures/blocks/3")
        XCTAssertEqual(deep.name, "/captures/blocks/3")
        try f.createGroup("/retrieval_heads")
        let caps = try f.group("captures")
        try caps.createDataset("blocks.3.attn.hook_pattern", type: .float32, shape: [2, 2])
        XCTAssertEqual(try f.children(), ["captures", "retrieval_heads"])
        XCTAssertEqual(try caps.children(), ["blocks", "blocks.3.attn.hook_pattern"])
        XCTAssertTrue(try f.exists("captures/blocks/3"))
        XCTAssertTrue(try caps.exists("/retrieval_heads")) // absolute paths from a group
        XCTAssertFalse(try f.exists("captures/nothing/here")) // missing intermediate: false, not an error
        XCTAssertFalse(try f.exists("nothing"))
        XCTAssertTrue(try f.exists("/"))
        XCTAssertEqual(try f.kind(of: "captures/blocks.3.attn.hook_pattern"), .dataset)
        XCTAssertEqual(try f.kind(of: "captures/blocks"), .group)
        XCTAssertNil(try f.kind(of: "x/y"))
        XCTAssertEqual(try f.requireGroup("captures/blocks").name, "/captures/blocks")
        XCTAssertEqual(try f.requireGroup("new/one").name, "/new/one")
        XCTAssertEqual(try caps.dataset("blocks.3.attn.hook_pattern").name, "/captures/blocks.3.attn.hook_pattern")

        assertThrows({
            if case .alreadyExists(_, "/captures/blocks") = $0 { return true }
            return false
        }) {
            try f.createGroup("captures/blocks")
        }
        assertThrows({
            if case .wrongKind(_, _, "group", "dataset") = $0 { return true }
            return false
        }) {
            _ = try caps.group("blocks.3.attn.hook_pattern")
        }
        assertThrows({
            if case .wrongKind(_, _, "dataset", "group") = $0 { return true }
            return false
        }) {
            _ = try f.dataset("captures")
        }
        assertThrows({
            if case .notFound(let file, "/captures/missing") = $0 { return file == p }
            return false
        }) {
            _ = try f.dataset("captures/missing")
        }
        try f.remove("new")
        XCTAssertFalse(try f.exists("new/one"))
    }

    func testClosedFileAndReadOnly() throws {
        let p = path("closed.h5")
        let f = try H5File.create(p)
        let d = try f.createDataset("x", data: [Int32(1), 2])
        try f.close()
        assertThrows({
            if case .fileClosed(p) = $0 { return true }
            return false
        }) { _ = try d.read(Int32.self) }
        assertThrows({
            if case .fileClosed(p) = $0 { return true }
            return false
        }) { _ = try f.children() }
        try f.close() // twice is fine

        let r = try H5File.open(p)
        assertThrows({
            if case .readOnly(p, "/x") = $0 { return true }
            return false
        }) {
            try r.dataset("x").write([Int32(3), 4])
        }
        assertThrows({
            if case .readOnly = $0 { return true }
            return false
        }) { try r.createGroup("g") }
        XCTAssertEqual(try r.dataset("x").read(Int32.self), [1, 2])

        // two read-only handles on one file: closing one leaves the other's objects usable
        let a = try H5File.open(p), b = try H5File.open(p)
        let da = try a.dataset("x"), db = try b.dataset("x")
        try b.close()
        XCTAssertEqual(try da.read(Int32.self), [1, 2])
        assertThrows({
            if case .fileClosed = $0 { return true }
            return false
        }) { _ = try db.read(Int32.self) }
    }
}

final class DatasetTests: TraceStoreTestCase {
    func testEveryElementTypeRoundTrips() throws {
        let p = path("types.h5")
        do {
            let f = try H5File.create(p)
            try f.createDataset(
                "f32", data: [Float(1.5), -2, .pi, .greatestFiniteMagnitude, -0.0, Float.leastNonzeroMagnitude * 3],
                shape: [2, 3])
            try f.createDataset("f64", data: [Double.pi, -1e300, Double.leastNonzeroMagnitude])
            try f.createDataset("i32", data: [Int32.min, -1, 0, Int32.max], shape: [2, 2])
            try f.createDataset("i64", data: [Int64.min, 42, Int64.max])
            try f.createDataset("u8", data: [UInt8(0), 7, 255])
            try f.createDataset("i8", data: [Int8(-128), 127])
            try f.createDataset("u16", data: [UInt16(65535), 1])
            try f.createDataset("int", data: [1, 2, 3])
            try f.createDataset("empty", data: [Float](), shape: [0, 4])
            try f.createDataset("scalar", data: [2.5], shape: [])
            try f.close()
        }
        let f = try H5File.open(p)
        let f32 = try f.dataset("f32")
        XCTAssertEqual(f32.elementType, .float32)
        XCTAssertEqual(try f32.shape, [2, 3])
        XCTAssertEqual(try f32.maxShape, [2, 3])
        XCTAssertNil(try f32.chunks)
        XCTAssertFalse(f32.isExtendible)
        let back = try f32.read(Float.self)
        XCTAssertEqual(
            back.map(\.bitPattern),
            [Float(1.5), -2, .pi, .greatestFiniteMagnitude, -0.0, Float.leastNonzeroMagnitude * 3].map(\.bitPattern))
        XCTAssertEqual(try f32.read(Double.self)[2], Double(Float.pi)) // widening
        XCTAssertEqual(try f.dataset("f64").read(Double.self), [Double.pi, -1e300, Double.leastNonzeroMagnitude])
        XCTAssertEqual(try f.dataset("i32").read(Int32.self), [Int32.min, -1, 0, Int32.max])
        XCTAssertEqual(try f.dataset("i32").read(Int64.self), [Int64(Int32.min), -1, 0, Int64(Int32.max)])
        XCTAssertEqual(try f.dataset("i32").read(Double.self), [Double(Int32.min), -1, 0, Double(Int32.max)])
        XCTAssertEqual(try f.dataset("i64").read(Int64.self), [Int64.min, 42, Int64.max])
        XCTAssertEqual(try f.dataset("i64").read(Int.self), [Int.min, 42, Int.max])
        XCTAssertEqual(try f.dataset("u8").read(UInt8.self), [0, 7, 255])
        XCTAssertEqual(try f.dataset("u8").read(Int32.self), [0, 7, 255])
        XCTAssertEqual(try f.dataset("i8").read(Int8.self), [-128, 127])
        XCTAssertEqual(try f.dataset("u16").read(UInt16.self), [65535, 1])
        XCTAssertEqual(try f.dataset("int").elementType, .int64)
        XCTAssertEqual(try f.dataset("empty").read(Float.self), [])
        XCTAssertEqual(try f.dataset("empty").shape, [0, 4])
        XCTAssertEqual(try f.dataset("scalar").shape, [])
        XCTAssertEqual(try f.dataset("scalar").rank, 0)
        XCTAssertEqual(try f.dataset("scalar").read(Double.self), [2.5])
        XCTAssertTrue(try f.exists("scalar/") && f.exists("./scalar"))
        // lossy reads and mismatched writes are refused
        assertThrows({
            if case .typeMismatch(p, "/i64", _, "int64") = $0 { return true }
            return false
        }) {
            _ = try f.dataset("i64").read(Int32.self)
        }
        assertThrows({
            if case .typeMismatch = $0 { return true }
            return false
        }) { _ = try f.dataset("f64").read(Float.self) }
        assertThrows({
            if case .typeMismatch = $0 { return true }
            return false
        }) { _ = try f.dataset("i64").read(Double.self) }
        // HDF5 refuses to open a file read-write while this process has it open read-only
        assertThrows({
            if case .cannotOpen(p, let d) = $0 { return d.contains("already open") }
            return false
        }) {
            _ = try H5File.open(p, mode: .readWrite)
        }
        try f.close()
        let w = try H5File.open(p, mode: .readWrite)
        assertThrows({
            if case .typeMismatch = $0 { return true }
            return false
        }) { try w.dataset("i32").write([1, 2, 3, 4]) }
        assertThrows({
            if case .shapeMismatch = $0 { return true }
            return false
        }) { try w.dataset("i32").write([Int32(1)]) }
    }

    func testHyperslabWritesAndReads() throws {
        let f = try H5File.create(path("slab.h5"))
        let d = try f.createDataset("m", type: .int32, shape: [10, 6]) // [N, M]
        try d.write([Int32](repeating: -1, count: 60))
        // rows [3, 7)
        let rows = (0..<24).map { Int32(100 + $0) }
        try d.writeRows(rows, at: 3)
        // sub-block rows [0, 2) x cols [1, 4)
        try d.write([Int32(1), 2, 3, 4, 5, 6], start: [0, 1], count: [2, 3])
        let all = try d.read(Int32.self)
        for r in 0..<10 {
            for c in 0..<6 {
                let v = all[r * 6 + c]
                if r < 2 && (1..<4).contains(c) {
                    XCTAssertEqual(v, Int32(r * 3 + c))
                } else if (3..<7).contains(r) {
                    XCTAssertEqual(v, Int32(100 + (r - 3) * 6 + c))
                } else {
                    XCTAssertEqual(v, -1)
                }
            }
        }
        XCTAssertEqual(try d.read(Int32.self, start: [4, 2], count: [2, 2]), [108, 109, 114, 115])
        XCTAssertEqual(try d.readRows(6..<7, as: Int32.self), (18..<24).map { Int32(100 + $0) })
        XCTAssertEqual(try d.read(Int32.self, start: [9, 0], count: [0, 6]), [])
        assertThrows({
            if case .shapeMismatch(_, "/m", let detail) = $0 { return detail.contains("exceeds") }
            return false
        }) {
            try d.write([Int32](repeating: 0, count: 12), start: [8, 0], count: [3, 4])
        }
        assertThrows({
            if case .shapeMismatch = $0 { return true }
            return false
        }) {
            try d.write([Int32](repeating: 0, count: 5), start: [0, 0], count: [1, 6])
        }
        assertThrows({
            if case .shapeMismatch = $0 { return true }
            return false
        }) { try d.writeRows([Int32](repeating: 0, count: 7), at: 0) }
        assertThrows({
            if case .shapeMismatch = $0 { return true }
            return false
        }) { _ = try d.read(Int32.self, start: [0], count: [1]) }
    }

    func testExtendibleAppendAcrossManyCalls() throws {
        let p = path("append.h5")
        let heads = 3, keys = 5 // rows: [heads, keys]
        do {
            let f = try H5File.create(p)
            let d = try f.createDataset(
                "captures/blocks.0.attn.hook_pattern", type: .float32, shape: [0, heads, keys],
                extendible: true)
            XCTAssertTrue(d.isExtendible)
            XCTAssertEqual(try d.maxShape, [nil, heads, keys])
            XCTAssertNotNil(try d.chunks)
            var total = 0
            for call in 0..<200 {
                let n = call % 3 // 0, 1 or 2 rows per call
                let vals = (0..<(n * heads * keys)).map { Float(total * heads * keys + $0) }
                let range = try d.append(rows: vals)
                XCTAssertEqual(range, total..<(total + n))
                total += n
            }
            XCTAssertEqual(try d.shape, [total, heads, keys])
            // streaming strings, one token at a time
            let s = try f.createDataset("token_strings", type: .string, shape: [0], extendible: true)
            for i in 0..<50 { try s.append(strings: ["tok\(i)"]) }
            try s.append(strings: [])
            // a fixed dataset refuses append
            let fixed = try f.createDataset("fixed", type: .float32, shape: [2, 2])
            assertThrows({
                if case .invalidArgument(_, "/fixed", _) = $0 { return true }
                return false
            }) {
                try fixed.append(rows: [Float](repeating: 0, count: 2))
            }
            // partial rows are refused and leave the shape unchanged
            assertThrows({
                if case .shapeMismatch = $0 { return true }
                return false
            }) { try d.append(rows: [Float(1)]) }
            XCTAssertEqual(try d.shape[0], total)
            try f.close()
        }
        let f = try H5File.open(p)
        let d = try f.dataset("captures/blocks.0.attn.hook_pattern")
        let all = try d.read(Float.self)
        XCTAssertEqual(all.count, 199 * heads * keys) // 66 x (0 + 1 + 2) + 0 + 1 rows
        XCTAssertEqual(all, (0..<all.count).map(Float.init))
        XCTAssertEqual(try f.dataset("token_strings").readStrings(), (0..<50).map { "tok\($0)" })
    }

    func testStringDatasets() throws {
        let p = path("strings.h5")
        let toks = ["<|endoftext|>", " The", " cat", "", " naïve", " 日本語", "\n", " émoji 🦙"]
        do {
            let f = try H5File.create(p)
            try f.createDataset("token_strings", strings: toks)
            let grid = try f.createDataset("grid", type: .string, shape: [2, 3])
            try grid.write(strings: ["a", "b", "c", "d", "e", "f"])
            try grid.write(strings: ["X", "Y"], start: [1, 1], count: [1, 2])
            assertThrows({
                if case .typeMismatch = $0 { return true }
                return false
            }) { try grid.write([Float](repeating: 0, count: 6)) }
            assertThrows({
                if case .invalidArgument = $0 { return true }
                return false
            }) {
                try f.createDataset("nul", strings: ["a\u{0}b"])
            }
            try f.close()
        }
        let f = try H5File.open(p)
        XCTAssertEqual(try f.dataset("token_strings").readStrings(), toks)
        XCTAssertEqual(try f.dataset("token_strings").readStrings(start: [4], count: [2]), [" naïve", " 日本語"])
        XCTAssertEqual(try f.dataset("grid").readStrings(), ["a", "b", "c", "d", "X", "Y"])
        XCTAssertEqual(try f.dataset("grid").elementType, .string)
        assertThrows({
            if case .typeMismatch = $0 { return true }
            return false
        }) { _ = try f.dataset("grid").read(Float.self) }
    }

    func testGzipAndShuffleCompress() throws {
        let p = path("gzip.h5")
        let rows = 512, cols = 256
        // compressible: smooth, low-entropy floats (like attention rows dominated by a few values)
        let data = (0..<(rows * cols)).map { i -> Float in Float((i / cols) % 7) * 0.125 + (i % cols < 3 ? 1 : 0) }
        let raw = data.count * 4
        let f = try H5File.create(p)
        let plain = try f.createDataset("plain", data: data, shape: [rows, cols])
        let packed = try f.createDataset("packed", data: data, shape: [rows, cols], gzip: 4, shuffle: true)
        let gzOnly = try f.createDataset("gz", data: data, shape: [rows, cols], chunks: [64, 256], gzip: 6)
        try f.flush()
        XCTAssertEqual(try plain.storageSize, raw)
        let packedSize = try packed.storageSize, gzSize = try gzOnly.storageSize
        print(
            "gzip+shuffle: \(raw) -> \(packedSize) bytes; gzip only: \(gzSize) bytes; chunks \(try packed.chunks ?? [])"
        )
        XCTAssertLessThan(packedSize, raw / 10)
        XCTAssertLessThan(gzSize, raw / 4)
        XCTAssertEqual(try packed.compression.gzip, 4)
        XCTAssertEqual(try packed.compression.shuffle, true)
        XCTAssertEqual(try gzOnly.compression.gzip, 6)
        XCTAssertEqual(try gzOnly.compression.shuffle, false)
        XCTAssertEqual(try gzOnly.chunks, [64, 256])
        XCTAssertNil(try plain.compression.gzip)
        XCTAssertEqual(try packed.read(Float.self), data)
        XCTAssertEqual(
            try gzOnly.read(Float.self, start: [100, 0], count: [1, cols]), Array(data[(100 * cols)..<(101 * cols)]))
        assertThrows({
            if case .invalidArgument = $0 { return true }
            return false
        }) {
            try f.createDataset("bad", type: .float32, shape: [4], gzip: 12)
        }
        assertThrows({
            if case .alreadyExists(_, "/plain") = $0 { return true }
            return false
        }) {
            try f.createDataset("plain", type: .float32, shape: [4])
        }
    }

    func testChunkGuessStaysWithinCache() {
        for (shape, ext, size) in [
            ([0, 9, 8192], true, 4), ([30, 9, 8192, 8192], false, 2), ([7], false, 4),
            ([0], true, 4), ([1_000_000, 64], false, 4), ([0, 576], true, 2)
        ] {
            let c = H5Dataset.guessChunks(shape: shape, extendible: ext, elementSize: size)
            XCTAssertEqual(c.count, shape.count)
            XCTAssertLessThanOrEqual(c.reduce(1, *) * size, 512 * 1024, "\(shape) -> \(c)")
            for (i, v) in c.enumerated() {
                XCTAssertGreaterThan(v, 0)
                if !(ext && i == 0) { XCTAssertLessThanOrEqual(v, max(shape[i], 1)) }
            }
        }
    }
}

final class Float16Tests: TraceStoreTestCase {
    func testHalfConversionIsRoundToNearestEven() {
        // exact for representable values
        for bits in UInt16.min...UInt16.max {
            let f = Half.float(from: bits)
            if f.isNaN {
                XCTAssertTrue(Half.float(from: Half.bits(from: f)).isNaN)
                continue
            }
            XCTAssertEqual(Half.bits(from: f), bits, "bits \(String(bits, radix: 16))")
        }
        // ties go to even, where HDF5 1.10's own conversion rounds them up
        XCTAssertEqual(Half.bits(from: 1 + 0x1p-11), 0x3C00) // halfway 1 .. 1+2^-10 -> 1
        XCTAssertEqual(Half.bits(from: 1 + 3 * 0x1p-11), 0x3C02)
        XCTAssertEqual(Half.bits(from: 0x1p-25), 0x0000) // half of the smallest subnormal -> 0
        XCTAssertEqual(Half.bits(from: 1.5 * 0x1p-24), 0x0002) // subnormal tie -> even
        XCTAssertEqual(Half.bits(from: 65519), 0x7BFF)
        XCTAssertEqual(Half.bits(from: 65520), 0x7C00) // rounds to +inf
        XCTAssertEqual(Half.bits(from: -1e9), 0xFC00)
        XCTAssertEqual(Half.bits(from: -0.0), 0x8000)
        #if !(os(macOS) && arch(x86_64))
            // agree with Swift's Float16 (hardware F16C or compiler-rt) on many values
            var rng = SystemRandomNumberGenerator()
            for _ in 0..<200_000 {
                let f = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))
                if f.isNaN { continue }
                XCTAssertEqual(Half.bits(from: f), Float16(f).bitPattern, "\(f)")
            }
            for _ in 0..<200_000 {
                let f = Float.random(in: -70000...70000)
                XCTAssertEqual(Half.bits(from: f), Float16(f).bitPattern, "\(f)")
                let g = Float.random(in: -1e-4...1e-4)
                XCTAssertEqual(Half.bits(from: g), Float16(g).bitPattern, "\(g)")
            }
        #endif
    }

    func testFloat16DatasetRoundTripErrorBounds() throws {
        let p = path("f16.h5")
        var values: [Float] = [
            0, -0.0, 1, -2.5, 65504, -65504, 0x1p-14, 0x1p-24, 0.1, 1 / 3, .infinity, -.infinity,
            1 + 0x1p-11, 70000, 0x1p-26
        ]
        var rng = SystemRandomNumberGenerator()
        values += (0..<10_000).map { _ in Float.random(in: -100...100, using: &rng) }
        values += (0..<2_000).map { _ in Float.random(in: -1...1, using: &rng) * 0x1p-14 } // subnormal range
        do {
            let f = try H5File.create(p)
            let d = try f.createDataset("h", data: values, as: .float16, gzip: 1, shuffle: true)
            XCTAssertEqual(d.elementType, .float16)
            try f.createDataset("nan", data: [Float.nan], as: .float16)
            try f.close()
        }
        let f = try H5File.open(p)
        let d = try f.dataset("h")
        XCTAssertEqual(d.elementType, .float16)
        let back = try d.read(Float.self)
        let backD = try d.read(Double.self)
        XCTAssertEqual(back.count, values.count)
        var maxRel: Float = 0
        for (x, y) in zip(values, back) {
            XCTAssertEqual(y.bitPattern, Half.round(x).bitPattern, "\(x)")
            if x.isInfinite || abs(x) > 65504 {
                XCTAssertTrue(y.isInfinite || abs(x) <= 65519)
                continue
            }
            if abs(x) >= 0x1p-14 {
                let rel = abs(x - y) / abs(x)
                maxRel = max(maxRel, rel)
                XCTAssertLessThanOrEqual(rel, 0x1p-11, "\(x) -> \(y)") // half an ulp, relative
            } else {
                XCTAssertLessThanOrEqual(abs(x - y), 0x1p-25, "\(x) -> \(y)") // half the subnormal spacing
            }
        }
        XCTAssertEqual(back[12], 1) // tie to even
        XCTAssertEqual(back[13], .infinity)
        XCTAssertEqual(back[14], 0)
        XCTAssertEqual(backD.map(Float.init), back)
        XCTAssertTrue(try f.dataset("nan").read(Float.self)[0].isNaN)
        print(
            "float16 round trip: \(values.count) values, max relative error (normal range) \(maxRel) (bound 2^-11 = "
                + "\(Float(0x1p-11)))"
        )
    }
}

final class BadInputTests: TraceStoreTestCase {
    func testMissingFile() {
        let p = path("nope.h5")
        assertThrows({ $0 == .fileNotFound(file: p) && $0.localizedDescription.contains(p) }) { _ = try H5File.open(p) }
    }

    func testNonHDF5File() throws {
        let p = path("notes.txt")
        try "definitely not HDF5\n".write(toFile: p, atomically: true, encoding: .utf8)
        assertThrows({ $0 == .notHDF5(file: p) && $0.localizedDescription.contains("notes.txt") }) {
            _ = try H5File.open(p)
        }
        let empty = path("empty.h5")
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        assertThrows({ $0 == .notHDF5(file: empty) }) { _ = try H5File.open(empty) }
        assertThrows({
            if case .cannotOpen(let f, _) = $0 { return f == self.dir.path }
            return false
        }) {
            _ = try H5File.open(self.dir.path)
        }
    }

    func testTruncatedHDF5File() throws {
        let p = path("full.h5")
        do {
            let f = try H5File.create(p)
            try f.setAttribute("format", "headlight-run")
            try f.createDataset("x", data: (0..<100_000).map { Float($0) })
            try f.close()
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: p))
        for keep in [data.count / 2, 4096, 100] {
            let t = path("truncated-\(keep).h5")
            try data.prefix(keep).write(to: URL(fileURLWithPath: t))
            do {
                _ = try H5File.open(t)
                XCTFail("opened a truncated file")
            } catch let e as TraceStoreError {
                print("truncated to \(keep) bytes: \(e.localizedDescription)")
                XCTAssertTrue(e.localizedDescription.contains(t))
                XCTAssertEqual(e.file, t)
                switch e {
                case .corruptFile(_, let d): XCTAssertTrue(d.contains("truncated"), d)
                case .notHDF5: XCTAssertLessThan(keep, 512)
                default: XCTFail("unexpected \(e)")
                }
            }
        }
    }

    func testCreateRefusesToOverwriteWithoutTruncate() throws {
        let p = path("exists.h5")
        _ = try H5File.create(p)
        assertThrows({ $0 == .fileExists(file: p) }) { _ = try H5File.create(p, truncate: false) }
        assertThrows({
            if case .cannotOpen(let f, _) = $0 { return f.hasSuffix("no/such/dir/x.h5") }
            return false
        }) {
            _ = try H5File.create(self.path("no/such/dir/x.h5"))
        }
    }
}

final class RunFileTests: TraceStoreTestCase {
    func testAtomicFinalize() throws {
        let p = path("run.h5")
        let w = try RunFileWriter(path: p)
        XCTAssertEqual(w.temporaryPath, p + ".tmp-\(getpid())")
        try RunFileHeader(
            headlightVersion: "0.1.0", command: "trace", commandLine: ["headlight", "trace", "--layers", "3"],
            modelFile: "SmolLM2-135M.Q8_0.gguf", modelSize: 145_000_000,
            modelSHA256: String(repeating: "ab", count: 32),
            architecture: "llama", dimensions: ["n_layers": 30, "n_heads": 9, "d_model": 576]
        ).write(to: w.file)
        try w.file.createDataset("tokens", data: [Int32(1), 2, 3])
        XCTAssertFalse(FileManager.default.fileExists(atPath: p), "final file must not exist before finalize")
        XCTAssertTrue(FileManager.default.fileExists(atPath: w.temporaryPath))
        try w.finalize()
        XCTAssertTrue(FileManager.default.fileExists(atPath: p))
        XCTAssertFalse(FileManager.default.fileExists(atPath: w.temporaryPath), "temp file must be gone")
        let f = try RunFile.open(p)
        XCTAssertEqual(try f.intAttribute("complete"), 1)
        XCTAssertEqual(try f.stringAttribute("format"), "headlight-run")
        XCTAssertEqual(try f.intAttribute("format_version"), 1)
        XCTAssertFalse(try f.stringAttribute("created").isEmpty)
        XCTAssertFalse(try f.stringAttribute("finished").isEmpty)
        let h = try RunFileHeader.read(from: f)
        XCTAssertEqual(h.commandLine, ["headlight", "trace", "--layers", "3"])
        XCTAssertEqual(h.dimensions, ["n_layers": 30, "n_heads": 9, "d_model": 576])
        XCTAssertEqual(h.modelSize, 145_000_000)
        XCTAssertEqual(try f.dataset("tokens").read(Int32.self), [1, 2, 3])
        assertThrows({
            if case .fileClosed = $0 { return true }
            return false
        }) { try w.file.setAttribute("x", 1) }
    }

    func testUnfinishedRunLeavesOnlyTempFileAndOldFileIntact() throws {
        let p = path("run.h5")
        do { // an older, complete run at the final path
            let w = try RunFileWriter(path: p)
            try w.file.setAttribute("generation", 1)
            try w.finalize()
        }
        var tmp = ""
        do {
            let w = try RunFileWriter(path: p)
            tmp = w.temporaryPath
            try w.file.setAttribute("generation", 2)
            // dropped without finalize
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: tmp))
        XCTAssertEqual(try RunFile.open(p).intAttribute("generation"), 1)
        let partial = try H5File.open(tmp)
        XCTAssertEqual(try partial.intAttribute("complete"), 0)
        assertThrows({
            if case .notARunFile(tmp, _) = $0 { return true }
            return false
        }) { _ = try RunFile.open(tmp) }
        XCTAssertNoThrow(try RunFile.open(tmp, allowIncomplete: true))

        let w = try RunFileWriter(path: path("other.h5"))
        try w.abandon()
        XCTAssertFalse(FileManager.default.fileExists(atPath: w.temporaryPath))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("other.h5")))
        assertThrows({
            if case .notARunFile = $0 { return true }
            return false
        }) {
            let plain = self.path("plain.h5")
            _ = try H5File.create(plain)
            _ = try RunFile.open(plain)
        }
    }

    /// A sweep process appends one record per trial with a checkpoint after each, and is killed
    /// with SIGKILL; a new writer resumes from the `.partial` file.
    func testResumeAfterKill() throws {
        #if canImport(Glibc)
            let p = path("sweep.h5")
            let recordSize = 4
            func record(_ i: Int) -> [Float] { (0..<recordSize).map { Float(i * 10 + $0) } }
            let pid = fork()
            if pid == 0 {
                // child: no XCTest calls; never exit() (atexit handlers would flush HDF5 state)
                do {
                    let w = try RunFileWriter(path: p, resumable: true)
                    let d = try w.file.createDataset(
                        "trials", type: .float32, shape: [0, recordSize], chunks: [16, recordSize],
                        extendible: true)
                    for i in 0..<5 {
                        try d.append(rows: record(i))
                        try w.checkpoint()
                    }
                    try d.append(rows: record(5)) // not checkpointed
                    kill(getpid(), SIGKILL)
                } catch {
                    _exit(3)
                }
                _exit(4)
            }
            XCTAssertGreaterThan(pid, 0)
            var status: Int32 = 0
            XCTAssertEqual(waitpid(pid, &status, 0), pid)
            XCTAssertEqual(status & 0x7F, SIGKILL, "child should have been killed, status \(status)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: p))
            XCTAssertTrue(FileManager.default.fileExists(atPath: p + ".partial"))

            let w = try RunFileWriter(path: p, resumable: true)
            XCTAssertTrue(w.resumed)
            let d = try w.file.dataset("trials")
            let done = try d.shape[0]
            XCTAssertTrue(done == 5 || done == 6, "checkpointed records survive (found \(done))")
            print("resumed after SIGKILL with \(done) records (5 checkpointed, 1 written after the last checkpoint)")
            XCTAssertEqual(try d.read(Float.self), (0..<done).flatMap(record))
            for i in done..<10 {
                try d.append(rows: record(i))
                try w.checkpoint()
            }
            try w.finalize()
            let f = try RunFile.open(p)
            XCTAssertEqual(try f.dataset("trials").read(Float.self), (0..<10).flatMap(record))
            XCTAssertFalse(FileManager.default.fileExists(atPath: p + ".partial"))
        #else
            throw XCTSkip("fork-based kill test runs on Linux only")
        #endif
    }

    func testOpenForAppendAddsRecords() throws {
        let p = path("log.h5")
        do {
            let f = try H5File.create(p)
            try f.createDataset("scores", type: .float64, shape: [0], extendible: true).append(rows: [0.5])
        }
        for i in 1...3 {
            let f = try H5File.openForAppend(p)
            try f.dataset("scores").append(rows: [Double(i)])
            try f.flush()
        }
        XCTAssertEqual(try H5File.open(p).dataset("scores").read(Double.self), [0.5, 1, 2, 3])
    }
}

/// The files must be readable without Headlight: h5dump (hdf5-tools) and, if installed, h5py.
final class InteropTests: TraceStoreTestCase {
    /// A small run-shaped file: tokens, token strings, a float16 capture with attributes, a
    /// compressed extendible dataset.
    func writeSample(_ p: String) throws {
        let w = try RunFileWriter(path: p)
        let f = w.file
        try RunFileHeader(
            headlightVersion: "0.1.0", command: "trace", commandLine: ["headlight", "trace"],
            architecture: "llama", dimensions: ["n_layers": 2, "n_heads": 4]
        ).write(to: f)
        let tokens = try f.createDataset("tokens", data: [Int32(1), 504, 2368, 13, 0])
        try tokens.setAttribute("prompt", "The cat sat.")
        try f.createDataset("token_strings", strings: ["<s>", " The", " cat", " sat", "."])
        let pat = try f.createDataset(
            "captures/blocks.1.attn.hook_pattern",
            data: [Float](repeating: 0.25, count: 2 * 3 * 5)
                .enumerated().map { $0.offset % 5 == 0 ? 0.5 : $0.element }, shape: [2, 3, 5], as: .float16)
        try pat.setAttribute("layer", 1)
        try pat.setAttribute("heads", [0, 3])
        try pat.setAttribute("queries", [2, 3, 4])
        try pat.setAttribute("form", "rows")
        try pat.setAttribute("axes", ["head", "query", "key"])
        let resid = try f.createDataset(
            "captures/blocks.0.hook_resid_post", type: .float32, shape: [0, 8], gzip: 4,
            shuffle: true, extendible: true)
        try resid.append(rows: (0..<16).map(Float.init))
        try w.finalize()
    }

    func testH5DumpReadsTheFile() throws {
        let p = path("sample.h5")
        try writeSample(p)
        guard let header = try run("h5dump", ["-H", p]) else {
            throw XCTSkip("h5dump not installed (apt install hdf5-tools)")
        }
        XCTAssertEqual(header.status, 0, header.err)
        let h = header.out
        print(h)
        for needle in [
            #"DATASET "tokens""#, "H5T_STD_I32LE", "SIMPLE { ( 5 ) / ( 5 ) }",
            #"DATASET "token_strings""#, "STRSIZE H5T_VARIABLE", "CSET H5T_CSET_UTF8",
            #"GROUP "captures""#, #"DATASET "blocks.1.attn.hook_pattern""#,
            "16-bit little-endian floating-point 16-bit precision", "SIMPLE { ( 2, 3, 5 ) / ( 2, 3, 5 ) }",
            #"DATASET "blocks.0.hook_resid_post""#, "SIMPLE { ( 2, 8 ) / ( H5S_UNLIMITED, 8 ) }", "H5T_IEEE_F32LE",
            #"ATTRIBUTE "format""#, #"ATTRIBUTE "complete""#, #"ATTRIBUTE "heads""#, #"ATTRIBUTE "command_line""#,
            "H5T_STD_I64LE", #"ATTRIBUTE "prompt""#
        ] {
            XCTAssertTrue(h.contains(needle), "h5dump -H output lacks \(needle)")
        }
        guard let tok = try run("h5dump", ["-d", "/tokens", p]),
            let pat = try run("h5dump", ["-d", "/captures/blocks.1.attn.hook_pattern", p]),
            let attrs = try run("h5dump", ["-a", "/format", "-a", "/complete", p])
        else { return }
        XCTAssertTrue(tok.out.contains("(0): 1, 504, 2368, 13, 0"), tok.out)
        XCTAssertTrue(pat.out.contains("(0,0,0): 0.5, 0.25, 0.25, 0.25, 0.25,"), pat.out)
        XCTAssertTrue(attrs.out.contains(#"(0): "headlight-run""#), attrs.out)
        XCTAssertTrue(attrs.out.contains("(0): 1"), attrs.out)
        let strs = try run("h5dump", ["-d", "/token_strings", p])!
        XCTAssertTrue(strs.out.contains(#"(0): "<s>", " The", " cat", " sat", ".""#), strs.out)
    }

    func testH5pyReadsTheFileIfInstalled() throws {
        guard let probe = try run("python3", ["-c", "import h5py, numpy"]), probe.status == 0 else {
            throw XCTSkip("h5py not importable; skipping the Python interop check")
        }
        let p = path("sample.h5")
        try writeSample(p)
        let script = """
            import sys, h5py, numpy as np
            f = h5py.File(sys.argv[1], "r")
            pat = f["captures/blocks.1.attn.hook_pattern"]
            assert pat.dtype == np.float16, pat.dtype
            assert pat.shape == (2, 3, 5), pat.shape
            a = pat[()]
            assert a[0, 0, 0] == np.float16(0.5) and a[0, 0, 1] == np.float16(0.25), a
            assert list(pat.attrs["heads"]) == [0, 3]
            assert pat.attrs["form"] == "rows" and isinstance(pat.attrs["form"], str), repr(pat.attrs["form"])
            assert list(pat.attrs["axes"]) == ["head", "query", "key"], pat.attrs["axes"]
            assert f.attrs["format"] == "headlight-run" and isinstance(f.attrs["format"], str)
            assert f.attrs["complete"] == 1
            assert list(f.attrs["command_line"]) == ["headlight", "trace"], f.attrs["command_line"]
            assert f["tokens"].dtype == np.int32 and list(f["tokens"][()]) == [1, 504, 2368, 13, 0]
            assert f["tokens"].attrs["prompt"] == "The cat sat."
            toks = f["token_strings"].asstr()[()]
            assert list(toks) == ["<s>", " The", " cat", " sat", "."], toks
            r = f["captures/blocks.0.hook_resid_post"]
            assert r.maxshape == (None, 8) and r.compression == "gzip" and r.shuffle
            assert (r[()] == np.arange(16, dtype=np.float32).reshape(2, 8)).all()
            x = np.float32([1 + 2**-11, 65520, 0.1])
            assert (x.astype(np.float16).view(np.uint16) == [0x3c00, 0x7c00, 0x2e66]).all()
            print("h5py", h5py.__version__, "OK")
            """
        let sp = path("check.py")
        try script.write(toFile: sp, atomically: true, encoding: .utf8)
        let r = try run("python3", [sp, p])!
        print(r.out, r.err)
        XCTAssertEqual(r.status, 0, r.err)

        // and the other way: files written by h5py (its own float16, fixed-length strings, int16 attrs)
        let q = path("from_h5py.h5")
        let writer = """
            import sys, h5py, numpy as np
            with h5py.File(sys.argv[1], "w") as f:
                f.create_dataset("h", data=np.array([0.5, -2, 65504, 1e-7], dtype=np.float16))
                f.create_dataset("fixed", data=np.array([b"ab", b"cde"], dtype="S4"))
                f.create_dataset("vlen", data=["x", "yé"], dtype=h5py.string_dtype())
                f.attrs["name"] = "plain str"
                f.attrs["fixed_attr"] = np.bytes_(b"fixed")
                f.attrs["small"] = np.int16(-7)
                f.attrs["vec"] = np.arange(3, dtype=np.float32)
            """
        let wp = path("write.py")
        try writer.write(toFile: wp, atomically: true, encoding: .utf8)
        let wr = try run("python3", [wp, q])!
        XCTAssertEqual(wr.status, 0, wr.err)
        let f = try H5File.open(q)
        XCTAssertEqual(try f.dataset("h").elementType, .float16)
        XCTAssertEqual(try f.dataset("h").read(Float.self), [0.5, -2, 65504, Half.round(1e-7)])
        XCTAssertEqual(try f.dataset("fixed").readStrings(), ["ab", "cde"])
        XCTAssertEqual(try f.dataset("vlen").readStrings(), ["x", "yé"])
        XCTAssertEqual(try f.stringAttribute("name"), "plain str")
        XCTAssertEqual(try f.stringAttribute("fixed_attr"), "fixed")
        XCTAssertEqual(try f.intAttribute("small"), -7)
        XCTAssertEqual(try f.doublesAttribute("vec"), [0, 1, 2])
    }
}
