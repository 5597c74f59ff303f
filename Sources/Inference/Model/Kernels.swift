import CNative
import Foundation

// The numeric kernels of the forward pass. Each is a small function with a plain pointer
// interface so that faster versions (a quantized matrix-vector product, a blocked attention
// kernel) can replace one at a time; the forward pass calls nothing else.
// Dimension names as in ModelConfig.swift.

enum Kernels {
    /// Up to this many activation rows, a linear layer whose weights have quantized blocks
    /// multiplies those (hl_qmatmul: decoding, short prompts); above, Float32 sgemm. The kernel
    /// decodes each weight block once per call and applies it to every row, so it beats sgemm
    /// (which streams the 6x larger Float32 matrix) for a few rows.
    nonisolated(unsafe) static var quantizedMaxRows = 8
    /// Prefill attention without an observer uses the blocked kernel (hl_attention_prefill);
    /// false forces the per-head reference path (tests, benchmarks).
    nonisolated(unsafe) static var blockedAttention = true
    /// Float32 products run as column blocks on the kernel pool with OpenBLAS single-threaded
    /// (hl_sgemm_nt), so one set of threads does all parallel work; false lets OpenBLAS thread
    /// each sgemm itself.
    nonisolated(unsafe) static var poolSgemm = true

    // MARK: - Matrix products

    /// How prefill's products read matrices kept in ggml blocks (`WeightFormat`); also whether
    /// `ModelWeights` makes Float32 copies at load. Default: HEADLIGHT_WEIGHTS, else .quantized.
    nonisolated(unsafe) static var weights: WeightFormat = .fromEnvironment
    /// Weight rows per panel of the quantized prefill product (0: one panel per thread, the split
    /// of hl_sgemm_nt, so its sgemm calls are exactly the f32 path's). Default: as many rows as fit
    /// in `panelBytes`, a multiple of 16, at least 16.
    nonisolated(unsafe) static var panelRows = -1
    /// Target size of one decoded panel (per thread): a quarter of a 2 MB L2.
    static let panelBytes = 512 * 1024

