// The int8 path of the quantized matrix-vector products: the activation quantizer and the
// portable row kernel (the other levels: hl_kernels_q8_x86.c, hl_kernels_q8_neon.c).
//
// Arithmetic (as llama.cpp's ggml_vec_dot_q4_0_q8_0 / q4_1_q8_1 / q5_0_q8_0 / q5_1_q8_1 /
// q8_0_q8_0): each 32-value block of the activation row is quantized to int8 with its own scale
// d_x = max|x| / 127 (kept in Float32, where llama.cpp rounds it to f16), and per weight block
//   Q4_0: (d_w d_x) * sum((q_w - 8) q_x)          Q4_1: (d_w d_x) * sum(q_w q_x) + m_w s_x
//   Q5_0: (d_w d_x) * sum((q_w - 16) q_x)         Q5_1: (d_w d_x) * sum(q_w q_x) + m_w s_x
//   Q8_0: (d_w d_x) * sum(q_w q_x)
// with s_x = d_x * sum(q_x). The integer sums are exact; the levels differ only in how the
// Float32 terms are added up.
//
// K-quants (as llama.cpp's ggml_vec_dot_q4_K_q8_K / q6_K_q8_K, but against the same 32-value
// activation blocks): a 256-weight superblock spans 8 activation blocks. Q4_K's sub-blocks are 32
// weights, one per activation block, each with its scale sc = d * scale and minimum mn = dmin * min
// (hl_q8_kscales); Q6_K's are 16 weights, two per activation block, scales sc0, sc1 = d * scales:
//   Q4_K: (sc d_x) * sum(q_w q_x) - mn s_x
//   Q6_K: (sc0 d_x) * sum_{first 16}((q_w - 32) q_x) + (sc1 d_x) * sum_{last 16}((q_w - 32) q_x)
// The SIMD levels keep the integer sums in lanes of 4 products and convert them to Float32
// exactly (|lane| <= 4 * 32 * 32639 < 2^24 on the int16 path), scaled per lane.
//
// The int16 path (HL_QDOT_INT16) keeps 16 bits per activation: v = round(x * 32512 / max|x|) as
// 256 q + q2 with q the int8 value above and q2 the rounded remainder (|q2| <= 127), d_x =
// max|x| / 32512, and the same formulas with sum(q_w v) = 256 sum(q_w q) + sum(q_w q2): two int8
// dot products per block, exact in int32 (|sum| <= 32 * 128 * 32639 < 2^31). Each activation is
// off by at most max|x| / 32512 (int8: max|x| / 254), which keeps the logits within the fidelity
// bar where the int8 path does not.

#include "hl_kernels.h"
#include "hl_kernels_q8.h"

#include <math.h>

void hl_q8_quantize(const float *x, int n, int8_t *q, int8_t *q2, float *d, float *s, int32_t *isum) {
    for (int b = 0; b < n / 32; b++) {
        const float *xb = x + 32 * b;
        int8_t *qb = q + 32 * b;
        int8_t *q2b = q2 ? q2 + 32 * b : NULL;
        float amax = 0;
        for (int j = 0; j < 32; j++) {
            float a = fabsf(xb[j]);
            amax = a > amax ? a : amax;
        }
        int any_nan = 0;
        for (int j = 0; j < 32; j++) any_nan |= xb[j] != xb[j];
        int32_t sum = 0;
        if (any_nan || amax > 3.4028234663852886e38f) {
            // Inf / NaN: zeros with a NaN scale, so every product with this block is NaN.
            memset(qb, 0, 32);
            if (q2b) memset(q2b, 0, 32);
            d[b] = NAN;
        } else {
            const float id = amax != 0 ? 127.0f / amax : 0.0f;
            for (int j = 0; j < 32; j++) {
                // |x * id| <= 127 (+ rounding): adding and subtracting 1.5 * 2^23 rounds half to even.
                float v = xb[j] * id;
                float r = (v + 12582912.0f) - 12582912.0f;
                int32_t qi = (int32_t)r;
                qb[j] = (int8_t)qi;
                if (q2b) {
                    // The remainder in units of 1/256 (|v - r| <= 1/2, so |q2| <= 128 before the
                    // clamp, which moves a value by at most one unit of d / 256).
                    float u = (v - r) * 256.0f;
                    int32_t lo = (int32_t)((u + 12582912.0f) - 12582912.0f);
                    lo = lo > 127 ? 127 : lo < -127 ? -127 : lo;
                    q2b[j] = (int8_t)lo;
                    qi = 256 * qi + lo;
                }
                sum += qi;
            }
            d[b] = q2b ? amax / 32512.0f : amax / 127.0f;
        }
        if (s) s[b] = d[b] * (float)sum;
        if (isum) isum[b] = sum;
    }
}

