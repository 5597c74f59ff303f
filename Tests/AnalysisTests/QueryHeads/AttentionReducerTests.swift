import Foundation
import XCTest

@testable import Analysis
@testable import Inference

/// The on-the-fly attention reducers (`QueryAttentionSink` for QRHead, `SparsitySink` for the
/// sparsity profile) on a tiny random-weight model, against statistics computed by hand from the
/// full patterns of the same prompt (captured whole by `CaptureStore`), through prefill chunks.
final class AttentionReducerTests: XCTestCase {
    struct Manifest: Decodable {
        var gguf: String
        var tokens: [Int32]
    }

    static func tiny() throws -> (Model, [Int32]) {
        let dir = RepoPaths.root.appendingPathComponent("Tests/Fixtures/reference")
        let m = try JSONDecoder().decode(
            Manifest.self, from: Data(contentsOf: dir.appendingPathComponent("tiny-llama.json")))
        return (try Model(path: dir.appendingPathComponent(m.gguf).path), m.tokens)
    }

    /// Full patterns [layer][head][query][key] of `ids`.
    static func fullPatterns(_ model: Model, _ ids: [Int32]) throws -> [[[[Float]]]] {
        let session = InferenceSession(model: model, maxContext: 64)
        let (store, _) = try session.trace(prompt: ids, requests: [CaptureRequest(hooks: ["attn.hook_pattern"])])
        let c = model.config
        return try (0..<c.nLayers).map { l in
            let t = try XCTUnwrap(store[HookPoint(.pattern, layer: l)])
            return (0..<c.nHeads).map { h in (0..<ids.count).map { q in t.attentionRow(head: h, query: q)! } }
        }
    }

    func testQueryAttentionSinkIsTheMeanRow() throws {
        let (model, ids) = try Self.tiny()
        let full = try Self.fullPatterns(model, ids)
        let c = model.config, t = ids.count, q0 = t - 9
        for chunk in [512, 5] {
            let session = InferenceSession(model: model, maxContext: 64, maxChunk: chunk)
            try session.prefill(tokens: Array(ids[..<20]))
            let sink = QueryAttentionSink()
            try session.prefill(
                tokens: Array(ids[20...]), logits: .none,
                capturing: [CaptureRequest(hooks: ["attn.hook_pattern"], queries: QuerySelection([.range(q0, nil)]))],
                into: sink)
            XCTAssertEqual(sink.keys, t)
            var maxDiff = 0.0
            for l in 0..<c.nLayers {
                for h in 0..<c.nHeads {
                    let got = sink.meanRow(layer: l, head: h)
                    for k in 0..<t {
                        var want = 0.0
                        for q in q0..<t where k < full[l][h][q].count { want += Double(full[l][h][q][k]) }
                        want /= Double(t - q0)
                        maxDiff = max(maxDiff, abs(got[k] - want))
                    }
                }
            }
            print("QueryAttentionSink chunk \(chunk): max |mean row - hand| \(maxDiff)")
            XCTAssertLessThan(maxDiff, 1e-6)
        }
    }

    func testSparsitySinkMatchesHandComputation() throws {
        let (model, ids) = try Self.tiny()
        let full = try Self.fullPatterns(model, ids)
        let c = model.config, t = ids.count, nq = 12
        let ks = [1, 3, 50], sinks = [1, 2], windows = [5], streamingSinks = 2
        let sink = SparsitySink(ks: ks, sinkSizes: sinks, windows: windows, streamingSinks: streamingSinks)
        // Two runs (the second in chunks of 7) accumulate: every statistic is the same mean over 2x rows.
        for chunk in [512, 7] {
            let session = InferenceSession(model: model, maxContext: 64, maxChunk: chunk)
            try session.trace(
                prompt: ids, requests: [CaptureRequest(hooks: ["attn.hook_pattern"], queries: .last(nq))], into: sink)
        }
        XCTAssertEqual(sink.rows, [Int](repeating: 2 * nq, count: c.nLayers * c.nHeads))
        var maxDiff = 0.0
        func check(_ got: Double, _ want: Double) { maxDiff = max(maxDiff, abs(got - want)) }
        for l in 0..<c.nLayers {
            for h in 0..<c.nHeads {
                let i = l * c.nHeads + h
                var top = [Double](repeating: 0, count: ks.count), ent = 0.0, nent = 0.0
                var sm = [Double](repeating: 0, count: sinks.count), st = 0.0
                for q in (t - nq)..<t {
                    let row = full[l][h][q].map(Double.init) // keys 0...q
                    XCTAssertEqual(row.count, q + 1)
                    let sorted = row.sorted(by: >)
                    for (j, k) in ks.enumerated() { top[j] += sorted.prefix(k).reduce(0, +) }
                    let e = -row.filter { $0 > 0 }.map { $0 * log($0) }.reduce(0, +)
                    ent += e
                    nent += e / log(Double(row.count))
                    for (j, s) in sinks.enumerated() { sm[j] += row.prefix(s).reduce(0, +) }
                    var kept = Set((max(0, row.count - windows[0]))..<row.count)
                    kept.formUnion(0..<streamingSinks)
                    st += kept.map { row[$0] }.reduce(0, +)
                }
                let n = Double(nq)
                for j in ks.indices { check(sink.topKShare[j][i], top[j] / n) }
                check(sink.meanEntropy[i], ent / n)
                check(sink.meanNormalizedEntropy[i], nent / n)
                for j in sinks.indices { check(sink.sinkMass[j][i], sm[j] / n) }
                check(sink.streamingMass[0][i], st / n)
                XCTAssertEqual(sink.topKShare[2][i], 1, accuracy: 1e-5, "top-50 of <= 40 keys holds everything")
                XCTAssertLessThanOrEqual(sink.topKShare[0][i], sink.topKShare[1][i] + 1e-12)
            }
        }
        print("SparsitySink: max |statistic - hand| \(maxDiff) over \(c.nLayers * c.nHeads) heads")
        XCTAssertLessThan(maxDiff, 1e-6)
    }

    func testReducersRejectOtherForms() throws {
        let (model, ids) = try Self.tiny()
        let session = InferenceSession(model: model, maxContext: 64)
        let topk = CaptureRequest(hooks: ["attn.hook_pattern"], queries: .last(2), form: .topK(2))
        XCTAssertThrowsError(try session.trace(prompt: ids, requests: [topk], into: QueryAttentionSink()))
        let z = CaptureRequest(hooks: ["attn.hook_z"], queries: .last(2))
        XCTAssertThrowsError(
            try session.trace(
                prompt: ids, requests: [z], into: SparsitySink(ks: [1], sinkSizes: [1], windows: [1], streamingSinks: 0)
            ))
    }
}
