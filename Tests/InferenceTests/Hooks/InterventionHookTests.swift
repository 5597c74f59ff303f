import Foundation
@testable import Inference
import XCTest

/// Interventions: each ablation method on a tiny model against a hand computation from a clean
/// run's captures, phases, chunking/decode consistency, activation patching, and on the default
/// model: zero-ablating every head of a layer equals removing that layer's attention output.
final class InterventionHookTests: XCTestCase {
    static let layer = 1

    /// Clean captures of layer 1 (inputs of layer 1 do not depend on a layer-1 ablation).
    func captures(_ session: InferenceSession, _ tokens: [Int32]) throws -> CaptureStore {
        let (s, _) = try session.trace(
            prompt: tokens,
            requests: [
                CaptureRequest(
                    hooks: ["attn.hook_z", "attn.hook_v", "attn.hook_result", "hook_attn_out", "attn.hook_pattern"],
                    layers: [Self.layer])
            ])
        return s
    }

    /// attn_out(ablated) - attn_out(clean) must equal (z'_h - z_h) · W_O[:, h]ᵀ.
    func checkAttnOut(_ model: Model, clean: CaptureStore, ablated: CaptureStore, head h: Int, t: Int, label: String) {
        let c = model.config, wo = model.weights.layers[Self.layer].wo, dh = c.dHead
        let name = "blocks.\(Self.layer)."
        let zc = clean[name + "attn.hook_z"]!, za = ablated[name + "attn.hook_z"]!
        let oc = clean[name + "hook_attn_out"]!, oa = ablated[name + "hook_attn_out"]!
        var worst: Float = 0
        for p in 0..<t {
            for d in 0..<c.dModel {
                var delta: Float = 0
                for j in 0..<dh { delta += (za[p, h, j] - zc[p, h, j]) * wo.data[d * c.qWidth + h * dh + j] }
                worst = max(worst, abs(oa[p, d] - oc[p, d] - delta))
            }
        }
        XCTAssertLessThanOrEqual(worst, 1e-4, "\(label): attn_out change vs hand computation")
    }

    func testAblationMethodsAgainstHandComputation() throws {
        let (model, m, _) = try CaptureHookTests.tiny("llama")
        let c = model.config, t = m.tokens.count, dh = c.dHead, l = Self.layer
        let session = InferenceSession(model: model, maxContext: 64, maxChunk: 16)
        let clean = try captures(session, m.tokens)
        let zc = clean["blocks.\(l).attn.hook_z"]!, vc = clean["blocks.\(l).attn.hook_v"]!
        let h = 2, kvh = h / c.groupSize
        let reference = Array(m.tokens.reversed()[..<25])
        let refMeans = try model.meanHeadOutputs([reference], layers: [l])
        // reference means by hand
        let refZ = try captures(InferenceSession(model: model, maxContext: 64), reference)["blocks.\(l).attn.hook_z"]!
        for j in 0..<dh {
            let mean = (0..<reference.count).reduce(Float(0)) { $0 + refZ[$1, h, j] } / Float(reference.count)
            XCTAssertEqual(refMeans[l]![h * dh + j], mean, accuracy: 1e-5)
        }

        let methods: [(String, AblationMethod, Bool)] = [
            ("zero", .zero, false), ("scale", .scale(0.25), false),
            ("mean (running)", .mean, false), ("mean (reference)", .mean, true),
            ("uniform", .uniform, false), ("bos", .bos, false)
        ]
        for (label, method, useRef) in methods {
            session.interventions = [HeadIntervention(layer: l, head: h, method: method, phase: .both)]
            session.headMeans = useRef ? refMeans : nil
            let ablated = try captures(session, m.tokens)
            let za = ablated["blocks.\(l).attn.hook_z"]!, pa = ablated["blocks.\(l).attn.hook_pattern"]!
            var worst: Float = 0
            for p in 0..<t {
                for j in 0..<dh {
                    let want: Float
                    switch (method, useRef) {
                    case (.zero, _): want = 0
                    case (.scale(let s), _): want = s * zc[p, h, j]
                    case (.mean, false): want = (0...p).reduce(Float(0)) { $0 + zc[$1, h, j] } / Float(p + 1)
                    case (.mean, true): want = refMeans[l]![h * dh + j]
                    case (.uniform, _): want = (0...p).reduce(Float(0)) { $0 + vc[$1, kvh, j] } / Float(p + 1)
                    case (.bos, _): want = vc[0, kvh, j]
                    }
                    worst = max(worst, abs(za[p, h, j] - want))
                }
                // other heads of the layer are untouched
                for other in 0..<c.nHeads where other != h {
                    XCTAssertEqual(
                        za.position(p)![(other * dh)..<((other + 1) * dh)],
                        zc.position(p)![(other * dh)..<((other + 1) * dh)])
                }
                if method == .uniform {
                    XCTAssertLessThanOrEqual(
                        ForwardTests.maxAbsDiff(
                            pa.attentionRow(head: h, query: p)!,
                            [Float](repeating: 1 / Float(p + 1), count: p + 1)), 1e-6)
                }
                if method == .bos {
                    XCTAssertEqual(pa.attentionRow(head: h, query: p)!, [1] + [Float](repeating: 0, count: p))
                }
            }
            print("tiny-llama \(label) ablation of L\(l)H\(h): max |z - hand computation| \(worst)")
            XCTAssertLessThanOrEqual(worst, 2e-5, label)
            checkAttnOut(model, clean: clean, ablated: ablated, head: h, t: t, label: label)
        }
    }

