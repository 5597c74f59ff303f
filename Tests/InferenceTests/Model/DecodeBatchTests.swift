import Foundation
@testable import Inference
import XCTest

/// `DecodeBatch` on the default model (skipped without it): a batched step gives every session bit
/// for bit the logits, KV cache rows and captured attention rows of its own `step`, with sessions
/// at different positions, one capturing hook_pattern, one under decode-phase ablations (zero and
/// mean), sessions leaving the batch, and both KV storages; `copyPrefix` continues exactly as the
/// source session truncated.
final class DecodeBatchTests: XCTestCase {
    func loadModel() throws -> Model {
        let path = ForwardTests.defaultModelPath
        guard FileManager.default.fileExists(atPath: path.path) else {
            throw XCTSkip("default model not found at \(path.path) (scripts/fetch-model.sh)")
        }
        return try Model(path: path.path)
    }

    static func prompt(_ n: Int, seed: Int) -> [Int32] {
        var rng = SeededGenerator(seed: UInt64(seed))
        return (0..<n).map { _ in Int32.random(in: 10..<40000, using: &rng) }
    }

    func testBatchedStepsEqualSingleSteps() throws {
        let model = try loadModel()
        let c = model.config
        for kv in [KVStorage.f32, .f16] {
            let lengths = [5, 23, 61, 40]
            func makeSessions() throws -> [InferenceSession] {
                try lengths.enumerated().map { i, n in
                    let s = InferenceSession(model: model, maxContext: 80, kv: kv)
                    if i == 2 {
                        s.interventions = [
                            HeadIntervention(layer: 3, head: 1, method: .zero, phase: .decode),
                            HeadIntervention(layer: 7, head: 4, method: .mean, phase: .decode)
                        ]
                    }
                    try s.prefill(tokens: Self.prompt(n, seed: 100 + i), logits: .none) { _, _ in }
                    return s
                }
            }
            let single = try makeSessions(), batched = try makeSessions()
            let stepper = DecodeBatch(model: model, maxBatch: lengths.count)
            var fed = lengths.indices.map { Int32(1000 + 37 * $0) }
            var active = Array(lengths.indices)
            let request = CaptureRequest(hooks: [HookKind.pattern.rawValue], queries: .decode)
            for step in 0..<6 {
                if step == 3 { active.removeAll { $0 == 1 } } // a trial that stopped
                if step == 5 { active.removeAll { $0 == 3 } }
                // Session 0 captures every layer's attention row of the fed token.
                let storeA = CaptureStore(), storeB = CaptureStore()
                var want: [[Float]] = []
                for i in active {
                    want.append(
                        i == 0
                            ? try single[i].step(token: fed[i], capturing: [request], into: storeA)
                            : try single[i].step(token: fed[i]))
                }
                let hooks: [HookSet?] = try active.map { i in
                    guard i == 0 else { return nil }
                    let plan = try TracePlan(
                        config: c, requests: [request], promptLength: batched[i].position, decodeSteps: 1)
                    return try HookSet(plan: plan, sink: storeB)
                }
                let got = try stepper.step(active.map { batched[$0] }, tokens: active.map { fed[$0] }, hooks: hooks)
                for (a, i) in active.enumerated() {
                    XCTAssertEqual(
                        got[a].map(\.bitPattern), want[a].map(\.bitPattern), "\(kv) step \(step) session \(i)")
                    XCTAssertEqual(batched[i].position, single[i].position)
                    XCTAssertEqual(batched[i].tokens, single[i].tokens)
                    fed[i] = Int32(Sampler.argmax(want[a]))
                }
                if active.contains(0) {
                    XCTAssertEqual(storeA.tensors.count, c.nLayers)
                    XCTAssertEqual(storeB.tensors.count, storeA.tensors.count)
                    for (x, y) in zip(storeA.tensors, storeB.tensors) {
                        XCTAssertEqual(x.values.map(\.bitPattern), y.values.map(\.bitPattern), "\(x.layout.name)")
                    }
                }
            }
            // The caches hold the same rows.
            for i in lengths.indices {
                for l in [0, c.nLayers - 1] {
                    let rows = single[i].position, n = rows * c.kvWidth
                    let a = Array(UnsafeBufferPointer(start: single[i].cache.floatKeys(layer: l, rows: rows), count: n))
                    let b = Array(
                        UnsafeBufferPointer(start: batched[i].cache.floatKeys(layer: l, rows: rows), count: n))
                    XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(kv) session \(i) layer \(l) keys")
                }
            }
        }
    }

    func testCopyPrefixContinuesAsTheTruncatedSource() throws {
        let model = try loadModel()
        let p = Self.prompt(50, seed: 9), q = Array(p.prefix(30)) + Self.prompt(12, seed: 10)
        let source = InferenceSession(model: model, maxContext: 64)
        try source.prefill(tokens: p, logits: .none) { _, _ in }
        _ = try source.step(token: 77)
        let copy = InferenceSession(model: model, maxContext: 64)
        try copy.prefill(tokens: Self.prompt(20, seed: 11), logits: .none) { _, _ in } // overwritten
        copy.copyPrefix(from: source, count: 30)
        XCTAssertEqual(copy.tokens, Array(p.prefix(30)))
        source.truncate(to: 30)
        let a = try source.prefill(tokens: Array(q.dropFirst(30)))
        let b = try copy.prefill(tokens: Array(q.dropFirst(30)))
        XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern))
    }
}
