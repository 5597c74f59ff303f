import Foundation
import XCTest
@testable import Analysis

final class NIAHTrialTests: XCTestCase {
    // 8 sentences of 6 characters: "aaaa. " ... "hhhh. " (48 characters = 48 tokens).
    let haystack = "aaaa. bbbb. cccc. dddd. eeee. ffff. gggg. hhhh. "

    /// length 35, buffer 5, needle "ZZ." (3 tokens): encode_and_trim keeps 35
    /// tokens, insert_needle cuts to 35 - 5 - 3 = 27: "aaaa. bbbb. cccc. dddd. eee".
    func context(_ depth: Double) throws -> NIAHContext {
        let b = NIAHContextBuilder(tokenizer: CharTokenizer(), haystackText: haystack, buffer: 5)
        return try b.context(needle: "ZZ.", length: 35, depth: depth)
    }

    func testInsertionPointsAreHandChecked() throws {
        // (depth, requested = int(27 * depth / 100), insertion after back-off, text)
        let cases: [(Double, Int, Int, String)] = [
            (0, 0, 0, "ZZ.aaaa. bbbb. cccc. dddd. eee"),
            (10, 2, 0, "ZZ.aaaa. bbbb. cccc. dddd. eee"), // no '.' before 2: back to the start
            (25, 6, 5, "aaaa.ZZ. bbbb. cccc. dddd. eee"), // "aaaa. " -> back over ' '
            (50, 13, 11, "aaaa. bbbb.ZZ. cccc. dddd. eee"),
            (75, 20, 17, "aaaa. bbbb. cccc.ZZ. dddd. eee"),
            (100, 27, 27, "aaaa. bbbb. cccc. dddd. eeeZZ.") // appended, no back-off
        ]
        for (depth, requested, point, text) in cases {
            let c = try context(depth)
            XCTAssertEqual(c.haystackTokenCount, 27, "depth \(depth)")
            XCTAssertEqual(c.needleTokenCount, 3)
            XCTAssertEqual(c.tokens.count, 30, "length - buffer tokens")
            XCTAssertEqual(c.requestedInsertion, requested, "depth \(depth)")
            XCTAssertEqual(c.insertionPoint, point, "depth \(depth)")
            XCTAssertEqual(c.text, text, "depth \(depth)")
        }
        XCTAssertFalse(try context(0).afterPeriod)
        XCTAssertFalse(try context(10).afterPeriod)
        XCTAssertTrue(try context(50).afterPeriod)
        XCTAssertFalse(try context(100).afterPeriod)
    }

    func testShortHaystackIsUsedWhole() throws {
        let b = NIAHContextBuilder(tokenizer: CharTokenizer(), haystackText: "aa. bb.", buffer: 5)
        let c = try b.context(needle: "ZZ.", length: 100, depth: 50)
        XCTAssertEqual(c.haystackTokenCount, 7)
        XCTAssertEqual(c.requestedInsertion, 3) // int(7 * 0.5)
        XCTAssertEqual(c.insertionPoint, 3)
        XCTAssertEqual(c.text, "aa.ZZ. bb.")
    }

    func testNeedleLongerThanBudgetThrows() {
        let b = NIAHContextBuilder(tokenizer: CharTokenizer(), haystackText: haystack, buffer: 5)
        XCTAssertThrowsError(try b.context(needle: "ZZ.", length: 7, depth: 50)) { e in
            XCTAssertEqual(e as? NIAHTrialError, .needleTooLong(needleTokens: 3, budget: 2))
        }
        XCTAssertThrowsError(try b.context(needle: "ZZ.", length: 5, depth: 50)) { e in
            XCTAssertEqual(e as? NIAHTrialError, .lengthNotAboveBuffer(length: 5, buffer: 5))
        }
        XCTAssertThrowsError(try b.context(needle: "ZZ.", length: 30, depth: 100.5))
    }

