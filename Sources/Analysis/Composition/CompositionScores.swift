import Foundation
import Inference

// Weight-based composition scores between attention heads (Elhage et al. 2021, "A Mathematical
// Framework for Transformer Circuits", section "Virtual weights and composition").
//
// Conventions (row vectors, as the forward pass computes y = x · Wᵀ):
//   per head h of layer l, with dh = head size and D = model width,
//     Q_h = wq rows [h·dh, (h+1)·dh)                 [dh, D]
//     K_h = wk rows of the KV head g(h) = h / (H / Hkv)  [dh, D]   (GQA: shared by the group)
//     V_h = wv rows of g(h)                           [dh, D]
//     Oᵀ_h = (wo columns [h·dh, (h+1)·dh))ᵀ          [dh, D]
//   W_QK^h = Q_hᵀ K_h  [D, D]: attention logit (before RoPE and 1/√dh) = x_query · W_QK · x_keyᵀ
//   W_OV^h = V_hᵀ Oᵀ_h [D, D]: the head writes  Σ_j a_j · x_j · W_OV  into the residual stream.
//
// For a head A in layer a and a head B in a later layer b > a (A writes, B reads):
//   Q-composition  ‖W_OV^A · W_QK^B‖_F   / (‖W_OV^A‖_F ‖W_QK^B‖_F)   B's queries read A's output
//   K-composition  ‖W_QK^B · W_OV^Aᵀ‖_F  / (‖W_QK^B‖_F ‖W_OV^A‖_F)   B's keys read A's output
//   V-composition  ‖W_OV^A · W_OV^B‖_F   / (‖W_OV^A‖_F ‖W_OV^B‖_F)   B's values read A's output
// (the transposes of Elhage et al.'s column-vector formulas; Frobenius norms are unchanged).
//
// Every product has the form Xᵀ·M·Y with X, Y of shape [dh, D] and a small M [dh, dh], and
//   ‖Xᵀ M Y‖²_F = tr(Mᵀ (X Xᵀ) M (Y Yᵀ)),
// so nothing larger than [dh, D] × [D, dh] is ever formed (the D×D matrices never are).
//
// Approximations, stated in every report that shows these numbers:
// - RoPE rotates q and k by an angle that depends on the positions, so the true bilinear form
//   is Q_hᵀ R(i − j) K_h; W_QK here is its position-independent part (relative distance 0).
//   Q- and K-composition are therefore approximate for a RoPE model.
// - GQA: query heads of one group share K and V; their K/V-composition terms share those factors.
// - RMSNorm: the reading layer's gain γ is folded into its input-side weights (Q, K, V read
//   diag(γ)·x); the division by the RMS of the residual stream (a per-token scalar) is ignored.
//   The writing head's own input gain is folded into W_OV^A the same way.
// - Biases (Qwen2) are ignored; MLPs between the two layers are ignored (direct path only).
//
// Baseline: the same scores for Gaussian random matrices of the same shapes (mean over a few
// seeded draws), so a reader can tell a real composition from the level any two unrelated
// low-rank maps reach (≈ √(dh/D) for V-composition of random matrices of rank dh).

/// Composition scores among a set of heads.
public struct CompositionScores: Sendable, Equatable {
    public enum Kind: String, CaseIterable, Sendable {
        case q, k, v
        public var label: String {
            switch self {
            case .q: return "Q-composition"
            case .k: return "K-composition"
            case .v: return "V-composition"
            }
        }
    }

    /// The heads, in the order of the matrices' rows and columns.
    public var heads: [HeadIndex]
    /// [writer i][reader j]: head i (earlier layer) composing into head j (later layer);
    /// NaN where layer(i) >= layer(j).
    public var q: [[Double]]
    public var k: [[Double]]
    public var v: [[Double]]
    /// Mean score of random Gaussian matrices of the same shapes, per kind.
    public var baseline: [Kind: Double]
    /// Whether RMSNorm gains were folded into the input-side weights.
    public var foldedNormGains: Bool

    public init(
        heads: [HeadIndex], q: [[Double]], k: [[Double]], v: [[Double]], baseline: [Kind: Double],
        foldedNormGains: Bool
    ) {
        self.heads = heads
        self.q = q
        self.k = k
        self.v = v
        self.baseline = baseline
        self.foldedNormGains = foldedNormGains
    }

    public func matrix(_ kind: Kind) -> [[Double]] {
        switch kind {
        case .q: return q
        case .k: return k
        case .v: return v
        }
    }

    /// Every (writer, reader, kind, score) with a finite score, highest first.
    public func pairs() -> [(from: HeadIndex, to: HeadIndex, kind: Kind, score: Double)] {
        var out: [(from: HeadIndex, to: HeadIndex, kind: Kind, score: Double)] = []
        for kind in Kind.allCases {
            let m = matrix(kind)
            for i in heads.indices {
                for j in heads.indices where m[i][j].isFinite {
                    out.append((heads[i], heads[j], kind, m[i][j]))
                }
            }
        }
        out.sort {
            $0.score > $1.score
                || ($0.score == $1.score && ($0.from, $0.to, $0.kind.rawValue) < ($1.from, $1.to, $1.kind.rawValue))
        }
        return out
    }

