import Foundation
import Inference

// Logit lens and direct logit attribution (DLA), as TransformerLens computes them
// (`ActivationCache.accumulated_resid(apply_ln=True)` / `logit_attrs`, Nostalgebraist 2020,
// Elhage et al. 2021):
//
//  - logit lens at row r of a position: the residual stream x_r [D] read through the model's final
//    norm and unembedding, as if the model stopped there: logits_r = W_U · (x_r / s(x_r) ⊙ w),
//    s(x) = sqrt(mean(x²) + eps) (RMSNorm). Rows 0..<L are `blocks.r.hook_resid_pre` (row 0: the
//    embedding), row L is the last block's `hook_resid_post`, whose lens logits are the model's.
//  - direct logit attribution of a component c (a head's `attn.hook_result`, a layer's
//    `hook_mlp_out`, the embedding) to a direction u [V-space row] (W_U[target], or
//    W_U[target] − W_U[baseline]: the IOI "logit difference"): (c / s(x_final) ⊙ w) · u, with the
//    final residual's scale s frozen ("apply_ln_to_stack" with the cached scale). The components
//    sum to the residual, so their attributions sum to the model's logit (difference) exactly,
//    up to float rounding; `residualError` and `headSumError` say how closely they do.
//
// Families whose residual stream is not a plain sum of head outputs (post-norms around attention,
// final logit soft-capping) have no exact per-head decomposition: `headSumError` shows it, and
// `LogitLens.compute` refuses DLA when it exceeds `DirectLogitAttribution.tolerance`.

/// What to read through the lens: positions (absolute), how many top tokens, and the tokens whose
/// logit (difference) is attributed.
public struct LogitLensRequest: Sendable, Equatable {
    /// Absolute prompt positions, sorted and distinct.
    public var positions: [Int]
    /// Top tokens kept per row and position.
    public var top: Int
    /// Token whose logit is attributed (nil: lens only).
    public var target: Int32?
    /// Token subtracted from the target (logit difference); nil: the target's logit alone.
    public var baseline: Int32?

    public init(positions: [Int], top: Int = 10, target: Int32? = nil, baseline: Int32? = nil) {
        self.positions = positions
        self.top = top
        self.target = target
        self.baseline = baseline
    }
}

/// Direct logit attribution at each lens position to the direction `W_U[target] (− W_U[baseline])`.
public struct DirectLogitAttribution: Sendable, Equatable {
    /// Largest |Σ heads + bias − attn_out| and |Σ components − final residual| (relative to the
    /// final residual's norm) accepted as a decomposition.
    public static let tolerance = 1e-3

    /// [P, L, H]: each query head's `hook_result`.
    public var heads: [Double]
    /// [P, L]: attn_out − Σ heads (the output projection's bias, if any; ~0 otherwise).
    public var attentionBias: [Double]
    /// [P, L]: each layer's `hook_mlp_out`.
    public var mlp: [Double]
    /// [P]: the embedding (`blocks.0.hook_resid_pre`).
    public var embed: [Double]
    /// [P]: the sum of all components.
    public var total: [Double]
    /// [P]: the model's own logit (difference) at each position, from its logits.
    public var logitDifference: [Double]
    /// [P]: s(x_final), the final norm's RMS scale the components are divided by.
    public var finalScale: [Double]
    /// The unembedding direction u [D] (W_U[target] − W_U[baseline]) and the final norm's weight
    /// w [D]: attribution(c) = Σ_d c_d w_d u_d / s.
    public var direction: [Float]
    public var normWeight: [Float]
    /// max over positions and layers of |Σ heads + attentionBias − attn_out| / |x_final| (0 when
    /// attentionBias absorbs it exactly; reported to show the heads' outputs add up to attn_out).
    public var headSumError: Double
    /// max over positions of |embed + Σ attn_out + Σ mlp_out − x_final| / |x_final|.
    public var residualError: Double
}

/// The lens read at each position, plus the attribution when a target was given.
public struct LogitLens: Sendable, Equatable {
    public var request: LogitLensRequest
    /// L: rows are 0..<L (resid_pre of block r) and L (the final residual).
    public var layers: Int
    public var heads: Int
    /// [L + 1, P, k] token ids by descending lens logit, and those logits.
    public var topIDs: [Int32]
    public var topLogits: [Float]
    /// [L + 1, P] log Σ_v exp(logit_v) of each lens row: probability = exp(logit − logNormalizer).
    public var logNormalizer: [Double]
    /// [L + 1, P] the target's (baseline's) lens logit and the target's rank (0 = top), when given.
    public var targetLogit: [Double]
    public var baselineLogit: [Double]
    public var targetRank: [Int]
    /// [P] the model's logits at each position: top-1 id (checked against the lens's last row).
    public var modelTop: [Int32]
    public var attribution: DirectLogitAttribution?

    public var rows: Int { layers + 1 }
    public var positions: [Int] { request.positions }

    /// The lens row labels: "0" ... "L-1" (resid_pre of that block), then "final".
    public var rowLabels: [String] { (0..<layers).map { "\($0)" } + ["final"] }