    /// `y[T, W.rows] = x[T, W.cols] · Wᵀ (+ bias)`. Few rows with quantized weights go through
    /// the quantized kernel; otherwise matrices kept in blocks (`WeightFormat.quantized`) go through
    /// panels decoded on the fly (hl_sgemm_nt_panels), others through sgemv (T = 1) or sgemm.
    @inline(__always)
    static func linear(
        _ x: UnsafePointer<Float>, rows t: Int, weight w: WeightMatrix, bias: WeightMatrix?,
        into y: UnsafeMutablePointer<Float>
    ) {
        let t0 = KernelProfile.start()
        if let q = w.quantized, t <= quantizedMaxRows {
            hl_qmatmul(
                Int32(q.type.rawValue), q.pointer, q.rowBytes, Int32(w.rows), Int32(w.cols), x, w.cols,
                Int32(t), y, w.rows)
            KernelProfile.stop(.quantizedLinear, t0)
        } else if let b = w.blocks, weights == .quantized {
            panelLinear(x, rows: t, blocks: b, outputs: w.rows, inputs: w.cols, into: y)
            KernelProfile.stop(.sgemm, t0, flops: 2 * Double(t) * Double(w.rows) * Double(w.cols))
        } else {
            if t == 1 {
                cblas_sgemv(
                    CblasRowMajor, CblasNoTrans, blasint(w.rows), blasint(w.cols), 1, w.data,
                    blasint(w.cols), x, 1, 0, y, 1)
            } else if poolSgemm {
                hl_sgemm_nt(
                    Int32(t), Int32(w.rows), Int32(w.cols), x, Int32(w.cols), w.data, Int32(w.cols), y,
                    Int32(w.rows))
            } else {
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, blasint(t), blasint(w.rows), blasint(w.cols), 1,
                    x, blasint(w.cols), w.data, blasint(w.cols), 0, y, blasint(w.rows))
            }
            KernelProfile.stop(.sgemm, t0, flops: 2 * Double(t) * Double(w.rows) * Double(w.cols))
        }
        if let bias {
            for r in 0..<t { add(y + r * w.rows, bias.data, count: w.rows) }
        }
    }

    /// `linear` for the rows of a batched decode step: row r of y [T, W.rows] is bit for bit what
    /// `linear(x + r * W.cols, rows: 1, ...)` gives (the path of one decoding step), while
    /// quantized weights are streamed once for all T rows (hl_qmatmul_rows); other weights run
    /// row by row through that path.
    static func linearRows(
        _ x: UnsafePointer<Float>, rows t: Int, weight w: WeightMatrix, bias: WeightMatrix?,
        into y: UnsafeMutablePointer<Float>
    ) {
        guard t > 1, let q = w.quantized, quantizedMaxRows >= 1 else {
            for r in 0..<t { linear(x + r * w.cols, rows: 1, weight: w, bias: bias, into: y + r * w.rows) }
            return
        }
        let t0 = KernelProfile.start()
        hl_qmatmul_rows(
            Int32(q.type.rawValue), q.pointer, q.rowBytes, Int32(w.rows), Int32(w.cols), x, w.cols, Int32(t), y,
            w.rows)
        KernelProfile.stop(.quantizedLinear, t0)
        if let bias {
            for r in 0..<t { add(y + r * w.rows, bias.data, count: w.rows) }
        }
    }

    /// y[T, n] = x[T, k] · Wᵀ for W [n, k] kept in ggml blocks: panels of rows decoded into
    /// per-thread scratch (exactly `GGMLType.dequantize`'s values) and multiplied with sgemm.
    static func panelLinear(
        _ x: UnsafePointer<Float>, rows t: Int, blocks b: QuantizedBlocks, outputs n: Int, inputs k: Int,
        into y: UnsafeMutablePointer<Float>, panel: Int? = nil
    ) {
        var source = PanelSource(blocks: b, cols: k)
        let rows = panel ?? (panelRows >= 0 ? panelRows : defaultPanelRows(outputs: n, inputs: k))
        withUnsafePointer(to: &source) { ctx in
            hl_sgemm_nt_panels(
                Int32(t), Int32(n), Int32(k), x, Int32(k), panelFill, ctx, Int32(rows), y, Int32(n))
        }
    }

    /// Panels of at most `panelBytes` (multiples of 16 rows), their count a multiple of the pool's
    /// threads so that no thread gets one more panel than another.
    static func defaultPanelRows(outputs n: Int, inputs k: Int) -> Int {
        let threads = max(1, Int(hl_kernels_threads()))
        let most = max(16, panelBytes / (4 * max(k, 1)) / 16 * 16)
        let perThread = (n + threads * most - 1) / (threads * most)
        let tasks = threads * max(perThread, 1)
        return max(16, ((n + tasks - 1) / tasks + 15) / 16 * 16)
    }

    // MARK: - Elementwise
    // MARK: - Elementwise

    /// `y[i] += x[i]`.
    @inline(__always)
    static func add(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int) {
        let t0 = KernelProfile.start()
        hl_add(y, x, n)
        KernelProfile.stop(.elementwise, t0)
    }

    /// RMSNorm of each row: `y = x / sqrt(mean(x²) + eps) * weight` (Hugging Face's order:
    /// normalize, then scale; the sum of squares in Double). x, y: [T, D]; weight: [D]. y may alias x.
    static func rmsNorm(
        _ x: UnsafePointer<Float>, rows t: Int, width d: Int, weight: UnsafePointer<Float>,
        eps: Float, into y: UnsafeMutablePointer<Float>
    ) {
        let t0 = KernelProfile.start()
        hl_rmsnorm(x, Int32(t), Int32(d), weight, eps, y)
        KernelProfile.stop(.norm, t0)
    }

    /// SwiGLU in place: `gate[i] = silu(gate[i]) * up[i]`, silu(g) = g * sigmoid(g).
    static func swiglu(gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, count n: Int) {
        let t0 = KernelProfile.start()
        hl_swiglu(gate, up, n)
        KernelProfile.stop(.elementwise, t0)
    }

    /// GeGLU in place: `gate[i] = gelu_tanh(gate[i]) * up[i]` with GELU's tanh approximation
    /// 0.5 g (1 + tanh(√(2/π) (g + 0.044715 g³))) (ggml_gelu, HF gelu_pytorch_tanh; Gemma).
    static func gegluTanh(gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, count n: Int) {
        let t0 = KernelProfile.start()
        let c: Float = 0.797_884_6 // √(2/π)
        for i in 0..<n {
            let g = gate[i]
            gate[i] = 0.5 * g * (1 + Foundation.tanh(c * (g + 0.044_715 * g * g * g))) * up[i]
        }
        KernelProfile.stop(.elementwise, t0)
    }

    /// Soft-capping in place: `x[i] = cap * tanh(x[i] / cap)` (Gemma 2 attention and final logits).
    static func softcap(_ x: UnsafeMutablePointer<Float>, count n: Int, cap: Float) {
        for i in 0..<n { x[i] = cap * Foundation.tanh(x[i] / cap) }
    }

    /// Softmax of `x[0..<n]` in place (max-subtracted, Float32, exp as `fastExp`).
    static func softmax(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        hl_softmax(x, Int32(n))
    }

    // MARK: - RoPE

    /// Rotates the first `table.dims` dimensions of each head of `x` ([T, heads, dh], rows
    /// `rowStride` floats apart) by the angles of positions `start..<start+T`.
    static func rope(
        _ x: UnsafeMutablePointer<Float>, rows t: Int, heads: Int, dHead: Int, rowStride: Int,
        start: Int, table: RopeTable, style: RopeStyle
    ) {
        let t0 = KernelProfile.start()
        defer { KernelProfile.stop(.rope, t0) }
        let half = table.dims / 2
        for r in 0..<t {
            let cs = table.cos.pointer + (start + r) * half, sn = table.sin.pointer + (start + r) * half
            for h in 0..<heads {
                let v = x + r * rowStride + h * dHead
                switch style {
                case .normal: // adjacent pairs (x[2i], x[2i+1])
                    for i in 0..<half {
                        let a = v[2 * i], b = v[2 * i + 1]
                        v[2 * i] = a * cs[i] - b * sn[i]
                        v[2 * i + 1] = a * sn[i] + b * cs[i]
                    }
                case .neox: // halves (x[i], x[i + dims/2])
                    for i in 0..<half {
                        let a = v[i], b = v[i + half]
                        v[i] = a * cs[i] - b * sn[i]
                        v[i + half] = b * cs[i] + a * sn[i]
                    }
                }
            }
        }
    }

    // MARK: - Attention

    /// Causal grouped-query attention of T queries at positions P..<P+T over the S = P+T keys
    /// in the cache. Query head h reads key/value head h / (H / Hkv).
    ///
    /// - window: sliding window n_swa: the query at position p sees keys k with p - k < n_swa
    ///   (0: every key up to p). Probabilities outside the window are exactly 0.
    /// - softcap: scores s ← softcap · tanh(s / softcap) after scaling, before the mask (0: off);
    ///   only the materializing path implements it, so soft-capped models always take that path.
    ///
    /// - q:      [T, H, dh]     queries after RoPE
    /// - k, v:   [C, Hkv, dh]   the layer's KV cache (rows 0..<S filled)
    /// - z:      [T, H, dh]     output: per-head attention-weighted values
    /// - probs:  scratch of at least max(T, H/Hkv) * S floats, reused for every head
    /// - observe: called once per head with the head's probabilities [T, S] (rows S floats apart);
    ///   row t is valid for keys 0...P+t and zero beyond.
    ///
    /// Without an observer the probabilities are never materialized: decoding runs every head in
    /// parallel (hl_attention_decode), prefill runs the blocked online-softmax kernel
    /// (hl_attention_prefill). With an observer, each head's full [T, S] probabilities are
    /// computed and handed over (exact rows for the hooks; slower at long context).
    ///
    /// - skipGroups: [Hkv] nonzero: the fast paths leave the z rows of that KV group's query heads
    ///   untouched (heads whose output another kernel writes, e.g. under a KV policy); nil: none.
    /// - probsCount: floats available at `probs` (0: the documented minimum). A decoding step with an
    ///   observer (no window, soft-cap or skipped groups) and room for every head's row [H, S]
    ///   computes all heads at once on the kernel pool (hl_attention_decode_probs: the reference
    ///   path's products, split over threads) and then hands each head's row to `observe`.
    static func causalAttention(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        z: UnsafeMutablePointer<Float>, rows t: Int, start p: Int,
        nHeads: Int, nKVHeads: Int, dHead dh: Int, scale: Float, window: Int = 0, softcap: Float = 0,
        probs: UnsafeMutablePointer<Float>, probsCount: Int = 0,
        observe: ((_ head: Int, _ probs: UnsafePointer<Float>) -> Void)?,
        skipGroups: UnsafePointer<UInt8>? = nil
    ) {
        let t0 = KernelProfile.start()
        let s = p + t
        defer {
            // QKᵀ and PV over the causal triangle: 2 products x 2 flops x dh per (query, visible key).
            let pairs = Double(t) * Double(p) + Double(t) * Double(t + 1) / 2
            KernelProfile.stop(.attention, t0, flops: 4 * Double(dh) * Double(nHeads) * pairs)
        }
        if observe == nil && softcap == 0 {
            if t == 1 {
                // A window only moves the first visible key: attend over keys lo..<S.
                let lo = window > 0 ? max(0, s - window) : 0, kvs = nKVHeads * dh
                hl_attention_decode_skip(
                    q, k + lo * kvs, v + lo * kvs, z, Int32(s - lo), Int32(nHeads), Int32(nKVHeads), Int32(dh), scale,
                    skipGroups)
                return
            }
            if blockedAttention {
                hl_attention_prefill_skip(
                    q, k, v, z, Int32(t), Int32(p), Int32(nHeads), Int32(nKVHeads), Int32(dh), scale,
                    Int32(max(window, 0)), skipGroups)
                return
            }
        }
        if let observe, t == 1 && window == 0 && softcap == 0 && skipGroups == nil && probsCount >= nHeads * s {
            hl_attention_decode_probs(
                q, k, v, z, Int32(s), Int32(nHeads), Int32(nKVHeads), Int32(dh), scale, probs) // probs [H, S]
            for h in 0..<nHeads { observe(h, probs + h * s) }
            return
        }
        referenceAttention(
            q: q, k: k, v: v, z: z, rows: t, start: p, nHeads: nHeads, nKVHeads: nKVHeads,
            dHead: dh, scale: scale, window: window, softcap: softcap, probs: probs, observe: observe)
    }

    /// `causalAttention` without an observer or soft-cap over a binary16 KV cache (`KVStorage.f16`):
    /// k, v [C, Hkv, dh] raw binary16 (rows 0..<S filled). Decoding runs hl_attention_decode_f16,
    /// prefill hl_attention_prefill_f16; each equals its Float32 kernel on the widened cache.
    static func causalAttentionF16(
        q: UnsafePointer<Float>, k: UnsafePointer<UInt16>, v: UnsafePointer<UInt16>,
        z: UnsafeMutablePointer<Float>, rows t: Int, start p: Int,
        nHeads: Int, nKVHeads: Int, dHead dh: Int, scale: Float, window: Int = 0
    ) {
        let t0 = KernelProfile.start()
        let s = p + t
        defer {
            let pairs = Double(t) * Double(p) + Double(t) * Double(t + 1) / 2
            KernelProfile.stop(.attention, t0, flops: 4 * Double(dh) * Double(nHeads) * pairs)
        }
        if t == 1 {
            let lo = window > 0 ? max(0, s - window) : 0, kvs = nKVHeads * dh
            hl_attention_decode_f16(
                q, k + lo * kvs, v + lo * kvs, z, Int32(s - lo), Int32(nHeads), Int32(nKVHeads), Int32(dh), scale)
            return
        }
        hl_attention_prefill_f16(
            q, k, v, z, Int32(t), Int32(p), Int32(nHeads), Int32(nKVHeads), Int32(dh), scale, Int32(max(window, 0)))
    }

    /// The materializing path of `causalAttention` (per head: sgemm, masked softmax, observer,
    /// sgemm), also the reference the blocked kernels are tested against.
    static func referenceAttention(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        z: UnsafeMutablePointer<Float>, rows t: Int, start p: Int,
        nHeads: Int, nKVHeads: Int, dHead dh: Int, scale: Float, window: Int = 0, softcap: Float = 0,
        probs: UnsafeMutablePointer<Float>,
        observe: ((_ head: Int, _ probs: UnsafePointer<Float>) -> Void)?
    ) {
        let s = p + t
        let qStride = nHeads * dh, kvStride = nKVHeads * dh
        let group = nHeads / nKVHeads
        if t == 1 && window == 0 && softcap == 0 {
            // Decoding: the G = H/Hkv query heads sharing a KV head are adjacent rows [G, dh] of q,
            // so one product per KV head reads its keys and values once (not G times).
            for g in 0..<nKVHeads {
                let qg = q + g * group * dh, kg = k + g * dh, vg = v + g * dh, zg = z + g * group * dh
                // probs[G, S] = scale * Q[G, dh] · K[S, dh]ᵀ
                if group == 1 {
                    cblas_sgemv(
                        CblasRowMajor, CblasNoTrans, blasint(s), blasint(dh), scale, kg, blasint(kvStride),
                        qg, 1, 0, probs, 1)
                } else {
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, blasint(group), blasint(s), blasint(dh),
                        scale, qg, blasint(dh), kg, blasint(kvStride), 0, probs, blasint(s))
                }
                for j in 0..<group {
                    softmax(probs + j * s, count: s)
                    observe?(g * group + j, probs + j * s)
                }
                // z[G, dh] = probs[G, S] · V[S, dh]
                if group == 1 {
                    cblas_sgemv(
                        CblasRowMajor, CblasTrans, blasint(s), blasint(dh), 1, vg, blasint(kvStride),
                        probs, 1, 0, zg, 1)
                } else {
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(group), blasint(dh), blasint(s), 1,
                        probs, blasint(s), vg, blasint(kvStride), 0, zg, blasint(dh))
                }
            }
            return
        }
        // Prefill (and decoding with a window or soft-cap): per head, two matrix products around a
        // masked softmax.
        for h in 0..<nHeads {
            let qh = q + h * dh, kh = k + (h / group) * dh, vh = v + (h / group) * dh, zh = z + h * dh
            // probs[T, S] = scale * Q[T, dh] · K[S, dh]ᵀ
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, blasint(t), blasint(s), blasint(dh), scale,
                qh, blasint(qStride), kh, blasint(kvStride), 0, probs, blasint(s))
            for r in 0..<t {
                let row = probs + r * s
                let valid = p + r + 1
                let lo = window > 0 ? max(0, valid - window) : 0 // keys lo..<valid are visible
                if softcap != 0 { Kernels.softcap(row + lo, count: valid - lo, cap: softcap) }
                softmax(row + lo, count: valid - lo)
                if lo > 0 { row.update(repeating: 0, count: lo) }
                if valid < s { (row + valid).update(repeating: 0, count: s - valid) }
            }
            observe?(h, probs)
            // z[T, dh] = probs[T, S] · V[S, dh]
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(t), blasint(dh), blasint(s), 1,
                probs, blasint(s), vh, blasint(kvStride), 0, zh, blasint(qStride))
        }
    }

    // MARK: - exp

    /// exp(x), Cephes `expf` (`FastMath.exp`).
    @inline(__always)
    static func fastExp(_ x0: Float) -> Float { FastMath.exp(x0) }
}

