import Foundation
import GGUF
@testable import Inference
import XCTest

/// The hooks added with the model families fire at the same TransformerLens names, with the shapes
/// docs/run-file.md gives, in every family (tiny GGUFs of Tests/Fixtures/families); and a family
/// file with a missing QK-norm weight, an unsupported head size or YaRN rope scaling is a clear
/// error, never a crash.
final class FamilyHooksAndInputTests: XCTestCase {
    static let families = ["qwen3", "mistral", "phi3", "llama3rope", "gemma2", "gemma3"]

    static func tinyURL(_ family: String) -> URL {
        FamilyForwardTests.fixtures.appendingPathComponent("tiny-\(family).gguf")
    }

    func testNewHooksFireInEveryFamily() throws {
        for family in Self.families {
            let model = try Model(path: Self.tinyURL(family).path)
            let c = model.config
            let session = model.makeSession(maxContext: 64)
            let prompt: [Int32] = (0..<12).map { Int32(($0 * 37 + 5) % c.vocabSize) }
            let t = prompt.count
            var hooks = [
                "hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post",
                "ln1.hook_normalized", "ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_post"
            ]
            if c.qkNorm { hooks += ["attn.hook_q_normed", "attn.hook_k_normed"] }
            let store = CaptureStore()
            try session.trace(prompt: prompt, requests: [CaptureRequest(hooks: hooks)], into: store)
            for l in 0..<c.nLayers {
                func get(_ name: String) throws -> CapturedTensor {
                    try XCTUnwrap(store["blocks.\(l).\(name)"], "\(family): blocks.\(l).\(name) not captured")
                }
                let pre = try get("hook_resid_pre"), attn = try get("hook_attn_out")
                let mid = try get("hook_resid_mid"), mlp = try get("hook_mlp_out")
                let post = try get("hook_resid_post")
                for x in [pre, attn, mid, mlp, post] { XCTAssertEqual(x.shape, [t, c.dModel], family) }
                // resid_mid = resid_pre + attn_out and resid_post = resid_mid + mlp_out, in every family.
                var maxMid: Float = 0, maxPost: Float = 0
                for i in 0..<(t * c.dModel) {
                    maxMid = max(maxMid, abs(mid.values[i] - (pre.values[i] + attn.values[i])))
                    maxPost = max(maxPost, abs(post.values[i] - (mid.values[i] + mlp.values[i])))
                }
                XCTAssertLessThan(maxMid, 1e-5, "\(family) layer \(l): resid_mid")
                XCTAssertLessThan(maxPost, 1e-5, "\(family) layer \(l): resid_post")
                // ln1/ln2.hook_normalized: x / rms(x) of the norm's input, so every row has mean square ~1.
                for name in ["ln1.hook_normalized", "ln2.hook_normalized"] {
                    let n = try get(name)
                    XCTAssertEqual(n.shape, [t, c.dModel], "\(family) \(name)")
                    for p in 0..<t {
                        let row = n.values[(p * c.dModel)..<((p + 1) * c.dModel)]
                        let ms = row.reduce(0) { $0 + $1 * $1 } / Float(c.dModel)
                        XCTAssertEqual(ms, 1, accuracy: 1e-2, "\(family) layer \(l) \(name) position \(p)")
                    }
                }
                XCTAssertEqual(try get("mlp.hook_pre").shape, [t, c.dFF], family)
                XCTAssertEqual(try get("mlp.hook_post").shape, [t, c.dFF], family)
                if c.qkNorm {
                    XCTAssertEqual(try get("attn.hook_q_normed").shape, [t, c.nHeads, c.dHead], family)
                    XCTAssertEqual(try get("attn.hook_k_normed").shape, [t, c.nKVHeads, c.dHead], family)
                }
            }
            // A glob over the attention hooks offers the QK-norm hooks only where the family has them.
            let plan = try TracePlan(
                config: c, requests: [CaptureRequest(hooks: ["blocks.0.attn.*"])], promptLength: t)
            let names = Set(plan.captures.map(\.name))
            XCTAssertEqual(names.contains("blocks.0.attn.hook_q_normed"), c.qkNorm, family)
        }
    }

