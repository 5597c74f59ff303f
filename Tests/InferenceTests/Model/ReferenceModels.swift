import Foundation
@testable import Inference
import XCTest

/// The models the forward-pass tests compare with transformers, loaded one way for every test
/// class (ForwardTests, HalfKVForwardTests, CaptureHookTests, FamilyForwardTests, ...). Fixtures
/// and their types: `ForwardTests` (Tests/Fixtures/reference, make_reference.py).
enum ReferenceModels {
    /// A tiny random-weight model, `tiny-<arch>.json` with the F32 GGUF it names.
    static func tiny(_ arch: String) throws -> (Model, ForwardTests.TinyManifest) {
        let dir = ForwardTests.fixtures
        let manifest = try JSONDecoder().decode(
            ForwardTests.TinyManifest.self, from: Data(contentsOf: dir.appendingPathComponent("tiny-\(arch).json")))
        return (try Model(path: dir.appendingPathComponent(manifest.gguf).path), manifest)
    }

    /// The default model (SmolLM2-135M) with its fixture manifest (smollm2/manifest.json);
    /// throws XCTSkip when the model is not in the cache (scripts/fetch-model.sh).
    static func smolLM2() throws -> (Model, ForwardTests.SmolManifest) {
        let path = ForwardTests.defaultModelPath
        guard FileManager.default.fileExists(atPath: path.path) else {
            throw XCTSkip("default model not found at \(path.path) (scripts/fetch-model.sh)")
        }
        let manifest = try JSONDecoder().decode(
            ForwardTests.SmolManifest.self,
            from: Data(contentsOf: ForwardTests.fixtures.appendingPathComponent("smollm2/manifest.json")))
        return (try Model(path: path.path), manifest)
    }

    /// The greedy continuation of `prompt`: `steps` argmax tokens, the session reset first (the
    /// reference fixtures' `greedy`).
    static func greedy(_ session: InferenceSession, prompt: [Int32], steps: Int) throws -> [Int32] {
        session.reset()
        var logits = try session.prefill(tokens: prompt)
        var out: [Int32] = []
        for i in 0..<steps {
            let next = Int32(Sampler.argmax(logits))
            out.append(next)
            if i + 1 < steps { logits = try session.step(token: next) }
        }
        return out
    }
}
