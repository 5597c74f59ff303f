import Foundation
import GGUF
@testable import Inference
import XCTest

/// The families beyond Llama/Qwen2 on tiny random-weight GGUFs against transformers (float32, eager).
/// Fixtures and the architecture spec: Tests/Fixtures/families (make_families.py, README.md).
/// Every prompt: logits of every position within 1e-4, attention of the manifest's layers within
/// 1e-5 (and exactly 0 outside a sliding window), decode steps within 1e-4, greedy continuation equal.
final class FamilyForwardTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Fixtures/families")

    struct Manifest: Decodable {
        struct Prompt: Decodable {
            var tokens: [Int32]
            var greedy: [Int32]
            var top1: [Int]
        }
        var family: String
        var gguf: String
        var architecture: String
        var vocab_size: Int
        var n_layers: Int
        var n_heads: Int
        var n_kv_heads: Int
        var head_dim: Int
        var prompts: [Prompt]
        var logits_file: String
        var attention_file: String
        var attention_layers: [Int]
    }

    func testQwen3() throws {
        let m = try check("qwen3")
        XCTAssertTrue(m.config.qkNorm)
        XCTAssertEqual(m.config.qWidth, 64) // key_length 16 x 4 heads, d_model 32
        XCTAssertNil(m.weights.layers[0].bq)
    }

    func testMistralSlidingWindow() throws {
        let m = try check("mistral")
        XCTAssertEqual(m.config.layerWindow, [8, 8])
        XCTAssertEqual(m.config.ropeStyle, .normal)
    }

    func testPhi3FusedTensors() throws {
        let m = try check("phi3")
        XCTAssertEqual(m.config.tensorLayout, .fusedQKVGateUp)
        XCTAssertEqual(m.weights.layers[0].wq.rows, 32)
        XCTAssertEqual(m.weights.layers[0].wUp.rows, 64)
    }

    func testLlama3RopeFactors() throws {
        let m = try check("llama3rope")
        let f = try XCTUnwrap(m.weights.ropeFreqFactors)
        XCTAssertEqual(f.count, 4)
        XCTAssertEqual(f[0], 1)
        XCTAssertEqual(f[3], 8)
        XCTAssertFalse(m.config.hasSlidingWindow)
    }

    func testGemma2() throws {
        let m = try check("gemma2")
        XCTAssertEqual(m.config.layerWindow, [8, 0])
        XCTAssertEqual(m.config.attnLogitSoftcap, 50)
        XCTAssertEqual(m.config.finalLogitSoftcap, 30)
        XCTAssertEqual(m.config.activation, .geluTanh)
    }

    func testGemma3() throws {
        let m = try check("gemma3")
        XCTAssertEqual(m.config.layerWindow, [8, 8, 8, 8, 8, 0])
        XCTAssertEqual(m.config.layerAttentionKinds, ["sliding", "sliding", "sliding", "sliding", "sliding", "full"])
        XCTAssertEqual(m.config.ropeBase, 1_000_000)
        XCTAssertEqual(m.config.ropeBaseSWA, 10_000)
        XCTAssertEqual(m.config.finalLogitSoftcap, 0)
        XCTAssertTrue(m.config.qkNorm && m.config.postNorms)
    }

    /// Runs every check on `tiny-<family>`; returns the model for family-specific assertions.
    @discardableResult
    func check(_ family: String) throws -> Model {
        let dir = Self.fixtures
        let manifest = try JSONDecoder().decode(
            Manifest.self, from: Data(contentsOf: dir.appendingPathComponent("tiny-\(family).json")))
        let model = try Model(path: dir.appendingPathComponent(manifest.gguf).path)
        let c = model.config
        XCTAssertEqual(c.architecture, manifest.architecture)
        XCTAssertEqual(c.vocabSize, manifest.vocab_size)
        XCTAssertEqual(c.nLayers, manifest.n_layers)
        XCTAssertEqual(c.nHeads, manifest.n_heads)
        XCTAssertEqual(c.nKVHeads, manifest.n_kv_heads)
        XCTAssertEqual(c.dHead, manifest.head_dim)
        let refLogits = try ForwardTests.readFloats(dir.appendingPathComponent(manifest.logits_file))
        let refAttn = try ForwardTests.readFloats(dir.appendingPathComponent(manifest.attention_file))
        let v = c.vocabSize, h = c.nHeads
        var logitBase = 0, attnBase = 0
        var maxLogit: Float = 0, maxAttn: Float = 0, maxStep: Float = 0
        for (pi, prompt) in manifest.prompts.enumerated() {
            let t = prompt.tokens.count
            // Prefill with every position's logits and the listed layers' patterns.
            let session = model.makeSession(maxContext: 64)
            let capture = CaptureStore()
            var logits: [[Float]] = []
            try session.prefill(
                tokens: prompt.tokens, logits: .all,
                capturing: [
                    CaptureRequest(
                        hooks: ["attn.hook_pattern"], layers: IndexSelection(manifest.attention_layers))
                ],
                into: capture
            ) { _, row in logits.append(Array(row)) }
            for p in 0..<t {
                let ref = refLogits[(logitBase + p * v)..<(logitBase + (p + 1) * v)]
                maxLogit = max(maxLogit, ForwardTests.maxAbsDiff(logits[p], ref))
                XCTAssertEqual(Sampler.argmax(logits[p]), prompt.top1[p], "\(family) prompt \(pi) top-1 at \(p)")
            }
            for l in manifest.attention_layers {
                let window = c.window(l)
                for head in 0..<h {
                    for q in 0..<t {
                        let row = try XCTUnwrap(
                            capture["blocks.\(l).attn.hook_pattern"]?.attentionRow(head: head, query: q))
                        let base = attnBase + head * t * t + q * t
                        maxAttn = max(maxAttn, ForwardTests.maxAbsDiff(row, refAttn[base..<(base + q + 1)]))
                        if window > 0 && q + 1 > window {
                            XCTAssertTrue(row[0..<(q + 1 - window)].allSatisfy { $0 == 0 }, "outside the window")
                            XCTAssertEqual(row[(q + 1 - window)...q].filter { $0 != 0 }.count, window)
                        }
                    }
                }
                attnBase += h * t * t
            }
            // Decode: half prefilled (the blocked kernel), the rest one step at a time.
            session.reset()
            let half = t / 2
            maxStep = max(
                maxStep,
                ForwardTests.maxAbsDiff(
                    try session.prefill(tokens: Array(prompt.tokens[..<half])),
                    refLogits[(logitBase + (half - 1) * v)..<(logitBase + half * v)]))
            for p in half..<t {
                let row = try session.step(token: prompt.tokens[p])
                maxStep = max(
                    maxStep, ForwardTests.maxAbsDiff(row, refLogits[(logitBase + p * v)..<(logitBase + (p + 1) * v)]))
            }
            let cont = try ReferenceModels.greedy(session, prompt: prompt.tokens, steps: prompt.greedy.count)
            XCTAssertEqual(cont, prompt.greedy, "tiny-\(family) prompt \(pi) greedy continuation")
            logitBase += t * v
        }
        XCTAssertEqual(logitBase, refLogits.count)
        XCTAssertEqual(attnBase, refAttn.count)
        print(
            "tiny-\(family): max |logit diff| \(maxLogit), decode \(maxStep), max |attention diff| \(maxAttn)")
        XCTAssertLessThanOrEqual(maxLogit, 1e-4)
        XCTAssertLessThanOrEqual(maxStep, 1e-4)
        XCTAssertLessThanOrEqual(maxAttn, 1e-5)
        return model
    }
}
