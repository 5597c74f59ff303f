import Foundation
import XCTest
import GGUF
import Inference
@testable import Analysis

/// Headlight's retrieval-head detection against an independent reference: Wu et al.'s rule run
/// with Hugging Face transformers (float32, eager attention) on the same prompts, by
/// Tests/Fixtures/retrieval/reference_detect.py. The fixture holds the prompts (token ids, as
/// Headlight built them), needle spans, and the reference's per-trial and per-head scores for
/// 3 needles x lengths [500, 1000] x depths [0, 25, 50, 75, 100] (30 trials) on the default
/// model.
///
/// Checks: Headlight still builds exactly those prompts and spans; its per-head scores differ
/// from the reference's by at most 0.02; the same heads score above 0.1. Skipped without the
/// model file.
final class ReferenceAgreementRetrievalTests: XCTestCase {
    struct Fixture: Decodable {
        struct Trial: Decodable {
            var trial_index: Int
            var needle_id: String
            var length: Int
            var depth: Double
            var span: [Int]?
            var response: String
            var generated: [Int32]
            var rouge: Double
            var success: Bool
            var counted: Bool
            var head_scores: [[Double]]
        }
        var n_layers: Int
        var n_heads: Int
        var max_new_tokens: Int
        var counted: Int
        var scores: [[Double]]
        var engine: String
        var trials: [Trial]
        var prompts: [String: [Int32]]
    }

    static let fixtureURL = RetrievalTestModel.fixtures.appendingPathComponent("reference_smollm2.json")

    func testScoresAgreeWithTransformersReference() throws {
        let env = try RetrievalTestModel.load()
        let fx = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Self.fixtureURL))
        XCTAssertGreaterThanOrEqual(fx.trials.count, 30)
        let c = env.model.config
        XCTAssertEqual(fx.n_layers, c.nLayers)
        XCTAssertEqual(fx.n_heads, c.nHeads)

        // 1. Same prompts and spans as Headlight builds today.
        let probe = try NIAHProbe.load(
            contentsOf: RepoPaths.probes.appendingPathComponent("default.json"),
            overrides: .init(lengths: [500, 1000]))
        let builder = NIAHTrialBuilder(probe: probe, tokenizer: env.tokenizer, chatTemplate: env.chatWrapper)
        let cells = probe.cells
        XCTAssertEqual(cells.count, fx.trials.count)
        var trials: [NIAHTrial] = []
        for t in fx.trials {
            let trial = try builder.trial(cells[t.trial_index])
            XCTAssertEqual(trial.needle.id, t.needle_id)
            XCTAssertEqual(trial.promptTokens, fx.prompts[String(t.trial_index)], "prompt of trial \(t.trial_index)")
            XCTAssertEqual(
                trial.needleSpan.map { [$0.lowerBound, $0.upperBound] }, t.span, "span of trial \(t.trial_index)")
            trials.append(trial)
        }

        // 2. Headlight's detection on those prompts.
        let session = env.model.makeSession(
            maxContext: (trials.map(\.promptTokens.count).max() ?? 0) + fx.max_new_tokens + 1)
        let decoder = NeedleDecoder(session: session, tokenizer: env.tokenizer)
        var mine: [[Double]] = []
        var counted: [Bool] = []
        var sameTokens = 0, sameSuccess = 0
        for (t, ref) in zip(trials, fx.trials) {
            let out = try decoder.run(
                prompt: t.promptTokens, maxNewTokens: fx.max_new_tokens, span: t.needleSpan, scoreHeads: true)
            let rouge = NeedleRetrievalScore.score(realNeedle: t.needle.realNeedle, response: out.response)
            let ok = NeedleRetrievalScore.succeeded(rouge)
            mine.append(out.headScores!)
            counted.append(ok && t.needleSpan != nil)
            if out.generated == ref.generated { sameTokens += 1 }
            if ok == ref.success { sameSuccess += 1 }
        }
        let scores = RetrievalHeadScores.aggregate(
            trialScores: mine, counted: counted, layers: c.nLayers, heads: c.nHeads)

        // 3. Agreement.
        var maxDiff = 0.0, worst = HeadIndex(layer: 0, head: 0)
        for l in 0..<c.nLayers {
            for h in 0..<c.nHeads {
                let d = abs(scores.scores[l * c.nHeads + h] - fx.scores[l][h])
                if d > maxDiff {
                    maxDiff = d
                    worst = HeadIndex(layer: l, head: h)
                }
            }
        }
        let refScores = RetrievalHeadScores(
            layers: c.nLayers, heads: c.nHeads, scores: fx.scores.flatMap { $0 },
            countedTrials: fx.counted)
        let mineAbove = Set(scores.above(0.1).map(\.head)), refAbove = Set(refScores.above(0.1).map(\.head))
        print(
            """
            retrieval-head agreement with \(fx.engine):
              trials \(fx.trials.count); identical generated tokens in \(sameTokens); same success in \(sameSuccess); \
            counted \(scores.countedTrials) (reference \(fx.counted))
              max |score difference| \(String(format: "%.2e", maxDiff)) at head \(worst); \
            heads > 0.1: \(mineAbove.count) \
            (reference \(refAbove.count)), symmetric difference \(mineAbove.symmetricDifference(refAbove).sorted())
              top 5 Headlight: \(scores.top(5).map { "\($0.head)=\(String(format: "%.4f", $0.score))" })
              top 5 reference: \(refScores.top(5).map { "\($0.head)=\(String(format: "%.4f", $0.score))" })
            """)
        XCTAssertLessThanOrEqual(maxDiff, 0.02, "worst head \(worst)")
        XCTAssertEqual(mineAbove, refAbove)
    }
}

/// The default model, loaded once for the retrieval tests (skips when absent).
enum RetrievalTestModel {
    struct Env {
        let model: Model
        let tokenizer: Tokenizer
        let template: ChatTemplate
        var chatWrapper: (String) -> String {
            { [template] body in (try? template.apply(messages: [.user(body)], addGenerationPrompt: true)) ?? body }
        }
    }

    static let fixtures = RepoPaths.root.appendingPathComponent("Tests/Fixtures/retrieval")

    static var modelURL: URL { NIAHRealTokenizerTests.modelURL }

    nonisolated(unsafe) private static var cached: Env?
    private static let lock = NSLock()

    static func load() throws -> Env {
        lock.lock()
        defer { lock.unlock() }
        if let e = cached { return e }
        let url = modelURL
        guard FileManager.default.fileExists(atPath: url.path) else { throw XCTSkip("model not found at \(url.path)") }
        let file = try GGUFFile(url: url)
        let e = Env(
            model: try Model(gguf: file), tokenizer: try Tokenizer(gguf: file), template: try ChatTemplate(gguf: file))
        cached = e
        return e
    }
}