    // MARK: - Bad input

    /// A copy of the tiny `family` GGUF with metadata `changes` applied (nil removes the key) and the
    /// tensors in `dropping` left out.
    func rewritten(
        _ family: String, changes: [String: GGUFValue?] = [:], dropping: Set<String> = [], label: String
    ) throws -> String {
        let file = try GGUFFile(url: Self.tinyURL(family))
        var w = GGUFWriter()
        for key in file.metadataKeys {
            if let change = changes[key] {
                if let v = change { w.set(key, v) }
            } else if let v = file.metadata[key] {
                w.set(key, v)
            }
        }
        for (key, change) in changes where file.metadata[key] == nil { if let v = change { w.set(key, v) } }
        for t in file.tensors where !dropping.contains(t.name) {
            w.addTensor(t.name, dims: t.dims, type: t.type, bytes: Array(file.data(of: t)))
        }
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("headlight-\(label)-\(UUID().uuidString).gguf")
        try w.write(to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    func testRewriteKeepsTheModel() throws {
        // The copy machinery itself: an unchanged copy loads and has the same config.
        for family in ["qwen3", "gemma3"] {
            let copy = try Model(path: try rewritten(family, label: "copy"))
            XCTAssertEqual(copy.config, try Model(path: Self.tinyURL(family).path).config)
        }
    }

    func testMissingQKNormWeightIsNamed() throws {
        for family in ["qwen3", "gemma3"] {
            for name in ["blk.0.attn_q_norm.weight", "blk.1.attn_k_norm.weight"] {
                let path = try rewritten(family, dropping: [name], label: "noqknorm")
                XCTAssertThrowsError(try Model(path: path), "\(family) without \(name)") { error in
                    XCTAssertEqual(error as? ModelError, .missingTensor(name), "\(family)")
                    let text = (error as? LocalizedError)?.errorDescription ?? ""
                    XCTAssertTrue(text.contains(name), text)
                }
            }
        }
    }

    func testUnsupportedHeadSizesAreClearErrors() throws {
        // qwen3 tiny: key_length 16. An odd head size cannot be rotated; keys and values of different
        // sizes do not fit the one-size KV cache.
        let odd = try rewritten(
            "qwen3", changes: ["qwen3.attention.key_length": .uint32(15), "qwen3.attention.value_length": .uint32(15)],
            label: "oddhead")
        XCTAssertThrowsError(try Model(path: odd)) { error in
            guard case .unsupportedHeadDim(let k, let v, let reason)? = error as? ModelError else {
                return XCTFail("expected unsupportedHeadDim, got \(error)")
            }
            XCTAssertEqual([k, v], [15, 15])
            XCTAssertTrue(reason.contains("even"), reason)
        }
        let unequal = try rewritten(
            "qwen3", changes: ["qwen3.attention.value_length": .uint32(8)], label: "kvhead")
        XCTAssertThrowsError(try Model(path: unequal)) { error in
            guard case .unsupportedHeadDim(let k, let v, _)? = error as? ModelError else {
                return XCTFail("expected unsupportedHeadDim, got \(error)")
            }
            XCTAssertEqual([k, v], [16, 8])
            XCTAssertTrue(((error as? LocalizedError)?.errorDescription ?? "").contains("16"))
        }
    }

    func testYarnRopeScalingIsRefused() throws {
        for (family, arch) in [("mistral", "llama"), ("qwen3", "qwen3")] {
            let path = try rewritten(
                family,
                changes: ["\(arch).rope.scaling.type": .string("yarn"), "\(arch).rope.scaling.factor": .float32(4)],
                label: "yarn")
            XCTAssertThrowsError(try Model(path: path), family) { error in
                guard case .invalidConfig(let key, let reason)? = error as? ModelError else {
                    return XCTFail("expected invalidConfig, got \(error)")
                }
                XCTAssertEqual(key, "\(arch).rope.scaling.type")
                XCTAssertTrue(reason.contains("yarn"), reason)
            }
        }
    }
}
