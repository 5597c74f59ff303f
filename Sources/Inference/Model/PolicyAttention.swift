import CNative
import Foundation

// Attention of one query head under a KV policy (KVPolicy.swift): the head's keys are masked as
// a server that evicted them would, in prefill and decode alike. Query rows are taken in tiles of
// `tileRows`; a tile scores only the key spans some row of it may read — the sinks [0, S) and the
// recent span [first row's position - W + 1, last row's position] for a window, every key up to
// the last row otherwise — so a windowed head costs O(T x (W + S)), not O(T x S).

extension Kernels {
    /// Query rows per tile of `policyAttention`.
    static let tileRows = 32

    /// z (and, with an observer, the probabilities) of query head `h` under `policy`.
    ///
    /// - q:       [T, H, dh]    queries after RoPE
    /// - k, v:    [C, Hkv, dh]  the layer's KV cache (rows 0..<S filled, S = P + T)
    /// - z:       [T, H, dh]    output: head h's columns are overwritten
    /// - scores:  scratch of at least min(T, tileRows) * S floats
    /// - layerWindow: the layer's own sliding window (0: none), applied on top of the policy
    /// - observe: called once with the head's probabilities [T, S] (zero outside the keys read)
    static func policyAttention(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        z: UnsafeMutablePointer<Float>, rows t: Int, start p: Int, head h: Int,
        nHeads: Int, nKVHeads: Int, dHead dh: Int, scale: Float, layerWindow lw: Int, softcap: Float,
        policy: HeadKVPolicy, scores: UnsafeMutablePointer<Float>,
        observe: ((_ head: Int, _ probs: UnsafePointer<Float>) -> Void)?
    ) {
        let s = p + t, qStride = nHeads * dh, kvStride = nKVHeads * dh, group = nHeads / nKVHeads
        let qh = q + h * dh, kh = k + (h / group) * dh, vh = v + (h / group) * dh, zh = z + h * dh
        let full: FloatBuffer? = observe == nil ? nil : FloatBuffer(count: t * s) // [T, S]
        full?.pointer.update(repeating: 0, count: t * s)
        defer { if let full { observe?(h, full.pointer) } }
        if policy == .drop {
            for r in 0..<t { (zh + r * qStride).update(repeating: 0, count: dh) }
            return
        }
        var keep: [Float] = [] // topk: the candidate scores of one row, sorted
        var r0 = 0
        while r0 < t {
            let tb = min(tileRows, t - r0)
            let pos0 = p + r0, hi = pos0 + tb // keys < hi may be read by the tile
            let lwLo = lw > 0 ? max(0, pos0 - lw + 1) : 0
            // Two disjoint key spans [aLo, aHi) and [bLo, hi): sinks and recent keys for a window,
            // one span for full/topk.
            var aLo = 0, aHi = 0, bLo = lwLo
            if case .window(let w, let sinks) = policy {
                aLo = min(lwLo, sinks)
                aHi = min(sinks, hi)
                bLo = max(aHi, max(lwLo, pos0 - w + 1))
            }
            let nA = max(0, aHi - aLo), nB = max(0, hi - bLo), n = nA + nB
            // scores[tb, n]: columns 0..<nA the span A, nA..<n the span B
            if nA > 0 {
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, blasint(tb), blasint(nA), blasint(dh), scale,
                    qh + r0 * qStride, blasint(qStride), kh + aLo * kvStride, blasint(kvStride), 0,
                    scores, blasint(n))
            }
            if nB > 0 {
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, blasint(tb), blasint(nB), blasint(dh), scale,
                    qh + r0 * qStride, blasint(qStride), kh + bLo * kvStride, blasint(kvStride), 0,
                    scores + nA, blasint(n))
            }
            for r in 0..<tb {
                let row = scores + r * n, pos = pos0 + r
                @inline(__always) func key(_ j: Int) -> Int { j < nA ? aLo + j : bLo + j - nA }
                if softcap != 0 { Kernels.softcap(row, count: n, cap: softcap) }
                for j in 0..<n where !policy.admits(key: key(j), position: pos, layerWindow: lw) { row[j] = -.infinity }
                if case .topk(let kk) = policy {
                    keep.removeAll(keepingCapacity: true)
                    for j in 0..<n where row[j] > -.infinity { keep.append(row[j]) }
                    if keep.count > kk {
                        keep.sort(by: >)
                        let thr = keep[kk - 1]
                        var above = keep.prefix(kk).filter { $0 > thr }.count // keys strictly above thr all stay
                        for j in 0..<n where row[j] > -.infinity {
                            if row[j] > thr { continue }
                            if row[j] == thr && above < kk {
                                above += 1 // ties: the earliest keys first (columns are in key order)
                            } else {
                                row[j] = -.infinity
                            }
                        }
                    }
                }
                maskedSoftmax(row, count: n)
                if let full {
                    let dst = full.pointer + (r0 + r) * s
                    for j in 0..<n { dst[key(j)] = row[j] }
                }
            }
            // z[tb, dh] = P[:, A]·V[A] + P[:, B]·V[B]
            let zt = zh + r0 * qStride
            if nA > 0 {
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(tb), blasint(dh), blasint(nA), 1,
                    scores, blasint(n), vh + aLo * kvStride, blasint(kvStride), 0, zt, blasint(qStride))
            }
            if nB > 0 {
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(tb), blasint(dh), blasint(nB), 1,
                    scores + nA, blasint(n), vh + bLo * kvStride, blasint(kvStride), nA > 0 ? 1 : 0, zt,
                    blasint(qStride))
            }
            r0 += tb
        }
    }

    /// Runs `body(i, thread)` for i in 0..<n on the kernel pool (`hl_parallel_blas1`: the caller
    /// takes part, OpenBLAS is held to one thread meanwhile); `thread` is in 0..<`poolThreads`.
    static var poolThreads: Int { Int(hl_kernels_threads()) }

    static func parallel(_ n: Int, _ body: (_ i: Int, _ thread: Int) -> Void) {
        withoutActuallyEscaping(body) { f in
            var box = f
            withUnsafeMutablePointer(to: &box) { ctx in
                hl_parallel_blas1(
                    Int32(n),
                    { raw, i, thread in
                        raw!.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee(Int(i), Int(thread))
                    }, ctx)
            }
        }
    }

    /// Softmax of `x[0..<n]` in place over the finite entries; -inf entries (masked keys) become
    /// exactly 0. At least one entry must be finite.
    static func maskedSoftmax(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        var m = -Float.infinity
        for j in 0..<n where x[j] > m { m = x[j] }
        var sum: Float = 0
        for j in 0..<n {
            let e: Float = x[j] == -.infinity ? 0 : fastExp(x[j] - m)
            x[j] = e
            sum += e
        }
        let inv = 1 / sum
        for j in 0..<n { x[j] *= inv }
    }
}
