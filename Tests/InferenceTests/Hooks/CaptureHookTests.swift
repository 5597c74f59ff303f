import Foundation
@testable import Inference
import XCTest

/// Captures through the hook API: attention against transformers (tiny models: every layer, head
/// and query, through prefill chunks and decode steps; SmolLM2: the sampled rows of the fixtures),
/// the forms (rows, top-k, span mass), the other hook points against each other, and selection errors.
final class CaptureHookTests: XCTestCase {
    typealias Manifest = ForwardTests.TinyManifest

    static func tiny(_ arch: String) throws -> (Model, Manifest, [Float]) {
        let (model, m) = try ReferenceModels.tiny(arch)
        // [L, H, T, T]
        let attn = try ForwardTests.readFloats(ForwardTests.fixtures.appendingPathComponent(m.attention_file))
        return (model, m, attn)
    }

    /// Compares every captured pattern row with transformers' attention; rows sum to 1 and keys
    /// after the query are exactly 0.
    func checkPattern(_ store: CaptureStore, model: Model, ref: [Float], t: Int, label: String) throws {
        let c = model.config
        var maxDiff: Float = 0, maxSumErr: Float = 0
        for l in 0..<c.nLayers {
            let pat = try XCTUnwrap(store["blocks.\(l).attn.hook_pattern"])
            XCTAssertEqual(pat.shape, [c.nHeads, t, t])
            for h in 0..<c.nHeads {
                for q in 0..<t {
                    let base = (h * t + q) * t
                    let row = pat.values[base..<(base + t)]
                    let refBase = ((l * c.nHeads + h) * t + q) * t
                    maxDiff = max(maxDiff, ForwardTests.maxAbsDiff(row, ref[refBase..<(refBase + t)]))
                    maxSumErr = max(maxSumErr, abs(row.reduce(0, +) - 1))
                    XCTAssertTrue(
                        row[(base + q + 1)...].allSatisfy { $0 == 0 }, "\(label) causal zeros L\(l)H\(h)q\(q)")
                }
            }
        }
        print("\(label): max |pattern - transformers| \(maxDiff), max |row sum - 1| \(maxSumErr)")
        XCTAssertLessThanOrEqual(maxDiff, 1e-5, label)
        XCTAssertLessThanOrEqual(maxSumErr, 1e-5, label)
    }

    func testTinyPatternsMatchTransformers() throws {
        for arch in ["llama", "qwen2"] {
            let (model, m, ref) = try Self.tiny(arch)
            let t = m.tokens.count
            // One prefill, and prefill in chunks of 7 (rows cross chunk boundaries).
            for chunk in [512, 7] {
                let session = InferenceSession(model: model, maxContext: 64, maxChunk: chunk)
                let (store, _) = try session.trace(
                    prompt: m.tokens, requests: [CaptureRequest(hooks: ["attn.hook_pattern"])])
                try checkPattern(store, model: model, ref: ref, t: t, label: "tiny-\(arch) chunk \(chunk)")
            }
            // Half prefill, then decode steps with the fixture's tokens (library API: a HookSet by hand).
            let session = InferenceSession(model: model, maxContext: 64)
            let plan = try TracePlan(
                config: model.config, requests: [CaptureRequest(hooks: ["blocks.*.attn.hook_pattern"])],
                promptLength: t / 2, decodeSteps: t - t / 2)
            let store = CaptureStore()
            session.hooks = try HookSet(plan: plan, sink: store)
            try session.prefill(tokens: Array(m.tokens[..<(t / 2)]))
            for tok in m.tokens[(t / 2)...] { _ = try session.step(token: tok) }
            try session.hooks!.finish()
            try checkPattern(store, model: model, ref: ref, t: t, label: "tiny-\(arch) decode")
        }
    }

