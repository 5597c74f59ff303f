import Foundation
import XCTest
@testable import Analysis

final class NIAHSuiteTests: XCTestCase {
    // MARK: Shipped suites

    func testDefaultSuite() throws {
        let url = RepoPaths.probes.appendingPathComponent("default.json")
        let probe = try NIAHProbe.load(contentsOf: url)
        let s = probe.suite
        XCTAssertEqual(s.name, "default")
        XCTAssertEqual(s.lengths, [1000, 2000, 3000, 4000])
        XCTAssertEqual(s.depths, [0, 25, 50, 75, 100])
        XCTAssertEqual(s.buffer, 200)
        XCTAssertTrue(s.chat)
        XCTAssertEqual(s.maxNewTokens, 50)
        XCTAssertEqual(s.effectiveTemplate, NIAHSuite.chatTemplate)
        XCTAssertEqual(probe.needles.map(\.id), ["wmo", "beijing", "mr-green"])
        XCTAssertEqual(probe.cells.count, 3 * 4 * 5)
        XCTAssertEqual(probe.cells.first, NIAHCell(needleIndex: 0, length: 1000, depth: 0))
        XCTAssertEqual(probe.cells[5], NIAHCell(needleIndex: 0, length: 2000, depth: 0))
        XCTAssertEqual(probe.haystackFiles.map(\.lastPathComponent), ["jargon-file-4.4.7.txt"])
        XCTAssertGreaterThan(PythonText.wordCount(probe.haystackText), 4000)
        XCTAssertGreaterThan(probe.haystackText.utf8.count, 250_000)
    }

    func testNeedlesFile() throws {
        let needles = try NIAHProbe.loadNeedles(RepoPaths.probes.appendingPathComponent("needles.jsonl"))
        XCTAssertGreaterThanOrEqual(needles.count, 6)
        // Wu et al.'s three detection needles, verbatim (their typos included).
        XCTAssertEqual(needles[0].question, "What does a new report from WMO shows ?")
        XCTAssertEqual(needles[1].realNeedle, "take a walk in Chaoyang Park and have a cup of Espresso in the evening")
        XCTAssertEqual(
            needles[2].needle,
            "Mr Green is disliked by everyone because he is a mean person and also he can't ride a horse or dive a car."
        )
        for n in needles {
            XCTAssertTrue(n.needle.contains(n.keyword ?? "\u{0}"), n.id)
            XCTAssertTrue(n.question.hasSuffix(" ?"), n.id)
        }
        XCTAssertEqual(Set(needles.map(\.id)).count, needles.count)
    }

    func testSmokeSuite() throws {
        let probe = try NIAHProbe.load(contentsOf: RepoPaths.probes.appendingPathComponent("smoke.json"))
        XCTAssertEqual(probe.suite.lengths, [500, 1000])
        XCTAssertEqual(probe.suite.depths, [0, 50, 100])
        XCTAssertEqual(probe.needles.map(\.id), ["beijing"])
        XCTAssertEqual(probe.cells.count, 6)
    }

    func testRoundTripEncodesEffectiveValues() throws {
        let s = try NIAHSuite.load(contentsOf: RepoPaths.probes.appendingPathComponent("smoke.json"))
        let data = try JSONEncoder().encode(s)
        var back = try JSONDecoder().decode(NIAHSuite.self, from: data)
        back.baseDirectory = s.baseDirectory
        XCTAssertEqual(back, s)
        XCTAssertEqual(back.template, NIAHSuite.chatTemplate)
    }

    // MARK: Overrides

    func testOverrides() throws {
        let tmp = TempDir()
        let s = try NIAHSuite.load(contentsOf: RepoPaths.probes.appendingPathComponent("default.json"))
        let hay = tmp.write("h.txt", "One two three. Four five six.")
        let o = try s.applying(
            .init(haystack: hay.path, needleIDs: ["apple-cake"], lengths: [300], depths: [10, 90], seed: 7))
        XCTAssertEqual(o.lengths, [300])
        XCTAssertEqual(o.depths, [10, 90])
        XCTAssertEqual(o.seed, 7)
        XCTAssertEqual(o.haystackURL.path, hay.path)
        XCTAssertEqual(o.needlesURL, s.needlesURL) // untouched: still relative to the suite file
        let p = try NIAHProbe.load(suite: o)
        XCTAssertEqual(p.needles.map(\.id), ["apple-cake"])
        XCTAssertEqual(p.cells.count, 2)
        // read_context_files repeats the haystack until it has max(lengths) = 300 words;
        // copies join without a separator, so "six.One" is one word: 5k + 1 words after k passes.
        XCTAssertEqual(PythonText.wordCount(p.haystackText), 301)
        XCTAssertEqual(p.haystackText, String(repeating: "One two three. Four five six.", count: 60))

        XCTAssertThrowsError(try s.applying(.init(lengths: [100]))) { e in
            XCTAssertEqual(
                e as? NIAHSuiteError,
                .invalidValue(
                    file: s.sourceFile! + " (with overrides)", field: "lengths[0]",
                    reason: "length 100 must be greater than buffer 200"))
        }
        XCTAssertThrowsError(try NIAHProbe.load(suite: s.applying(.init(needleIDs: ["nope"])))) { e in
            guard case .unknownNeedleID(_, "nope", let known)? = e as? NIAHSuiteError else { return XCTFail("\(e)") }
            XCTAssertTrue(known.contains("wmo"))
        }
    }

