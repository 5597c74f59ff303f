import Foundation
import XCTest
@testable import Analysis
import TraceStore

/// Probe parsing, citation markers, prompt layout, token alignment, padding and the
/// retrieval-head loader (no model needed).
final class CitationProbeCiteTests: XCTestCase {
    // MARK: markers and statements

    func testStatementBeforeMarker() {
        let s = CitationParser.statements("a notional black hole [3].")
        XCTAssertEqual(s.count, 1)
        XCTAssertEqual(s[0].text, "a notional black hole")
        XCTAssertEqual(s[0].bytes, 0..<21)
        XCTAssertEqual(s[0].citations, [3])
    }

    func testSeveralStatementsAndGroups() {
        let s = CitationParser.statements("X is Y [1][2]. Z holds [3, 4; 3]")
        XCTAssertEqual(s.map(\.text), ["X is Y", "Z holds"])
        XCTAssertEqual(s.map(\.citations), [[1, 2], [3, 4]])
        let u = CitationParser.statements("Foo [1]. Bar baz")
        XCTAssertEqual(u.map(\.text), ["Foo", "Bar baz"])
        XCTAssertEqual(u.map(\.citations), [[1], []])
        // a group with no text before it joins the previous statement
        XCTAssertEqual(CitationParser.statements("Foo [1]. [2]").map(\.citations), [[1, 2]])
        // not markers
        XCTAssertEqual(CitationParser.markers("see [a], [12x], [], [ 7 ]").map(\.numbers), [[7]])
        XCTAssertEqual(CitationParser.statements("no citation here").map(\.citations), [[]])
        XCTAssertEqual(CitationParser.statements(" . ").count, 0)
    }

    func testMultibyteOffsets() {
        let a = "café “x” [2]."
        let s = CitationParser.statements(a)
        XCTAssertEqual(s.count, 1)
        XCTAssertEqual(String(decoding: Array(a.utf8)[s[0].bytes], as: UTF8.self), "café “x”")
    }

    func testRenumber() {
        XCTAssertEqual(CitationParser.renumber("w [1] and [2, 3].") { $0 + 10 }, "w [11] and [12, 13].")
        XCTAssertEqual(CitationParser.renumber("none") { $0 }, "none")
    }

    // MARK: probe file

    func line(_ o: [String: Any]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
    }

    var good: [String: Any] {
        [
            "id": "a", "passages": ["the cat sat on the mat", "dogs bark"], "question": "who sat?",
            "answer": "the cat [1].",
            "gold": "cat sat"
        ]
    }

    func testParseGood() throws {
        var g = good
        g["meta"] = ["kind": "cloze"]
        let items = try CitationProbeFile.parse(
            line(g) + "\n\n" + line(["passages": ["p", "q"], "question": "?"]) + "\n", file: "f.jsonl")
        XCTAssertEqual(items.count, 2)
        XCTAssertEqual(items[0].source, 0) // located from gold
        XCTAssertEqual(items[0].meta, "{\"kind\":\"cloze\"}")
        XCTAssertEqual(items[1].id, "line-3")
        XCTAssertNil(items[1].answer)
        XCTAssertEqual(items[1].line, 3)
    }

    func assertError(_ text: String, _ expected: String, file: StaticString = #filePath, line l: UInt = #line) {
        XCTAssertThrowsError(try CitationProbeFile.parse(text, file: "p.jsonl"), file: file, line: l) { e in
            let m = (e as? LocalizedError)?.errorDescription ?? "\(e)"
            XCTAssertTrue(m.contains(expected), "expected '\(expected)' in: \(m)", file: file, line: l)
        }
    }