    /// With a BPE-like vocabulary "beta)." ends in the merged token ")." which
    /// is not encode("."): the original walks back to the previous bare ".".
    func testBackOffSkipsMergedPeriodTokens() throws {
        let tok = PieceTokenizer()
        let hay = "Alpha beta). Gamma delta. Epsilon zeta). Eta theta"
        XCTAssertEqual(
            PieceTokenizer.split(hay),
            ["Alpha", " beta", ").", " Gamma", " delta", ".", " Epsilon", " zeta", ").", " Eta", " theta"])
        let b = NIAHContextBuilder(tokenizer: tok, haystackText: hay, buffer: 0)
        let c = try b.context(needle: " Needle.", length: 100, depth: 82) // int(11 * 0.82) = 9
        XCTAssertEqual(c.requestedInsertion, 9)
        XCTAssertEqual(c.insertionPoint, 6)
        XCTAssertTrue(c.afterPeriod)
        XCTAssertEqual(c.text, "Alpha beta). Gamma delta. Needle. Epsilon zeta). Eta theta")

        // Counting ")." as a sentence end is a documented option.
        let b2 = NIAHContextBuilder(
            tokenizer: tok, haystackText: hay, buffer: 0,
            periodTokens: [tok.id("."), tok.id(").")])
        let c2 = try b2.context(needle: " Needle.", length: 100, depth: 82)
        XCTAssertEqual(c2.insertionPoint, 9)
        XCTAssertEqual(c2.text, "Alpha beta). Gamma delta. Epsilon zeta). Needle. Eta theta")
    }

    /// encode_and_trim decodes the first `length` tokens and encodes again;
    /// addSpecialTokens reproduces the original's BOS-in-the-middle quirk.
    func testSpecialTokensOption() throws {
        let tok = CharTokenizer(renderBOS: true)
        let b = NIAHContextBuilder(tokenizer: tok, haystackText: haystack, buffer: 5, addSpecialTokens: true)
        let c = try b.context(needle: "ZZ.", length: 35, depth: 50)
        // The trimmed haystack decodes to "<s>aaaa. ..." and re-encodes with a
        // second BOS; the needle brings its own BOS.
        XCTAssertEqual(c.tokens.first, CharTokenizer.bos)
        XCTAssertEqual(c.tokens.filter { $0 == CharTokenizer.bos }.count, 2)
        XCTAssertTrue(c.text.hasPrefix("<s>"))
        XCTAssertTrue(c.text.contains("<s>ZZ."))
    }

    func testTemplateRenderingIsSinglePass() {
        let t = NIAHSuite.chatTemplate
        let out = NIAHPrompt.render(t, context: "ctx {question} here", question: "Q {context}?")
        XCTAssertEqual(
            out, "<book>ctx {question} here</book>\nBased on the content of the book, Question: Q {context}?\nAnswer:")
        XCTAssertEqual(NIAHPrompt.render("{a}{context}{", context: "x", question: "y"), "{a}x{")
        XCTAssertEqual(
            NIAHPrompt.render(NIAHSuite.plainTemplate, context: "C.", question: "Why ?"),
            "C.Based on the content of the book, Question: Why ?\nAnswer:")
    }

    // MARK: find_needle_idx

    func testSpanExactCopy() {
        let needle: [Int32] = Array(1...10)
        let prompt: [Int32] = [50, 51, 52, 53, 54] + needle + [60, 61]
        XCTAssertEqual(locateNeedleSpan(needle: needle, in: prompt), 5..<15)
    }

