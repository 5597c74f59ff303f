import Foundation
@testable import Inference
import XCTest

/// A quick throughput measurement on the default model (not the benchmark): a 2,048-token
/// prefill and 128 decode steps. Opt-in: HEADLIGHT_PERF=1. OpenBLAS reads its kernel choice at
/// load, so run with the kernel `headlight doctor` recommends, e.g.
///     HEADLIGHT_PERF=1 OPENBLAS_CORETYPE=SkylakeX swift test -c release --filter ForwardPerfTests
final class ForwardPerfTests: XCTestCase {
    func testSmolLM2Throughput() throws {
        guard ProcessInfo.processInfo.environment["HEADLIGHT_PERF"] == "1" else {
            throw XCTSkip("set HEADLIGHT_PERF=1 to measure throughput")
        }
        let path = ForwardTests.defaultModelPath
        guard FileManager.default.fileExists(atPath: path.path) else { throw XCTSkip("no default model") }
        var start = Date()
        let model = try Model(path: path.path)
        let load = Date().timeIntervalSince(start)
        let session = model.makeSession(maxContext: 4096)
        var rng = SeededGenerator(seed: 1)
        let prompt = (0..<2048).map { _ in Int32(rng.next() % 49_000) + 100 }
        start = Date()
        var logits = try session.prefill(tokens: prompt)
        let prefill = Date().timeIntervalSince(start)
        let steps = 128
        start = Date()
        for _ in 0..<steps { logits = try session.step(token: Int32(Sampler.argmax(logits))) }
        let decode = Date().timeIntervalSince(start)
        print(String(format: "SmolLM2-135M (BLAS %@, %d threads): load %.2fs; prefill 2048 tokens %.2fs = %.0f tok/s; "
                     + "decode %d tokens at 2048-2176 context %.2fs = %.1f tok/s",
                     BLASRuntime.corename, BLASRuntime.threads, load, prefill, 2048 / prefill, steps, decode,
                     Double(steps) / decode))
    }
}