    func testErrorsNameFileAndLine() {
        let ok = line(good)
        assertError(ok + "\n{not json", "p.jsonl:2: not valid JSON")
        assertError("[1, 2]", "p.jsonl:1: expected a JSON object")
        var g = good
        g["extra"] = 1
        assertError(line(g), "p.jsonl:1: unknown key 'extra'")
        g = good
        g["answer"] = "the cat [3]."
        assertError("\n" + line(g), "p.jsonl:2: item 'a' cites passage [3] but has 2 passages")
        g = good
        g["answer"] = "the cat."
        assertError(line(g), "has no citation marker")
        g = good
        g["source"] = 5
        assertError(line(g), "cites passage [5]")
        g = good
        g["source"] = "1"
        assertError(line(g), "'source' must be an integer")
        g = good
        g["wrong_citation"] = true
        assertError(line(g), "'wrong_citation' is true but the answer cites the source [1]")
        g = good
        g["wrong_citation"] = 1
        assertError(line(g), "'wrong_citation' must be true or false")
        g = good
        g["passages"] = ["only one"]
        assertError(line(g), "at least 2 are needed")
        g = good
        g["passages"] = ["a", 3]
        assertError(line(g), "'passages' must be an array of strings")
        g = good
        g.removeValue(forKey: "question")
        assertError(line(g), "p.jsonl:1: missing 'question'")
        g = good
        g["gold"] = "not there"
        g["source"] = 1
        assertError(line(g), "'gold' does not occur in its source passage [1]")
        assertError(ok + "\n" + ok, "p.jsonl:2: duplicate item id 'a' (first on line 1)")
        assertError("\n \n", "no probe items")
    }

    func testWrongCitationItem() throws {
        var g = good
        g["answer"] = "the cat [2]."
        g["wrong_citation"] = true
        let it = try CitationProbeFile.parse(line(g), file: "f")[0]
        XCTAssertTrue(it.wrongCitation)
        XCTAssertEqual(it.source, 0)
    }

