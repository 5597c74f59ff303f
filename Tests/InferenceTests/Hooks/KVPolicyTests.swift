import Foundation
@testable import Inference
import XCTest

/// KV policies on a tiny model against a hand computation from the run's own captures (rot_q,
/// rot_k, v of the policy layer): window + sinks, top-k and drop; `full` equals no policy bit for
/// bit; prefill chunks and decode agree; bad policies are clear errors; the cache-size formula.
final class KVPolicyTests: XCTestCase {
    static let layer = 1

    func capture(
        _ s: InferenceSession, _ tokens: [Int32], layers: IndexSelection = [KVPolicyTests.layer]
    ) throws
        -> CaptureStore
    {
        try s.trace(
            prompt: tokens,
            requests: [
                CaptureRequest(
                    hooks: ["attn.hook_rot_q", "attn.hook_rot_k", "attn.hook_v", "attn.hook_pattern", "attn.hook_z"],
                    layers: layers)
            ]
        ).0
    }

    func testPoliciesAgainstHandComputation() throws {
        let (model, m, _) = try CaptureHookTests.tiny("llama")
        let c = model.config, t = m.tokens.count, dh = c.dHead, l = Self.layer
        XCTAssertGreaterThanOrEqual(c.nHeads, 4)
        let policies: [Int: HeadKVPolicy] = [0: .window(size: 5, sinks: 2), 1: .topk(4), 2: .drop]
        let session = InferenceSession(model: model, maxContext: 64, maxChunk: 16) // 40 tokens: 3 chunks
        var kv = KVPolicy()
        for (h, p) in policies { kv.heads[KVHeadAddress(layer: l, head: h)] = p }
        session.kvPolicy = kv
        let st = try capture(session, m.tokens)
        let name = "blocks.\(l)."
        let q = st[name + "attn.hook_rot_q"]!, k = st[name + "attn.hook_rot_k"]!, v = st[name + "attn.hook_v"]!
        let pat = st[name + "attn.hook_pattern"]!, z = st[name + "attn.hook_z"]!
        var worstP = 0.0, worstZ = 0.0
        for (h, policy) in policies.sorted(by: { $0.key < $1.key }) {
            let g = h / c.groupSize
            for p in 0..<t {
                // scores of the visible keys, by hand (Double)
                var sc = [Double](repeating: -.infinity, count: t)
                for key in 0...p where policy.admits(key: key, position: p) {
                    var d = 0.0
                    for j in 0..<dh { d += Double(q[p, h, j]) * Double(k[key, g, j]) }
                    sc[key] = d * Double(c.attentionScale)
                }
                if case .topk(let kk) = policy {
                    let order = (0...p).sorted { sc[$0] != sc[$1] ? sc[$0] > sc[$1] : $0 < $1 }
                    for key in order.dropFirst(kk) { sc[key] = -.infinity }
                    XCTAssertEqual(sc.filter(\.isFinite).count, min(kk, p + 1), "topk keeps K keys")
                }
                var want = [Double](repeating: 0, count: t)
                if policy != .drop {
                    let mx = sc.max()!
                    let e = sc.map { $0.isFinite ? Foundation.exp($0 - mx) : 0 }
                    let sum = e.reduce(0, +)
                    want = e.map { $0 / sum }
                }
                for key in 0..<t {
                    let got = pat[h, p, key]
                    if want[key] == 0 {
                        XCTAssertEqual(got, 0, "\(policy) L\(l)H\(h) q\(p) k\(key): exactly zero outside the policy")
                    } else {
                        worstP = max(worstP, abs(Double(got) - want[key]))
                    }
                }
                if case .topk(let kk) = policy {
                    XCTAssertEqual((0...p).filter { pat[h, p, $0] != 0 }.count, min(kk, p + 1))
                }
                if case .window(let w, let s) = policy {
                    for key in 0...p where !(key < s || p - key < w) { XCTAssertEqual(pat[h, p, key], 0) }
                }
                for j in 0..<dh {
                    let zz = (0..<t).reduce(0.0) { $0 + want[$1] * Double(v[$1, g, j]) }
                    worstZ = max(worstZ, abs(Double(z[p, h, j]) - zz))
                }
            }
        }
        print("KV policies vs hand computation: max |pattern| diff \(worstP), max |z| diff \(worstZ)")
        XCTAssertLessThanOrEqual(worstP, 1e-5)
        XCTAssertLessThanOrEqual(worstZ, 1e-5)
    }