    /// `--needles FILE` without `--needle-ids`: every needle of FILE (the suite's ids name needles
    /// of its own file, so keeping them made "no needle with id wmo" errors).
    func testNeedlesOverrideWithoutIDsUsesAllNeedles() throws {
        let tmp = TempDir()
        let s = try NIAHSuite.load(contentsOf: RepoPaths.probes.appendingPathComponent("default.json"))
        XCTAssertNotNil(s.needleIDs)
        let n = tmp.write(
            "mine.jsonl",
            #"{"id": "a", "needle": "The code is 4417.", "question": "What is the code ?", "real_needle": "4417"}"#
                + "\n"
                + #"{"id": "b", "needle": "The pin is 9921.", "question": "What is the pin ?", "real_needle": "9921"}"#
                + "\n")
        let all = try NIAHProbe.load(suite: s.applying(.init(needles: n.path)))
        XCTAssertEqual(all.needles.map(\.id), ["a", "b"])
        let one = try NIAHProbe.load(suite: s.applying(.init(needles: n.path, needleIDs: ["b"])))
        XCTAssertEqual(one.needles.map(\.id), ["b"])
        // Other overrides keep the suite's own ids.
        let same = try NIAHProbe.load(suite: s.applying(.init(lengths: [1000])))
        XCTAssertEqual(same.needles.map(\.id), ["wmo", "beijing", "mr-green"])
    }

    // MARK: Validation errors

    let goodSuite = """
        {"name": "t", "haystack": "hay.txt", "needles": "n.jsonl", "lengths": [300, 400], "depths": [0, 50, 100]}
        """
    let goodNeedle = #"{"needle": "The code is 4417.", "question": "What is the code ?", "real_needle": "4417"}"#

    func check(
        _ suiteJSON: String, needles: String? = nil, haystack: String? = "Words and more words.",
        file: StaticString = #filePath, line: UInt = #line, _ expect: (NIAHSuiteError, String) -> Void
    ) {
        let tmp = TempDir()
        let url = tmp.write("suite.json", suiteJSON)
        tmp.write("n.jsonl", needles ?? goodNeedle + "\n")
        if let h = haystack { tmp.write("hay.txt", h) }
        do {
            _ = try NIAHProbe.load(contentsOf: url)
            XCTFail("no error", file: file, line: line)
        } catch let e as NIAHSuiteError {
            expect(e, e.localizedDescription)
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
        }
    }

    func testGoodSuiteLoads() throws {
        let tmp = TempDir()
        let url = tmp.write("suite.json", goodSuite)
        tmp.write("n.jsonl", "\n" + goodNeedle + "\n\n")
        tmp.write("hay.txt", "Words and more words.")
        let p = try NIAHProbe.load(contentsOf: url)
        XCTAssertEqual(p.needles.map(\.id), ["line-2"])
        XCTAssertEqual(p.suite.buffer, 200)
        XCTAssertEqual(p.suite.maxNewTokens, 50)
        XCTAssertTrue(p.suite.chat)
        XCTAssertEqual(p.suite.seed, 0)
    }

    func testMissingField() {
        check(#"{"name": "t", "haystack": "hay.txt", "needles": "n.jsonl", "depths": [0]}"#) { e, msg in
            guard case let .missingField(file, field) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(file.hasSuffix("suite.json"))
            XCTAssertEqual(field, "lengths")
            XCTAssertTrue(msg.contains("suite.json") && msg.contains("\"lengths\""), msg)
        }
    }

    func testUnknownKey() {
        check(
            #"{"name": "t", "haystack": "hay.txt", "needles": "n.jsonl", "lengths": [300], "depths": [0], "lenghts": "#
                + #"[1]}"#
        ) { e, msg in
            guard case let .unknownKey(_, key) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(key, "lenghts")
            XCTAssertTrue(msg.contains("unknown key \"lenghts\""), msg)
            XCTAssertNotNil(e.recoverySuggestion)
        }
    }