/// What `panelFill` decodes: a matrix's blocks and its row length.
private struct PanelSource {
    let blocks: QuantizedBlocks
    let cols: Int
}

/// hl_rows_fn for `Kernels.panelLinear`: rows row0 ..< row0 + n of the PanelSource at ctx into dst.
private let panelFill: hl_rows_fn = { ctx, row0, n, dst in
    let s = ctx!.assumingMemoryBound(to: PanelSource.self)
    s.pointee.blocks.dequantizeRows(Int(row0), count: Int(n), cols: s.pointee.cols, into: dst!)
}

/// cos/sin of every rotated pair at every position: [C, dims/2] each. Angles follow Hugging
/// Face's float32 computation, `θ(pos, i) = fl(pos * invFreq[i])` with
/// `invFreq[i] = 1 / base^(2i / dims)` (then divided by llama-3 frequency factors and multiplied
/// by the linear scaling factor when the model has them).
final class RopeTable: @unchecked Sendable {
    let dims: Int
    let positions: Int
    let cos: FloatBuffer // [C, dims/2]
    let sin: FloatBuffer // [C, dims/2]

    convenience init(config c: ModelConfig, positions n: Int, freqFactors: [Float]?) {
        self.init(config: c, positions: n, freqFactors: freqFactors, base: c.ropeBase, freqScale: c.ropeFreqScale)
    }