    func testFullEqualsNoPolicyBitForBit() throws {
        let (model, m, _) = try CaptureHookTests.tiny("llama")
        let c = model.config
        let clean = InferenceSession(model: model, maxContext: 64, maxChunk: 16)
        let cleanLogits = try clean.prefillAllLogits(tokens: m.tokens)
        let cleanStore = try capture(clean, m.tokens, layers: [0, 1])
        // every head full, listed or not: the plain path, identical logits
        let full = InferenceSession(model: model, maxContext: 64, maxChunk: 16)
        full.kvPolicy = KVPolicy(
            rest: .full, heads: [KVHeadAddress(layer: 0, head: 1): .full, KVHeadAddress(layer: 1, head: 3): .full])
        XCTAssertEqual(try full.prefillAllLogits(tokens: m.tokens), cleanLogits)
        // one windowed head: the other heads of its layer and every head of layer 0 are unchanged bit for bit
        let one = InferenceSession(model: model, maxContext: 64, maxChunk: 16)
        one.kvPolicy = KVPolicy(rest: .full, heads: [KVHeadAddress(layer: 1, head: 0): .window(size: 4, sinks: 1)])
        let st = try capture(one, m.tokens, layers: [0, 1])
        XCTAssertEqual(st["blocks.0.attn.hook_z"]!.values, cleanStore["blocks.0.attn.hook_z"]!.values)
        let za = st["blocks.1.attn.hook_z"]!, zc = cleanStore["blocks.1.attn.hook_z"]!
        var changed = false
        for p in 0..<m.tokens.count {
            for h in 0..<c.nHeads {
                for j in 0..<c.dHead {
                    if h == 0 {
                        changed = changed || za[p, h, j] != zc[p, h, j]
                    } else {
                        XCTAssertEqual(za[p, h, j], zc[p, h, j], "head \(h) untouched")
                    }
                }
            }
        }
        XCTAssertTrue(changed, "the windowed head's output changes")
        // a window covering the whole context is full attention (another code path: to rounding)
        let wide = InferenceSession(model: model, maxContext: 64, maxChunk: 16)
        wide.kvPolicy = KVPolicy(rest: .window(size: 64, sinks: 0))
        let wl = try wide.prefillAllLogits(tokens: m.tokens)
        XCTAssertLessThanOrEqual(ForwardTests.maxAbsDiff(wl.flatMap { $0 }, cleanLogits.flatMap { $0 }), 1e-4)
    }

    /// Prefill in one piece, in chunks of 7, or followed by decode steps: the same logits (a windowed
    /// head never sees an evicted key in prefill either).
    func testChunksAndDecodeAgree() throws {
        let (model, m, _) = try CaptureHookTests.tiny("qwen2")
        let t = m.tokens.count
        let kv = KVPolicy(
            rest: .window(size: 6, sinks: 2),
            heads: [
                KVHeadAddress(layer: 0, head: 0): .full, KVHeadAddress(layer: 1, head: 1): .topk(5),
                KVHeadAddress(layer: 1, head: 2): .drop
            ])
        func run(chunk: Int, decodeFrom: Int?) throws -> [Float] {
            let s = InferenceSession(model: model, maxContext: 64, maxChunk: chunk)
            s.kvPolicy = kv
            guard let d = decodeFrom else { return try s.prefill(tokens: m.tokens) }
            var logits = try s.prefill(tokens: Array(m.tokens[..<d]))
            for tok in m.tokens[d...] { logits = try s.step(token: tok) }
            return logits
        }
        let whole = try run(chunk: 512, decodeFrom: nil)
        let clean = try InferenceSession(model: model, maxContext: 64).prefill(tokens: m.tokens)
        XCTAssertGreaterThan(ForwardTests.maxAbsDiff(whole, clean), 1e-3, "the policy changes the output")
        XCTAssertLessThanOrEqual(ForwardTests.maxAbsDiff(whole, try run(chunk: 7, decodeFrom: nil)), 1e-5)
        XCTAssertLessThanOrEqual(ForwardTests.maxAbsDiff(whole, try run(chunk: 512, decodeFrom: t - 9)), 1e-5)
    }

