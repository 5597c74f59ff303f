import Analysis
import Foundation
import TraceStore
import XCTest

/// Damaged run files through `headlight report` (issue 17 item 7). Run files from others are
/// untrusted input, and some damage crashes libhdf5 itself (SIGSEGV in H5HG_read on a bad
/// global-heap object): `report` reads each file in a checker child process first and turns
/// such a crash into "run file X is corrupt (reading crashed libhdf5 in a checker process)".
/// A seeded corpus of byte-flipped and truncated copies of a small valid run file must never
/// kill `report` with a signal, and every failure must be a clear error naming the file.
/// No model needed: the run file is written here.
final class RunFileFuzzCLITests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        guard InspectTests.binary != nil else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("CI: headlight binary not found") }
            throw XCTSkip("headlight binary not found")
        }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hl-fuzz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    /// A unique root attribute value, to find its global-heap object in the file's bytes.
    static let marker = "headlight-fuzz-marker-5c1e"

    /// A small detection-like run file: root header (vlen string attributes), tokens and token
    /// strings, a gzip-compressed float16 capture, and a `/retrieval_heads` group with scores and
    /// the trials record table (vlen string columns) — the structures `report` reads.
    static func writeRunFile(_ path: String) throws {
        let w = try RunFileWriter(path: path)
        try RunFileHeader(
            headlightVersion: "0.1.0", command: "retrieval-heads",
            commandLine: ["headlight", "retrieval-heads", "-o", "x.h5"], modelFile: "tiny.gguf",
            modelSHA256: String(repeating: "ab", count: 32), modelName: marker,
            dimensions: ["n_layers": 4, "n_heads": 3]
        ).write(to: w.file)
        let f = w.file
        try f.createDataset("tokens", data: (0..<12).map { Int32($0 * 7) }, shape: [12])
        try f.createDataset("token_strings", type: .string, shape: [12]).write(strings: (0..<12).map { "tok\($0)" })
        let pattern = (0..<(3 * 12 * 12)).map { Float($0 % 12) / 12 } // [head, query, key]
        try f.createDataset(
            "captures/blocks.0.attn.hook_pattern", type: .float16, shape: [3, 12, 12], chunks: [1, 12, 12], gzip: 4,
            shuffle: true
        ).write(pattern)
        let g = try f.createGroup("retrieval_heads")
        try g.setAttribute("n_layers", 4)
        try g.setAttribute("n_heads", 3)
        try g.setAttribute("threshold", 0.1)
        try g.setAttribute("suite", "{}")
        try g.setAttribute("suite_name", "tiny")
        try g.setAttribute("planned_trials", 3)
        try g.setAttribute("counted_trials", 2)
        try g.createDataset("scores", data: [0, 0.2, 0, 0, 0.5, 0, 0.05, 0, 0, 0, 0, 0.3], shape: [4, 3])
        let t = try RecordTable(
            group: try g.createGroup("trials"), columns: RetrievalRunFile.columns(layers: 4, heads: 3))
        for i in 0..<3 {
            try t.append([
                "trial_index": .int(i), "needle_id": .string("needle-\(i)"), "needle_index": .int(0),
                "length": .int(500 * (i + 1)), "depth": .double(Double(i) * 50), "prompt_tokens": .int(500 * (i + 1)),
                "span_start": .int(10), "span_end": .int(20), "response": .string("answer \(i)"),
                "generated_tokens": .int(2), "stop": .string("newline"), "rouge1_recall": .double(i == 0 ? 100 : 20),
                "success": .int(i == 0 ? 1 : 0), "counted": .int(i < 2 ? 1 : 0),
                "head_scores": .doubles((0..<12).map { Double(($0 + i) % 5) / 10 }),
                "prefilled_tokens": .int(500), "seconds": .double(1)
            ])
        }
        try w.finalize()
    }

    /// SplitMix64: a seeded generator, so the corpus is the same on every run.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// One mutant: 15% truncations, otherwise 1-8 bytes replaced by random values or bit flips.
    static func mutate(_ data: Data, _ rng: inout SplitMix64) -> Data {
        var b = [UInt8](data)
        if Double.random(in: 0..<1, using: &rng) < 0.15 {
            return Data(b.prefix(Int.random(in: 0..<b.count, using: &rng)))
        }
        for _ in 0..<Int.random(in: 1...8, using: &rng) {
            let p = Int.random(in: 0..<b.count, using: &rng)
            if Bool.random(using: &rng) {
                b[p] = UInt8.random(in: 0...255, using: &rng)
            } else {
                b[p] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
            }
        }
        return Data(b)
    }

    /// `headlight args` with output to files; returns how it ended and its stderr.
    static func run(_ args: [String], in dir: URL) throws -> (Process.TerminationReason, Int32, String) {
        let err = dir.appendingPathComponent("stderr-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: err.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: err) }
        let h = try FileHandle(forWritingTo: err)
        let p = Process()
        p.executableURL = try XCTUnwrap(InspectTests.binary)
        p.arguments = args
        p.currentDirectoryURL = dir
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = h
        // A crash of `report` itself must show as a signal here, without a slow crash report.
        // (`report` does no BLAS: one OpenBLAS thread keeps idle threads from spinning on 2 cores.)
        p.environment = ProcessInfo.processInfo.environment.merging(
            ["SWIFT_BACKTRACE": "enable=no", "OPENBLAS_NUM_THREADS": "1"]
        ) { $1 }
        try p.run()
        p.waitUntilExit()
        try h.close()
        return (p.terminationReason, p.terminationStatus, try String(contentsOf: err, encoding: .utf8))
    }

    /// 520 seeded mutants, each through `report --allow-incomplete` in its own process (two more
    /// at once than there are cores): no signal, exit 0 or 1, and every exit 1 an `error:` naming
    /// the file. Prints how the corpus fared.
    func testSeededFuzzOfReportNeverCrashes() throws {
        let valid = dir.appendingPathComponent("valid.h5").path
        try Self.writeRunFile(valid)
        let ok = try Self.run(["report", "--allow-incomplete", valid, "-o", "valid-report"], in: dir)
        XCTAssertEqual(ok.0, .exit)
        XCTAssertEqual(ok.1, 0, ok.2)

        let data = try Data(contentsOf: URL(fileURLWithPath: valid))
        var rng = SplitMix64(state: 0x5EED_0017)
        let count = 520
        var mutants: [String] = []
        for i in 0..<count {
            let m = dir.appendingPathComponent("m\(i).h5").path
            try Self.mutate(data, &rng).write(to: URL(fileURLWithPath: m))
            mutants.append(m)
        }
        let lock = NSLock()
        var failures: [String] = []
        var tally: [String: Int] = [:]
        // Processes spend most of their time starting up and waiting: a few more than the cores.
        let workers = ProcessInfo.processInfo.activeProcessorCount + 2
        let start = Date()
        let dir = self.dir!
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for i in stride(from: w, to: count, by: workers) {
                let m = mutants[i]
                let outcome: String
                var failure: String?
                do {
                    let (reason, status, stderr) = try Self.run(
                        ["report", "--allow-incomplete", m, "-o", "r\(i)"], in: dir)
                    let first = stderr.split(separator: "\n").first.map(String.init) ?? ""
                    if reason != .exit {
                        outcome = "signal"
                        failure = "m\(i).h5: report died of signal \(status): \(stderr.suffix(300))"
                    } else if status == 0 {
                        outcome = "report written"
                    } else if status == 1 && first.hasPrefix("error: ") && first.contains(m) {
                        outcome =
                            first.contains("crashed libhdf5 in a checker process") ? "crash isolated" : "clear error"
                    } else {
                        outcome = "unclear"
                        failure =
                            "m\(i).h5: exit \(status) without a clear error naming the file: \(stderr.prefix(300))"
                    }
                } catch {
                    outcome = "not run"
                    failure = "m\(i).h5: \(error)"
                }
                lock.lock()
                tally[outcome, default: 0] += 1
                if let failure { failures.append(failure) }
                lock.unlock()
            }
        }
        let seconds = Date().timeIntervalSince(start)
        print(
            "run-file fuzz: \(count) mutants of a \(data.count)-byte run file in \(String(format: "%.1f", seconds)) s "
                + "(\(workers) at once): \(tally.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" })")
        XCTAssertEqual(failures, [], "\(failures.count) mutants failed badly")
        XCTAssertEqual(tally.values.reduce(0, +), count)
        XCTAssertGreaterThan(tally["clear error", default: 0], count / 10, "the mutations should break many files")
    }

    /// A deterministic libhdf5 crash: the global-heap object holding a root string attribute claims
    /// 2^40 bytes, so reading the attribute makes H5HG_read copy far past the heap (SIGSEGV). The
    /// checker dies of it (shown directly); `report`, `report composition --heads-from` and
    /// `ablate --scores` each exit 1 with "run file X is corrupt".
    func testHeapCorruptionCrashIsIsolated() throws {
        let path = dir.appendingPathComponent("heap.h5").path
        try Self.writeRunFile(path)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let needle = [UInt8](Self.marker.utf8)
        let at = try XCTUnwrap(
            (0...(bytes.count - needle.count)).first { Array(bytes[$0..<($0 + needle.count)]) == needle },
            "marker not in the file")
        // Global heap object: index (2), references (2), reserved (4), size (8), data.
        let sizeField = at - 8
        let size = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[sizeField + $1]) << (8 * UInt64($1)) }
        XCTAssertEqual(size, UInt64(needle.count), "heap object layout")
        for k in 0..<8 { bytes[sizeField + k] = UInt8(truncatingIfNeeded: (UInt64(1) << 40) >> (8 * UInt64(k))) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let direct = try Self.run(["check-run-file", path], in: dir)
        XCTAssertEqual(direct.0, .uncaughtSignal, "the damage should crash libhdf5: \(direct.2)")

        var commands = [
            ["report", "--allow-incomplete", path, "-o", "rep"],
            ["report", path, "-o", "rep"],
            ["ablate", "--scores", path, "--heads", "0.1", "-o", "abl.h5"]
        ]
        // `report composition` loads the model before it reads --heads-from.
        if FileManager.default.fileExists(atPath: InspectTests.modelURL.path) {
            commands.append(["report", "composition", "--heads-from", path, "-o", "comp.h5"])
        }
        for args in commands {
            let r = try Self.run(args, in: dir)
            XCTAssertEqual(r.0, .exit, "\(args[0]): \(r.2)")
            XCTAssertEqual(r.1, 1, "\(args): \(r.2)")
            XCTAssertTrue(
                r.2.contains("error: run file \(path) is corrupt (reading crashed libhdf5 in a checker process)"),
                "\(args): \(r.2)")
            XCTAssertTrue(r.2.contains("SIGSEGV"), r.2)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("rep").path))
    }

    /// The checker reads every object of an intact file and reports no problem.
    func testCheckerReadsAnIntactFile() throws {
        let path = dir.appendingPathComponent("ok.h5").path
        try Self.writeRunFile(path)
        let r = H5ReadCheck.readEverything(path)
        XCTAssertEqual(r.problems, [])
        // root, tokens, token_strings, captures, its dataset, retrieval_heads, scores, trials + 17 columns
        XCTAssertGreaterThanOrEqual(r.objects, 25)
        XCTAssertGreaterThan(r.attributes, 10)
        let c = try Self.run(["check-run-file", path], in: dir)
        XCTAssertEqual(c.0, .exit)
        XCTAssertEqual(c.1, 0, c.2)
    }
}