    /// The shipped probe sets load and meet the issue's requirements.
    func testShippedProbeSets() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let items = try CitationProbeFile.load(path: root.appendingPathComponent("probes/citation/default.jsonl").path)
        XCTAssertGreaterThanOrEqual(items.count, 100)
        XCTAssertTrue(items.allSatisfy { (5...20).contains($0.passages.count) })
        for it in items {
            let g = CitationText.normalize(try XCTUnwrap(it.gold))
            XCTAssertEqual(
                it.passages.indices.filter { CitationText.normalize(it.passages[$0]).contains(g) },
                [try XCTUnwrap(it.source)], it.id)
            let cited = CitationParser.statements(try XCTUnwrap(it.answer)).flatMap(\.citations)
            XCTAssertEqual(cited.count, 1)
            XCTAssertEqual(cited[0] - 1 != it.source, it.wrongCitation, it.id)
        }
        XCTAssertGreaterThanOrEqual(items.filter(\.wrongCitation).count, 10)
        let smoke = try CitationProbeFile.load(path: root.appendingPathComponent("probes/citation/smoke.jsonl").path)
        XCTAssertEqual(smoke.filter { $0.answer == nil }.count, 1)
        XCTAssertEqual(smoke.filter(\.wrongCitation).count, 2)
    }

    // MARK: prompt and alignment

    func testPromptRanges() throws {
        let ps = ["alpha beta", "gamma ✓ delta"]
        let (text, ranges) = try CitationPrompt.render(
            passages: ps, question: "Q?", instruction: "I.", chat: { "<s>" + $0 + "</s>" })
        let b = Array(text.utf8)
        XCTAssertEqual(ranges.map { String(decoding: b[$0], as: UTF8.self) }, ps)
        XCTAssertTrue(text.contains("[1] alpha beta\n[2] gamma ✓ delta\n\nQuestion: Q?"))
        let plain = try CitationPrompt.render(passages: ps, question: "Q?", instruction: "I.", chat: nil)
        XCTAssertTrue(plain.text.hasSuffix("Question: Q?\nAnswer: "))
        XCTAssertThrowsError(try CitationPrompt.render(passages: ps, question: "Q?", chat: { _ in "rewritten" }))
    }

    func testTokenAlignment() throws {
        let text = Array("AB CD".utf8)
        // a BOS-like prefix piece, then the text
        let pieces: [[UInt8]] = [Array("<s>".utf8), Array("AB".utf8), Array(" C".utf8), Array("D".utf8)]
        let off = try XCTUnwrap(TokenAlignment.offsets(pieces: pieces, text: text))
        XCTAssertEqual(off.starts, [-3, 0, 2, 4])
        XCTAssertEqual(off.ends, [0, 2, 4, 5])
        XCTAssertEqual(TokenAlignment.tokens(covering: 3..<5, starts: off.starts, ends: off.ends), 2..<4) // "CD"
        XCTAssertEqual(TokenAlignment.tokens(covering: 0..<2, starts: off.starts, ends: off.ends), 1..<2)
        XCTAssertNil(TokenAlignment.tokens(covering: 2..<2, starts: off.starts, ends: off.ends))
        XCTAssertNil(TokenAlignment.offsets(pieces: [Array("AX".utf8)], text: Array("AB".utf8)))
    }

    // MARK: padding

    func testPaddingKeepsOrderAndRenumbers() {
        let item = CitationItem(
            id: "x", passages: ["A", "B", "C"], question: "?", answer: "b [2].", gold: "b", source: 1)
        let p = CitationPadding.insert(["X", "Y", "Z"], into: item, seed: 5)
        XCTAssertEqual(p.passages.count, 6)
        XCTAssertEqual(p.passages.filter { ["A", "B", "C"].contains($0) }, ["A", "B", "C"])
        XCTAssertEqual(p.passages.filter { ["X", "Y", "Z"].contains($0) }, ["X", "Y", "Z"])
        let b = p.passages.firstIndex(of: "B")!
        XCTAssertEqual(p.source, b)
        XCTAssertEqual(p.answer, "b [\(b + 1)].")
        XCTAssertEqual(CitationPadding.insert(["X", "Y", "Z"], into: item, seed: 5), p) // deterministic
        XCTAssertEqual(CitationPadding.candidates(for: item, pool: ["A", "the b", "Q", "q ", "R"]), ["Q", "R"])
    }

    // MARK: retrieval-head run files

    func testRetrievalHeadSet() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cite-rh-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("rh.h5").path
        // A finished retrieval-heads group (what RetrievalRunFile.read needs), no trials.
        let w = try RunFileWriter(path: path)
        let g = try w.file.createGroup("retrieval_heads")
        for (k, v) in [("n_layers", 2), ("n_heads", 3), ("planned_trials", 0), ("counted_trials", 0)] {
            try g.setAttribute(k, v)
        }
        try g.setAttribute("suite", "{}")
        try g.setAttribute("suite_name", "test")
        _ = try RecordTable(group: try g.createGroup("trials"), columns: RetrievalRunFile.columns(layers: 2, heads: 3))
        try g.createDataset("scores", data: [0.0, 0.5, 0.05, 0.2, 0.3, 0.0], shape: [2, 3])
        try g.setAttribute("threshold", 0.1)
        try w.finalize()
        let above = try RetrievalHeadSet.load(path: path, top: nil, layers: 2, heads: 3)
        XCTAssertEqual(above.heads.map(\.description), ["0.1", "1.1", "1.0"])
        let top2 = try RetrievalHeadSet.load(path: path, top: 2, layers: 2, heads: 3)
        XCTAssertEqual(top2.heads.map(\.description), ["0.1", "1.1"])
        XCTAssertThrowsError(try RetrievalHeadSet.load(path: path, top: nil, layers: 3, heads: 3)) { e in
            XCTAssertTrue(e.localizedDescription.contains("another model"), "\(e)")
        }
        XCTAssertThrowsError(
            try RetrievalHeadSet.load(path: dir.appendingPathComponent("none.h5").path, top: nil, layers: 2, heads: 3))
        // A group without the sweep's summary (scores) is refused, naming what is missing.
        let partial = dir.appendingPathComponent("partial.h5").path
        let w2 = try RunFileWriter(path: partial)
        let g2 = try w2.file.createGroup("retrieval_heads")
        for (k, v) in [("n_layers", 2), ("n_heads", 3), ("planned_trials", 0)] { try g2.setAttribute(k, v) }
        _ = try RecordTable(group: try g2.createGroup("trials"), columns: RetrievalRunFile.columns(layers: 2, heads: 3))
        try w2.finalize()
        XCTAssertThrowsError(try RetrievalHeadSet.load(path: partial, top: nil, layers: 2, heads: 3)) { e in
            XCTAssertTrue(e.localizedDescription.contains("/retrieval_heads/scores"), "\(e)")
        }
    }
}