    /// Runs `prompt` once with the captures the lens needs and computes it.
    public static func compute(
        model: Model, prompt: [Int32], request: LogitLensRequest, maxChunk: Int = InferenceSession.defaultMaxChunk
    ) throws -> LogitLens {
        var request = request
        request.positions = Array(Set(request.positions)).sorted() // the order the captures come in
        let c = model.config
        let P = request.positions.count
        guard P > 0 else { throw LensError.noPositions }
        guard request.top >= 1 else { throw LensError.badTop(request.top, vocab: c.vocabSize) }
        for p in request.positions where !(0..<prompt.count).contains(p) {
            throw LensError.positionOutOfRange(p, length: prompt.count)
        }
        for t in [request.target, request.baseline].compactMap({ $0 }) where !(0..<c.vocabSize).contains(Int(t)) {
            throw LensError.tokenOutOfRange(t, vocab: c.vocabSize)
        }
        let L = c.nLayers, H = c.nHeads, D = c.dModel
        let attribute = request.target != nil
        var hooks = ["blocks.*.hook_resid_pre", "blocks.\(L - 1).hook_resid_post", "logits"]
        if attribute { hooks += ["blocks.*.attn.hook_result", "blocks.*.hook_attn_out", "blocks.*.hook_mlp_out"] }
        let store = CaptureStore()
        let session = InferenceSession(model: model, maxContext: prompt.count, maxChunk: maxChunk)
        try session.trace(
            prompt: prompt, requests: [CaptureRequest(hooks: hooks, queries: .positions(request.positions))],
            into: store)
        func rows(_ name: String) throws -> CapturedTensor {
            guard let t = store[name] else { throw LensError.missingCapture(name) }
            return t
        }

        let w = model.weights.outputNorm, U = model.weights.output
        let eps = Double(c.rmsNormEps)
        let k = min(request.top, c.vocabSize)
        var out = LogitLens(
            request: LogitLensRequest(
                positions: request.positions, top: k, target: request.target, baseline: request.baseline),
            layers: L, heads: H, topIDs: [], topLogits: [], logNormalizer: [], targetLogit: [], baselineLogit: [],
            targetRank: [],
            modelTop: [], attribution: nil)
        out.topIDs.reserveCapacity((L + 1) * P * k)
        // The residual rows of every lens row, [L + 1][P * D].
        var resid: [[Float]] = try (0..<L).map { try rows("blocks.\($0).hook_resid_pre").values }
        resid.append(try rows("blocks.\(L - 1).hook_resid_post").values)
        var logits = [Float](repeating: 0, count: c.vocabSize) // [V]
        var normed = [Float](repeating: 0, count: D) // [D]
        for r in 0...L {
            for p in 0..<P {
                let x = Array(resid[r][(p * D)..<((p + 1) * D)])
                let s = rmsScale(x, eps: eps)
                for d in 0..<D { normed[d] = Float(Double(x[d]) / s) * w.data[d] }
                unembed(normed, U, into: &logits)
                let order = topK(logits, k)
                out.topIDs += order.map { Int32($0) }
                out.topLogits += order.map { logits[$0] }
                let mx = Double(logits[order[0]])
                out.logNormalizer.append(mx + log(logits.reduce(0.0) { $0 + exp(Double($1) - mx) }))
                if let t = request.target {
                    let tl = logits[Int(t)]
                    out.targetLogit.append(Double(tl))
                    out.targetRank.append(logits.reduce(0) { $0 + ($1 > tl ? 1 : 0) })
                    out.baselineLogit.append(request.baseline.map { Double(logits[Int($0)]) } ?? .nan)
                }
            }
        }
        let modelLogits = try rows("logits")
        out.modelTop = (0..<P).map { p in
            let row = Array(modelLogits.values[(p * c.vocabSize)..<((p + 1) * c.vocabSize)])
            return Int32(topK(row, 1)[0])
        }
        guard let t = request.target else { return out }

        // Direct logit attribution.
        var u = [Float](repeating: 0, count: D) // [D] W_U[t] − W_U[b]
        for d in 0..<D { u[d] = U.data[Int(t) * D + d] - (request.baseline.map { U.data[Int($0) * D + d] } ?? 0) }
        let wu = (0..<D).map { Double(w.data[$0]) * Double(u[$0]) } // [D] w ⊙ u
        func dot(_ v: ArraySlice<Float>) -> Double {
            var acc = 0.0
            for (d, x) in zip(0..<D, v) { acc += Double(x) * wu[d] }
            return acc
        }
        var dla = DirectLogitAttribution(
            heads: [], attentionBias: [], mlp: [], embed: [], total: [], logitDifference: [], finalScale: [],
            direction: u, normWeight: Array(UnsafeBufferPointer(start: w.data, count: D)), headSumError: 0,
            residualError: 0)
        let results = try (0..<L).map { try rows("blocks.\($0).attn.hook_result").values } // [P, H, D] each
        let attnOut = try (0..<L).map { try rows("blocks.\($0).hook_attn_out").values } // [P, D] each
        let mlpOut = try (0..<L).map { try rows("blocks.\($0).hook_mlp_out").values } // [P, D] each
        for p in 0..<P {
            let xf = Array(resid[L][(p * D)..<((p + 1) * D)])
            let s = rmsScale(xf, eps: eps)
            let norm = sqrt(xf.reduce(0.0) { $0 + Double($1) * Double($1) })
            var sum = [Double](repeating: 0, count: D) // [D] Σ components, to check against x_final
            func add(_ v: ArraySlice<Float>) { for (d, x) in zip(0..<D, v) { sum[d] += Double(x) } }
            let e = resid[0][(p * D)..<((p + 1) * D)]
            dla.embed.append(dot(e) / s)
            add(e)
            var total = dla.embed[p]
            for l in 0..<L {
                let a = attnOut[l][(p * D)..<((p + 1) * D)]
                var heads = [Double](repeating: 0, count: D) // [D] Σ_h result_h
                for h in 0..<H {
                    let v = results[l][((p * H + h) * D)..<((p * H + h + 1) * D)]
                    let x = dot(v) / s
                    dla.heads.append(x)
                    total += x
                    for (d, y) in zip(0..<D, v) { heads[d] += Double(y) }
                }
                // attn_out − Σ heads: the output bias (if any), else rounding.
                let bias = zip(a, heads).map { Double($0) - $1 }
                let b = zip(bias, wu).reduce(0.0) { $0 + $1.0 * $1.1 } / s
                dla.attentionBias.append(b)
                total += b
                let m = mlpOut[l][(p * D)..<((p + 1) * D)]
                dla.mlp.append(dot(m) / s)
                total += dla.mlp.last!
                add(a)
                add(m)
                if norm > 0 {
                    // Without a bias term in the model, Σ heads must equal attn_out.
                    let off = sqrt(bias.reduce(0.0) { $0 + $1 * $1 }) / norm
                    dla.headSumError = max(dla.headSumError, off)
                }
            }
            dla.total.append(total)
            let err = sqrt(zip(sum, xf).reduce(0.0) { $0 + ($1.0 - Double($1.1)) * ($1.0 - Double($1.1)) })
            dla.residualError = max(dla.residualError, norm > 0 ? err / norm : err)
            dla.finalScale.append(s)
            let row = modelLogits.values[(p * c.vocabSize)..<((p + 1) * c.vocabSize)]
            let lt = Double(row[row.startIndex + Int(t)])
            let lb = request.baseline.map { Double(row[row.startIndex + Int($0)]) } ?? 0
            dla.logitDifference.append(lt - lb)
        }
        guard dla.residualError <= DirectLogitAttribution.tolerance else {
            throw LensError.notDecomposable(architecture: c.architecture, error: dla.residualError)
        }
        out.attribution = dla
        return out
    }

