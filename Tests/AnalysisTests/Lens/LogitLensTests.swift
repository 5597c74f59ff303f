import Foundation
import GGUF
import Inference
import TraceStore
import XCTest

@testable import Analysis

/// The logit lens and direct logit attribution of the default model against transformers on the
/// same GGUF (Tests/Fixtures/lens/make_lens.py, float32 forward, float64 lens), plus the
/// decomposition's own invariants and the `/lens` run-file round trip.
final class LogitLensTests: XCTestCase {
    struct Fixture: Decodable {
        struct Row: Decodable {
            var top_ids: [Int32]
            var top_logits: [Double]
            var target_logit: Double
            var target_rank: Int
            var log_normalizer: Double
            var baseline_logit: Double?
        }
        struct DLA: Decodable {
            var heads: [[Double]]
            var mlp: [Double]
            var embed: Double
            var final_scale: Double
            var logit_diff: Double
            var total: Double
        }
        struct Entry: Decodable {
            var position: Int
            var rows: [Row]
            var dla: DLA
            var model_top: Int32
        }
        struct Case: Decodable {
            var name: String
            var prompt: String
            var ids: [Int32]
            var target_id: Int32
            var baseline_id: Int32?
            var positions: [Int]
            var lens: [Entry]
        }
        var n_layers: Int
        var n_heads: Int
        var top: Int
        var cases: [Case]
    }

    static let fixtureURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/lens/lens.json")

    struct Env {
        let model: Model
        let tokenizer: Tokenizer
    }
    nonisolated(unsafe) private static var cached: Env?
    private static let lock = NSLock()

    static func load() throws -> Env {
        lock.lock()
        defer { lock.unlock() }
        if let e = cached { return e }
        let url = DefaultModel.url
        guard FileManager.default.fileExists(atPath: url.path) else { throw XCTSkip("model not found at \(url.path)") }
        let file = try GGUFFile(url: url)
        let e = Env(model: try Model(gguf: file), tokenizer: try Tokenizer(gguf: file))
        cached = e
        return e
    }

