import Foundation
import TraceStore
import XCTest

/// Issue 17 items 5, 8, 9, 10 and 11 as a user meets them from the command line: lengths past
/// the model's context, impossible captures, bad output paths, silently accepted nonsense,
/// and hostile text. Each is a clear error naming the option (usage errors exit 2) or a correct
/// result, never a crash, a huge allocation or a file left behind.
final class ArgumentSafetyCLITests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        guard FileManager.default.fileExists(atPath: InspectTests.modelURL.path) else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("CI: default model not found") }
            throw XCTSkip("default model not found at \(InspectTests.modelURL.path)")
        }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hl-args-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    private func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    private func leftovers() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !$0.hasPrefix("input") }.sorted()
    }

    /// Runs headlight and checks it exited (no signal) with `status`, stderr containing every
    /// fragment; returns stderr.
    @discardableResult
    private func expect(
        _ status: Int32, _ args: [String], _ fragments: [String], file: StaticString = #filePath, line: UInt = #line
    ) throws -> String {
        let r = try HeadlightProcess.run(args, currentDirectory: RetrievalCLITests.root)
        XCTAssertEqual(r.status, status, "\(args): \(r.stderr)", file: file, line: line)
        for f in fragments {
            XCTAssertTrue(r.stderr.contains(f), "\(args): missing \"\(f)\" in: \(r.stderr)", file: file, line: line)
        }
        return r.stderr
    }

    // MARK: item 5

    /// Every length is checked against the 8192-token context before a session (and its KV
    /// cache) exists: exit 2 naming the option and the limit, in seconds, with modest memory.
    func testLengthsBeyondTheContextAreUsageErrors() throws {
        let ctx = "context length of 8192"
        try expect(2, ["generate", "--max-context", "2000000000", "hi"], ["--max-context 2000000000", ctx])
        try expect(2, ["bench", "--prefill", "100000"], ["--prefill 100000", ctx])
        try expect(2, ["bench", "--decode", "100", "--context", "8100"], ["--decode 100", ctx])
        let suite = ["--probes", RetrievalCLITests.smoke, "--depths", "50", "-o", path("r.h5"), "--no-progress"]
        try expect(2, ["retrieval-heads", "--lengths", "20000"] + suite, ["--lengths", "20000", ctx])
        try expect(2, ["retrieval-heads", "--lengths", "9000"] + suite, ["--lengths", ctx])
        try expect(
            2, ["retrieval-heads", "--lengths", "500", "--max-new-tokens", "50000"] + suite,
            ["--max-new-tokens 50000", ctx])
        let words = String(repeating: "word ", count: 9000)
        try expect(2, ["trace", "--prompt", words, "--hooks", "logits", "-o", path("t.h5")], ["--generate", ctx])
        try makeDocuments()
        try expect(
            2,
            [
                "membership", "--window", "10000", "--stride", "100", "--members", path("input-m"),
                "--nonmembers", path("input-n"), "--folds", "2", "-o", path("m.h5")
            ], ["--window 10000", ctx])
        XCTAssertEqual(try leftovers(), [])
    }

    // MARK: item 8

    /// A capture estimated past --max-output (10 GB by default) is refused before anything is
    /// written, with the estimate; --top-k larger than the sequence is clamped to it.
    func testImpossibleCapturesAreRefusedAndTopKIsClamped() throws {
        let words = String(repeating: "word ", count: 4000)
        try expect(
            1, ["trace", "--prompt", words, "--hooks", "pattern", "-o", path("big.h5")],
            ["would take about 17.3 GB", "--max-output 10GB"])
        try expect(
            1, ["trace", "--prompt", "hello world", "--hooks", "pattern", "--max-output", "1kB", "-o", path("s.h5")],
            ["would take about", "--max-output 1kB"])
        try expect(
            2, ["trace", "--prompt", "hi", "--hooks", "pattern", "--max-output", "lots", "-o", path("s.h5")],
            ["--max-output"])
        XCTAssertEqual(try leftovers(), [])

        let out = path("k.h5")
        try expect(
            0,
            [
                "trace", "--prompt", "hello world", "--hooks", "blocks.0.attn.hook_pattern", "--top-k", "100000",
                "-o", out, "--quiet"
            ], [])
        let f = try RunFile.open(out)
        defer { try? f.close() }
        let shape = try f.dataset("captures/blocks.0.attn.hook_pattern").shape
        XCTAssertEqual(shape.last, shape[1], "top-k clamped to the sequence length: \(shape)")
        XCTAssertLessThan(shape.last ?? 0, 10)
    }

    // MARK: item 9

    /// Output paths are checked before the model loads, for every command that writes one, and
    /// failures after the writer exists leave no temporary file.
    func testOutputPathsAreValidatedUpFront() throws {
        let cmds: [[String]] = [
            ["trace", "--prompt", "hi", "--hooks", "logits"],
            ["retrieval-heads", "--probes", RetrievalCLITests.smoke],
            ["cite"], ["membership", "--score", RetrievalCLITests.smoke], ["query-heads"], ["profile"],
            ["report", "composition", "--heads", "1.1,2.2"]
        ]
        for c in cmds {
            try expect(2, c + ["-o", dir.path], ["is a directory"])
            try expect(2, c + ["-o", ""], ["empty"])
            try expect(2, c + ["-o", path("missing/x.h5")], ["does not exist"])
        }
        // One-character names (Foundation's deletingLastPathComponent trapped on them).
        let short = try HeadlightProcess.run(
            ["trace", "--prompt", "hi", "--hooks", "logits", "-o", "x", "--quiet"],
            currentDirectory: dir)
        XCTAssertEqual(short.status, 0, short.stderr)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("x"))
        FileManager.default.createFile(atPath: path("input.h5"), contents: Data("x".utf8))
        try expect(2, ["report", path("input.h5"), "-o", path("input.h5")], ["is a file, not a directory"])
        XCTAssertEqual(try leftovers(), [])
    }

    /// `membership` and `report composition` on a full disk (a file-size limit): exit 1, no
    /// 0-byte or partial temporary file left.
    func testDiskFullLeavesNoTemporaryFiles() throws {
        try makeDocuments()
        for kib in [1, 8] {
            let r = try limited(
                kib: kib,
                [
                    "membership", "--members", path("input-m"), "--nonmembers", path("input-n"), "--folds", "2",
                    "--bootstrap", "10", "--no-progress", "-o", path("m.h5")
                ])
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertEqual(try leftovers(), [], "ulimit -f \(kib): \(r.stderr)")
        }
        let r = try limited(kib: 4, ["report", "composition", "--heads", "1.1,2.2", "-o", path("c.h5")])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(try leftovers(), [], r.stderr)
    }

    // MARK: item 10

    func testSilentNonsenseIsRefused() throws {
        let scores = ["--scores", path("none.h5"), "-o", path("a.h5")]
        try expect(2, ["ablate", "--heads", ""] + scores, ["--heads is empty"])
        try expect(2, ["ablate", "--heads", "1.1,"] + scores, ["is not LAYER.HEAD"])
        try expect(2, ["report", "composition", "--heads", "1.1", "-o", path("c.h5")], ["at least two layers"])
        try expect(2, ["report", "composition", "--heads", "1.1,1.2", "-o", path("c.h5")], ["at least two layers"])

        // Directories of empty files: an error, no run file.
        for d in ["input-a", "input-b"] {
            try FileManager.default.createDirectory(atPath: path(d), withIntermediateDirectories: true)
            for i in 0..<3 { FileManager.default.createFile(atPath: path("\(d)/\(i).txt"), contents: Data()) }
        }
        try expect(
            1, ["membership", "--members", path("input-a"), "--nonmembers", path("input-b"), "-o", path("m.h5")],
            ["none of the 6 document(s) has text to score"])

        // A trace given where retrieval-heads results are expected: the hint must not suggest
        // writing over it.
        let trace = path("trace_run.h5")
        try expect(0, ["trace", "--prompt", "hi", "--hooks", "logits", "-o", trace, "--quiet"], [])
        let err = try expect(
            1, ["report", "composition", "--heads-from", trace, "-o", path("c.h5")], ["has no /retrieval_heads"])
        XCTAssertFalse(err.contains("-o \(trace)"), err)
        try expect(
            2, ["cite", "--retrieval-heads", trace, "--top", "500", "-o", path("c.h5"), "--no-progress"],
            ["--top 500 exceeds the model's 270 heads"])
        XCTAssertEqual(try leftovers(), ["trace_run.h5"])
    }

    /// --ppl-tokens beyond what the haystack holds after the trials' text is an error (it was a
    /// silent "n/a" perplexity).
    func testAblatePerplexityTokensBeyondTheHaystack() throws {
        let suite = ["--probes", RetrievalCLITests.smoke, "--lengths", "300", "--depths", "50", "--max-new-tokens", "5"]
        let scores = path("input-scores.h5")
        try expect(0, ["retrieval-heads"] + suite + ["-o", scores, "--no-progress"], [])
        try expect(
            2,
            ["ablate"] + suite + ["--scores", scores, "--heads", "1.1", "--ppl-tokens", "100000", "-o", path("a.h5")],
            ["--ppl-tokens 100000"])
        // A haystack of about 1,500 tokens: 2 x 1000 held-out tokens after the first 300 do not fit.
        let hay = path("input-hay.txt")
        try String(repeating: "The archive holds many plain words for the test. ", count: 150)
            .write(toFile: hay, atomically: true, encoding: .utf8)
        try expect(
            2,
            ["ablate"] + suite + [
                "--haystack", hay, "--scores", scores, "--heads", "1.1", "--ppl-tokens", "1000", "-o", path("a.h5")
            ], ["--ppl-tokens 1000", "haystack is too short"])
    }

    // MARK: item 11

    func testHostileTextIsRejectedOrEscaped() throws {
        // NUL in a prompt: refused before the model runs, naming the option or file.
        let nul = path("input-nul.txt")
        try Data("hello\u{0}world".utf8).write(to: URL(fileURLWithPath: nul))
        try expect(
            2, ["trace", "--prompt-file", nul, "--hooks", "logits", "-o", path("t.h5")],
            ["--prompt-file \(nul) contains a NUL byte (at byte 5)"])
        XCTAssertEqual(try leftovers(), [])

        // Negative counts parse and fail with the option's own rule.
        try expect(2, ["generate", "--max-tokens", "-5", "hi"], ["--max-tokens must be at least 1"])
        try expect(2, ["retrieval-heads", "--top", "-3", "-o", path("r.h5")], ["--top must be >= 0"])
        try expect(2, ["cite", "--show-heads", "-1", "-o", path("c.h5")], ["--show-heads must be >= 0"])

        // Untrusted text (a needle id from the command line, echoed in an error) is escaped.
        let evil = "bad\u{1B}[2J\u{202E}id"
        let err = try expect(
            1, ["retrieval-heads", "--probes", RetrievalCLITests.smoke, "--needle-ids", evil, "-o", path("r.h5")],
            ["bad\\u{1B}[2J\\u{202E}id"])
        XCTAssertFalse(err.contains("\u{1B}") || err.contains("\u{202E}"), err)
    }

    /// A suite whose name and needle ids carry terminal escapes: the sweep's summary, notes and
    /// progress lines show them escaped.
    func testHostileSuiteNamesAreEscapedInTheSummary() throws {
        let root = RetrievalCLITests.root.appendingPathComponent("probes/niah")
        let suite: [String: Any] = [
            "name": "evil\u{1B}]0;title\u{7}\u{202E}suite",
            "haystack": root.appendingPathComponent(
                "haystack/jargon-file-4.4.7.txt"
            ).path,
            "needles": root.appendingPathComponent("needles.jsonl").path, "needle_ids": ["beijing"],
            "lengths": [300], "depths": [50], "buffer": 200, "chat": true, "seed": 0, "max_new_tokens": 5
        ]
        let file = path("input-suite.json")
        try JSONSerialization.data(withJSONObject: suite).write(to: URL(fileURLWithPath: file))
        let r = try HeadlightProcess.run(["retrieval-heads", "--probes", file, "-o", path("r.h5")])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("evil\\u{1B}]0;title\\u{7}\\u{202E}suite"), r.stdout)
        for s in [r.stdout, r.stderr] {
            XCTAssertFalse(s.contains("\u{202E}") || s.contains("\u{7}") || s.contains("\u{1B}]"), s)
        }
    }

    /// `tokenize` keeps invalid UTF-8 from standard input as bytes, as its help says.
    func testTokenizeKeepsInvalidUTF8Bytes() throws {
        let input = path("input-bytes.txt")
        try Data([0x63, 0x61, 0x66, 0xE9, 0x20, 0x6F, 0x6B]).write(to: URL(fileURLWithPath: input)) // "caf\xE9 ok"
        let r = try shell("exec '\(try XCTUnwrap(InspectTests.binary).path)' tokenize --json < '\(input)'")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("\"<0xE9>\""), r.stdout)
        XCTAssertFalse(r.stdout.contains("\u{FFFD}"), r.stdout)
        let help = try HeadlightProcess.run(["tokenize", "--help"])
        XCTAssertTrue(help.stdout.contains("byte for byte"), help.stdout)
    }

    // MARK: helpers

    /// Three short member and three non-member documents under input-m/ and input-n/.
    private func makeDocuments() throws {
        for (name, text) in [("input-m", "The quick brown fox jumps over the lazy dog"), ("input-n", "Stock markets")] {
            try FileManager.default.createDirectory(atPath: path(name), withIntermediateDirectories: true)
            for i in 0..<3 {
                try "\(text) number \(i), again and again.".write(
                    toFile: path("\(name)/\(i).txt"), atomically: true, encoding: .utf8)
            }
        }
    }

    private func shell(_ script: String) throws -> HeadlightRun {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", script]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        p.currentDirectoryURL = RetrievalCLITests.root
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .exit, "died of a signal: \(String(decoding: e, as: UTF8.self))")
        return HeadlightRun(
            status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
            stderr: String(decoding: e, as: UTF8.self))
    }

    /// headlight under a file-size limit of `kib` KiB (SIGXFSZ ignored: writes fail with EFBIG).
    private func limited(kib: Int, _ args: [String]) throws -> HeadlightRun {
        let bin = try XCTUnwrap(InspectTests.binary).path
        let quoted = ([bin] + args).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        return try shell("trap '' XFSZ; ulimit -f \(kib); exec " + quoted.joined(separator: " ") + " > /dev/null")
    }
}