    func testWrongTypes() {
        check(#"{"name": "t", "haystack": "hay.txt", "needles": "n.jsonl", "lengths": "300", "depths": [0]}"#) { e, _ in
            XCTAssertEqual(e, .wrongType(file: (e.file), field: "lengths", expected: "an array of integers"))
        }
        check(#"{"name": "t", "haystack": "hay.txt", "needles": "n.jsonl", "lengths": [300.5], "depths": [0]}"#) {
            e, _ in
            guard case .wrongType(_, "lengths", _) = e else { return XCTFail("\(e)") }
        }
        check(
            #"{"name": "t", "haystack": "hay.txt", "needles": "n.jsonl", "lengths": [300], "depths": [0], "chat": "#
                + #""yes"}"#
        ) { e, _ in
            guard case .wrongType(_, "chat", _) = e else { return XCTFail("\(e)") }
        }
        check(#"{"name": null, "haystack": "hay.txt", "needles": "n.jsonl", "lengths": [300], "depths": [0]}"#) {
            e, _ in
            guard case .wrongType(_, "name", _) = e else { return XCTFail("\(e)") }
        }
        check("[1, 2]") { e, _ in
            guard case .wrongType(_, "(top level)", _) = e else { return XCTFail("\(e)") }
        }
    }

    func testBadJSON() {
        check(#"{"name": "t", "haystack": "hay.txt",, }"#) { e, msg in
            guard case let .badJSON(file, _) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(file.hasSuffix("suite.json"))
            XCTAssertTrue(msg.hasPrefix(file), msg)
        }
    }

    func testBadValues() {
        check(#"{"name": "t", "haystack": "hay.txt", "needles": "n.jsonl", "lengths": [300, 200], "depths": [0]}"#) {
            e, msg in
            XCTAssertEqual(
                e,
                .invalidValue(file: e.file, field: "lengths[1]", reason: "length 200 must be greater than buffer 200"))
            XCTAssertTrue(msg.contains("lengths[1]"), msg)
        }
        check(
            #"{"name": "t", "haystack": "hay.txt", "needles": "n.jsonl", "lengths": [300], "buffer": 400, "depths": "#
                + #"[0]}"#
        ) { e, _ in
            guard case .invalidValue(_, "lengths[0]", _) = e else { return XCTFail("\(e)") }
        }
        check(#"{"name": "t", "haystack": "hay.txt", "needles": "n.jsonl", "lengths": [300], "depths": [0, 101]}"#) {
            e, msg in
            XCTAssertEqual(e, .invalidValue(file: e.file, field: "depths[1]", reason: "depth 101.0 is outside 0...100"))
            XCTAssertTrue(msg.contains("depths[1]"), msg)
        }
        check(#"{"name": "t", "haystack": "hay.txt", "needles": "n.jsonl", "lengths": [300], "depths": [-1]}"#) {
            e, _ in
            guard case .invalidValue(_, "depths[0]", _) = e else { return XCTFail("\(e)") }
        }
        check(#"{"name": "t", "haystack": "hay.txt", "needles": "n.jsonl", "lengths": [], "depths": [0]}"#) { e, _ in
            guard case .invalidValue(_, "lengths", _) = e else { return XCTFail("\(e)") }
        }
        check(
            #"{"name": "t", "haystack": "hay.txt", "needles": "n.jsonl", "lengths": [300], "depths": [0], "template": "#
                + #""{context} only"}"#
        ) { e, _ in
            XCTAssertEqual(
                e, .invalidValue(file: e.file, field: "template", reason: "must contain the placeholder {question}"))
        }
        check(
            #"{"name": "t", "haystack": "hay.txt", "needles": "n.jsonl", "lengths": [300], "depths": [0], "#
                + #""max_new_tokens": 0}"#
        ) { e, _ in
            guard case .invalidValue(_, "max_new_tokens", _) = e else { return XCTFail("\(e)") }
        }
        check(
            #"{"name": "t", "haystack": "hay.txt", "needles": "n.jsonl", "lengths": [300], "depths": [0], "seed": -3}"#
        ) { e, _ in
            guard case .wrongType(_, "seed", _) = e else { return XCTFail("\(e)") }
        }
    }