    /// The text stating how the scores approximate the model (for reports and run files).
    public static let approximationNote = """
        Weight-based scores (Elhage et al. 2021): W_QK = Q_hᵀK_h and W_OV = V_hᵀO_hᵀ per head; \
        Q-, K- and V-composition are ‖W_OV^A·W_QK^B‖, ‖W_QK^B·W_OV^Aᵀ‖ and ‖W_OV^A·W_OV^B‖ \
        (Frobenius), \
        each divided by the two matrices' norms. Approximate for this model: RoPE rotates q and k \
        by position, so W_QK is only the position-independent part (relative distance 0) and Q/K \
        scores are approximate; under GQA a query head uses its group's shared K and V weights; \
        RMSNorm gains are folded into the reading weights but the per-token RMS division is \
        ignored; biases and MLPs in between are ignored (direct path only).
        """
}

/// Computes composition scores from a model's weights.
public enum Composition {
    /// Per-head factors, each [dh, D] row-major in Double.
    struct HeadFactors {
        var q: [Double], k: [Double], v: [Double], ot: [Double]
        // Gram matrices [dh, dh]
        var gq: [Double], gk: [Double], gv: [Double], got: [Double]
        var qkNorm: Double, ovNorm: Double
    }

    /// Scores among `heads` of `model` (composition only from earlier to later layers).
    /// `baselineDraws` random draws estimate the random-matrix baseline (0: none, baseline NaN).
    public static func compute(
        model: Model, heads: [HeadIndex], foldNormGains: Bool = true,
        baselineDraws: Int = 8, seed: UInt64 = 0
    ) throws -> CompositionScores {
        let c = model.config
        for h in heads where h.layer < 0 || h.layer >= c.nLayers || h.head < 0 || h.head >= c.nHeads {
            throw CompositionError.headOutOfRange(h, layers: c.nLayers, heads: c.nHeads)
        }
        let dh = c.dHead, D = c.dModel, group = max(1, c.nHeads / max(1, c.nKVHeads))
        var factors: [HeadFactors] = []
        for h in heads {
            let lw = model.weights.layers[h.layer]
            let gamma: [Double] =
                foldNormGains && lw.attnNorm.count == D
                ? (0..<D).map { Double(lw.attnNorm.data[$0]) } : [Double](repeating: 1, count: D)
            func rows(_ w: WeightMatrix, _ first: Int) -> [Double] {
                var out = [Double](repeating: 0, count: dh * D)
                for i in 0..<dh {
                    let src = w.data + (first + i) * w.cols
                    for d in 0..<D { out[i * D + d] = Double(src[d]) * gamma[d] }
                }
                return out
            }
            let q = rows(lw.wq, h.head * dh)
            let kv = (h.head / group) * dh
            let k = rows(lw.wk, kv)
            let v = rows(lw.wv, kv)
            // wo is [D, H*dh]; Oᵀ_h[i][d] = wo[d][h*dh + i]
            var ot = [Double](repeating: 0, count: dh * D)
            for d in 0..<D {
                let src = lw.wo.data + d * lw.wo.cols + h.head * dh
                for i in 0..<dh { ot[i * D + d] = Double(src[i]) }
            }
            factors.append(makeFactors(q: q, k: k, v: v, ot: ot, dh: dh, D: D))
        }
        let n = heads.count
        var qm = [[Double]](repeating: [Double](repeating: .nan, count: n), count: n)
        var km = qm, vm = qm
        for i in 0..<n {
            for j in 0..<n where heads[i].layer < heads[j].layer {
                let s = scores(writer: factors[i], reader: factors[j], dh: dh, D: D)
                qm[i][j] = s.q
                km[i][j] = s.k
                vm[i][j] = s.v
            }
        }
        var baseline: [CompositionScores.Kind: Double] = [.q: .nan, .k: .nan, .v: .nan]
        if baselineDraws > 0 {
            var g = SeededGenerator(seed: seed)
            var sum = (q: 0.0, k: 0.0, v: 0.0)
            for _ in 0..<baselineDraws {
                func rnd() -> [Double] { (0..<(dh * D)).map { _ in gaussian(&g) } }
                let a = makeFactors(q: rnd(), k: rnd(), v: rnd(), ot: rnd(), dh: dh, D: D)
                let b = makeFactors(q: rnd(), k: rnd(), v: rnd(), ot: rnd(), dh: dh, D: D)
                let s = scores(writer: a, reader: b, dh: dh, D: D)
                sum.q += s.q
                sum.k += s.k
                sum.v += s.v
            }
            let m = Double(baselineDraws)
            baseline = [.q: sum.q / m, .k: sum.k / m, .v: sum.v / m]
        }
        return CompositionScores(heads: heads, q: qm, k: km, v: vm, baseline: baseline, foldedNormGains: foldNormGains)
    }