void hl_quantize_q8_32(const float *x, int n, int8_t *q, float *d) { hl_q8_quantize(x, n, q, NULL, d, NULL, NULL); }

void hl_quantize_q16_32(const float *x, int n, int8_t *q, int8_t *q2, float *d) {
    hl_q8_quantize(x, n, q, q2, d, NULL, NULL);
}

/// sum over the block of q_w * q_x, with q_w the 4-bit values at qs (weight j: low nibble of
/// qs[j], weight j + 16: high nibble) plus `high` (bit j of qh -> 16) for the 5-bit formats.
static inline int32_t dot_nibbles(const uint8_t *qs, uint32_t qh, int five, const int8_t *x) {
    int32_t s = 0;
    for (int j = 0; j < 16; j++) {
        int32_t lo = qs[j] & 15, hi = qs[j] >> 4;
        if (five) {
            lo |= (int32_t)((qh >> j) & 1) << 4;
            hi |= (int32_t)((qh >> (j + 16)) & 1) << 4;
        }
        s += lo * x[j] + hi * x[j + 16];
    }
    return s;
}

/// sum over the block of q_w * v for the activation values q (int8 path) or 256 q + q2 (int16).
static inline int32_t dot_block(int type, const uint8_t *blk, const int8_t *xq, const int8_t *xq2) {
    uint32_t qh;
    int32_t hi, lo = 0;
    switch (type) {
    case HL_Q4_0:
        hi = dot_nibbles(blk + 2, 0, 0, xq);
        if (xq2) lo = dot_nibbles(blk + 2, 0, 0, xq2);
        break;
    case HL_Q4_1:
        hi = dot_nibbles(blk + 4, 0, 0, xq);
        if (xq2) lo = dot_nibbles(blk + 4, 0, 0, xq2);
        break;
    case HL_Q5_0:
        memcpy(&qh, blk + 2, 4);
        hi = dot_nibbles(blk + 6, qh, 1, xq);
        if (xq2) lo = dot_nibbles(blk + 6, qh, 1, xq2);
        break;
    case HL_Q5_1:
        memcpy(&qh, blk + 4, 4);
        hi = dot_nibbles(blk + 8, qh, 1, xq);
        if (xq2) lo = dot_nibbles(blk + 8, qh, 1, xq2);
        break;
    default: {
        const int8_t *qw = (const int8_t *)(blk + 2);
        hi = 0;
        for (int j = 0; j < 32; j++) hi += (int32_t)qw[j] * xq[j];
        if (xq2)
            for (int j = 0; j < 32; j++) lo += (int32_t)qw[j] * xq2[j];
        break;
    }
    }
    return xq2 ? 256 * hi + lo : hi;
}

static inline float block_generic(int type, const uint8_t *blk, const int8_t *xq, const int8_t *xq2, float dx,
                                  float sx, int32_t xi) {
    const float dw = hl_q8_h2f(blk);
    const int32_t p = dot_block(type, blk, xq, xq2);
    switch (type) {
    case HL_Q4_0: return (dw * dx) * (float)(p - 8 * xi);
    case HL_Q5_0: return (dw * dx) * (float)(p - 16 * xi);
    case HL_Q4_1: case HL_Q5_1: return (dw * dx) * (float)p + hl_q8_h2f(blk + 2) * sx;
    default: return (dw * dx) * (float)p;
    }
}