    func testBadNeedleLines() {
        let badJSON = goodNeedle + "\n" + #"{"needle": "x", "question": }"# + "\n"
        check(goodSuite, needles: badJSON) { e, msg in
            guard case let .needleLine(file, line, problem) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(file.hasSuffix("n.jsonl"))
            XCTAssertEqual(line, 2)
            XCTAssertTrue(problem.hasPrefix("bad JSON"), problem)
            XCTAssertTrue(msg.contains("n.jsonl line 2"), msg)
        }
        let missing = "\n" + goodNeedle + "\n" + #"{"needle": "x.", "question": "y ?"}"# + "\n"
        check(goodSuite, needles: missing) { e, _ in
            XCTAssertEqual(e, .needleLine(file: e.file, line: 3, problem: "missing field \"real_needle\""))
        }
        let unknown = #"{"needle": "x.", "question": "y ?", "real_needle": "x", "answer": "x"}"#
        check(goodSuite, needles: unknown) { e, _ in
            XCTAssertEqual(e, .needleLine(file: e.file, line: 1, problem: "unknown key \"answer\""))
        }
        let empty = #"{"needle": "x.", "question": "  ", "real_needle": "x"}"#
        check(goodSuite, needles: empty) { e, _ in
            XCTAssertEqual(e, .needleLine(file: e.file, line: 1, problem: "field \"question\": must not be empty"))
        }
        let dup =
            #"{"id": "a", "needle": "x.", "question": "y ?", "real_needle": "x"}"# + "\n"
            + #"{"id": "a", "needle": "z.", "question": "w ?", "real_needle": "z"}"#
        check(goodSuite, needles: dup) { e, _ in
            XCTAssertEqual(e, .needleLine(file: e.file, line: 2, problem: "duplicate id \"a\" (first on line 1)"))
        }
        check(goodSuite, needles: "\n\n") { e, _ in
            guard case .noNeedles = e else { return XCTFail("\(e)") }
        }
    }

    func testHaystackProblems() {
        check(goodSuite, haystack: " \n\t\n") { e, msg in
            guard case let .haystackEmpty(path, _) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(path.hasSuffix("hay.txt"))
            XCTAssertTrue(msg.contains("empty haystack"), msg)
        }
        check(goodSuite, haystack: nil) { e, _ in
            guard case let .haystackMissing(path) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(path.hasSuffix("hay.txt"))
        }
    }

    func testHaystackDirectoryIsReadInNameOrder() throws {
        let tmp = TempDir()
        tmp.write("hay/b.txt", "beta beta\r\n")
        tmp.write("hay/a.txt", "alpha ")
        tmp.write("hay/notes.md", "ignored")
        let url = tmp.write(
            "suite.json", #"{"name": "d", "haystack": "hay", "needles": "n.jsonl", "lengths": [205], "depths": [50]}"#)
        tmp.write("n.jsonl", goodNeedle)
        let p = try NIAHProbe.load(contentsOf: url)
        XCTAssertEqual(p.haystackFiles.map(\.lastPathComponent), ["a.txt", "b.txt"])
        XCTAssertEqual(String(p.haystackText.prefix(22)), "alpha beta beta\nalpha ")
        XCTAssertEqual(PythonText.wordCount(p.haystackText), 207) // 69 passes of 3 words >= 205

        let empty = TempDir()
        empty.write("hay/x.md", "nothing")
        let u2 = empty.write(
            "suite.json", #"{"name": "d", "haystack": "hay", "needles": "n.jsonl", "lengths": [205], "depths": [50]}"#)
        empty.write("n.jsonl", goodNeedle)
        XCTAssertThrowsError(try NIAHProbe.load(contentsOf: u2)) { e in
            guard case .haystackEmpty(_, "no *.txt files")? = e as? NIAHSuiteError else { return XCTFail("\(e)") }
        }
    }

    func testUnreadableSuite() {
        XCTAssertThrowsError(try NIAHSuite.load(contentsOf: URL(fileURLWithPath: "/nonexistent/suite.json"))) { e in
            guard case .unreadable(let f, _)? = e as? NIAHSuiteError else { return XCTFail("\(e)") }
            XCTAssertEqual(f, "/nonexistent/suite.json")
        }
    }

    func testPythonWhitespaceHelpers() {
        XCTAssertEqual(PythonText.wordCount(" a\u{1C}b\u{A0}c\u{200B}d "), 3) // U+200B is not space in Python
        XCTAssertEqual(PythonText.universalNewlines("a\r\nb\rc\n"), "a\nb\nc\n")
    }
}

extension NIAHSuiteError {
    /// The file an error names (for building expected values).
    var file: String {
        switch self {
        case let .unreadable(f, _), let .badJSON(f, _), let .missingField(f, _), let .wrongType(f, _, _),
            let .unknownKey(f, _), let .invalidValue(f, _, _), let .needleLine(f, _, _), let .noNeedles(f),
            let .unknownNeedleID(f, _, _):
            return f
        case let .haystackMissing(p), let .haystackEmpty(p, _):
            return p
        }
    }
}
