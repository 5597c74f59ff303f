import Foundation
import XCTest

/// `headlight membership` run as a subprocess: input errors (exit 1, a message naming the
/// culprit), an end-to-end run on a tiny set with the real model, and score-only mode.
/// The binary and model are found as in `InspectTests`.
final class MembershipCommandTests: XCTestCase {
    typealias Run = HeadlightRun

    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("headlight-membership-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func headlight(_ args: [String], environment: [String: String]? = nil) throws -> Run {
        try HeadlightProcess.run(args, environment: environment)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let u = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: u.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: u, atomically: true, encoding: .utf8)
        return u.path
    }

    func requireModel() throws -> String {
        let m = InspectTests.modelURL
        guard FileManager.default.fileExists(atPath: m.path) else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("CI: default model missing") }
            throw XCTSkip("default model not found at \(m.path) (run scripts/fetch-model.sh)")
        }
        return m.path
    }

    func assertError(_ run: Run, contains text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(run.status, 1, run.stderr, file: file, line: line)
        XCTAssertTrue(run.stderr.hasPrefix("error: "), run.stderr, file: file, line: line)
        XCTAssertTrue(run.stderr.contains(text), "expected \(text) in: \(run.stderr)", file: file, line: line)
        XCTAssertEqual(run.stdout, "", file: file, line: line)
    }

    // MARK: Errors (no model needed: input is checked first)

    func testMissingDirectory() throws {
        let members = try write("m.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n")
        let missing = dir.appendingPathComponent("no-such-dir").path
        let r = try headlight([
            "membership", "--members", members, "--nonmembers", missing, "-o", dir.appendingPathComponent("o.h5").path
        ])
        assertError(r, contains: "\(missing): no such file or directory")
    }

    func testEmptySet() throws {
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let members = try write("m.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n")
        let r = try headlight(["membership", "--members", members, "--nonmembers", empty.path])
        assertError(r, contains: "no documents")
        let blank = try write("blank.jsonl", "\n\n")
        assertError(try headlight(["membership", "--score", blank]), contains: "no documents")
    }

    func testMalformedJSONLNamesTheLine() throws {
        let bad = try write("bad.jsonl", "{\"text\": \"a\"}\n\n{\"text\": \"b\"\n")
        let good = try write("good.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n")
        assertError(
            try headlight(["membership", "--members", good, "--nonmembers", bad]),
            contains: "\(bad):3: malformed JSON line")
        let noText = try write("notext.jsonl", "{\"body\": \"a\"}\n")
        assertError(try headlight(["membership", "--score", noText]), contains: "\(noText):1: missing \"text\" string")
    }

    func testSingleClass() throws {
        let good = try write("good.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n")
        let r = try headlight(["membership", "--members", good])
        assertError(r, contains: "single class")
        XCTAssertTrue(r.stderr.contains("hint: use --score"), r.stderr)
        let one = try write("one.jsonl", "{\"text\": \"a\"}\n")
        assertError(
            try headlight(["membership", "--members", good, "--nonmembers", one]),
            contains: "at least 2 members and 2 non-members (got 2 and 1)")
    }

    func testSetFileWithMissingFilesGivesTheHint() throws {
        _ = try write("set/members.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n")
        _ = try write("set/non.json", #"{"root": "gone", "hint": "run the fetch script", "files": ["x.py"]}"#)
        let set = try write(
            "set/set.json", #"{"members": {"path": "members.jsonl"}, "nonmembers": {"manifest": "non.json"}}"#)
        let r = try headlight(["membership", "--set", set])
        assertError(r, contains: "1 of 1 files missing")
        XCTAssertTrue(r.stderr.contains("hint: run the fetch script"), r.stderr)
    }

    func testBadOptionsAreUsageErrors() throws {
        let good = try write("good.jsonl", "{\"text\": \"a\"}\n")
        let r = try headlight(["membership", "--score", good, "--stride", "128"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("--stride"), r.stderr)
        XCTAssertEqual(try headlight(["membership", "--score", good, "--normalization", "bogus"]).status, 2)
    }

    // MARK: End to end with the real model

    static let memberTexts = [
        "import os\nimport sys\n\n\ndef main():\n    for name in sorted(os.listdir('.')):\n        print(name)\n"
            + "    return 0\n\n\nif __name__ == '__main__':\n    sys.exit(main())\n",
        "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n"
            + "        self.items.append(item)\n\n    def pop(self):\n        return self.items.pop()\n\n"
            + "    def is_empty(self):\n        return not self.items\n",
        "def factorial(n):\n    \"\"\"Return n!.\"\"\"\n    if n < 2:\n        return 1\n"
            + "    return n * factorial(n - 1)\n\n\nprint(factorial(10))\n",
        "with open('data.txt') as f:\n    lines = [line.strip() for line in f]\nwords = {}\nfor line in lines:\n"
            + "    for w in line.split():\n        words[w] = words.get(w, 0) + 1\n"
            + "print(sorted(words.items(), key=lambda kv: -kv[1])[:10])\n"
    ]
    static let nonmemberTexts = [
        "Zorblax quintessence flummoxed the vermiculite; seventeen pangolins adjudicated a marmalade referendum at "
            + "dawn.",
        "Qwrt plinth 88 vex jackdaw: the obsidian accordion whispered hexadecimal lullabies to a confused barometer.",
        "Nine crystalline yaks debated thermodynamics beneath a lavender aqueduct while the moon filed its taxes late.",
        "Sprocket, ferrule, and gimbal: the untranslatable cartographer folded seven umbrellas into a single teacup."
    ]

    func jsonl(_ texts: [String]) -> String {
        texts.enumerated().map { i, t in
            let data = try! JSONSerialization.data(withJSONObject: ["name": "doc\(i)", "text": t])
            return String(decoding: data, as: UTF8.self)
        }.joined(separator: "\n") + "\n"
    }

    func testEndToEndTinySet() throws {
        let model = try requireModel()
        let members = try write("members.jsonl", jsonl(Self.memberTexts))
        let nonDir = dir.appendingPathComponent("non")
        for (i, t) in Self.nonmemberTexts.enumerated() { _ = try write("non/n\(i).txt", t) }
        let unlabeled = try write("score.jsonl", jsonl([Self.memberTexts[0]]))
        let out = dir.appendingPathComponent("membership.h5").path
        let r = try headlight([
            "membership", "-m", model, "--members", members, "--nonmembers", nonDir.path,
            "--score", unlabeled, "--window", "32", "--stride", "31", "--folds", "2",
            "--bootstrap", "200", "--json", "-o", out
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out))
        XCTAssertTrue(r.stderr.contains("membership: 9/9 documents"), r.stderr)
        let json = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        XCTAssertEqual(json["members"] as? Int, 4)
        XCTAssertEqual(json["nonmembers"] as? Int, 4)
        XCTAssertEqual(json["unlabeled"] as? Int, 1)
        XCTAssertEqual(json["run_file"] as? String, out)
        XCTAssertGreaterThan(json["tokens_per_second"] as? Double ?? 0, 0)
        let methods = try XCTUnwrap(json["methods"] as? [[String: Any]])
        XCTAssertEqual(
            methods.map { $0["name"] as? String },
            [
                "classifier_none", "classifier_ratio", "classifier_max",
                "perplexity", "zlib_ratio", "min_k_prob", "blind_surface"
            ])
        for m in methods {
            let auc = try XCTUnwrap(m["auc"] as? Double)
            XCTAssertTrue((0...1).contains(auc))
            XCTAssertNotNil(m["ci_lower"] as? Double)
            XCTAssertTrue((m["caveat"] as? String ?? "").contains("distribution"))
        }
        // Ordinary code is far less surprising to the model than word salad.
        let ppl = methods.first { $0["name"] as? String == "perplexity" }
        XCTAssertEqual(ppl?["auc"] as? Double, 1.0)
        let docs = try XCTUnwrap(json["documents"] as? [[String: Any]])
        XCTAssertEqual(docs.count, 9)
        XCTAssertEqual(docs.last?["label"] as? NSNull, NSNull())
        // The same unlabeled text as member 0 gets the same perplexity.
        XCTAssertEqual(docs[8]["perplexity"] as! Double, docs[0]["perplexity"] as! Double, accuracy: 1e-9)

        // The summary table (no --json) prints every AUC with the caveat, and the run file is replaced atomically.
        let t = try headlight([
            "membership", "-m", model, "--members", members, "--nonmembers", nonDir.path,
            "--window", "32", "--stride", "31", "--folds", "2", "--bootstrap", "100",
            "--classifier", "forest", "--trees", "20", "--no-progress", "-o", out
        ])
        XCTAssertEqual(t.status, 0, t.stderr)
        XCTAssertTrue(t.stdout.contains("blind: forest on surface features"), t.stdout)
        XCTAssertTrue(t.stdout.contains("95% CI"), t.stdout)
        XCTAssertTrue(t.stdout.contains("* Member and non-member sets"), t.stdout)
        XCTAssertEqual(t.stderr, "")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])
    }

    func testScoreOnly() throws {
        let model = try requireModel()
        let docs = try write("docs.jsonl", jsonl([Self.memberTexts[1], Self.nonmemberTexts[1]]))
        let out = dir.appendingPathComponent("score.h5").path
        let r = try headlight(["membership", "-m", model, "--score", docs, "--no-progress", "-o", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("no labeled documents"), r.stdout)
        XCTAssertTrue(r.stdout.contains("2 unlabeled"), r.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out))
    }
}