    /// Every head under a policy, with no observer: the causal pass skips every KV group and the heads
    /// run on the kernel pool (prefill and decode); with hook_pattern captured they run one by one
    /// after the full causal pass. The head outputs are the same bit for bit.
    func testPoolPathEqualsSerialPathBitForBit() throws {
        let (model, m, _) = try CaptureHookTests.tiny("llama")
        let c = model.config
        var kv = KVPolicy(rest: .window(size: 5, sinks: 2))
        kv.heads[KVHeadAddress(layer: 1, head: 1)] = .topk(4)
        kv.heads[KVHeadAddress(layer: 0, head: 2)] = .drop
        func z(pattern: Bool) throws -> [[Float]] {
            let s = InferenceSession(model: model, maxContext: 64, maxChunk: 16)
            s.kvPolicy = kv
            let hooks = ["attn.hook_z"] + (pattern ? ["attn.hook_pattern"] : [])
            let st = try s.trace(prompt: m.tokens, requests: [CaptureRequest(hooks: hooks)], generate: 3).0
            return (0..<c.nLayers).map { st["blocks.\($0).attn.hook_z"]!.values }
        }
        let pool = try z(pattern: false), serial = try z(pattern: true)
        XCTAssertEqual(pool.count, c.nLayers)
        XCTAssertEqual(pool, serial)
    }

    func testBadPoliciesAreClearErrors() throws {
        for (text, fragment) in [
            ("window:0", "W must be >= 1"), ("window:8+-1", "S must be >= 0"), ("topk:0", "K must be >= 1"),
            ("keep-all", "expected full"), ("window:abc", "not an integer"), ("sliding:4", "unknown policy")
        ] {
            XCTAssertThrowsError(try HeadKVPolicy(parsing: text), text) { e in
                let msg = (e as? LocalizedError)?.errorDescription ?? ""
                XCTAssertTrue(msg.contains(fragment), "\(text): \(msg)")
            }
        }
        XCTAssertEqual(try HeadKVPolicy(parsing: "window:128"), .window(size: 128, sinks: 4))
        XCTAssertEqual(try HeadKVPolicy(parsing: "Window=64+0"), .window(size: 64, sinks: 0))
        XCTAssertEqual(try HeadKVPolicy(parsing: "topk:16"), .topk(16))

        let (model, m, _) = try CaptureHookTests.tiny("llama")
        func fails(_ kv: KVPolicy, _ fragment: String) {
            let s = InferenceSession(model: model, maxContext: 64)
            s.kvPolicy = kv
            XCTAssertThrowsError(try s.prefill(tokens: m.tokens)) { e in
                let msg = (e as? LocalizedError)?.errorDescription ?? "\(e)"
                XCTAssertTrue(msg.contains(fragment), msg)
            }
        }
        fails(KVPolicy(rest: .topk(65)), "more keys than the context holds (64 tokens)")
        fails(KVPolicy(heads: [KVHeadAddress(layer: 0, head: 9): .drop]), "head 9 is out of range")
        fails(KVPolicy(heads: [KVHeadAddress(layer: 5, head: 0): .drop]), "layer 5 is out of range")
        fails(KVPolicy(rest: .window(size: 0, sinks: 1)), "W must be >= 1")
        fails(KVPolicy(rest: .window(size: 3, sinks: -2)), "S must be >= 0")
    }

    func testCacheBytes() throws {
        let (model, _, _) = try CaptureHookTests.tiny("llama")
        let c = model.config, g = c.groupSize, per = 2 * c.dHead * 2 // K and V, fp16
        XCTAssertEqual(KVPolicy().cacheBytes(config: c, tokens: 100), c.nLayers * c.nKVHeads * per * 100)
        XCTAssertEqual(KVPolicy(rest: .drop).cacheBytes(config: c, tokens: 100), 0)
        let w = KVPolicy(rest: .window(size: 10, sinks: 2))
        XCTAssertEqual(w.cacheBytes(config: c, tokens: 100), c.nLayers * c.nKVHeads * per * 12)
        XCTAssertEqual(w.cacheBytes(config: c, tokens: 8), c.nLayers * c.nKVHeads * per * 8)
        // one full query head keeps its KV group whole
        let one = KVPolicy(full: [(layer: 0, head: g - 1)], rest: .window(size: 10, sinks: 2))
        XCTAssertEqual(
            one.cacheBytes(config: c, tokens: 100), (c.nLayers * c.nKVHeads - 1) * per * 12 + per * 100)
        XCTAssertEqual(KVPolicy(rest: .topk(5)).cacheBytes(config: c, tokens: 100), c.nLayers * c.nKVHeads * per * 100)
    }
}
