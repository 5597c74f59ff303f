import Foundation
import TraceStore
import XCTest

@testable import HeadlightCLI

/// `headlight trace --prompts FILE.jsonl` on the default model: every prompt of a 3-prompt batch
/// equals its single-prompt trace bit for bit (captures, top-k indices, tokens, token strings,
/// attributes); a batch stopped after one prompt resumes from `.partial` without redoing it and
/// redoes a prompt whose group was left unfinished; bad prompt files fail before any work with
/// the file and line in the message. Skipped without the binary or the default model.
final class TraceBatchCLITests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        guard FileManager.default.fileExists(atPath: InspectTests.modelURL.path) else {
            throw XCTSkip("default model not found at \(InspectTests.modelURL.path) (run scripts/fetch-model.sh)")
        }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("headlight-batch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    static let hooks = [
        "--hooks", "blocks.1.attn.hook_pattern,blocks.-1.hook_resid_post,blocks.2.attn.hook_z,logits", "--heads", "0,4",
        "--queries", "last:3"
    ]
    static let lines = [
        #"{"prompt": "The capital of France is", "name": "france"}"#,
        #"{"prompt": "When Mary and John went to the store, John gave a drink to", "generate": 2}"#,
        "",
        #"{"prompt": "Name a colour.", "name": "chat-1", "chat": true, "system": "Be brief."}"#
    ]

    func write(_ lines: [String], _ name: String = "prompts.jsonl") throws -> String {
        let url = dir.appendingPathComponent(name)
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// Every dataset under `prefix` (relative name -> (type, shape, raw bytes as numbers or strings)).
    func contents(_ path: String, _ prefix: String) throws -> [String: String] {
        let f = try RunFile.open(path, allowIncomplete: true)
        defer { try? f.close() }
        var out: [String: String] = [:]
        func visit(_ rel: String) throws {
            let full = prefix + rel
            for name in try f.group(full.isEmpty ? "/" : full).children() {
                let child = rel + "/" + name
                if try f.kind(of: prefix + child) == .group {
                    try visit(child)
                    continue
                }
                let ds = try f.dataset(prefix + child)
                var attrs: [String] = []
                for a in try ds.attributeNames().sorted() {
                    attrs.append("\(a)=\(String(describing: try ds.attributeIfPresent(a)))")
                }
                let data: String
                switch ds.elementType {
                case .float32:
                    data = try ds.read(Float.self).map { String($0.bitPattern, radix: 16) }.joined(separator: ",")
                case .int32: data = try ds.read(Int32.self).map(String.init).joined(separator: ",")
                case .int64: data = try ds.read(Int64.self).map(String.init).joined(separator: ",")
                default: data = try ds.readStrings().joined(separator: "\u{1}")
                }
                out[child] = "\(ds.elementType) \(try ds.shape) \(attrs) \(data)"
            }
        }
        try visit("")
        return out
    }

    func testEachPromptEqualsItsSingleTraceBitForBit() throws {
        let prompts = try write(Self.lines)
        let batch = dir.appendingPathComponent("batch.h5").path
        let r = try HeadlightProcess.run(["trace", "--prompts", prompts] + Self.hooks + ["--ignore-eos", "-o", batch])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("3 prompts (3 traced now, 0 resumed)"), r.stderr)
        let singles: [(String, [String])] = [
            ("france", ["--prompt", "The capital of France is"]),
            ("0001", ["--prompt", "When Mary and John went to the store, John gave a drink to", "--generate", "2"]),
            ("chat-1", ["--prompt", "Name a colour.", "--chat", "--system", "Be brief."])
        ]
        let f = try RunFile.open(batch)
        XCTAssertEqual(try f.group("inputs").attributeIfPresent("names")?.stringsValue, ["france", "0001", "chat-1"])
        XCTAssertEqual(try f.group("inputs/chat-1").attributeIfPresent("line")?.intValue, 4)
        XCTAssertFalse(try f.exists("tokens"), "a batch file has no root /tokens")
        XCTAssertFalse(try f.exists("captures"), "a batch file has no root /captures")
        try f.close()
        for (name, args) in singles {
            let single = dir.appendingPathComponent("\(name).h5").path
            let s = try HeadlightProcess.run(["trace"] + args + Self.hooks + ["--ignore-eos", "--quiet", "-o", single])
            XCTAssertEqual(s.status, 0, s.stderr)
            let want = try contents(single, ""), got = try contents(batch, "/inputs/\(name)")
            XCTAssertEqual(want.count, 6, "tokens, token_strings and 4 captures: \(want.keys.sorted())")
            XCTAssertEqual(Set(got.keys), Set(want.keys), name)
            for (k, v) in want { XCTAssertEqual(got[k], v, "\(name): \(k) differs") }
        }
    }

    func testStoppedBatchResumesWithoutRedoingFinishedPrompts() throws {
        let prompts = try write(Self.lines)
        let out = dir.appendingPathComponent("resume.h5").path
        let args = ["trace", "--prompts", prompts] + Self.hooks + ["-o", out]
        let first = try HeadlightProcess.run(args + ["--stop-after", "2"])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        let partial = out + ".partial"
        // Make the second prompt look killed mid-write: no `complete`, and a stray dataset.
        let f = try H5File.openForAppend(partial)
        let g = try f.group("inputs/0001")
        try g.removeAttribute("complete")
        let france = try contents(partial, "/inputs/france")
        try f.close()

        // A different plan is refused, naming what differs.
        let other = try HeadlightProcess.run(args.map { $0 == "last:3" ? "last:2" : $0 })
        XCTAssertEqual(other.status, 1)
        XCTAssertTrue(other.stderr.contains("plan_sha256"), other.stderr)

        let second = try HeadlightProcess.run(args)
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertTrue(second.stderr.contains("3 prompts (2 traced now, 1 resumed)"), second.stderr)
        XCTAssertFalse(second.stderr.contains("[1/3] france"), "france was finished: \(second.stderr)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: partial))
        XCTAssertEqual(try contents(out, "/inputs/france"), france)
        let fresh = dir.appendingPathComponent("fresh.h5").path
        XCTAssertEqual(try HeadlightProcess.run(["trace", "--prompts", prompts] + Self.hooks + ["-o", fresh]).status, 0)
        XCTAssertEqual(try contents(out, "/inputs/0001"), try contents(fresh, "/inputs/0001"))
        XCTAssertEqual(try contents(out, "/inputs/chat-1"), try contents(fresh, "/inputs/chat-1"))
    }

    func testBadPromptFilesNameFileAndLine() throws {
        let cases: [([String], String)] = [
            ([], "holds no prompts"),
            (["   ", ""], "holds no prompts"),
            ([#"{"prompt": "a"}"#, #"{"prompt": "b""#], ":2: not valid JSON"),
            ([#"["a"]"#], ":1: expected a JSON object, found an array"),
            ([#"{"name": "x"}"#], ":1: missing \"prompt\""),
            ([#"{"prompt": 3}"#], ":1: \"prompt\" must be a string, found a number"),
            ([#"{"prompt": ""}"#], ":1: \"prompt\" is empty"),
            (
                [#"{"prompt": "a", "name": "x"}"#, "", #"{"prompt": "b", "name": "x"}"#],
                ":3: duplicate name \"x\" (line 1"
            ),
            ([#"{"prompt": "a"}"#, #"{"prompt": "b", "name": "0000"}"#], ":2: duplicate name \"0000\""),
            ([#"{"prompt": "a", "name": "../x"}"#], ":1: \"name\" \"../x\" is not a valid prompt name"),
            ([#"{"prompt": "a", "name": "a b"}"#], "is not a valid prompt name"),
            ([#"{"prompt": "a", "name": "_x"}"#], "is not a valid prompt name"),
            ([#"{"prompt": "a", "chat": 1}"#], ":1: \"chat\" must be true or false, found a number"),
            ([#"{"prompt": "a", "generate": 1.5}"#], ":1: \"generate\" must be a whole number >= 0, found 1.5"),
            ([#"{"prompt": "a", "generate": -1}"#], "found -1"),
            ([#"{"prompt": "a", "temperature": 1}"#], ":1: unknown key \"temperature\""),
            ([#"{"prompt": "a\u0000b"}"#], ":1: \"prompt\" contains a NUL character")
        ]
        for (i, (lines, needle)) in cases.enumerated() {
            let path = dir.appendingPathComponent("bad\(i).jsonl")
            try lines.joined(separator: "\n").write(to: path, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try PromptBatchFile.read(path.path), "case \(i)") { e in
                let text = (e as? LocalizedError)?.errorDescription ?? "\(e)"
                XCTAssertTrue(text.hasPrefix("--prompts \(path.path)"), text)
                XCTAssertTrue(text.contains(needle), "case \(i): \(text) lacks \(needle)")
            }
        }
        XCTAssertThrowsError(try PromptBatchFile.read(dir.appendingPathComponent("missing.jsonl").path)) {
            XCTAssertTrue("\($0.localizedDescription)".contains("cannot read the file"), "\($0)")
        }
        let ok = try PromptBatchFile.parse(
            Data(
                (#"{"prompt": "a"}"# + "\n\n" + #"{"prompt": "b", "name": "B-2_x", "generate": 3, "chat": false}"#).utf8
            ),
            path: "p.jsonl")
        XCTAssertEqual(ok.entries.map(\.name), ["0000", "B-2_x"])
        XCTAssertEqual(ok.entries.map(\.line), [1, 3])
        XCTAssertEqual(ok.entries[1].generate, 3)
        XCTAssertEqual(ok.entries[1].chat, false)

        // The CLI: exit 1, the message, nothing written.
        let out = dir.appendingPathComponent("bad.h5").path
        let bad = try write([#"{"prompt": "a"}"#, #"{"prompt": "b", "name": "a/b"}"#], "bad.jsonl")
        let r = try HeadlightProcess.run(["trace", "--prompts", bad, "--hooks", "pattern", "-o", out])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("bad.jsonl:2: \"name\" \"a/b\" is not a valid prompt name"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + ".partial"))
        let both = try HeadlightProcess.run([
            "trace", "--prompts", bad, "--prompt", "x", "--hooks", "pattern", "-o", out
        ])
        XCTAssertEqual(both.status, 2, both.stderr)
        let restart = try HeadlightProcess.run(["trace", "--prompt", "x", "--restart", "--hooks", "pattern", "-o", out])
        XCTAssertEqual(restart.status, 2, restart.stderr)
        // "system" without chat (known only with the command's --chat).
        let sys = try write([#"{"prompt": "a"}"#, #"{"prompt": "b", "system": "s"}"#], "system.jsonl")
        let rs = try HeadlightProcess.run(["trace", "--prompts", sys, "--hooks", "pattern", "-o", out])
        XCTAssertEqual(rs.status, 1, rs.stderr)
        XCTAssertTrue(rs.stderr.contains("system.jsonl:2: \"system\" needs chat"), rs.stderr)
        // A prompt longer than the context fails before the first prompt runs, naming it.
        let long = try write(
            [#"{"prompt": "a"}"#, "{\"prompt\": \"\(String(repeating: "word ", count: 9000))\", \"name\": \"long\"}"],
            "long.jsonl")
        let l = try HeadlightProcess.run(["trace", "--prompts", long, "--hooks", "pattern", "-o", out])
        XCTAssertNotEqual(l.status, 0)
        XCTAssertTrue(l.stderr.contains("prompt \"long\" (long.jsonl line 2)"), l.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + ".partial"))
    }
}
