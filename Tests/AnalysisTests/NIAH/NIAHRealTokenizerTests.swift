import Foundation
import XCTest
import GGUF
import Inference
@testable import Analysis

/// Trial construction on the default model's real tokenizer against
/// Tests/Fixtures/scoring/niah_trials_smollm2.json, made by
/// make_niah_trials.py from a plain-Python restatement of Wu et al.'s code
/// on llama.cpp's tokenizer. Skipped when the model file is absent.
final class NIAHRealTokenizerTests: XCTestCase {
    /// Adapter (the library's own `Tokenizer: TextTokenizer` conformance is
    /// added elsewhere; a wrapper cannot collide with it).
    struct GGUFTokenizer: TextTokenizer {
        let t: Tokenizer
        func encode(_ text: String, addSpecial: Bool) -> [Int32] {
            t.encode(text, addSpecial: addSpecial, parseSpecial: true)
        }
        func decode(_ ids: [Int32]) -> String { t.decode(ids) }
    }

    struct Fixture: Decodable {
        struct Trial: Decodable {
            var needle_id: String
            var length: Int
            var depth: Double
            var chat: Bool
            var haystack_tokens: Int
            var needle_tokens: Int
            var context_tokens: Int
            var requested: Int
            var insertion: Int
            var prompt_tokens: Int
            var prompt_checksum: String
            var answer_tokens: Int
            var span: [Int]
        }
        var haystack_total_tokens: Int
        var period_tokens: [Int32]
        var chat_prefix: String
        var chat_suffix: String
        var trials: [Trial]
    }

    static var modelURL: URL { DefaultModel.url }

    static func checksum(_ ids: [Int32]) -> String {
        let m: UInt128 = 1 << 61
        var h: UInt128 = 0
        for (i, t) in ids.enumerated() { h = (h * 1_000_003 + UInt128(t) + UInt128(i)) % m }
        return String(h)
    }

    func testTrialsMatchPythonReference() throws {
        let url = Self.modelURL
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("model not found at \(url.path)")
        }
        let fx = try JSONDecoder().decode(
            Fixture.self,
            from: Data(
                contentsOf:
                    RepoPaths.scoringFixtures.appendingPathComponent("niah_trials_smollm2.json")))
        let tok = GGUFTokenizer(t: try Tokenizer(gguf: GGUFFile(url: url)))
        let lengths = Array(Set(fx.trials.map(\.length))).sorted()
        let depths = Array(Set(fx.trials.map(\.depth))).sorted()
        let base = try NIAHSuite.load(contentsOf: RepoPaths.probes.appendingPathComponent("default.json"))
        let chatProbe = try NIAHProbe.load(suite: base.applying(.init(lengths: lengths, depths: depths)))
        let plainProbe = try NIAHProbe.load(
            suite: base.applying(
                .init(
                    lengths: lengths, depths: depths, template: NIAHSuite.plainTemplate, chat: false)))
        let chat = NIAHTrialBuilder(
            probe: chatProbe, tokenizer: tok,
            chatTemplate: { fx.chat_prefix + $0 + fx.chat_suffix })
        let plain = NIAHTrialBuilder(probe: plainProbe, tokenizer: tok)
        XCTAssertEqual(chat.contexts.haystackTokens.count, fx.haystack_total_tokens)
        XCTAssertEqual(chat.contexts.periodTokens, Set(fx.period_tokens))