    func testSpanNeedsMoreThanNinetyPercent() {
        // 10 distinct needle tokens; the first window has 9 of them (0.9: not enough).
        let needle: [Int32] = Array(1...10)
        var prompt: [Int32] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 99] + [70, 71, 72]
        XCTAssertNil(locateNeedleSpan(needle: needle, in: prompt))
        prompt += needle
        XCTAssertEqual(locateNeedleSpan(needle: needle, in: prompt), 13..<23)
        // 11 distinct tokens: 10 of 11 (0.909) is enough, one token may differ.
        let n11: [Int32] = Array(1...11)
        let p11: [Int32] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 99] + [71]
        XCTAssertEqual(locateNeedleSpan(needle: n11, in: p11), 0..<11)
    }

    /// A needle with more than 10 distinct tokens is found one window early:
    /// [s-1, s-1+n) already holds n-1 of its n tokens. This is the original's rule.
    func testSpanOfLongNeedleStartsEarly() {
        let needle: [Int32] = Array(1...12)
        let prompt: [Int32] = [80, 81, 82] + needle + [83]
        XCTAssertEqual(locateNeedleSpan(needle: needle, in: prompt), 2..<14) // 11/12 > 0.9 at s = 2
        let n10: [Int32] = Array(1...10)
        XCTAssertEqual(locateNeedleSpan(needle: n10, in: [80, 81, 82] + n10 + [83]), 3..<13)
    }

    func testSpanUsesTokenSets() {
        // Repeated tokens count once; a window may hold them in any order.
        let needle: [Int32] = [1, 2, 1, 2, 3]
        XCTAssertEqual(locateNeedleSpan(needle: needle, in: [9, 3, 2, 1, 9, 9, 9]), 0..<5)
        XCTAssertNil(locateNeedleSpan(needle: needle, in: [9, 9, 1, 2, 9, 9, 9]))
        XCTAssertNil(locateNeedleSpan(needle: [], in: [1, 2, 3]))
        XCTAssertNil(locateNeedleSpan(needle: [1], in: []))
    }

    func testSpanWindowMayRunPastTheEnd() {
        // Windows are slices that may be cut short at the end, but a full
        // window ending there is tried first, so only a prompt shorter than
        // the needle yields a span past the end (as in the original).
        XCTAssertEqual(locateNeedleSpan(needle: [1, 2, 3], in: [9, 9, 3, 2, 1]), 2..<5)
        XCTAssertEqual(locateNeedleSpan(needle: [1, 1, 1, 2], in: [1, 2]), 0..<4)
    }

    // MARK: Needle text rule (locateNeedleText), for windows the token-set rule misses

    /// Gemma 3's SentencePiece pieces (no dummy prefix) around the needle at depth 0: the needle
    /// says " because" where real_needle says "Because", and its final "." merges with the
    /// haystack's "[" into ".[". The token-set rule misses 2 of 6 distinct tokens; the text rule
    /// takes the tokens carrying the text, ".[" included.
    func testTextRuleCoversTheTokensCarryingTheNeedle() {
        let pieces = ["Mr", " Green", " is", " liked", " because", " he", " drives", " a", " car", ".[", "Use", "net"]
        let prompt = (0..<Int32(pieces.count)).map { $0 }
        let bytes: (Int32) -> [UInt8] = { Array(pieces[Int($0)].utf8) }
        let alone: [Int32] = [100, 5, 6, 7, 8, 101] // "Because", " he", " drives", " a", " car", "."
        XCTAssertNil(locateNeedleSpan(needle: alone, in: prompt))
        XCTAssertEqual(locateNeedleText("Because he drives a car.", in: prompt, pieceBytes: bytes), 4..<10)
        XCTAssertEqual(locateNeedleText("  he DRIVES a\n", in: prompt, pieceBytes: bytes), 5..<8) // trimmed, ASCII case
        XCTAssertNil(locateNeedleText("she drives a car", in: prompt, pieceBytes: bytes))
        XCTAssertNil(locateNeedleText(" \n", in: prompt, pieceBytes: bytes))
        XCTAssertNil(locateNeedleText("x", in: [], pieceBytes: bytes))
        // First occurrence; a token holding part of a UTF-8 sequence (byte-level BPE) still counts.
        let split: [[UInt8]] = [Array("caf".utf8), [0xC3], [0xA9, 0x20], Array("caf\u{E9}".utf8)]
        XCTAssertEqual(locateNeedleText("Caf\u{E9}", in: [0, 1, 2, 3], pieceBytes: { split[Int($0)] }), 0..<3)
    }

    /// The regression itself, through NIAHTrialBuilder: "mr-green" in a haystack that starts with
    /// "[" and a template that closes with "</book>", tokenized by a fake that merges punctuation
    /// runs as Gemma 3's vocabulary does. Depths 0 and 100 need the text rule, depth 50 (needle
    /// followed by " cc") keeps Wu et al.'s span; every trial is located.
    func testEveryTrialIsLocatedWhenEdgeTokensMerge() throws {
        let tmp = TempDir()
        let hay = tmp.write("h.txt", "[Usenet] aa bb. cc dd. ee ff. gg hh. ")
        let suite = try NIAHSuite.load(contentsOf: RepoPaths.probes.appendingPathComponent("default.json"))
            .applying(
                .init(
                    haystack: hay.path, needleIDs: ["mr-green"], lengths: [90], depths: [0, 50, 100], buffer: 10,
                    chat: false))
        let probe = try NIAHProbe.load(suite: suite)
        let tok = PieceTokenizer()
        let builder = NIAHTrialBuilder(probe: probe, tokenizer: tok)
        var rules: [NeedleSpanRule] = []
        for cell in probe.cells {
            let t = try builder.trial(cell)
            rules.append(t.needleSpanRule)
            let span = try XCTUnwrap(t.needleSpan, "depth \(cell.depth)")
            let text = tok.decode(Array(t.promptTokens[span]))
            XCTAssertTrue(text.hasPrefix(" because he is a mean person"), "depth \(cell.depth): \(text)")
            XCTAssertTrue(text.contains("dive a car."), "depth \(cell.depth): \(text)")
            XCTAssertEqual(span.count, t.answerTokens.count, "depth \(cell.depth)")
        }
        XCTAssertEqual(rules, [.text, .tokenSet, .text])
    }

    // MARK: Whole trials on the shipped smoke suite

    func testSmokeSuiteTrialsWithWordTokenizer() throws {
        let probe = try NIAHProbe.load(contentsOf: RepoPaths.probes.appendingPathComponent("smoke.json"))
        let tok = PieceTokenizer()
        let builder = NIAHTrialBuilder(
            probe: probe, tokenizer: tok,
            chatTemplate: { "<|user|>\n" + $0 + "<|end|>\n<|assistant|>\n" })
        XCTAssertEqual(probe.cells.count, 6)
        let answerStart = tok.encode(" take a walk", addSpecial: false)
        for cell in probe.cells {
            let t = try builder.trial(cell)
            XCTAssertEqual(t.context.tokens.count, cell.length - probe.suite.buffer, "\(cell)")
            XCTAssertLessThanOrEqual(t.promptTokens.count, cell.length, "\(cell)")
            XCTAssertTrue(t.promptText.hasPrefix("<|user|>\n<book>"))
            XCTAssertTrue(
                t.promptText.hasSuffix(
                    "Question: What is the best thing to do in Beijing ?\nAnswer:<|end|>\n<|assistant|>\n"))
            // real_needle starts with "take" (no space), which never occurs in context
            // (" take"): 12 of its 13 distinct tokens match, 0.923 > 0.9.
            XCTAssertEqual(t.answerTokens.count, 15)
            let span = try XCTUnwrap(t.needleSpan, "\(cell)")
            let expected = try XCTUnwrap(firstIndex(of: answerStart, in: t.promptTokens))
            XCTAssertEqual(span, expected..<(expected + 15), "\(cell)")
            if cell.depth == 0 { XCTAssertTrue(t.context.text.hasPrefix("The best thing to do in Beijing")) }
            if cell.depth == 100 { XCTAssertTrue(t.context.text.hasSuffix("in the evening.")) }
            if cell.depth == 50 { XCTAssertTrue(t.context.afterPeriod) }
        }
        // The chat form needs a chat template.
        let bare = NIAHTrialBuilder(probe: probe, tokenizer: tok)
        XCTAssertThrowsError(try bare.trial(probe.cells[0])) { e in
            XCTAssertEqual(e as? NIAHTrialError, .chatTemplateMissing)
        }
    }

    func testPlainFormAddsSpecialsAndUsesWuTemplate() throws {
        // smoke.json has no "template": with chat off the default is Wu et al.'s base-model prompt.
        let suite = try NIAHSuite.load(contentsOf: RepoPaths.probes.appendingPathComponent("smoke.json"))
            .applying(.init(chat: false))
        XCTAssertNil(suite.template)
        XCTAssertEqual(suite.effectiveTemplate, NIAHSuite.plainTemplate)
        let probe = try NIAHProbe.load(suite: suite)
        let t = try NIAHTrialBuilder(probe: probe, tokenizer: CharTokenizer()).trial(probe.cells[1])
        XCTAssertEqual(t.promptTokens.first, CharTokenizer.bos)
        XCTAssertEqual(t.promptTokens.count, 1 + t.promptText.unicodeScalars.count)
        XCTAssertTrue(t.promptText.hasPrefix(t.context.text))
        XCTAssertTrue(
            t.promptText.hasSuffix(
                "Based on the content of the book, Question: What is the best thing to do in Beijing ?\nAnswer:"))
        XCTAssertFalse(t.promptText.contains("<book>"))
    }

    func firstIndex(of sub: [Int32], in a: [Int32]) -> Int? {
        guard sub.count <= a.count else { return nil }
        for i in 0...(a.count - sub.count) where Array(a[i..<(i + sub.count)]) == sub { return i }
        return nil
    }
}