    /// RMSNorm's scale sqrt(mean(x²) + eps), in Double.
    static func rmsScale(_ x: [Float], eps: Double) -> Double {
        sqrt(x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(x.count) + eps)
    }

    /// logits [V] = U [V, D] · x [D].
    static func unembed(_ x: [Float], _ U: WeightMatrix, into logits: inout [Float]) {
        let D = U.cols
        x.withUnsafeBufferPointer { xp in
            logits.withUnsafeMutableBufferPointer { lp in
                for v in 0..<U.rows {
                    let row = U.data + v * D
                    var acc: Float = 0
                    for d in 0..<D { acc += row[d] * xp[d] }
                    lp[v] = acc
                }
            }
        }
    }

    /// Indices of the k largest values, descending, ties by lower index.
    static func topK(_ v: [Float], _ k: Int) -> [Int] {
        var best: [(Float, Int)] = []
        best.reserveCapacity(k + 1)
        for (i, x) in v.enumerated() {
            if best.count == k, let last = best.last, !(x > last.0) { continue }
            let at = best.firstIndex { x > $0.0 } ?? best.count
            best.insert((x, i), at: at)
            if best.count > k { best.removeLast() }
        }
        return best.map(\.1)
    }
}

/// Why a lens can't be computed.
public enum LensError: LocalizedError, Equatable {
    case noPositions
    case badTop(Int, vocab: Int)
    case positionOutOfRange(Int, length: Int)
    case tokenOutOfRange(Int32, vocab: Int)
    case missingCapture(String)
    case notDecomposable(architecture: String, error: Double)
    case badRunFile(file: String, object: String, detail: String)

    public var errorDescription: String? {
        switch self {
        case .noPositions: return "logit lens: no positions selected"
        case let .badTop(k, v): return "logit lens: --top must be in 1...\(v) (got \(k))"
        case let .positionOutOfRange(p, n): return "logit lens: position \(p) is outside the prompt (0..<\(n))"
        case let .tokenOutOfRange(t, v): return "logit lens: token id \(t) is outside the vocabulary (0..<\(v))"
        case .missingCapture(let n): return "logit lens: the trace did not capture \(n)"
        case let .notDecomposable(arch, e):
            return "direct logit attribution: the residual stream of this \(arch) model is not the sum of its "
                + "components (relative error \(e)), so per-component attributions would not add up"
        case let .badRunFile(f, o, d): return "\(f): /lens/\(o): \(d)"
        }
    }
}