    /// Running means, uniform and bos give the same logits whether the sequence runs as one
    /// prefill, in chunks of 7, or as a prefill followed by decode steps.
    func testAblationsAgreeAcrossChunksAndDecode() throws {
        let (model, m, _) = try CaptureHookTests.tiny("qwen2")
        let t = m.tokens.count
        let ivs = [
            HeadIntervention(layer: 0, head: 1, method: .mean), HeadIntervention(layer: 1, head: 0, method: .uniform),
            HeadIntervention(layer: 1, head: 3, method: .bos), HeadIntervention(layer: 0, head: 2, method: .scale(-1))
        ]
        func run(chunk: Int, decodeFrom: Int?) throws -> [Float] {
            let s = InferenceSession(model: model, maxContext: 64, maxChunk: chunk)
            s.interventions = ivs
            guard let d = decodeFrom else { return try s.prefill(tokens: m.tokens) }
            var logits = try s.prefill(tokens: Array(m.tokens[..<d]))
            for tok in m.tokens[d...] { logits = try s.step(token: tok) }
            return logits
        }
        let whole = try run(chunk: 512, decodeFrom: nil)
        let chunked = try run(chunk: 7, decodeFrom: nil)
        let decoded = try run(chunk: 512, decodeFrom: t - 9)
        let clean = try InferenceSession(model: model, maxContext: 64).prefill(tokens: m.tokens)
        XCTAssertGreaterThan(ForwardTests.maxAbsDiff(whole, clean), 1e-3, "the ablations change the output")
        XCTAssertLessThanOrEqual(ForwardTests.maxAbsDiff(whole, chunked), 1e-5)
        XCTAssertLessThanOrEqual(ForwardTests.maxAbsDiff(whole, decoded), 1e-5)

        // truncate rewinds the running mean
        let s = InferenceSession(model: model, maxContext: 64)
        s.interventions = ivs
        _ = try s.prefill(tokens: m.tokens)
        s.truncate(to: 20)
        XCTAssertLessThanOrEqual(ForwardTests.maxAbsDiff(try s.prefill(tokens: Array(m.tokens[20...])), whole), 1e-5)
    }

    func testPhases() throws {
        let (model, m, _) = try CaptureHookTests.tiny("llama")
        let t = m.tokens.count
        let clean = InferenceSession(model: model, maxContext: 64)
        let cleanPrefill = try clean.prefill(tokens: Array(m.tokens[..<(t - 1)]))
        let cleanStep = try clean.step(token: m.tokens[t - 1])
        let all = (0..<4).map { HeadIntervention(layer: 1, head: $0, method: .zero, phase: .decode) }
        let s = InferenceSession(model: model, maxContext: 64)
        s.interventions = all
        XCTAssertEqual(
            try s.prefill(tokens: Array(m.tokens[..<(t - 1)])), cleanPrefill,
            "decode-only ablation leaves the prefill alone")
        XCTAssertGreaterThan(ForwardTests.maxAbsDiff(try s.step(token: m.tokens[t - 1]), cleanStep), 1e-3)
        s.reset()
        s.interventions = all.map {
            var i = $0
            i.phase = .prefill
            return i
        }
        XCTAssertGreaterThan(
            ForwardTests.maxAbsDiff(try s.prefill(tokens: Array(m.tokens[..<(t - 1)])), cleanPrefill), 1e-3)
        // the step itself is not ablated: its own layer-1 attention output is clean (captured)
        let plan = try TracePlan(
            config: model.config, requests: [CaptureRequest(hooks: ["blocks.1.attn.hook_z"], queries: .decode)],
            promptLength: t - 1, decodeSteps: 1)
        let store = CaptureStore()
        s.hooks = try HookSet(plan: plan, sink: store)
        _ = try s.step(token: m.tokens[t - 1])
        XCTAssertTrue(store["blocks.1.attn.hook_z"]!.values.contains { $0 != 0 })
    }