    /// The default model against the transformers fixture rows (every head), through the capture API.
    func testSmolLM2PatternMatchesTransformers() throws {
        let (model, manifest) = try ReferenceModels.smolLM2()
        let session = model.makeSession(maxContext: 2304)
        var worst: Float = 0
        for prompt in manifest.prompts {
            let ref = try ForwardTests.readFloats(
                ForwardTests.fixtures.appendingPathComponent("smollm2/\(prompt.attention_file)"))
            let layers = Array(Set(prompt.attention.map(\.layer))).sorted()
            let queries = Array(Set(prompt.attention.map(\.query))).sorted()
            let (store, _) = try session.trace(
                prompt: prompt.tokens,
                requests: [
                    CaptureRequest(
                        hooks: ["attn.hook_pattern"], layers: IndexSelection(layers), queries: .positions(queries))
                ])
            var offset = 0, maxDiff: Float = 0
            for s in prompt.attention {
                let pat = try XCTUnwrap(store["blocks.\(s.layer).attn.hook_pattern"])
                for head in 0..<model.config.nHeads {
                    let row = try XCTUnwrap(pat.attentionRow(head: head, query: s.query))
                    maxDiff = max(maxDiff, ForwardTests.maxAbsDiff(row, ref[offset..<(offset + s.query + 1)]))
                    XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-4)
                    // causal zeros after the query
                    let full = pat.values[
                        ((pat.layout.heads!.firstIndex(of: head)! * pat.shape[1]
                            + pat.layout.queries.firstIndex(of: s.query)!) * pat.shape[2])...
                    ]
                    .prefix(pat.shape[2])
                    XCTAssertTrue(full.dropFirst(s.query + 1).allSatisfy { $0 == 0 })
                    offset += s.query + 1
                }
            }
            XCTAssertEqual(offset, ref.count)
            print("smollm2 \(prompt.name): T=\(prompt.tokens.count) max |captured pattern - transformers| \(maxDiff)")
            worst = max(worst, maxDiff)
        }
        XCTAssertLessThanOrEqual(worst, 1e-4)
    }

    /// Top-k and span mass agree with the full rows; scores softmax to the pattern; result sums to
    /// attn_out; resid_post = resid_pre + attn_out + mlp_out; logits and embed are what the model computes.
    func testFormsAndHookConsistency() throws {
        let (model, m, _) = try Self.tiny("qwen2")
        let c = model.config, t = m.tokens.count
        let session = InferenceSession(model: model, maxContext: 64, maxChunk: 16)
        let spans = [TokenSpan("first", 0, 1), TokenSpan("middle", 10, 20), TokenSpan("late", 30, 40)]
        let (rows, _) = try session.trace(
            prompt: m.tokens,
            requests: [
                CaptureRequest(hooks: [
                    "pattern", "attn_scores", "hook_z", "hook_result", "hook_attn_out", "hook_resid_pre",
                    "hook_mlp_out", "hook_resid_post", "hook_embed", "logits", "ln_final.hook_normalized",
                    "attn.hook_q", "attn.hook_k", "attn.hook_v", "rot_q", "rot_k"
                ])
            ])
        let (topk, _) = try session.trace(
            prompt: m.tokens,
            requests: [
                CaptureRequest(
                    hooks: ["blocks.1.attn.hook_pattern"], heads: [1, 3],
                    queries: QuerySelection([.range(5, 9), .last(2)]),
                    form: .topK(4))
            ])
        let (mass, _) = try session.trace(
            prompt: m.tokens,
            requests: [
                CaptureRequest(
                    hooks: ["blocks.1.attn.hook_pattern"], heads: [-1], queries: .all, form: .spanMass(spans))
            ])
        let pat = rows["blocks.1.attn.hook_pattern"]!
        let tk = topk["blocks.1.attn.hook_pattern"]!
        XCTAssertEqual(tk.shape, [2, 6, 4])
        XCTAssertEqual(tk.layout.queries, [5, 6, 7, 8, 38, 39])
        for h in [1, 3] {
            for q in tk.layout.queries {
                let row = pat.attentionRow(head: h, query: q)!
                let order = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(4)
                XCTAssertEqual(tk.topKIndices(head: h, query: q)!.map(Int.init), Array(order))
                XCTAssertLessThanOrEqual(
                    ForwardTests.maxAbsDiff(tk.attentionRow(head: h, query: q)!, order.map { row[$0] }), 1e-6)
            }
        }
        let sm = mass["blocks.1.attn.hook_pattern"]!
        XCTAssertEqual(sm.layout.heads, [3])
        for q in 0..<t {
            let row = pat.attentionRow(head: 3, query: q)!
            let got = sm.attentionRow(head: 3, query: q)!
            for (j, s) in spans.enumerated() {
                let want = (s.start..<max(s.start, min(s.end, q + 1))).reduce(Float(0)) { $0 + row[$1] }
                XCTAssertEqual(got[j], want, accuracy: 1e-6)
            }
        }
        // scores -> softmax = pattern, -inf after the query; scores = rot_q · rot_k / sqrt(dh)
        let sc = rows["blocks.1.attn.hook_attn_scores"]!, rq = rows["blocks.1.attn.hook_rot_q"]!,
            rk = rows["blocks.1.attn.hook_rot_k"]!
        var maxDiff: Float = 0
        for h in 0..<c.nHeads {
            for q in 0..<t {
                let s = sc.attentionRow(head: h, query: q)!
                let e = s.map { Foundation.exp(Double($0 - s.max()!)) }, z = e.reduce(0, +)
                maxDiff = max(
                    maxDiff, ForwardTests.maxAbsDiff(e.map { Float($0 / z) }, pat.attentionRow(head: h, query: q)!))
                if q + 1 < t { XCTAssertEqual(sc[h, q, q + 1], -.infinity) }
                let kvh = h / c.groupSize
                var dot: Float = 0
                for j in 0..<c.dHead { dot += rq[q, h, j] * rk[0, kvh, j] }
                XCTAssertEqual(s[0], dot / Float(c.dHead).squareRoot(), accuracy: 1e-4)
            }
        }
        XCTAssertLessThanOrEqual(maxDiff, 1e-5)
        for l in 0..<c.nLayers {
            let res = rows["blocks.\(l).attn.hook_result"]!, out = rows["blocks.\(l).hook_attn_out"]!
            let pre = rows["blocks.\(l).hook_resid_pre"]!, mlp = rows["blocks.\(l).hook_mlp_out"]!,
                post = rows["blocks.\(l).hook_resid_post"]!
            var d1: Float = 0, d2: Float = 0
            for p in 0..<t {
                for i in 0..<c.dModel {
                    let sum = (0..<c.nHeads).reduce(Float(0)) { $0 + res[p, $1, i] }
                    d1 = max(d1, abs(sum - out[p, i]))
                    d2 = max(d2, abs(pre[p, i] + out[p, i] + mlp[p, i] - post[p, i]))
                }
            }
            XCTAssertLessThanOrEqual(d1, 1e-4, "sum of hook_result vs hook_attn_out, layer \(l)")
            XCTAssertLessThanOrEqual(d2, 1e-5, "resid_post, layer \(l)")
        }
        XCTAssertEqual(rows["hook_embed"]!.values, rows["blocks.0.hook_resid_pre"]!.values)
        let clean = try InferenceSession(model: model, maxContext: 64).prefillAllLogits(tokens: m.tokens)
        XCTAssertLessThanOrEqual(ForwardTests.maxAbsDiff(rows["logits"]!.values, clean.flatMap { $0 }), 1e-5)
        let norm = rows["ln_final.hook_normalized"]!
        for p in 0..<t {
            let v = norm.position(p)!
            XCTAssertEqual(v.reduce(0) { $0 + $1 * $1 } / Float(c.dModel), 1, accuracy: 1e-3)
        }
        // hook_k is hook_v's sibling on KV heads: with all query heads selected, every KV head.
        XCTAssertEqual(rows["blocks.0.attn.hook_k"]!.layout.heads, Array(0..<c.nKVHeads))
    }

    /// hook_q / hook_k are reported in Hugging Face's dimension order: Hugging Face's rotate-half
    /// RoPE applied to them gives the captured hook_rot_q / hook_rot_k (llama.cpp's row permutation
    /// of llama models is undone; qwen2 needs none).
    func testPreRoPEQueriesAreInHuggingFaceOrder() throws {
        for arch in ["llama", "qwen2"] {
            let (model, m, _) = try Self.tiny(arch)
            let c = model.config
            let (s, _) = try InferenceSession(model: model, maxContext: 64).trace(
                prompt: m.tokens,
                requests: [
                    CaptureRequest(
                        hooks: [
                            "blocks.0.attn.hook_q", "blocks.0.attn.hook_rot_q", "blocks.0.attn.hook_k",
                            "blocks.0.attn.hook_rot_k"
                        ],
                        queries: .positions([3, 17]))
                ])
            let half = c.dHead / 2
            var worst: Float = 0
            for (pre, post, nh) in [("hook_q", "hook_rot_q", c.nHeads), ("hook_k", "hook_rot_k", c.nKVHeads)] {
                let a = s["blocks.0.attn.\(pre)"]!, b = s["blocks.0.attn.\(post)"]!
                for (qi, pos) in [3, 17].enumerated() {
                    for h in 0..<nh {
                        for i in 0..<half {
                            let inv = 1 / Foundation.pow(Double(c.ropeBase), Double(2 * i) / Double(c.dHead))
                            let ang = Double(Float(pos) * Float(inv))
                            let x = Double(a[qi, h, i]), y = Double(a[qi, h, i + half])
                            worst = max(worst, Float(abs(x * cos(ang) - y * sin(ang) - Double(b[qi, h, i]))))
                            worst = max(worst, Float(abs(y * cos(ang) + x * sin(ang) - Double(b[qi, h, i + half]))))
                        }
                    }
                }
            }
            print("tiny-\(arch): max |HF RoPE(hook_q) - hook_rot_q| \(worst)")
            XCTAssertLessThanOrEqual(worst, 1e-4, arch)
        }
    }

    /// Decode-step captures equal the same rows from a single prefill of the whole sequence.
    func testGenerationCapturesMatchPrefill() throws {
        let (model, m, _) = try Self.tiny("llama")
        let session = InferenceSession(model: model, maxContext: 64)
        let prompt = Array(m.tokens[..<20])
        let (gen, r) = try session.trace(
            prompt: prompt,
            requests: [
                CaptureRequest(
                    hooks: ["pattern", "resid_post", "logits"], layers: [-1], heads: [0, 2],
                    queries: QuerySelection([.last(2), .decode]))
            ],
            generate: 6)
        XCTAssertEqual(r.tokens.count, 26)
        let (full, _) = try session.trace(
            prompt: r.tokens,
            requests: [
                CaptureRequest(
                    hooks: ["pattern", "resid_post", "logits"], layers: [-1], heads: [0, 2],
                    queries: .positions(Array(18..<26)))
            ])
        for name in ["blocks.1.attn.hook_pattern", "blocks.1.hook_resid_post", "logits"] {
            let a = gen[name]!, b = full[name]!
            XCTAssertEqual(a.layout.queries, Array(18..<26))
            XCTAssertEqual(a.shape, b.shape, name)
            XCTAssertLessThanOrEqual(ForwardTests.maxAbsDiff(a.values, b.values), 1e-4, name)
        }
    }

    /// A hook set attached for one prefill or one decode step (no reset): the rows equal those of
    /// a trace of the whole sequence, the logits those of the same passes without captures, the
    /// session's hooks are restored, and earlier positions are a clear error. (Not bit for bit:
    /// observed attention rows run through the materializing attention path, the others through
    /// the blocked kernels, which round differently.)
    func testOnePassCapturesWithoutReset() throws {
        let (model, m, _) = try Self.tiny("llama")
        let tokens = Array(m.tokens[..<17])
        let plain = InferenceSession(model: model, maxContext: 64)
        let session = InferenceSession(model: model, maxContext: 64)
        try plain.prefill(tokens: Array(tokens[..<10]))
        try session.prefill(tokens: Array(tokens[..<10]))

        let pre = CaptureStore()
        var captured: [Float] = []
        try session.prefill(
            tokens: Array(tokens[10..<16]), logits: .last,
            capturing: [
                CaptureRequest(hooks: ["pattern", "resid_post"], layers: [1], heads: [0, 2], queries: .last(3))
            ],
            into: pre
        ) { _, row in captured = Array(row) }
        let plainLogits = try plain.prefill(tokens: Array(tokens[10..<16]))
        XCTAssertLessThanOrEqual(ForwardTests.maxAbsDiff(captured, plainLogits), 1e-4)
        XCTAssertEqual(pre["blocks.1.attn.hook_pattern"]?.layout.queries, [13, 14, 15])
        XCTAssertEqual(pre.positions, 16)
        XCTAssertNil(session.hooks)

        let step = CaptureStore()
        let logits = try session.step(
            token: tokens[16],
            capturing: [
                CaptureRequest(hooks: ["blocks.1.attn.hook_pattern"], heads: [1], queries: .decode)
            ], into: step)
        XCTAssertLessThanOrEqual(ForwardTests.maxAbsDiff(logits, try plain.step(token: tokens[16])), 1e-4)
        XCTAssertEqual(step["blocks.1.attn.hook_pattern"]?.shape, [1, 1, 17])
        XCTAssertNil(session.hooks)

        let (full, _) = try InferenceSession(model: model, maxContext: 64).trace(
            prompt: tokens,
            requests: [
                CaptureRequest(
                    hooks: ["pattern", "resid_post"], layers: [1], heads: [0, 1, 2],
                    queries: .positions([13, 14, 15, 16]))
            ])
        let fullPattern = try XCTUnwrap(full["blocks.1.attn.hook_pattern"])
        func rowDiff(_ store: CaptureStore, head: Int, query: Int) throws -> Float {
            let a = try XCTUnwrap(store["blocks.1.attn.hook_pattern"]?.attentionRow(head: head, query: query))
            return ForwardTests.maxAbsDiff(a, try XCTUnwrap(fullPattern.attentionRow(head: head, query: query)))
        }
        for q in 13...15 {
            for h in [0, 2] { XCTAssertLessThanOrEqual(try rowDiff(pre, head: h, query: q), 1e-5) }
            let a = try XCTUnwrap(pre["blocks.1.hook_resid_post"]?.position(q))
            let b = try XCTUnwrap(full["blocks.1.hook_resid_post"]?.position(q))
            XCTAssertLessThanOrEqual(ForwardTests.maxAbsDiff(a, b), 1e-4)
        }
        XCTAssertEqual(step["blocks.1.attn.hook_pattern"]?.attentionRow(head: 1, query: 16)?.count, 17)
        XCTAssertLessThanOrEqual(try rowDiff(step, head: 1, query: 16), 1e-5)

        // A position already in the cache cannot be captured any more; nothing runs.
        XCTAssertThrowsError(
            try session.step(
                token: tokens[0],
                capturing: [
                    CaptureRequest(hooks: ["pattern"], queries: .positions([3]))
                ], into: CaptureStore())
        ) { error in
            XCTAssertEqual(error as? HookError, .queryAlreadyRun(3, position: 17))
        }
        XCTAssertEqual(session.position, 17)
        XCTAssertNil(session.hooks)
    }

    // MARK: - resolution and errors

    func testHookResolution() throws {
        let n = 30
        XCTAssertEqual(try HookPoint.resolve("attn.hook_pattern", nLayers: n).count, 30)
        XCTAssertEqual(
            try HookPoint.resolve("pattern", nLayers: n),
            try HookPoint.resolve("blocks.*.attn.hook_pattern", nLayers: n))
        XCTAssertEqual(
            try HookPoint.resolve("blocks.-1.hook_resid_post", nLayers: n), [HookPoint(.residPost, layer: 29)])
        XCTAssertEqual(try HookPoint.resolve("blocks.3.attn.hook_z", nLayers: n), [HookPoint(.z, layer: 3)])
        XCTAssertEqual(try HookPoint.resolve("blocks.3.pattern", nLayers: n), [HookPoint(.pattern, layer: 3)])
        XCTAssertEqual(try HookPoint.resolve("blocks.1?.hook_resid_pre", nLayers: n).map(\.layer), Array(10..<20))
        // q, k, v, rot_q, rot_k, attn_scores, pattern, z, result, q_normed, k_normed (without a model
        // config the QK-norm hooks are included; a model without QK-norm drops them from globs).
        XCTAssertEqual(try HookPoint.resolve("blocks.-2.attn.*", nLayers: n).count, 11)
        XCTAssertEqual(try HookPoint.resolve("logits", nLayers: n), [HookPoint(.logits)])
        XCTAssertEqual(try HookPoint.resolve("ln_final.hook_normalized", nLayers: n), [HookPoint(.lnFinal)])
        // embed, ln_final, logits + per layer: 11 attention hooks, resid_pre/mid/post, attn_out,
        // mlp_out, ln1/ln2.hook_normalized, mlp.hook_pre/hook_post.
        XCTAssertEqual(try HookPoint.resolve("*", nLayers: n).count, 3 + 30 * 20)
        XCTAssertEqual(
            try HookPoint.resolve(["hook_embed,logits", "logits"], nLayers: n), [HookPoint(.embed), HookPoint(.logits)])
        XCTAssertEqual(HookPoint(.pattern, layer: 3).name, "blocks.3.attn.hook_pattern")
    }

    func testMalformedSelectionsAreClearErrors() throws {
        let (model, m, _) = try Self.tiny("llama") // 2 layers, 4 heads
        let c = model.config
        func message(_ r: CaptureRequest, prompt: Int = 40) -> String {
            do {
                _ = try TracePlan(config: c, requests: [r], promptLength: prompt)
                XCTFail("no error for \(r)")
                return ""
            } catch {
                return (error as? LocalizedError)?.errorDescription ?? "\(error)"
            }
        }
        let layer99 = message(CaptureRequest(hooks: ["pattern"], layers: [99]))
        XCTAssertTrue(layer99.contains("layer 99") && layer99.contains("0...1"), layer99)
        let layerName = message(CaptureRequest(hooks: ["blocks.99.attn.hook_pattern"]))
        XCTAssertTrue(layerName.contains("layer 99") && layerName.contains("0...1"), layerName)
        let head = message(CaptureRequest(hooks: ["pattern"], heads: [-12]))
        XCTAssertTrue(head.contains("head -12") && head.contains("0...3"), head)
        let hook = message(CaptureRequest(hooks: ["attn.hook_patern"]))
        XCTAssertTrue(hook.contains("attn.hook_patern") && hook.contains("blocks.{L}.attn.hook_pattern"), hook)
        let glob = message(CaptureRequest(hooks: ["blocks.*.attn.hook_nothing*"]))
        XCTAssertTrue(glob.contains("matches no hook point"), glob)
        let span = message(CaptureRequest(hooks: ["pattern"], form: .spanMass([TokenSpan("needle", 5, 5)])))
        XCTAssertTrue(span.contains("'needle'") && span.contains("empty"), span)
        let spanOut = message(CaptureRequest(hooks: ["pattern"], form: .spanMass([TokenSpan("x", 30, 50)])))
        XCTAssertTrue(spanOut.contains("0 <= start < end <= 40"), spanOut)
        let query = message(CaptureRequest(hooks: ["pattern"], queries: .positions([40])))
        XCTAssertTrue(query.contains("position 40") && query.contains("0...39"), query)
        let form = message(CaptureRequest(hooks: ["resid_pre"], form: .topK(3)))
        XCTAssertTrue(form.contains("attention hooks"), form)
        XCTAssertThrowsError(try IndexSelection(parsing: "1,x", what: "layer")) { e in
            XCTAssertTrue((e as? LocalizedError)?.errorDescription?.contains("'x'") ?? false)
        }
        XCTAssertThrowsError(try TokenSpan.parseRange("needle=3:3", length: 10))
        XCTAssertThrowsError(try TokenSpan.find("zebra", label: "z", in: [[UInt8]("hello".utf8)])) { e in
            XCTAssertTrue(((e as? LocalizedError)?.errorDescription ?? "").contains("does not occur"))
        }
        XCTAssertEqual(
            try TokenSpan.find("lo wo", label: "s", in: ["hel", "lo", " w", "orld"].map { Array($0.utf8) }),
            TokenSpan("s", 1, 4))
        XCTAssertThrowsError(try HeadIntervention.parse("1.9", config: c)) { e in
            XCTAssertTrue(((e as? LocalizedError)?.errorDescription ?? "").contains("head 9"))
        }
        // An out-of-range intervention set on a session fails the next pass with the range.
        let session = InferenceSession(model: model, maxContext: 64)
        session.interventions = [HeadIntervention(layer: 7, head: 0, method: .zero)]
        XCTAssertThrowsError(try session.prefill(tokens: m.tokens)) { e in
            XCTAssertTrue(((e as? LocalizedError)?.errorDescription ?? "").contains("0...1"))
        }
        // Queries: syntax
        XCTAssertEqual(
            try QuerySelection(parsing: "last:3,0:2,decode").resolve(prompt: 10, decode: 2), [0, 1, 7, 8, 9, 10, 11])
        XCTAssertEqual(try QuerySelection(parsing: "-1").resolve(prompt: 10, decode: 2), [11])
        XCTAssertEqual(
            try IndexSelection(parsing: "0,-1,2:4", what: "layer").resolve(count: 30, what: "layer") {
                .layerOutOfRange($0, nLayers: 30)
            },
            [0, 2, 3, 29])
    }

    /// A GQA model's hook_k selects the KV head its query heads read: on SmolLM2 (9 query heads,
    /// 3 KV heads) query heads 4 and 5 read KV head 1, head 8 reads KV head 2.
    func testGQAHeadMapping() throws {
        var cfg = try Self.tiny("llama").0.config
        cfg.nHeads = 9
        cfg.nKVHeads = 3
        let plan = try TracePlan(
            config: cfg,
            requests: [
                CaptureRequest(
                    hooks: ["blocks.0.attn.hook_k", "blocks.0.attn.hook_pattern"],
                    heads: [4, 5, 8])
            ], promptLength: 4)
        XCTAssertEqual(plan.captures.map(\.heads), [[1, 2], [4, 5, 8]])
        XCTAssertEqual(plan.captures[0].queryHeads, [4, 5, 8])
    }
}
