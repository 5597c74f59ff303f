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

        var mismatches = 0, unlocated = 0
        for f in fx.trials {
            let b = f.chat ? chat : plain
            let n = try XCTUnwrap(b.probe.needles.firstIndex { $0.id == f.needle_id })
            let t = try b.trial(NIAHCell(needleIndex: n, length: f.length, depth: f.depth))
            let got = [
                t.context.haystackTokenCount, t.context.needleTokenCount, t.context.tokens.count,
                t.context.requestedInsertion, t.context.insertionPoint, t.promptTokens.count,
                t.answerTokens.count, t.needleSpan?.lowerBound ?? -1, t.needleSpan?.upperBound ?? -1
            ]
            let want = [
                f.haystack_tokens, f.needle_tokens, f.context_tokens, f.requested, f.insertion,
                f.prompt_tokens, f.answer_tokens, f.span[0], f.span[1]
            ]
            let label = "\(f.needle_id) length \(f.length) depth \(f.depth) chat \(f.chat)"
            if got != want || Self.checksum(t.promptTokens) != f.prompt_checksum { mismatches += 1 }
            XCTAssertEqual(got, want, label)
            XCTAssertEqual(Self.checksum(t.promptTokens), f.prompt_checksum, label)
            if t.needleSpan == nil { unlocated += 1 }
        }
        print(
            "NIAH real tokenizer: \(fx.trials.count) trials, \(mismatches) mismatches, needle span not found in "
                + "\(unlocated)"
        )
    }
}