    func testActivationPatching() throws {
        let (model, m, _) = try CaptureHookTests.tiny("qwen2")
        let a = Array(m.tokens[..<24]), b = Array(m.tokens[16..<40])
        let session = InferenceSession(model: model, maxContext: 64)
        let (source, ra) = try session.trace(
            prompt: a, requests: [CaptureRequest(hooks: ["blocks.0.hook_resid_pre", "blocks.1.attn.hook_z"])])
        // The whole residual stream entering layer 0 from run A: run B becomes run A.
        session.patches = [try ActivationPatch(from: source["blocks.0.hook_resid_pre"]!)]
        let patched = try session.prefill(
            tokens: {
                session.reset()
                return b
            }())
        XCTAssertLessThanOrEqual(ForwardTests.maxAbsDiff(patched, ra.lastLogits), 1e-5)
        // One head's output: B's hook_z of that head equals A's, the others are B's own.
        session.patches = [try ActivationPatch(from: source["blocks.1.attn.hook_z"]!, head: 2)]
        let (got, _) = try session.trace(prompt: b, requests: [CaptureRequest(hooks: ["blocks.1.attn.hook_z"])])
        session.patches = []
        let (own, _) = try session.trace(prompt: b, requests: [CaptureRequest(hooks: ["blocks.1.attn.hook_z"])])
        let z = got["blocks.1.attn.hook_z"]!, za = source["blocks.1.attn.hook_z"]!, zb = own["blocks.1.attn.hook_z"]!
        for p in 0..<24 {
            for j in 0..<model.config.dHead {
                XCTAssertEqual(z[p, 2, j], za[p, 2, j])
                XCTAssertEqual(z[p, 1, j], zb[p, 1, j])
            }
        }
        // Residual patch of a few positions only, from a given start
        session.patches = [
            ActivationPatch(
                .residPost(layer: 0), start: 5, values: [Float](repeating: 0, count: 2 * model.config.dModel))
        ]
        let (r, _) = try session.trace(prompt: b, requests: [CaptureRequest(hooks: ["blocks.0.hook_resid_post"])])
        let post = r["blocks.0.hook_resid_post"]!
        XCTAssertTrue(post.position(5)!.allSatisfy { $0 == 0 } && post.position(6)!.allSatisfy { $0 == 0 })
        XCTAssertFalse(post.position(7)!.allSatisfy { $0 == 0 })
    }

    /// Default model: zero-ablating all 9 heads of a layer gives the same logits as removing that
    /// layer's attention output from the residual stream (patching hook_attn_out with zeros).
    func testZeroAblatingALayerRemovesItsAttentionOutput() throws {
        let (model, manifest) = try ReferenceModels.smolLM2()
        let c = model.config
        let tokens = manifest.prompts[0].tokens
        let t = tokens.count
        let session = model.makeSession(maxContext: 256)
        let clean = try session.prefillAllLogits(tokens: tokens).flatMap { $0 }
        for layer in [0, 13, 29] {
            session.reset()
            session.patches = []
            session.interventions = (0..<c.nHeads).map { HeadIntervention(layer: layer, head: $0, method: .zero) }
            let (store, _) = try session.trace(
                prompt: tokens, requests: [CaptureRequest(hooks: ["blocks.\(layer).hook_attn_out", "logits"])])
            XCTAssertTrue(store["blocks.\(layer).hook_attn_out"]!.values.allSatisfy { $0 == 0 })
            let ablated = store["logits"]!.values
            session.interventions = []
            session.patches = [
                ActivationPatch(.attnOut(layer: layer), values: [Float](repeating: 0, count: t * c.dModel))
            ]
            session.reset()
            let removed = try session.prefillAllLogits(tokens: tokens).flatMap { $0 }
            let diff = ForwardTests.maxAbsDiff(ablated, removed)
            print(
                "smollm2 layer \(layer): all heads zero-ablated vs attention output removed: max |logit diff| \(diff); "
                    + "vs clean \(ForwardTests.maxAbsDiff(ablated, clean))")
            XCTAssertLessThanOrEqual(diff, 1e-4)
            XCTAssertGreaterThan(ForwardTests.maxAbsDiff(ablated, clean), 1e-2)
        }
    }
}