    /// The table of RoPE base `base` and linear scale `freqScale` (Gemma 3's local layers use their own).
    init(config c: ModelConfig, positions n: Int, freqFactors: [Float]?, base: Float, freqScale: Float) {
        dims = c.ropeDims
        positions = n
        let half = dims / 2
        var invFreq = [Float](repeating: 0, count: half)
        for i in 0..<half {
            let exponent = Float(2 * i) / Float(dims)
            var f = 1 / Float(Foundation.pow(Double(base), Double(exponent)))
            if let ff = freqFactors, i < ff.count { f /= ff[i] }
            invFreq[i] = f * freqScale
        }
        cos = FloatBuffer(count: n * half)
        sin = FloatBuffer(count: n * half)
        for pos in 0..<n {
            for i in 0..<half {
                let angle = Double(Float(pos) * invFreq[i])
                cos.pointer[pos * half + i] = Float(Foundation.cos(angle))
                sin.pointer[pos * half + i] = Float(Foundation.sin(angle))
            }
        }
    }
}

/// Scalar math shared by the kernels and the analyses.
public enum FastMath {
    /// exp(x), Cephes `expf`: range reduction by ln 2 (n by the 1.5 * 2^23 rounding trick, so
    /// no float-to-int conversion), degree-6 polynomial, 2^n built in the exponent bits. Relative
    /// error ~2e-7 on [-87, 88]; inputs are clamped to that range. Branch-free and written on
    /// scalars so that loops calling it auto-vectorize.
    @inlinable @inline(__always)
    public static func exp(_ x0: Float) -> Float {
        let xc = x0 < -87 ? -87 : (x0 > 88 ? 88 : x0)
        let t = xc * 1.442_695_04 + 12_582_912
        let fx = t - 12_582_912
        var x = xc - fx * 0.693_359_375
        x = x + fx * 2.121_944_4e-4
        let z = x * x
        var y: Float = 1.987_569_15e-4
        y = y * x + 1.398_199_950_7e-3
        y = y * x + 8.333_451_907_3e-3
        y = y * x + 4.166_579_589_4e-2
        y = y * x + 1.666_666_545_9e-1
        y = y * x + 5.000_000_120_1e-1
        y = y * z + x + 1
        let n = Int32(bitPattern: t.bitPattern) &- 0x4B40_0000
        return y * Float(bitPattern: UInt32(bitPattern: (n &+ 127) &<< 23))
    }
}