    /// Scores from explicit per-head factors (tests; `compute` builds them from a model).
    /// Each factor is [dh, D] row-major: Q_h, K_h, V_h and Oᵀ_h.
    public static func scores(
        writer: (q: [Double], k: [Double], v: [Double], ot: [Double]),
        reader: (q: [Double], k: [Double], v: [Double], ot: [Double]),
        dh: Int, D: Int
    ) -> (q: Double, k: Double, v: Double) {
        let a = makeFactors(q: writer.q, k: writer.k, v: writer.v, ot: writer.ot, dh: dh, D: D)
        let b = makeFactors(q: reader.q, k: reader.k, v: reader.v, ot: reader.ot, dh: dh, D: D)
        return scores(writer: a, reader: b, dh: dh, D: D)
    }

    static func makeFactors(q: [Double], k: [Double], v: [Double], ot: [Double], dh: Int, D: Int) -> HeadFactors {
        let gq = abt(q, q, dh, dh, D), gk = abt(k, k, dh, dh, D), gv = abt(v, v, dh, dh, D),
            got = abt(ot, ot, dh, dh, D)
        let qk = traceProduct(identity(dh), gq, gk, dh).squareRoot()
        let ov = traceProduct(identity(dh), gv, got, dh).squareRoot()
        return HeadFactors(q: q, k: k, v: v, ot: ot, gq: gq, gk: gk, gv: gv, got: got, qkNorm: qk, ovNorm: ov)
    }

    static func scores(
        writer a: HeadFactors, reader b: HeadFactors, dh: Int, D: Int
    ) -> (q: Double, k: Double, v: Double) {
        // Q: W_OV^A W_QK^B = V_Aᵀ (Oᵀ_A Q_Bᵀ) K_B
        let mq = abt(a.ot, b.q, dh, dh, D)
        let q = traceProduct(mq, a.gv, b.gk, dh).squareRoot() / (a.ovNorm * b.qkNorm)
        // K: W_QK^B W_OV^Aᵀ = Q_Bᵀ (K_B O_A... ) = Q_Bᵀ (K_B Oᵀ_Aᵀ) V_A
        let mk = abt(b.k, a.ot, dh, dh, D)
        let k = traceProduct(mk, b.gq, a.gv, dh).squareRoot() / (b.qkNorm * a.ovNorm)
        // V: W_OV^A W_OV^B = V_Aᵀ (Oᵀ_A V_Bᵀ) Oᵀ_B
        let mv = abt(a.ot, b.v, dh, dh, D)
        let v = traceProduct(mv, a.gv, b.got, dh).squareRoot() / (a.ovNorm * b.ovNorm)
        func clean(_ x: Double) -> Double { x.isFinite ? x : .nan }
        return (clean(q), clean(k), clean(v))
    }

    /// A · Bᵀ for A [m, n] and B [p, n] (row-major) -> [m, p].
    static func abt(_ a: [Double], _ b: [Double], _ m: Int, _ p: Int, _ n: Int) -> [Double] {
        var out = [Double](repeating: 0, count: m * p)
        a.withUnsafeBufferPointer { A in
            b.withUnsafeBufferPointer { B in
                out.withUnsafeMutableBufferPointer { O in
                    for i in 0..<m {
                        let ai = A.baseAddress! + i * n
                        for j in 0..<p {
                            let bj = B.baseAddress! + j * n
                            var s = 0.0
                            for t in 0..<n { s += ai[t] * bj[t] }
                            O[i * p + j] = s
                        }
                    }
                }
            }
        }
        return out
    }

    /// tr(Mᵀ Gx M Gy) for square [d, d] matrices = ‖Xᵀ M Y‖²_F when Gx = XXᵀ, Gy = YYᵀ.
    static func traceProduct(_ m: [Double], _ gx: [Double], _ gy: [Double], _ d: Int) -> Double {
        // R = Gx M; S = Mᵀ R; tr(S Gy) = Σ_ij S[i][j] Gy[j][i]
        var r = [Double](repeating: 0, count: d * d)
        for i in 0..<d {
            for t in 0..<d {
                let g = gx[i * d + t]
                if g == 0 { continue }
                for j in 0..<d { r[i * d + j] += g * m[t * d + j] }
            }
        }
        var total = 0.0
        for i in 0..<d {
            for j in 0..<d {
                var s = 0.0
                for t in 0..<d { s += m[t * d + i] * r[t * d + j] }
                total += s * gy[j * d + i]
            }
        }
        return max(total, 0)
    }

    static func identity(_ d: Int) -> [Double] {
        var m = [Double](repeating: 0, count: d * d)
        for i in 0..<d { m[i * d + i] = 1 }
        return m
    }

    /// Standard normal draw (Box–Muller) from `g`.
    static func gaussian(_ g: inout SeededGenerator) -> Double {
        let u1 = max(Double(g.next() >> 11) / Double(1 << 53), 1e-300)
        let u2 = Double(g.next() >> 11) / Double(1 << 53)
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

public enum CompositionError: Error, LocalizedError, Equatable {
    case headOutOfRange(HeadIndex, layers: Int, heads: Int)

    public var errorDescription: String? {
        switch self {
        case let .headOutOfRange(h, layers, heads):
            return "head \(h) is outside the model (\(layers) layers x \(heads) heads)"
        }
    }
}