        var mismatches = 0, byText = 0
        for f in fx.trials {
            let b = f.chat ? chat : plain
            let n = try XCTUnwrap(b.probe.needles.firstIndex { $0.id == f.needle_id })
            let t = try b.trial(NIAHCell(needleIndex: n, length: f.length, depth: f.depth))
            let got = [
                t.context.haystackTokenCount, t.context.needleTokenCount, t.context.tokens.count,
                t.context.requestedInsertion, t.context.insertionPoint, t.promptTokens.count,
                t.answerTokens.count
            ]
            let want = [
                f.haystack_tokens, f.needle_tokens, f.context_tokens, f.requested, f.insertion,
                f.prompt_tokens, f.answer_tokens
            ]
            let label = "\(f.needle_id) length \(f.length) depth \(f.depth) chat \(f.chat)"
            let span = try XCTUnwrap(t.needleSpan, "every trial's needle is located: \(label)")
            if f.span[0] >= 0 {
                // Wu et al.'s token-set rule found it in the reference: same rule, same span.
                XCTAssertEqual(t.needleSpanRule, .tokenSet, label)
                XCTAssertEqual([span.lowerBound, span.upperBound], f.span, label)
            } else {
                // The reference's rule found no window (mr-green at depth 0: "Because" vs " because",
                // and "car." + "[Usenet" tokenized ".["): the span is the tokens carrying the text.
                byText += 1
                XCTAssertEqual(t.needleSpanRule, .text, label)
                try Self.checkCoversText(t, span: span, tokenizer: tok.t, label: label)
            }
            if got != want || Self.checksum(t.promptTokens) != f.prompt_checksum { mismatches += 1 }
            XCTAssertEqual(got, want, label)
            XCTAssertEqual(Self.checksum(t.promptTokens), f.prompt_checksum, label)
        }
        XCTAssertEqual(byText, fx.trials.filter { $0.span[0] < 0 }.count)
        print(
            "NIAH real tokenizer: \(fx.trials.count) trials, \(mismatches) mismatches, needle span located by "
                + "its text in \(byText) (Wu et al.'s rule found no window)"
        )
    }

    /// Gemma 3's SentencePiece vocabulary (no dummy prefix) reproduces the 8 unlocated trials of
    /// the Gemma sweep: at depth 0 "car." meets the haystack's "[Usenet" (".["), at depth 100 the
    /// template's "</book>" (".</"), and real_needle's "Because" is " because" in the needle. A
    /// short haystack (the Jargon File's first 12 KB) keeps this to the tokenizer's load time.
    func testGemmaNeedleEdgesMergeAndAreStillLocated() throws {
        let url = DefaultModel.url.deletingLastPathComponent().appendingPathComponent("gemma-3-270m-q4_k_m.gguf")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("Gemma 3 270M not found at \(url.path) (scripts/fetch-model.sh gemma3-270m)")
        }
        let tok = GGUFTokenizer(t: try Tokenizer(gguf: GGUFFile(url: url)))
        let tmp = TempDir()
        let jargon = try Data(contentsOf: RepoPaths.probes.appendingPathComponent("haystack/jargon-file-4.4.7.txt"))
        let hay = tmp.write("h.txt", String(decoding: jargon.prefix(12_000), as: UTF8.self))
        let suite = try NIAHSuite.load(contentsOf: RepoPaths.probes.appendingPathComponent("default.json"))
            .applying(
                .init(haystack: hay.path, needleIDs: ["mr-green"], lengths: [1000], depths: [0, 50, 100], chat: false))
        let probe = try NIAHProbe.load(suite: suite)
        let builder = NIAHTrialBuilder(probe: probe, tokenizer: tok)
        var rules: [NeedleSpanRule] = []
        for cell in probe.cells {
            let t = try builder.trial(cell)
            let label = "gemma3 mr-green depth \(cell.depth)"
            let span = try XCTUnwrap(t.needleSpan, label)
            try Self.checkCoversText(t, span: span, tokenizer: tok.t, label: label)
            rules.append(t.needleSpanRule)
        }
        // Depth 50 follows a period and is followed by " If": only "Because" differs, 16/17 > 0.9.
        XCTAssertEqual(rules, [.text, .tokenSet, .text])
    }

    /// `span` is the smallest run of prompt tokens whose bytes hold real_needle (ASCII case ignored).
    static func checkCoversText(_ t: NIAHTrial, span: Range<Int>, tokenizer: Tokenizer, label: String) throws {
        func text(_ r: Range<Int>) -> String {
            String(decoding: r.flatMap { tokenizer.pieceBytes(t.promptTokens[$0]) }, as: UTF8.self).lowercased()
        }
        let needle = t.needle.realNeedle.lowercased()
        XCTAssertTrue(text(span).contains(needle), "\(label): \(text(span))")
        XCTAssertFalse(text(span.dropFirst()).contains(needle), "\(label): span starts late enough")
        XCTAssertFalse(text(span.dropLast()).contains(needle), "\(label): span ends early enough")
    }
}