    /// Lens logits, ranks, top-k and every attribution within 1e-3 of transformers; top-1 equal
    /// wherever the reference's margin between its first two tokens exceeds that tolerance.
    func testLensAndAttributionMatchTransformers() throws {
        let env = try Self.load()
        let fx = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Self.fixtureURL))
        let L = fx.n_layers, H = fx.n_heads, k = fx.top
        XCTAssertEqual(env.model.config.nLayers, L)
        var worstLogit = 0.0, worstDLA = 0.0
        for c in fx.cases {
            XCTAssertEqual(env.tokenizer.encode(c.prompt, addSpecial: true, parseSpecial: false), c.ids, c.name)
            let lens = try LogitLens.compute(
                model: env.model, prompt: c.ids,
                request: LogitLensRequest(positions: c.positions, top: k, target: c.target_id, baseline: c.baseline_id))
            let P = c.positions.count
            XCTAssertEqual(lens.rows, L + 1)
            for (pi, e) in c.lens.enumerated() {
                XCTAssertEqual(e.position, c.positions[pi])
                XCTAssertEqual(lens.modelTop[pi], e.model_top, "\(c.name) model top-1 at \(e.position)")
                for (r, ref) in e.rows.enumerated() {
                    let at = "\(c.name) pos \(e.position) row \(lens.rowLabels[r])"
                    let base = (r * P + pi) * k
                    let ids = Array(lens.topIDs[base..<(base + k)])
                    let logits = lens.topLogits[base..<(base + k)].map(Double.init)
                    if ref.top_logits[0] - ref.top_logits[1] > 1e-3 { XCTAssertEqual(ids[0], ref.top_ids[0], at) }
                    for (a, b) in zip(logits, ref.top_logits) {
                        worstLogit = max(worstLogit, abs(a - b))
                        XCTAssertEqual(a, b, accuracy: 1e-3, at)
                    }
                    let i = r * P + pi
                    XCTAssertEqual(lens.targetLogit[i], ref.target_logit, accuracy: 1e-3, at)
                    worstLogit = max(worstLogit, abs(lens.targetLogit[i] - ref.target_logit))
                    if let b = ref.baseline_logit { XCTAssertEqual(lens.baselineLogit[i], b, accuracy: 1e-3, at) }
                    XCTAssertEqual(lens.logNormalizer[i], ref.log_normalizer, accuracy: 1e-3, at)
                    // Ranks may differ only through near-ties with the target's logit.
                    XCTAssertLessThanOrEqual(abs(lens.targetRank[i] - ref.target_rank), 2, at)
                }
                let a = try XCTUnwrap(lens.attribution)
                func near(_ x: Double, _ y: Double, _ what: String) {
                    worstDLA = max(worstDLA, abs(x - y))
                    XCTAssertEqual(x, y, accuracy: 1e-3, "\(c.name) pos \(e.position) \(what)")
                }
                for l in 0..<L {
                    for h in 0..<H { near(a.heads[(pi * L + l) * H + h], e.dla.heads[l][h], "head \(l).\(h)") }
                    near(a.mlp[pi * L + l], e.dla.mlp[l], "mlp \(l)")
                }
                near(a.embed[pi], e.dla.embed, "embed")
                near(a.total[pi], e.dla.total, "total")
                near(a.logitDifference[pi], e.dla.logit_diff, "model logit difference")
                XCTAssertEqual(a.finalScale[pi], e.dla.final_scale, accuracy: 1e-4 * e.dla.final_scale)
            }
        }
        print("[lens] max |Δ| vs transformers: lens logits \(worstLogit), attributions \(worstDLA)")
    }

    /// The components add up to the model's own logit difference, the heads to attn_out, and
    /// the last lens row is the model's prediction.
    func testComponentsAddUpToTheModelsLogitDifference() throws {
        let env = try Self.load()
        let ids = env.tokenizer.encode(
            "When Mary and John went to the store, John gave a drink to", addSpecial: true, parseSpecial: false)
        let mary = env.tokenizer.encode(" Mary", addSpecial: false, parseSpecial: false)
        let john = env.tokenizer.encode(" John", addSpecial: false, parseSpecial: false)
        XCTAssertEqual([mary.count, john.count], [1, 1])
        let lens = try LogitLens.compute(
            model: env.model, prompt: ids,
            request: LogitLensRequest(
                positions: [ids.count - 2, ids.count - 1], top: 3, target: mary[0], baseline: john[0]))
        let a = try XCTUnwrap(lens.attribution)
        for p in 0..<2 {
            XCTAssertEqual(a.total[p], a.logitDifference[p], accuracy: 1e-3 * max(1, abs(a.logitDifference[p])))
            // The final row's lens logits are the model's logits.
            XCTAssertEqual(lens.topIDs[(lens.layers * 2 + p) * 3], lens.modelTop[p])
            let i = lens.layers * 2 + p
            XCTAssertEqual(lens.targetLogit[i] - lens.baselineLogit[i], a.logitDifference[p], accuracy: 1e-3)
        }
        XCTAssertLessThan(a.residualError, 1e-5)
        XCTAssertLessThan(a.headSumError, 1e-5) // Llama's o_proj has no bias
        XCTAssertGreaterThan(a.logitDifference[1], 0, "SmolLM2 prefers the indirect object")
        // Without a baseline the attributed quantity is the target's logit itself.
        let single = try LogitLens.compute(
            model: env.model, prompt: ids,
            request: LogitLensRequest(positions: [-1 + ids.count], top: 1, target: mary[0]))
        let s = try XCTUnwrap(single.attribution)
        XCTAssertEqual(s.total[0], s.logitDifference[0], accuracy: 1e-3 * max(1, abs(s.logitDifference[0])))
        XCTAssertEqual(s.logitDifference[0], single.targetLogit[single.layers], accuracy: 1e-3)
    }

    func testRunFileRoundTripAndBadRequests() throws {
        let env = try Self.load()
        let ids = env.tokenizer.encode("The capital of France is", addSpecial: true, parseSpecial: false)
        let lens = try LogitLens.compute(
            model: env.model, prompt: ids, request: LogitLensRequest(positions: [1, 4], top: 4, target: 7042))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lens-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("lens.h5").path
        do {
            let f = try H5File.create(path)
            try LensRunFile.write(lens, text: { env.tokenizer.piece($0) }, to: f)
            try f.close()
        }
        let f = try H5File.open(path)
        let back = try XCTUnwrap(try LensRunFile.read(f))
        XCTAssertEqual(back.lens.topIDs, lens.topIDs)
        XCTAssertEqual(back.lens.topLogits, lens.topLogits)
        XCTAssertEqual(back.lens.targetRank, lens.targetRank)
        XCTAssertEqual(back.lens.attribution, lens.attribution)
        XCTAssertEqual(back.lens.heads, lens.heads)
        XCTAssertEqual(back.lens.logNormalizer, lens.logNormalizer)
        XCTAssertEqual(back.text(7042), env.tokenizer.piece(7042))
        for id in lens.topIDs { XCTAssertEqual(back.text(id), env.tokenizer.piece(id)) }
        try f.close()

        func fails(_ r: LogitLensRequest, _ expected: LensError) {
            XCTAssertThrowsError(try LogitLens.compute(model: env.model, prompt: ids, request: r)) {
                XCTAssertEqual($0 as? LensError, expected)
            }
        }
        fails(LogitLensRequest(positions: [ids.count]), .positionOutOfRange(ids.count, length: ids.count))
        fails(LogitLensRequest(positions: []), .noPositions)
        fails(LogitLensRequest(positions: [0], top: 0), .badTop(0, vocab: env.model.config.vocabSize))
        fails(
            LogitLensRequest(positions: [0], target: Int32(env.model.config.vocabSize)),
            .tokenOutOfRange(Int32(env.model.config.vocabSize), vocab: env.model.config.vocabSize))
    }
}