/// sum over 16 weights of q_w * v (int8: v = q; int16: v = 256 q + q2) for the weights w [16]
/// (any integers of |w| <= 63).
static inline int32_t dot16(const int32_t *w, const int8_t *xq, const int8_t *xq2) {
    int32_t hi = 0, lo = 0;
    for (int j = 0; j < 16; j++) hi += w[j] * xq[j];
    if (xq2)
        for (int j = 0; j < 16; j++) lo += w[j] * xq2[j];
    return xq2 ? 256 * hi + lo : hi;
}

/// The 32 weights of activation block k (< 8) of a K-quant superblock: Q4_K q in 0..15, Q6_K
/// q - 32 in -32..31 (llama.cpp's layouts, see hl_kernels.c dec32).
static inline void kquant_weights(int type, const uint8_t *blk, int k, int32_t *wq) {
    if (type == HL_Q4_K) {
        const uint8_t *qs = blk + 16 + 32 * (k >> 1);
        for (int j = 0; j < 32; j++) wq[j] = (k & 1) ? qs[j] >> 4 : qs[j] & 15;
    } else {
        const int half = k >> 2, kk = k & 3;
        const uint8_t *ql = blk + 64 * half + 32 * (kk & 1), *qh = blk + 128 + 32 * half;
        for (int j = 0; j < 32; j++) {
            int lo = kk >= 2 ? ql[j] >> 4 : ql[j] & 15;
            wq[j] = (lo | ((qh[j] >> (2 * kk)) & 3) << 4) - 32;
        }
    }
}

static void rows_kquant_generic(int type, const uint8_t *w, size_t rb, int r0, int r1, int nb, const hl_q8_act *x,
                                int t, float *y, size_t ys) {
    const int sbb = hl_q8_super_bytes(type);
    for (int i = 0; i < t; i++) {
        for (int r = r0; r < r1; r++) {
            const uint8_t *row = w + (size_t)r * rb;
            float acc = 0;
            for (int sb = 0; sb < nb / 8; sb++) {
                const uint8_t *blk = row + (size_t)sb * sbb;
                float sc[16], mn[8];
                hl_q8_kscales(type, blk, sc, mn);
                for (int k = 0; k < 8; k++) {
                    const int b = 8 * sb + k;
                    const int8_t *xq = x[i].q + 32 * b, *xq2 = x[i].q2 ? x[i].q2 + 32 * b : NULL;
                    const float dx = x[i].d[b];
                    int32_t wq[32];   // [32] integer weights of this activation block
                    kquant_weights(type, blk, k, wq);
                    if (type == HL_Q4_K) {
                        int32_t p = dot16(wq, xq, xq2) + dot16(wq + 16, xq + 16, xq2 ? xq2 + 16 : NULL);
                        acc += (sc[k] * dx) * (float)p - mn[k] * x[i].s[b];
                    } else {
                        int32_t p0 = dot16(wq, xq, xq2), p1 = dot16(wq + 16, xq + 16, xq2 ? xq2 + 16 : NULL);
                        acc += (sc[2 * k] * dx) * (float)p0 + (sc[2 * k + 1] * dx) * (float)p1;
                    }
                }
            }
            y[(size_t)i * ys + r] = acc;
        }
    }
}

void hl_q8_rows_generic(int type, const uint8_t *w, size_t rb, int r0, int r1, int nb, const hl_q8_act *x, int t,
                        float *y, size_t ys) {
    if (hl_q8_super_bytes(type)) {
        rows_kquant_generic(type, w, rb, r0, r1, nb, x, t, y, ys);
        return;
    }
    const int bb = hl_q8_block_bytes(type);
    for (int i = 0; i < t; i++) {
        for (int r = r0; r < r1; r++) {
            const uint8_t *row = w + (size_t)r * rb;
            float acc = 0;
            for (int b = 0; b < nb; b++)
                acc += block_generic(type, row + (size_t)b * bb, x[i].q + 32 * b, x[i].q2 ? x[i].q2 + 32 * b : NULL,
                                     x[i].d[b], x[i].s[b], x[i].isum[b]);
            y[(size_t)i * ys + r] = acc;
        }
    }
}
