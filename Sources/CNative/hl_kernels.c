// Hot kernels of the forward pass: quantized matrix products, blocked causal attention and
// vector helpers, with a small spinning thread pool. See include/hl_kernels.h.
//
// Portability: the kernel bodies are written once with Clang/GCC vector extensions
// (16-lane float vectors) as always-inline functions, and instantiated per level under
// function-level target attributes: AVX-512, AVX2+FMA+F16C, and the baseline (x86-64 SSE2, or
// armv8-a, where the baseline is NEON; the aarch64 "neon" levels add the native f16 conversion).
// The level is picked at run time from cpuid/XCR0 or the aarch64 hwcaps, so the file needs no
// -march flag. The AVX-512 matrix-vector kernels for Q4_0/Q4_1/Q8_0 additionally use
// intrinsics (a 16-entry vpermps table turns nibbles into dequantized weights). The int8 path of
// the quantized products (quantized activations, integer dot products) lives in
// hl_kernels_q8*.c, one kernel per level.
//
// Exactness: on the float path weights are decoded to the same Float32 values as
// GGUF/Dequantize.swift (same operations, no fused multiply-add in the decode), so a quantized
// product differs from the Float32 product only in summation order.

#include "hl_kernels.h"
#include "hl_blas.h"
#include "hl_kernels_q8.h"

#include <stdio.h>

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define HL_X86 1
#include <cpuid.h>
#include <immintrin.h>
#define HL_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,bmi2")))
#define HL_TARGET_AVX2 __attribute__((target("avx2,fma,f16c,bmi2")))
#else
#define HL_X86 0
#define HL_TARGET_AVX512
#define HL_TARGET_AVX2
#endif
#if defined(__aarch64__)
#define HL_ARM 1
#include <arm_neon.h>
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif
#else
#define HL_ARM 0
#endif

#define HL_INLINE static inline __attribute__((always_inline))
// The 16-lane bodies are always inlined into their per-level instantiation, so the vector ABI
// of the (never emitted) out-of-line forms does not matter.
#pragma clang diagnostic ignored "-Wpsabi"
#define HL_MAX_THREADS 16

typedef float v16f __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef double v8d __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef uint32_t v16u __attribute__((vector_size(64)));
typedef uint8_t v16b __attribute__((vector_size(16)));
typedef int8_t v16c __attribute__((vector_size(16)));

HL_INLINE v16f ld16f(const float *p) { v16f v; memcpy(&v, p, sizeof v); return v; }
HL_INLINE void st16f(float *p, v16f v) { memcpy(p, &v, sizeof v); }
HL_INLINE v16b ld16b(const uint8_t *p) { v16b v; memcpy(&v, p, sizeof v); return v; }
HL_INLINE v16c ld16c(const uint8_t *p) { v16c v; memcpy(&v, p, sizeof v); return v; }
HL_INLINE v16f splat(float x) { return (v16f){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }

HL_INLINE float hsum16(v16f v) {
    v8f a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
    v8f b = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    v8f c = a + b;
    v4f d = __builtin_shufflevector(c, c, 0, 1, 2, 3) + __builtin_shufflevector(c, c, 4, 5, 6, 7);
    return (d[0] + d[2]) + (d[1] + d[3]);
}

/// The four horizontal sums of a, b, c, d.
HL_INLINE v4f hsum4(v16f a, v16f b, v16f c, v16f d) {
#define HL_FOLD(v) (__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + \
                    __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15))
    v8f a8 = HL_FOLD(a), b8 = HL_FOLD(b), c8 = HL_FOLD(c), d8 = HL_FOLD(d);
#undef HL_FOLD
    v8f ab = __builtin_shufflevector(a8, b8, 0, 1, 2, 3, 8, 9, 10, 11) +
             __builtin_shufflevector(a8, b8, 4, 5, 6, 7, 12, 13, 14, 15);
    v8f cd = __builtin_shufflevector(c8, d8, 0, 1, 2, 3, 8, 9, 10, 11) +
             __builtin_shufflevector(c8, d8, 4, 5, 6, 7, 12, 13, 14, 15);
    v8f x = __builtin_shufflevector(ab, cd, 0, 1, 4, 5, 8, 9, 12, 13) +
            __builtin_shufflevector(ab, cd, 2, 3, 6, 7, 10, 11, 14, 15);
    return __builtin_shufflevector(x, x, 0, 2, 4, 6) + __builtin_shufflevector(x, x, 1, 3, 5, 7);
}

HL_INLINE float hmax16(v16f v) {
    v8f a = __builtin_elementwise_max(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7),
                                      __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15));
    v4f b = __builtin_elementwise_max(__builtin_shufflevector(a, a, 0, 1, 2, 3), __builtin_shufflevector(a, a, 4, 5, 6, 7));
    float m0 = b[0] > b[1] ? b[0] : b[1], m1 = b[2] > b[3] ? b[2] : b[3];
    return m0 > m1 ? m0 : m1;
}

/// IEEE binary16 -> binary32, portable (exact for every input).
HL_INLINE float h2f_portable(const uint8_t *p) {
    uint16_t h = (uint16_t)(p[0] | (p[1] << 8));
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = h & 0x7fff, bits;
    if (e >= 0x7c00) {
        bits = (e << 13) | 0x7f800000;          // Inf / NaN (payload kept)
    } else {
        float f; uint32_t u = e << 13;
        memcpy(&f, &u, 4);
        f *= 0x1p112f;                           // rebias: exact for normal and subnormal halves
        memcpy(&bits, &f, 4);
    }
    bits |= sign;
    float r; memcpy(&r, &bits, 4);
    return r;
}

typedef float (*h2f_fn)(const uint8_t *);

#if HL_ARM
HL_INLINE float h2f_arm(const uint8_t *p) {
    __fp16 h;
    memcpy(&h, p, 2);
    return (float)h;
}
#endif

#if HL_X86
HL_TARGET_AVX2 HL_INLINE float h2f_f16c(const uint8_t *p) {
    uint16_t h; memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}
#endif

// MARK: - exp (Cephes expf, as Kernels.fastExp)

HL_INLINE v16f vexp(v16f x0) {
    v16f xc = __builtin_elementwise_min(__builtin_elementwise_max(x0, splat(-87.0f)), splat(88.0f));
    v16f t = xc * 1.44269504f;
    t = t + 12582912.0f;
    v16f fx = t - 12582912.0f;
    v16f x = xc - fx * 0.693359375f;
    x = x + fx * 2.12194440e-4f;
    v16f z = x * x;
    v16f y = splat(1.9875691500e-4f);
    y = y * x + 1.3981999507e-3f;
    y = y * x + 8.3334519073e-3f;
    y = y * x + 4.1665795894e-2f;
    y = y * x + 1.6666665459e-1f;
    y = y * x + 5.0000001201e-1f;
    y = y * z + x + 1.0f;
    v16i n = (v16i)t - 0x4B400000;
    v16i e = (n + 127) << 23;
    return y * (v16f)e;
}

HL_INLINE float sexp(float x) {
    v16f v = vexp(splat(x));
    return v[0];
}

// MARK: - Vector helper bodies

HL_INLINE void exp_body(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) st16f(y + i, vexp(ld16f(x + i)));
    if (i < n) {
        float buf[16] = {0};
        memcpy(buf, x + i, (n - i) * 4);
        v16f r = vexp(ld16f(buf));
        memcpy(y + i, &r, (n - i) * 4);
    }
}

/// max over x[0..<n] (n >= 1).
HL_INLINE float max_body(const float *x, int n) {
    int i = 0;
    float m = -INFINITY;
    if (n >= 16) {
        v16f a = ld16f(x), b = a;
        for (i = 16; i + 32 <= n; i += 32) {
            a = __builtin_elementwise_max(a, ld16f(x + i));
            b = __builtin_elementwise_max(b, ld16f(x + i + 16));
        }
        for (; i + 16 <= n; i += 16) a = __builtin_elementwise_max(a, ld16f(x + i));
        m = hmax16(__builtin_elementwise_max(a, b));
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/// x[i] = exp(x[i] - m) for i < n; returns the sum.
HL_INLINE float expsum_body(float *x, int n, float m) {
    v16f acc = splat(0), mv = splat(m);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        v16f e = vexp(ld16f(x + i) - mv);
        st16f(x + i, e);
        acc += e;
    }
    float sum = hsum16(acc);
    if (i < n) {
        float buf[16];
        int r = n - i;
        memcpy(buf, x + i, (size_t)r * 4);
        for (int j = r; j < 16; j++) buf[j] = m;
        v16f e = vexp(ld16f(buf) - mv);
        for (int j = 0; j < r; j++) { x[i + j] = e[j]; sum += e[j]; }
    }
    return sum;
}

HL_INLINE void scale_body(float *x, size_t n, float s) {
    size_t i = 0;
    v16f sv = splat(s);
    for (; i + 16 <= n; i += 16) st16f(x + i, ld16f(x + i) * sv);
    for (; i < n; i++) x[i] *= s;
}

HL_INLINE void softmax_body(float *x, int n) {
    if (n <= 0) return;
    float m = max_body(x, n);
    float sum = expsum_body(x, n, m);
    scale_body(x, (size_t)n, 1.0f / sum);
}

HL_INLINE void rmsnorm_body(const float *x, int rows, int d, const float *w, float eps, float *y) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * d;
        float *yr = y + (size_t)r * d;
        v8d a0 = {0}, a1 = {0};
        int i = 0;
        for (; i + 16 <= d; i += 16) {
            v16f v = ld16f(xr + i);
            v8d lo = __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7), v8d);
            v8d hi = __builtin_convertvector(__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15), v8d);
            a0 += lo * lo;
            a1 += hi * hi;
        }
        v8d a = a0 + a1;
        double ss = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
        for (; i < d; i++) ss += (double)xr[i] * (double)xr[i];
        float inv = 1.0f / sqrtf((float)(ss / (double)d) + eps);
        v16f iv = splat(inv);
        for (i = 0; i + 16 <= d; i += 16) st16f(yr + i, ld16f(w + i) * (ld16f(xr + i) * iv));
        for (; i < d; i++) yr[i] = w[i] * (xr[i] * inv);
    }
}

HL_INLINE void swiglu_body(float *g, const float *u, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v16f gv = ld16f(g + i);
        v16f s = gv / (1.0f + vexp(-gv));
        st16f(g + i, s * ld16f(u + i));
    }
    for (; i < n; i++) {
        float gv = g[i];
        g[i] = gv / (1.0f + sexp(-gv)) * u[i];
    }
}

HL_INLINE void add_body(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) st16f(y + i, ld16f(y + i) + ld16f(x + i));
    for (; i < n; i++) y[i] += x[i];
}

// MARK: - Quantized blocks: decode 32 weights (two 16-lane halves) of one row

/// Bytes per block and weights per block of the supported types.
static int qtype_block_bytes(int type) {
    switch (type) {
    case HL_Q4_0: return 18;
    case HL_Q4_1: return 20;
    case HL_Q5_0: return 22;
    case HL_Q5_1: return 24;
    case HL_Q8_0: return 34;
    case HL_Q4_K: return 144;
    case HL_Q6_K: return 210;
    default: return 0;
    }
}
static int qtype_block_size(int type) { return (type == HL_Q4_K || type == HL_Q6_K) ? 256 : 32; }

int hl_qtype_supported(int type) { return qtype_block_bytes(type) != 0; }

/// Float(q) for q in 0...255.
HL_INLINE v16f u8f(v16b q) { return __builtin_convertvector(q, v16f); }

/// The fifth bits of 16 Q5 weights: byte j = 16 if bit j of qh is set, else 0.
HL_INLINE v16b q5_high(uint32_t qh) {
    const v16u shift = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    v16u bits = (((v16u){0} + qh) >> shift) & 1u;
    return __builtin_convertvector(bits << 4, v16b);
}

/// Weights 32*b ..< 32*b+32 of a row of `type`, decoded with the operations of
/// GGUF/DequantizeFast.swift (identical Float32 values).
HL_INLINE void dec32(const int type, const uint8_t *row, int b, h2f_fn h2f, v16f *lo, v16f *hi) {
    switch (type) {
    case HL_Q4_0: {
        const uint8_t *blk = row + (size_t)b * 18;
        float d = h2f(blk);
        v16b qs = ld16b(blk + 2);
        *lo = (u8f(qs & 15) - 8.0f) * d;
        *hi = (u8f(qs >> 4) - 8.0f) * d;
        break;
    }
    case HL_Q4_1: {
        const uint8_t *blk = row + (size_t)b * 20;
        float d = h2f(blk), m = h2f(blk + 2);
        v16b qs = ld16b(blk + 4);
        v16f a = u8f(qs & 15) * d, c = u8f(qs >> 4) * d;
        *lo = a + m;          // separate statements: no contraction into an FMA
        *hi = c + m;
        break;
    }
    case HL_Q5_0: {
        const uint8_t *blk = row + (size_t)b * 22;
        float d = h2f(blk);
        uint32_t qh;
        memcpy(&qh, blk + 2, 4);
        v16b qs = ld16b(blk + 6);
        *lo = (u8f((qs & 15) | q5_high(qh)) - 16.0f) * d;
        *hi = (u8f((qs >> 4) | q5_high(qh >> 16)) - 16.0f) * d;
        break;
    }
    case HL_Q5_1: {
        const uint8_t *blk = row + (size_t)b * 24;
        float d = h2f(blk), m = h2f(blk + 2);
        uint32_t qh;
        memcpy(&qh, blk + 4, 4);
        v16b qs = ld16b(blk + 8);
        v16f a = u8f((qs & 15) | q5_high(qh)) * d, c = u8f((qs >> 4) | q5_high(qh >> 16)) * d;
        *lo = a + m;          // separate statements: no contraction into an FMA
        *hi = c + m;
        break;
    }
    case HL_Q8_0: {
        const uint8_t *blk = row + (size_t)b * 34;
        float d = h2f(blk);
        *lo = __builtin_convertvector(ld16c(blk + 2), v16f) * d;
        *hi = __builtin_convertvector(ld16c(blk + 18), v16f) * d;
        break;
    }
    case HL_Q4_K: {
        const uint8_t *blk = row + (size_t)(b >> 3) * 144;
        int j = b & 7;
        float d = h2f(blk), dmin = h2f(blk + 2);
        const uint8_t *sc = blk + 4;
        uint8_t s, mn;
        if (j < 4) { s = sc[j] & 63; mn = sc[j + 4] & 63; }
        else {
            s = (uint8_t)((sc[j + 4] & 0x0F) | ((sc[j - 4] >> 6) << 4));
            mn = (uint8_t)((sc[j + 4] >> 4) | ((sc[j] >> 6) << 4));
        }
        float d1 = d * (float)s, m1 = dmin * (float)mn;
        const uint8_t *qs = blk + 16 + 32 * (j >> 1);
        v16b q0 = ld16b(qs), q1 = ld16b(qs + 16);
        if (j & 1) { q0 = q0 >> 4; q1 = q1 >> 4; } else { q0 = q0 & 15; q1 = q1 & 15; }
        v16f a = u8f(q0) * d1, c = u8f(q1) * d1;
        *lo = a - m1;
        *hi = c - m1;
        break;
    }
    case HL_Q6_K: {
        const uint8_t *blk = row + (size_t)(b >> 3) * 210;
        int j = b & 7, half = j >> 2, k = j & 3;
        float d = h2f(blk + 208);
        const uint8_t *ql = blk + 64 * half + 32 * (k & 1), *qh = blk + 128 + 32 * half;
        const int8_t *sc = (const int8_t *)(blk + 192 + 8 * half + 2 * k);
        v16b l0 = ld16b(ql), l1 = ld16b(ql + 16), h0 = ld16b(qh), h1 = ld16b(qh + 16);
        if (k >= 2) { l0 = l0 >> 4; l1 = l1 >> 4; } else { l0 = l0 & 15; l1 = l1 & 15; }
        uint8_t sh = (uint8_t)(2 * k);
        v16b q0 = l0 | (((h0 >> sh) & 3) << 4), q1 = l1 | (((h1 >> sh) & 3) << 4);
        float s0 = d * (float)sc[0], s1 = d * (float)sc[1];
        *lo = s0 * (u8f(q0) - 32.0f);
        *hi = s1 * (u8f(q1) - 32.0f);
        break;
    }
    default:
        *lo = splat(0); *hi = splat(0);
    }
}

/// R weight rows (starting at `row`, `rb` bytes apart) times T activation rows.
HL_INLINE void qrows(const int type, const int R, const int T, h2f_fn h2f, const uint8_t *row, size_t rb,
                     int nb, const float *x, size_t xs, float *y, size_t ys, const uint8_t *end) {
    const int bb = (int)((rb + (size_t)nb - 1) / (size_t)nb);  // bytes per 32 weights (K-quants: rounded up)
    v16f acc[4][4];
    for (int j = 0; j < R; j++)
        for (int i = 0; i < T; i++) acc[j][i] = splat(0);
    for (int b = 0; b < nb; b++) {
        if (R == 4) hl_prefetch_rows(row, rb, bb, b, end);
        for (int j = 0; j < R; j++) {
            v16f wl, wh;
            dec32(type, row + (size_t)j * rb, b, h2f, &wl, &wh);
            for (int i = 0; i < T; i++) {
                const float *xi = x + (size_t)i * xs + (size_t)b * 32;
                v16f p = wl * ld16f(xi);
                p += wh * ld16f(xi + 16);
                acc[j][i] += p;
            }
        }
    }
    for (int j = 0; j < R; j++)
        for (int i = 0; i < T; i++) y[(size_t)i * ys + j] = hsum16(acc[j][i]);
}

HL_INLINE void qmm_type(const int type, h2f_fn h2f, const uint8_t *w, size_t rb, int r0, int r1, int cols,
                        const float *x, size_t xs, int t, float *y, size_t ys) {
    int nb = cols / 32;
    const uint8_t *end = w + (size_t)r1 * rb;
    int i = 0;
    for (; i + 4 <= t; i += 4)
        for (int r = r0; r < r1; r++)
            qrows(type, 1, 4, h2f, w + (size_t)r * rb, rb, nb, x + (size_t)i * xs, xs, y + (size_t)i * ys + r, ys, end);
    const float *xi = x + (size_t)i * xs;
    float *yi = y + (size_t)i * ys;
    switch (t - i) {
    case 3:
        for (int r = r0; r < r1; r++) qrows(type, 1, 3, h2f, w + (size_t)r * rb, rb, nb, xi, xs, yi + r, ys, end);
        break;
    case 2:
        for (int r = r0; r < r1; r++) qrows(type, 1, 2, h2f, w + (size_t)r * rb, rb, nb, xi, xs, yi + r, ys, end);
        break;
    case 1: {
        int r = r0;
        for (; r + 4 <= r1; r += 4) qrows(type, 4, 1, h2f, w + (size_t)r * rb, rb, nb, xi, xs, yi + r, ys, end);
        for (; r < r1; r++) qrows(type, 1, 1, h2f, w + (size_t)r * rb, rb, nb, xi, xs, yi + r, ys, end);
        break;
    }
    default:
        break;
    }
}

HL_INLINE void qmm_body(int type, h2f_fn h2f, const uint8_t *w, size_t rb, int r0, int r1, int cols,
                        const float *x, size_t xs, int t, float *y, size_t ys) {
    switch (type) {
    case HL_Q4_0: qmm_type(HL_Q4_0, h2f, w, rb, r0, r1, cols, x, xs, t, y, ys); break;
    case HL_Q4_1: qmm_type(HL_Q4_1, h2f, w, rb, r0, r1, cols, x, xs, t, y, ys); break;
    case HL_Q5_0: qmm_type(HL_Q5_0, h2f, w, rb, r0, r1, cols, x, xs, t, y, ys); break;
    case HL_Q5_1: qmm_type(HL_Q5_1, h2f, w, rb, r0, r1, cols, x, xs, t, y, ys); break;
    case HL_Q8_0: qmm_type(HL_Q8_0, h2f, w, rb, r0, r1, cols, x, xs, t, y, ys); break;
    case HL_Q4_K: qmm_type(HL_Q4_K, h2f, w, rb, r0, r1, cols, x, xs, t, y, ys); break;
    case HL_Q6_K: qmm_type(HL_Q6_K, h2f, w, rb, r0, r1, cols, x, xs, t, y, ys); break;
    default: break;
    }
}

// MARK: - Attention bodies

/// Online-softmax update of one row of a score tile: s[0..<c] are valid scores (c >= 1), s[c..<n]
/// are masked. Overwrites s[0..<n] with exp(s - m_new) (zeros where masked), updates the running
/// max *m and sum *l, and rescales the output row o[0..<dh] when the max grows.
HL_INLINE void tile_row_body(float *s, int c, int n, float *m, float *l, float *o, int dh) {
    if (c <= 0) { memset(s, 0, (size_t)n * 4); return; }
    float mx = max_body(s, c);
    float mold = *m;
    float mnew = mold > mx ? mold : mx;
    float sum = expsum_body(s, c, mnew);
    if (c < n) memset(s + c, 0, (size_t)(n - c) * 4);
    if (mnew != mold) {
        float alpha = mold == -INFINITY ? 0.0f : sexp(mold - mnew);
        *l = *l * alpha + sum;
        scale_body(o, (size_t)dh, alpha);
    } else {
        *l += sum;
    }
    *m = mnew;
}

HL_INLINE void tile_rows_body(float *s, int ld, int rows, int n, const int *valid, float *m, float *l, float *o,
                              int dh) {
    for (int r = 0; r < rows; r++)
        tile_row_body(s + (size_t)r * ld, valid[r], n, m + r, l + r, o + (size_t)r * dh, dh);
}

#ifndef HL_PF_KEYS
/// Rows ahead that the decoding attention prefetches (software prefetch: the hardware prefetcher
/// does not follow the KV cache's strided rows well; measured on Zen 4, bench/README.md).
#define HL_PF_KEYS 16
#endif

/// Prefetches the n floats at p (a cache line at a time) for reading.
HL_INLINE void prefetch_row(const float *p, int n) {
    for (int c = 0; c < n; c += 16) __builtin_prefetch(p + c, 0, 3);
}

/// Scaled scores of keys 0..<n (rows `stride` floats apart) for the G query heads q [G, dh]:
/// sc[h * ld + i] = scale * (q_h . k_i). Four keys at a time (dh % 16 == 0), four dot products per
/// head reduced together; the rest one at a time. `pf` as in decode_group_body. Shared by the
/// Float32 and binary16 decoding bodies (the latter on its widened blocks), so both sum alike.
HL_INLINE void group_scores_body(const float *q, const float *k, int n, int stride, int dh, int G, float scale,
                                 float *sc, int ld, int pf) {
    int i = 0;
    if ((dh & 15) == 0) {
        for (; i + 4 <= n; i += 4) {
            const float *k0 = k + (size_t)i * stride, *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;
            if (pf > 0 && i + HL_PF_KEYS + 4 <= n)
                for (int r = 0; r < 4; r++) prefetch_row(k0 + (size_t)(HL_PF_KEYS + r) * stride, pf);
            for (int h = 0; h < G; h++) {
                const float *qh = q + (size_t)h * dh;
                v16f a0 = splat(0), a1 = a0, a2 = a0, a3 = a0;
                for (int c = 0; c < dh; c += 16) {
                    v16f qv = ld16f(qh + c);
                    a0 += qv * ld16f(k0 + c);
                    a1 += qv * ld16f(k1 + c);
                    a2 += qv * ld16f(k2 + c);
                    a3 += qv * ld16f(k3 + c);
                }
                v4f r = hsum4(a0, a1, a2, a3) * scale;
                memcpy(sc + (size_t)h * ld + i, &r, sizeof r);
            }
        }
    }
    for (; i < n; i++) {
        const float *kr = k + (size_t)i * stride;
        for (int h = 0; h < G; h++) {
            const float *qh = q + (size_t)h * dh;
            float acc = 0;
            for (int c = 0; c < dh; c++) acc += qh[c] * kr[c];
            sc[(size_t)h * ld + i] = acc * scale;
        }
    }
}

/// Value accumulation of decoding: over rows j < n of v (`stride` floats apart, 16 * NV floats
/// each), a[c] += p[j] v_j[c] for even j and b[c] += p[j] v_j[c] for odd j, the last odd row into
/// a. NV is a constant at the call sites that matter (pv_dispatch), so the 2 * NV accumulators
/// live in registers across the loop instead of memory. `pf` as in decode_group_body.
HL_INLINE void pv_body(const int NV, const float *p, const float *v, int n, int stride, v16f *a, v16f *b, int pf) {
    v16f ra[8], rb[8];
    for (int c = 0; c < NV; c++) { ra[c] = a[c]; rb[c] = b[c]; }
    int j = 0;
    for (; j + 2 <= n; j += 2) {
        const float *v0 = v + (size_t)j * stride, *v1 = v0 + stride;
        if (pf > 0 && j + HL_PF_KEYS + 2 <= n) {
            prefetch_row(v0 + (size_t)HL_PF_KEYS * stride, pf);
            prefetch_row(v1 + (size_t)HL_PF_KEYS * stride, pf);
        }
        v16f p0 = splat(p[j]), p1 = splat(p[j + 1]);
        for (int c = 0; c < NV; c++) {
            ra[c] += p0 * ld16f(v0 + 16 * c);
            rb[c] += p1 * ld16f(v1 + 16 * c);
        }
    }
    for (; j < n; j++) {
        const float *v0 = v + (size_t)j * stride;
        v16f p0 = splat(p[j]);
        for (int c = 0; c < NV; c++) ra[c] += p0 * ld16f(v0 + 16 * c);
    }
    for (int c = 0; c < NV; c++) { a[c] = ra[c]; b[c] = rb[c]; }
}

/// pv_body with NV = nv (1 ... 8), instantiated for the common head sizes 64 and 128.
HL_INLINE void pv_dispatch(int nv, const float *p, const float *v, int n, int stride, v16f *a, v16f *b, int pf) {
    switch (nv) {
    case 4: pv_body(4, p, v, n, stride, a, b, pf); break;
    case 8: pv_body(8, p, v, n, stride, a, b, pf); break;
    default: pv_body(nv, p, v, n, stride, a, b, pf); break;
    }
}

/// Decoding, one KV head and a range of n keys: the G query heads sharing it (q [G, dh],
/// contiguous) against keys/values k, v (rows `stride` floats apart). Writes per head the
/// partial softmax state: part[h] = {max, sum of exp, o[dh] = sum exp(score - max) * v}.
/// Each key and value row is loaded once for all G heads. `pf` > 0: floats of every key and value
/// row to prefetch HL_PF_KEYS rows ahead (the whole row when the caller runs every KV group of a
/// key range in turn: the first group streams the rows in, the others find them in cache).
HL_INLINE void decode_group_body(const float *q, const float *k, const float *v, int n, int stride, int dh,
                                 int G, float scale, float *scores, float *part, int pf) {
    const int vec = (dh & 15) == 0;
    group_scores_body(q, k, n, stride, dh, G, scale, scores, n, pf);
    for (int h = 0; h < G; h++) {
        float *sc = scores + (size_t)h * n, *ph = part + (size_t)h * (dh + 2);
        float m = max_body(sc, n);
        ph[0] = m;
        ph[1] = expsum_body(sc, n, m);
        float *o = ph + 2;
        if (vec) {
            // Columns in chunks of at most 128 (8 vectors of accumulators; Gemma's 256 in two).
            for (int c0 = 0; c0 < dh; c0 += 128) {
                v16f a[8], b[8];
                int nv = (dh - c0 < 128 ? dh - c0 : 128) / 16;
                for (int c = 0; c < nv; c++) { a[c] = splat(0); b[c] = splat(0); }
                pv_dispatch(nv, sc, v + c0, n, stride, a, b, h == 0 && c0 == 0 ? pf : 0);
                for (int c = 0; c < nv; c++) st16f(o + c0 + 16 * c, a[c] + b[c]);
            }
        } else {
            for (int d = 0; d < dh; d++) o[d] = 0;
            for (int j = 0; j < n; j++) {
                const float *vr = v + (size_t)j * stride;
                float pj = sc[j];
                for (int d = 0; d < dh; d++) o[d] += pj * vr[d];
            }
        }
    }
}

// MARK: - Attention over an IEEE binary16 KV cache
//
// K and V rows stored as binary16 (hl_f32_to_f16) are widened to Float32 a block at a time
// (exact: every half is a float) and then used with exactly the arithmetic of the Float32 bodies
// above, so an f16 kernel gives bit for bit what the Float32 kernel of the same level gives on
// the widened cache (KernelTests checks this). Widening: vcvtph2ps (AVX-512, AVX2+F16C), fcvtl
// (NEON), integer rebiasing (generic); narrowing rounds to nearest even (vcvtps2ph imm 0,
// fcvtn, f2h_rne).

/// Keys per block of decode_group_f16_body (a multiple of 4, so blocks keep the 4-key groups and
/// value pairs of decode_group_body).
#define HL_KV16_BLOCK 32

typedef v16f (*ld16h_fn)(const uint16_t *);
typedef uint16_t v16s __attribute__((vector_size(32)));

/// 16 binary16 values -> Float32, portable (exact for every input, as h2f_portable).
HL_INLINE v16f ld16h_portable(const uint16_t *p) {
    v16s h;
    memcpy(&h, p, sizeof h);
    v16u u = __builtin_convertvector(h, v16u);
    v16u e = u & 0x7fff;
    v16u bits = (v16u)((v16f)(e << 13) * 0x1p112f);       // rebias: exact for normal and subnormal halves
    v16u special = (v16u)(e >= 0x7c00);                    // Inf / NaN (payload kept)
    bits = (bits & ~special) | (((e << 13) | 0x7f800000) & special);
    return (v16f)(bits | ((u & 0x8000) << 16));
}

/// Float32 -> binary16, round to nearest even (overflow to Inf, NaN kept quiet with its top
/// payload bits, as vcvtps2ph).
static inline uint16_t f2h_rne(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffff;
    if (ax > 0x7f800000) return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x1ff));
    if (ax >= 0x477ff000) return (uint16_t)(sign | 0x7c00);       // >= 65520 (and Inf): Inf
    if (ax >= 0x38800000) {                                        // normal half (>= 2^-14)
        uint32_t r = ax - 0x38000000;                              // exponent rebiased 127 -> 15
        r += 0x0fff + ((r >> 13) & 1);                             // round the 13 dropped bits to even
        return (uint16_t)(sign | (r >> 13));
    }
    float a;                                                       // subnormal half or zero: units of 2^-24
    memcpy(&a, &ax, 4);
    float m = (a * 0x1p24f + 0x1p23f) - 0x1p23f;                   // exact scaling, then round to even
    return (uint16_t)(sign | (uint32_t)m);
}

/// dst[r, 0..<dh] = Float32(src[r * stride + 0..<dh]) for r < n (dst rows contiguous).
HL_INLINE void widen_rows_body(ld16h_fn LD, const uint16_t *src, size_t stride, int n, int dh, float *dst) {
    for (int r = 0; r < n; r++) {
        const uint16_t *s = src + (size_t)r * stride;
        float *d = dst + (size_t)r * dh;
        int c = 0;
        for (; c + 16 <= dh; c += 16) st16f(d + c, LD(s + c));
        if (c < dh) {
            uint16_t tmp[16] = {0};
            memcpy(tmp, s + c, (size_t)(dh - c) * 2);
            v16f x = LD(tmp);
            memcpy(d + c, &x, (size_t)(dh - c) * 4);
        }
    }
}

HL_INLINE void widen_body(ld16h_fn LD, const uint16_t *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) st16f(y + i, LD(x + i));
    if (i < n) {
        uint16_t tmp[16] = {0};
        memcpy(tmp, x + i, (n - i) * 2);
        v16f v = LD(tmp);
        memcpy(y + i, &v, (n - i) * 4);
    }
}

/// decode_group_body over binary16 keys/values (rows `stride` halves apart), a block of
/// HL_KV16_BLOCK rows widened at a time into buf. Same operations in the same order as
/// decode_group_body, so the result equals decode_group_body on the widened rows bit for bit.
/// buf: [HL_KV16_BLOCK, dh] widened rows | [G, 2, dh] the value accumulators of every head.
HL_INLINE void decode_group_f16_body(ld16h_fn LD, const float *q, const uint16_t *k, const uint16_t *v, int n,
                                     int stride, int dh, int G, float scale, float *scores, float *part,
                                     float *buf) {
    const int vec = (dh & 15) == 0;
    float *rows = buf, *acc = buf + (size_t)HL_KV16_BLOCK * dh; // rows [B, dh], acc [G, 2, dh]
    for (int b0 = 0; b0 < n; b0 += HL_KV16_BLOCK) {
        int nb = n - b0 < HL_KV16_BLOCK ? n - b0 : HL_KV16_BLOCK;
        widen_rows_body(LD, k + (size_t)b0 * stride, (size_t)stride, nb, dh, rows);
        group_scores_body(q, rows, nb, dh, dh, G, scale, scores + b0, n, 0);
    }
    for (int h = 0; h < G; h++) {
        float *sc = scores + (size_t)h * n, *ph = part + (size_t)h * (dh + 2);
        float m = max_body(sc, n);
        ph[0] = m;
        ph[1] = expsum_body(sc, n, m);
    }
    const int wide = vec;
    if (wide) memset(acc, 0, (size_t)G * 2 * dh * 4);
    else for (int h = 0; h < G; h++) memset(part + (size_t)h * (dh + 2) + 2, 0, (size_t)dh * 4);
    for (int b0 = 0; b0 < n; b0 += HL_KV16_BLOCK) {
        int nb = n - b0 < HL_KV16_BLOCK ? n - b0 : HL_KV16_BLOCK;
        widen_rows_body(LD, v + (size_t)b0 * stride, (size_t)stride, nb, dh, rows);
        for (int h = 0; h < G; h++) {
            const float *sc = scores + (size_t)h * n + b0;
            if (wide) {
                float *ah = acc + (size_t)h * 2 * dh, *bh = ah + dh;
                for (int c0 = 0; c0 < dh; c0 += 128) {   // chunks as in decode_group_body
                    v16f a[8], b[8];
                    int nv = (dh - c0 < 128 ? dh - c0 : 128) / 16;
                    for (int c = 0; c < nv; c++) { a[c] = ld16f(ah + c0 + 16 * c); b[c] = ld16f(bh + c0 + 16 * c); }
                    pv_dispatch(nv, sc, rows + c0, nb, dh, a, b, 0);
                    for (int c = 0; c < nv; c++) { st16f(ah + c0 + 16 * c, a[c]); st16f(bh + c0 + 16 * c, b[c]); }
                }
            } else {
                float *o = part + (size_t)h * (dh + 2) + 2;
                for (int j = 0; j < nb; j++) {
                    const float *vr = rows + (size_t)j * dh;
                    float pj = sc[j];
                    for (int d = 0; d < dh; d++) o[d] += pj * vr[d];
                }
            }
        }
    }
    if (wide) {
        for (int h = 0; h < G; h++) {
            const float *ah = acc + (size_t)h * 2 * dh, *bh = ah + dh;
            float *o = part + (size_t)h * (dh + 2) + 2;
            for (int c = 0; c < dh; c += 16) st16f(o + c, ld16f(ah + c) + ld16f(bh + c));
        }
    }
}

#if HL_X86
HL_TARGET_AVX2 HL_INLINE v16f ld16h_f16c(const uint16_t *p) {
    __m256 a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    __m256 b = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 8)));
    return __builtin_shufflevector((v8f)a, (v8f)b, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
HL_TARGET_AVX512 HL_INLINE v16f ld16h_avx512(const uint16_t *p) {
    return (v16f)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
HL_TARGET_AVX2 static void narrow_avx2(const float *x, uint16_t *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) y[i] = f2h_rne(x[i]);
}
HL_TARGET_AVX512 static void narrow_avx512(const float *x, uint16_t *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) y[i] = f2h_rne(x[i]);
}
#endif
#if HL_ARM
HL_INLINE v16f ld16h_neon(const uint16_t *p) {
    float16x8_t a = vreinterpretq_f16_u16(vld1q_u16(p)), b = vreinterpretq_f16_u16(vld1q_u16(p + 8));
    float32x4_t r[4] = {vcvt_f32_f16(vget_low_f16(a)), vcvt_high_f32_f16(a), vcvt_f32_f16(vget_low_f16(b)),
                        vcvt_high_f32_f16(b)};
    v16f v;
    memcpy(&v, r, sizeof v);
    return v;
}
static void narrow_neon(const float *x, uint16_t *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float16x8_t h = vcvt_high_f16_f32(vcvt_f16_f32(vld1q_f32(x + i)), vld1q_f32(x + i + 4));
        vst1q_u16(y + i, vreinterpretq_u16_f16(h));
    }
    for (; i < n; i++) y[i] = f2h_rne(x[i]);
}
#endif
static void narrow_generic(const float *x, uint16_t *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = f2h_rne(x[i]);
}

// MARK: - AVX-512 matrix-vector kernels for the 32-weight formats

#if HL_X86
/// Rows r0..<r1 of a Q4_0 / Q4_1 / Q8_0 matrix times one activation row. Four rows at a time,
/// separate accumulators for the two halves of each block (eight independent FMA chains).
/// Q4_x: the block's 16 possible weights fl(fl(k*d)+m) (Q4_1) or fl((k-8)*d) (Q4_0) are built in
/// one register and indexed with vpermps by the nibbles (the low 4 bits of each 32-bit lane).
HL_TARGET_AVX512 HL_INLINE __m512 q4_table(const int type, const uint8_t *blk, __m512 iota, __m512 iota8) {
    __m512 d = _mm512_set1_ps(h2f_f16c(blk));
    if (type == HL_Q4_1) {
        __m512 m = _mm512_set1_ps(h2f_f16c(blk + 2));
        return _mm512_add_ps(_mm512_mul_ps(iota, d), m);
    }
    return _mm512_mul_ps(iota8, d);
}

/// The 32 weights of one Q4_0 / Q4_1 / Q8_0 block as float32: weights 0-15 in *wl, 16-31 in *wh
/// (Q4_x: low nibbles then high nibbles; `qo` is the offset of the quants in the block).
HL_TARGET_AVX512 HL_INLINE void q32_block(const int type, const uint8_t *blk, const int qo, __m512 iota, __m512 iota8,
                                          __m512 *wl, __m512 *wh) {
    if (type == HL_Q8_0) {
        __m512 d = _mm512_set1_ps(h2f_f16c(blk));
        *wl = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2)))), d);
        *wh = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18)))), d);
    } else {
        __m512 tab = q4_table(type, blk, iota, iota8);
        __m512i qi = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + qo)));
        *wl = _mm512_permutexvar_ps(qi, tab);
        *wh = _mm512_permutexvar_ps(_mm512_srli_epi32(qi, 4), tab);
    }
}

/// AVX2 (+FMA, F16C) float path of the decoding product for Q4_0 / Q4_1 / Q8_0, the counterpart of
/// q32_block for CPUs without AVX-512 (Zen 1-3, most laptops): nibbles or bytes widened to
/// 8 int32 lanes, converted and scaled. The values equal dec32's (same operations: (q - 8) * d, or
/// q * d then + m, never fused), so only the summation order differs from the other levels.
HL_TARGET_AVX2 HL_INLINE void q32_block_avx2(const int type, const uint8_t *blk, const int qo, __m256 w[4]) {
    if (type == HL_Q8_0) {
        __m256 d = _mm256_set1_ps(h2f_f16c(blk));
        for (int k = 0; k < 4; k++) {
            __m128i q = _mm_loadl_epi64((const __m128i *)(blk + 2 + 8 * k));
            w[k] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d);
        }
        return;
    }
    __m256 d = _mm256_set1_ps(h2f_f16c(blk));
    __m128i qs = _mm_loadu_si128((const __m128i *)(blk + qo)), m15 = _mm_set1_epi8(15);
    __m128i lo = _mm_and_si128(qs, m15), hi = _mm_and_si128(_mm_srli_epi16(qs, 4), m15);
    __m128i q[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    if (type == HL_Q4_1) {
        __m256 m = _mm256_set1_ps(h2f_f16c(blk + 2));
        for (int k = 0; k < 4; k++)
            w[k] = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q[k])), d), m);
    } else {
        const __m256 eight = _mm256_set1_ps(8);
        for (int k = 0; k < 4; k++)
            w[k] = _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q[k])), eight), d);
    }
}

HL_TARGET_AVX2 HL_INLINE float hsum8_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// Decoding products on AVX2 (hl_qmatmul with t == 1 is this with T = 1; hl_qmatmul_rows): rows r..<r+R of a Q4_0 / Q4_1 / Q8_0 matrix times the
/// T activation rows at x (`xs` floats apart), each weight block decoded once for the T rows; every
/// (row, activation) pair has the same arithmetic (accumulators a, c over the blocks in order, fused
/// multiply-adds w0 x0 -> a, w1 x1 -> c, w2 x2 -> a, w3 x3 -> c, then hsum8(a + c)) whatever T is,
/// so a batched row is bit for bit the one-row product. R, T <= 2 (16 ymm registers).
HL_TARGET_AVX2 HL_INLINE void q32_tile_avx2(const int type, const int R, const int T, const uint8_t *w, size_t rb,
                                            int r, int nb, const float *x, size_t xs, float *y, size_t ys,
                                            const uint8_t *end) {
    const int bb = type == HL_Q4_0 ? 18 : type == HL_Q4_1 ? 20 : 34;
    const int qo = type == HL_Q4_1 ? 4 : 2;
    __m256 a[2][2], c[2][2]; // [R, T]
    for (int j = 0; j < R; j++)
        for (int i = 0; i < T; i++) { a[j][i] = _mm256_setzero_ps(); c[j][i] = _mm256_setzero_ps(); }
    const uint8_t *row = w + (size_t)r * rb;
    for (int b = 0; b < nb; b++) {
        if (R == 2) hl_prefetch_rows(row, rb, bb, b, end);
        for (int j = 0; j < R; j++) {
            __m256 wv[4];
            q32_block_avx2(type, row + (size_t)j * rb + (size_t)b * bb, qo, wv);
            for (int i = 0; i < T; i++) {
                const float *xb = x + (size_t)i * xs + 32 * b;
                a[j][i] = _mm256_fmadd_ps(wv[0], _mm256_loadu_ps(xb), a[j][i]);
                c[j][i] = _mm256_fmadd_ps(wv[1], _mm256_loadu_ps(xb + 8), c[j][i]);
                a[j][i] = _mm256_fmadd_ps(wv[2], _mm256_loadu_ps(xb + 16), a[j][i]);
                c[j][i] = _mm256_fmadd_ps(wv[3], _mm256_loadu_ps(xb + 24), c[j][i]);
            }
        }
    }
    for (int j = 0; j < R; j++)
        for (int i = 0; i < T; i++) y[(size_t)i * ys + r + j] = hsum8_avx2(_mm256_add_ps(a[j][i], c[j][i]));
}

/// Rows r0..<r1 times t activation rows, as q32_tile_avx2: pairs of weight rows, each applied to
/// the activations two at a time (the pair's blocks stay in L1 between the passes).
HL_TARGET_AVX2 HL_INLINE void q32_rows_batch_avx2(const int type, const uint8_t *w, size_t rb, int r0, int r1,
                                                  int nb, const float *x, size_t xs, int t, float *y, size_t ys) {
    const uint8_t *end = w + (size_t)r1 * rb;
    int r = r0;
    for (; r + 2 <= r1; r += 2) {
        int i = 0;
        for (; i + 2 <= t; i += 2)
            q32_tile_avx2(type, 2, 2, w, rb, r, nb, x + (size_t)i * xs, xs, y + (size_t)i * ys, ys, end);
        if (i < t) q32_tile_avx2(type, 2, 1, w, rb, r, nb, x + (size_t)i * xs, xs, y + (size_t)i * ys, ys, end);
    }
    for (; r < r1; r++) {
        int i = 0;
        for (; i + 2 <= t; i += 2)
            q32_tile_avx2(type, 1, 2, w, rb, r, nb, x + (size_t)i * xs, xs, y + (size_t)i * ys, ys, end);
        if (i < t) q32_tile_avx2(type, 1, 1, w, rb, r, nb, x + (size_t)i * xs, xs, y + (size_t)i * ys, ys, end);
    }
}

#endif

#if HL_X86
/// Decoding products on AVX-512 (hl_qmatmul with t == 1 is this with T = 1; hl_qmatmul_rows): rows
/// r..<r+R of a Q4_0 / Q4_1 / Q8_0 matrix times the T activation rows at x (`xs` floats apart).
/// Each weight block is decoded once and applied to the T rows; every (row, activation) pair has
/// the same arithmetic whatever T is (two accumulators per row over the blocks in order, one fused
/// multiply-add each, then reduce(al + ah)), so a batched row is bit for bit the one-row product.
HL_TARGET_AVX512 HL_INLINE void q32_tile_avx512(const int type, const int R, const int T, const uint8_t *w,
                                                size_t rb, int r, int nb, const float *x, size_t xs, float *y,
                                                size_t ys, const uint8_t *end) {
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 iota8 = _mm512_sub_ps(iota, _mm512_set1_ps(8));
    const int bb = type == HL_Q4_0 ? 18 : type == HL_Q4_1 ? 20 : 34;
    const int qo = type == HL_Q4_1 ? 4 : 2;
    __m512 al[4][2], ah[4][2]; // [R, T] accumulators (R <= 4, T <= 2)
    for (int j = 0; j < R; j++)
        for (int i = 0; i < T; i++) { al[j][i] = _mm512_setzero_ps(); ah[j][i] = _mm512_setzero_ps(); }
    const uint8_t *row = w + (size_t)r * rb;
    for (int b = 0; b < nb; b++) {
        if (R == 4) hl_prefetch_rows(row, rb, bb, b, end);
        __m512 xl[2], xh[2];
        for (int i = 0; i < T; i++) {
            xl[i] = _mm512_loadu_ps(x + (size_t)i * xs + 32 * b);
            xh[i] = _mm512_loadu_ps(x + (size_t)i * xs + 32 * b + 16);
        }
        for (int j = 0; j < R; j++) {
            __m512 wl, wh;
            q32_block(type, row + (size_t)j * rb + (size_t)b * bb, qo, iota, iota8, &wl, &wh);
            for (int i = 0; i < T; i++) {
                al[j][i] = _mm512_fmadd_ps(wl, xl[i], al[j][i]);
                ah[j][i] = _mm512_fmadd_ps(wh, xh[i], ah[j][i]);
            }
        }
    }
    for (int j = 0; j < R; j++)
        for (int i = 0; i < T; i++)
            y[(size_t)i * ys + r + j] = _mm512_reduce_add_ps(_mm512_add_ps(al[j][i], ah[j][i]));
}

/// Rows r0..<r1 times t activation rows, as q32_tile_avx512: groups of 4 weight rows, each applied
/// to the activations two at a time (the group's blocks stay in L1 between the passes).
HL_TARGET_AVX512 HL_INLINE void q32_rows_batch_avx512(const int type, const uint8_t *w, size_t rb, int r0, int r1,
                                                      int nb, const float *x, size_t xs, int t, float *y,
                                                      size_t ys) {
    const uint8_t *end = w + (size_t)r1 * rb;
    int r = r0;
    for (; r + 4 <= r1; r += 4) {
        int i = 0;
        for (; i + 2 <= t; i += 2)
            q32_tile_avx512(type, 4, 2, w, rb, r, nb, x + (size_t)i * xs, xs, y + (size_t)i * ys, ys, end);
        if (i < t) q32_tile_avx512(type, 4, 1, w, rb, r, nb, x + (size_t)i * xs, xs, y + (size_t)i * ys, ys, end);
    }
    for (; r < r1; r++) {
        int i = 0;
        for (; i + 2 <= t; i += 2)
            q32_tile_avx512(type, 1, 2, w, rb, r, nb, x + (size_t)i * xs, xs, y + (size_t)i * ys, ys, end);
        if (i < t) q32_tile_avx512(type, 1, 1, w, rb, r, nb, x + (size_t)i * xs, xs, y + (size_t)i * ys, ys, end);
    }
}
#endif

// MARK: - Instantiations per level

typedef struct {
    void (*qmm)(int type, const uint8_t *w, size_t rb, int r0, int r1, int cols, const float *x, size_t xs, int t,
                float *y, size_t ys);
    hl_q8_rows_fn q8rows;
    void (*softmax)(float *x, int n);
    void (*exp)(const float *x, float *y, size_t n);
    void (*rmsnorm)(const float *x, int rows, int d, const float *w, float eps, float *y);
    void (*swiglu)(float *g, const float *u, size_t n);
    void (*add)(float *y, const float *x, size_t n);
    void (*tile_rows)(float *s, int ld, int rows, int n, const int *valid, float *m, float *l, float *o, int dh);
    void (*decode_group)(const float *q, const float *k, const float *v, int n, int stride, int dh, int G,
                         float scale, float *scores, float *part, int pf);
} hl_impl;

#define HL_DEFINE_LEVEL(SUF, TGT, H2F)                                                                          \
    TGT static void softmax_##SUF(float *x, int n) { softmax_body(x, n); }                                     \
    TGT static void exp_##SUF(const float *x, float *y, size_t n) { exp_body(x, y, n); }                       \
    TGT static void rmsnorm_##SUF(const float *x, int rows, int d, const float *w, float eps, float *y) {      \
        rmsnorm_body(x, rows, d, w, eps, y);                                                                   \
    }                                                                                                          \
    TGT static void swiglu_##SUF(float *g, const float *u, size_t n) { swiglu_body(g, u, n); }                 \
    TGT static void add_##SUF(float *y, const float *x, size_t n) { add_body(y, x, n); }                       \
    TGT static void tile_rows_##SUF(float *s, int ld, int rows, int n, const int *valid, float *m, float *l,   \
                                    float *o, int dh) {                                                        \
        tile_rows_body(s, ld, rows, n, valid, m, l, o, dh);                                                    \
    }                                                                                                          \
    TGT static void decode_group_##SUF(const float *q, const float *k, const float *v, int n, int stride,      \
                                       int dh, int G, float scale, float *scores, float *part, int pf) {       \
        decode_group_body(q, k, v, n, stride, dh, G, scale, scores, part, pf);                                 \
    }                                                                                                          \
    TGT static void qmm_generic_##SUF(int type, const uint8_t *w, size_t rb, int r0, int r1, int cols,         \
                                      const float *x, size_t xs, int t, float *y, size_t ys) {                 \
        qmm_body(type, H2F, w, rb, r0, r1, cols, x, xs, t, y, ys);                                             \
    }

HL_DEFINE_LEVEL(scalar, , h2f_portable)
#if HL_X86
HL_DEFINE_LEVEL(avx2, HL_TARGET_AVX2, h2f_f16c)
HL_DEFINE_LEVEL(avx512, HL_TARGET_AVX512, h2f_f16c)

HL_TARGET_AVX2 static void qmm_avx2(int type, const uint8_t *w, size_t rb, int r0, int r1, int cols, const float *x,
                                    size_t xs, int t, float *y, size_t ys) {
    if (t == 1) {
        switch (type) {
        case HL_Q4_0: q32_rows_batch_avx2(HL_Q4_0, w, rb, r0, r1, cols / 32, x, 0, 1, y, 1); return;
        case HL_Q4_1: q32_rows_batch_avx2(HL_Q4_1, w, rb, r0, r1, cols / 32, x, 0, 1, y, 1); return;
        case HL_Q8_0: q32_rows_batch_avx2(HL_Q8_0, w, rb, r0, r1, cols / 32, x, 0, 1, y, 1); return;
        default: break;
        }
    }
    qmm_generic_avx2(type, w, rb, r0, r1, cols, x, xs, t, y, ys);
}

HL_TARGET_AVX512 static void qmm_avx512(int type, const uint8_t *w, size_t rb, int r0, int r1, int cols,
                                        const float *x, size_t xs, int t, float *y, size_t ys) {
    if (t == 1) {
        switch (type) {
        case HL_Q4_0: q32_rows_batch_avx512(HL_Q4_0, w, rb, r0, r1, cols / 32, x, 0, 1, y, 1); return;
        case HL_Q4_1: q32_rows_batch_avx512(HL_Q4_1, w, rb, r0, r1, cols / 32, x, 0, 1, y, 1); return;
        case HL_Q8_0: q32_rows_batch_avx512(HL_Q8_0, w, rb, r0, r1, cols / 32, x, 0, 1, y, 1); return;
        default: break;
        }
    }
    qmm_generic_avx512(type, w, rb, r0, r1, cols, x, xs, t, y, ys);
}
#endif
#if HL_ARM
HL_DEFINE_LEVEL(neon, , h2f_arm)
#endif

#define HL_IMPL(QMM, Q8, SUF)                                                                                  \
    {QMM, Q8, softmax_##SUF, exp_##SUF, rmsnorm_##SUF, swiglu_##SUF, add_##SUF, tile_rows_##SUF,             \
     decode_group_##SUF}

/// Indexed by level id; entries of levels this build cannot support are never selected.
static const hl_impl impls[HL_KERNELS_LEVELS] = {
    [HL_KERNELS_GENERIC] = HL_IMPL(qmm_generic_scalar, hl_q8_rows_generic, scalar),
#if HL_X86
    [HL_KERNELS_AVX2] = HL_IMPL(qmm_avx2, hl_q8_rows_avx2, avx2),
    [HL_KERNELS_AVX2_VNNI] = HL_IMPL(qmm_avx2, hl_q8_rows_avx2vnni, avx2),
    // AVX-512 without VNNI: the AVX2 integer kernel (vpmaddubsw) with the AVX-512 float kernels.
    [HL_KERNELS_AVX512] = HL_IMPL(qmm_avx512, hl_q8_rows_avx2, avx512),
    [HL_KERNELS_AVX512_VNNI] = HL_IMPL(qmm_avx512, hl_q8_rows_avx512vnni, avx512),
    [HL_KERNELS_NEON] = HL_IMPL(qmm_generic_scalar, hl_q8_rows_generic, scalar),
    [HL_KERNELS_NEON_DOTPROD] = HL_IMPL(qmm_generic_scalar, hl_q8_rows_generic, scalar),
#elif HL_ARM
    [HL_KERNELS_NEON] = HL_IMPL(qmm_generic_neon, hl_q8_rows_neon, neon),
    [HL_KERNELS_NEON_DOTPROD] = HL_IMPL(qmm_generic_neon, hl_q8_rows_neondot, neon),
    [HL_KERNELS_AVX2] = HL_IMPL(qmm_generic_scalar, hl_q8_rows_generic, scalar),
    [HL_KERNELS_AVX2_VNNI] = HL_IMPL(qmm_generic_scalar, hl_q8_rows_generic, scalar),
    [HL_KERNELS_AVX512] = HL_IMPL(qmm_generic_scalar, hl_q8_rows_generic, scalar),
    [HL_KERNELS_AVX512_VNNI] = HL_IMPL(qmm_generic_scalar, hl_q8_rows_generic, scalar),
#else
    [HL_KERNELS_AVX2] = HL_IMPL(qmm_generic_scalar, hl_q8_rows_generic, scalar),
    [HL_KERNELS_AVX2_VNNI] = HL_IMPL(qmm_generic_scalar, hl_q8_rows_generic, scalar),
    [HL_KERNELS_AVX512] = HL_IMPL(qmm_generic_scalar, hl_q8_rows_generic, scalar),
    [HL_KERNELS_AVX512_VNNI] = HL_IMPL(qmm_generic_scalar, hl_q8_rows_generic, scalar),
    [HL_KERNELS_NEON] = HL_IMPL(qmm_generic_scalar, hl_q8_rows_generic, scalar),
    [HL_KERNELS_NEON_DOTPROD] = HL_IMPL(qmm_generic_scalar, hl_q8_rows_generic, scalar),
#endif
};

/// The binary16 KV-cache kernels of one level (a separate table from hl_impl: see the MARK
/// "Attention over an IEEE binary16 KV cache").
typedef struct {
    void (*widen_rows)(const uint16_t *src, size_t stride, int n, int dh, float *dst);
    void (*widen)(const uint16_t *x, float *y, size_t n);
    void (*narrow)(const float *x, uint16_t *y, size_t n);
    void (*decode_group)(const float *q, const uint16_t *k, const uint16_t *v, int n, int stride, int dh, int G,
                         float scale, float *scores, float *part, float *buf);
} hl_kv16_impl;

#define HL_DEFINE_KV16(SUF, TGT, LD)                                                                           \
    TGT static void kv16_widen_rows_##SUF(const uint16_t *src, size_t stride, int n, int dh, float *dst) {     \
        widen_rows_body(LD, src, stride, n, dh, dst);                                                          \
    }                                                                                                          \
    TGT static void kv16_widen_##SUF(const uint16_t *x, float *y, size_t n) { widen_body(LD, x, y, n); }       \
    TGT static void kv16_decode_##SUF(const float *q, const uint16_t *k, const uint16_t *v, int n, int stride, \
                                      int dh, int G, float scale, float *scores, float *part, float *buf) {   \
        decode_group_f16_body(LD, q, k, v, n, stride, dh, G, scale, scores, part, buf);                        \
    }

HL_DEFINE_KV16(generic, , ld16h_portable)
#define HL_KV16_GENERIC {kv16_widen_rows_generic, kv16_widen_generic, narrow_generic, kv16_decode_generic}
#if HL_X86
HL_DEFINE_KV16(avx2, HL_TARGET_AVX2, ld16h_f16c)
HL_DEFINE_KV16(avx512, HL_TARGET_AVX512, ld16h_avx512)
#define HL_KV16_AVX2 {kv16_widen_rows_avx2, kv16_widen_avx2, narrow_avx2, kv16_decode_avx2}
#define HL_KV16_AVX512 {kv16_widen_rows_avx512, kv16_widen_avx512, narrow_avx512, kv16_decode_avx512}
#else
#define HL_KV16_AVX2 HL_KV16_GENERIC
#define HL_KV16_AVX512 HL_KV16_GENERIC
#endif
#if HL_ARM
HL_DEFINE_KV16(neon, , ld16h_neon)
#define HL_KV16_NEON {kv16_widen_rows_neon, kv16_widen_neon, narrow_neon, kv16_decode_neon}
#else
#define HL_KV16_NEON HL_KV16_GENERIC
#endif

/// Indexed by level id, as impls.
static const hl_kv16_impl kv16_impls[HL_KERNELS_LEVELS] = {
    [HL_KERNELS_GENERIC] = HL_KV16_GENERIC,
    [HL_KERNELS_AVX2] = HL_KV16_AVX2,
    [HL_KERNELS_AVX2_VNNI] = HL_KV16_AVX2,
    [HL_KERNELS_AVX512] = HL_KV16_AVX512,
    [HL_KERNELS_AVX512_VNNI] = HL_KV16_AVX512,
    [HL_KERNELS_NEON] = HL_KV16_NEON,
    [HL_KERNELS_NEON_DOTPROD] = HL_KV16_NEON,
};

// MARK: - Level selection

static _Atomic int g_level = -1, g_supported = -1;

#if HL_X86
/// AVX-VNNI (VEX): cpuid leaf 7, subleaf 1, EAX bit 4.
static int cpu_has_avxvnni(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 4) & 1;
}
#endif

/// Bit set of the levels this CPU and OS support.
static int detect_supported(void) {
    int m = 1 << HL_KERNELS_GENERIC;
#if HL_X86
    hl_cpu_features f = hl_cpu_probe();
    int avx2 = f.avx2 && f.fma && f.f16c;
    int avx512 = avx2 && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl;
    if (avx2) m |= 1 << HL_KERNELS_AVX2;
    if (avx2 && cpu_has_avxvnni()) m |= 1 << HL_KERNELS_AVX2_VNNI;
    if (avx512) m |= 1 << HL_KERNELS_AVX512;
    if (avx512 && f.avx512_vnni) m |= 1 << HL_KERNELS_AVX512_VNNI;
#elif HL_ARM
#if defined(__linux__)
    unsigned long hw = getauxval(AT_HWCAP);
    if (hw & HWCAP_ASIMD) m |= 1 << HL_KERNELS_NEON;
    if ((hw & HWCAP_ASIMD) && (hw & HWCAP_ASIMDDP)) m |= 1 << HL_KERNELS_NEON_DOTPROD;
#elif defined(__APPLE__)
    m |= 1 << HL_KERNELS_NEON;
    int dp = 0;
    size_t len = sizeof dp;
    if (sysctlbyname("hw.optional.arm.FEAT_DotProd", &dp, &len, NULL, 0) == 0 && dp) m |= 1 << HL_KERNELS_NEON_DOTPROD;
#else
    m |= 1 << HL_KERNELS_NEON;
#endif
#endif
    return m;
}

static int supported_mask(void) {
    int m = atomic_load_explicit(&g_supported, memory_order_relaxed);
    if (m < 0) {
        m = detect_supported();
        atomic_store(&g_supported, m);
    }
    return m;
}

int hl_kernels_level_supported(int level) {
    return level >= 0 && level < HL_KERNELS_LEVELS && ((supported_mask() >> level) & 1);
}

/// The next level to try when `level` is unsupported.
static int level_fallback(int level) {
    switch (level) {
    case HL_KERNELS_AVX512_VNNI: return HL_KERNELS_AVX512;
    case HL_KERNELS_AVX512: return HL_KERNELS_AVX2;
    case HL_KERNELS_AVX2_VNNI: return HL_KERNELS_AVX2;
    case HL_KERNELS_NEON_DOTPROD: return HL_KERNELS_NEON;
    default: return HL_KERNELS_GENERIC;
    }
}

int hl_kernels_max_level(void) {
    static const int preference[] = {HL_KERNELS_AVX512_VNNI, HL_KERNELS_AVX512, HL_KERNELS_AVX2_VNNI,
                                     HL_KERNELS_AVX2, HL_KERNELS_NEON_DOTPROD, HL_KERNELS_NEON};
    for (size_t i = 0; i < sizeof preference / sizeof preference[0]; i++)
        if (hl_kernels_level_supported(preference[i])) return preference[i];
    return HL_KERNELS_GENERIC;
}

/// `level` if supported, else the first supported level of its fallback chain.
static int usable_level(int level) {
    if (level < 0 || level >= HL_KERNELS_LEVELS) level = hl_kernels_max_level();
    while (!hl_kernels_level_supported(level)) level = level_fallback(level);
    return level;
}

int hl_kernels_set_level(int level) {
    level = usable_level(level);
    atomic_store(&g_level, level);
    return level;
}

const char *hl_kernels_level_name(int level) {
    switch (level) {
    case HL_KERNELS_GENERIC: return "generic";
    case HL_KERNELS_AVX2: return "avx2";
    case HL_KERNELS_AVX2_VNNI: return "avx2-vnni";
    case HL_KERNELS_AVX512: return "avx512";
    case HL_KERNELS_AVX512_VNNI: return "avx512-vnni";
    case HL_KERNELS_NEON: return "neon";
    case HL_KERNELS_NEON_DOTPROD: return "neon-dotprod";
    default: return "?";
    }
}

int hl_kernels_level(void) {
    int l = atomic_load_explicit(&g_level, memory_order_relaxed);
    if (l < 0) {
        l = hl_kernels_max_level();
        const char *e = getenv("HEADLIGHT_KERNELS");
        if (e && *e) {
            int want = !strcmp(e, "scalar") ? HL_KERNELS_GENERIC : -1;
            for (int i = 0; i < HL_KERNELS_LEVELS && want < 0; i++)
                if (!strcmp(e, hl_kernels_level_name(i))) want = i;
            if (want >= 0) l = usable_level(want);
        }
        atomic_store(&g_level, l);
    }
    return l;
}

// MARK: - Batched decoding products (hl_qmatmul_rows)

/// A level's product of rows r0..<r1 with t activation rows whose every output equals the level's
/// t == 1 product of that activation row (see hl_qmatmul_rows).
typedef void (*qmm_rows_fn)(int type, const uint8_t *w, size_t rb, int r0, int r1, int cols, const float *x,
                            size_t xs, int t, float *y, size_t ys);

#if HL_X86
/// AVX-512: the t == 1 product of Q4_0 / Q4_1 / Q8_0 is q32_rows_batch_avx512 with t = 1, so
/// those types take it with every row; the other types take qmm_body, whose per-pair arithmetic does not depend on t.
HL_TARGET_AVX512 static void qmm_rows_avx512(int type, const uint8_t *w, size_t rb, int r0, int r1, int cols,
                                             const float *x, size_t xs, int t, float *y, size_t ys) {
    switch (type) {
    case HL_Q4_0: q32_rows_batch_avx512(HL_Q4_0, w, rb, r0, r1, cols / 32, x, xs, t, y, ys); return;
    case HL_Q4_1: q32_rows_batch_avx512(HL_Q4_1, w, rb, r0, r1, cols / 32, x, xs, t, y, ys); return;
    case HL_Q8_0: q32_rows_batch_avx512(HL_Q8_0, w, rb, r0, r1, cols / 32, x, xs, t, y, ys); return;
    default: qmm_generic_avx512(type, w, rb, r0, r1, cols, x, xs, t, y, ys); return;
    }
}

/// AVX2: likewise with q32_rows_batch_avx2, the t == 1 product of those types on AVX2.
HL_TARGET_AVX2 static void qmm_rows_avx2(int type, const uint8_t *w, size_t rb, int r0, int r1, int cols,
                                         const float *x, size_t xs, int t, float *y, size_t ys) {
    switch (type) {
    case HL_Q4_0: q32_rows_batch_avx2(HL_Q4_0, w, rb, r0, r1, cols / 32, x, xs, t, y, ys); return;
    case HL_Q4_1: q32_rows_batch_avx2(HL_Q4_1, w, rb, r0, r1, cols / 32, x, xs, t, y, ys); return;
    case HL_Q8_0: q32_rows_batch_avx2(HL_Q8_0, w, rb, r0, r1, cols / 32, x, xs, t, y, ys); return;
    default: qmm_generic_avx2(type, w, rb, r0, r1, cols, x, xs, t, y, ys); return;
    }
}
#endif

/// Indexed by level id, as `impls` (where the t == 1 product of the other types and levels is
/// qmm_body, which gives each (weight row, activation row) pair the same operations for every t:
/// qrows's per-pair arithmetic does not depend on R or T).
static const qmm_rows_fn qmm_rows_impls[HL_KERNELS_LEVELS] = {
    [HL_KERNELS_GENERIC] = qmm_generic_scalar,
#if HL_X86
    [HL_KERNELS_AVX2] = qmm_rows_avx2,
    [HL_KERNELS_AVX2_VNNI] = qmm_rows_avx2,
    [HL_KERNELS_AVX512] = qmm_rows_avx512,
    [HL_KERNELS_AVX512_VNNI] = qmm_rows_avx512,
    [HL_KERNELS_NEON] = qmm_generic_scalar,
    [HL_KERNELS_NEON_DOTPROD] = qmm_generic_scalar,
#elif HL_ARM
    [HL_KERNELS_NEON] = qmm_generic_neon,
    [HL_KERNELS_NEON_DOTPROD] = qmm_generic_neon,
    [HL_KERNELS_AVX2] = qmm_generic_scalar,
    [HL_KERNELS_AVX2_VNNI] = qmm_generic_scalar,
    [HL_KERNELS_AVX512] = qmm_generic_scalar,
    [HL_KERNELS_AVX512_VNNI] = qmm_generic_scalar,
#else
    [HL_KERNELS_AVX2] = qmm_generic_scalar,
    [HL_KERNELS_AVX2_VNNI] = qmm_generic_scalar,
    [HL_KERNELS_AVX512] = qmm_generic_scalar,
    [HL_KERNELS_AVX512_VNNI] = qmm_generic_scalar,
    [HL_KERNELS_NEON] = qmm_generic_scalar,
    [HL_KERNELS_NEON_DOTPROD] = qmm_generic_scalar,
#endif
};

// MARK: - Arithmetic of the quantized products

static _Atomic int g_qdot = -1;

/// -1: not yet read from HEADLIGHT_QDOT; else HL_QDOT_FLOAT / HL_QDOT_INT8 / HL_QDOT_INT16.
///
/// Default float: the int8 path is 1.7x (AVX-512) to 4x (AVX2) faster per product
/// (bench/kernels_bench.c) but quantizing the activations to 8 bits moves SmolLM2-135M's logits by
/// up to ~1.3 over 25 greedy steps and changes its greedy continuations (KernelTests, ForwardTests:
/// the fidelity bar is 1e-2 against transformers and identical continuations), so it is opt-in. The
/// int16 path (two int8 products per block, activations to 16 bits) is opt-in as well; its
/// measured distance from the float path is in KernelTests. On Gemma 3 270M Q4_K_M (Q4_K, Q6_K,
/// Q5_0, Q8_0 matrices) with every product through hl_qmatmul, int16 keeps the logits within 6e-3
/// of transformers and all three greedy continuations of Gemma3ForwardTests; int8 moves them by up
/// to 1.2 and changes all three.
int hl_qdot_mode(void) {
    int m = atomic_load_explicit(&g_qdot, memory_order_relaxed);
    if (m < 0) {
        const char *e = getenv("HEADLIGHT_QDOT");
        m = e && !strcmp(e, "int8") ? HL_QDOT_INT8 : e && !strcmp(e, "int16") ? HL_QDOT_INT16 : HL_QDOT_FLOAT;
        atomic_store(&g_qdot, m);
    }
    return m;
}

int hl_qdot_set_mode(int mode) {
    mode = mode == HL_QDOT_INT8 || mode == HL_QDOT_INT16 ? mode : HL_QDOT_FLOAT;
    atomic_store(&g_qdot, mode);
    return mode;
}

const char *hl_qdot_mode_name(int mode) {
    return mode == HL_QDOT_INT8 ? "int8" : mode == HL_QDOT_INT16 ? "int16" : "float";
}

int hl_qdot_int8_supported(int type) { return hl_q8_supported(type); }

const char *hl_kernels_summary(void) {
    static _Thread_local char buf[192];
    int l = hl_kernels_level(), best = hl_kernels_max_level();
    snprintf(buf, sizeof buf, "%s%s%s%s, quantized products: %s, %d threads", hl_kernels_level_name(l),
             l == best ? "" : " (best for this CPU: ", l == best ? "" : hl_kernels_level_name(best), l == best ? "" : ")",
             hl_qdot_mode() == HL_QDOT_INT8    ? "int8 activations"
             : hl_qdot_mode() == HL_QDOT_INT16 ? "int16 activations"
                                               : "float",
             hl_kernels_threads());
    return buf;
}

static inline const hl_impl *impl(void) { return &impls[hl_kernels_level()]; }
static inline const hl_kv16_impl *impl16(void) { return &kv16_impls[hl_kernels_level()]; }

// MARK: - Thread pool
//
// One job at a time (callers serialize on run_lock; a caller that finds the pool busy runs its
// tasks itself). A job is published by storing (generation << 32 | next task) into `state`;
// every participant claims tasks by compare-and-swap on that word, so a late worker cannot claim
// a task of a newer job with an older job's descriptor (descriptors alternate between two slots
// and a claim only succeeds while its generation is current). The caller waits until `done`
// reaches the task count, not for the workers to wake up. Idle workers spin ~100 us, then sleep.

typedef void (*hl_task_fn)(void *ctx, int task, int thread);

typedef struct {
    _Atomic(hl_task_fn) fn;
    _Atomic(void *) ctx;
    _Atomic int n;
} pool_slot;

static struct {
    pthread_mutex_t run_lock, m;
    pthread_cond_t cv;
    _Atomic uint64_t state;
    _Atomic int done;
    _Atomic int sleepers;
    _Atomic int threads;   // desired participants (caller included); 0 = not yet configured
    int started;           // workers started (under run_lock)
    pool_slot slot[2];
} P = {.run_lock = PTHREAD_MUTEX_INITIALIZER, .m = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static inline void cpu_relax(void) {
#if HL_X86
    _mm_pause();
#endif
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void pool_run_tasks(uint32_t gen, int thread) {
    pool_slot *sl = &P.slot[gen & 1];
    hl_task_fn fn = atomic_load_explicit(&sl->fn, memory_order_relaxed);
    void *ctx = atomic_load_explicit(&sl->ctx, memory_order_relaxed);
    int n = atomic_load_explicit(&sl->n, memory_order_relaxed);
    for (;;) {
        uint64_t s = atomic_load_explicit(&P.state, memory_order_acquire);
        if ((uint32_t)(s >> 32) != gen || (int)(uint32_t)s >= n) return;
        if (!atomic_compare_exchange_weak_explicit(&P.state, &s, s + 1, memory_order_acq_rel, memory_order_relaxed))
            continue;
        fn(ctx, (int)(uint32_t)s, thread);
        atomic_fetch_add_explicit(&P.done, 1, memory_order_release);
    }
}

static void *pool_worker(void *arg) {
    int idx = (int)(intptr_t)arg;
    uint32_t seen = (uint32_t)(atomic_load(&P.state) >> 32);
    for (;;) {
        uint64_t s;
        double deadline = 0;
        int spins = 0;
        for (;;) {
            s = atomic_load_explicit(&P.state, memory_order_acquire);
            if ((uint32_t)(s >> 32) != seen) break;
            cpu_relax();
            if ((++spins & 255) == 0) {
                double t = now_seconds();
                if (deadline == 0) deadline = t + 100e-6;
                else if (t > deadline) {
                    pthread_mutex_lock(&P.m);
                    atomic_fetch_add(&P.sleepers, 1);
                    while ((uint32_t)(atomic_load(&P.state) >> 32) == seen) pthread_cond_wait(&P.cv, &P.m);
                    atomic_fetch_sub(&P.sleepers, 1);
                    pthread_mutex_unlock(&P.m);
                    deadline = 0;
                }
            }
        }
        seen = (uint32_t)(s >> 32);
        if (idx < atomic_load_explicit(&P.threads, memory_order_relaxed)) pool_run_tasks(seen, idx);
    }
    return NULL;
}

static int default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > 8) n = 8;
    return (int)n;
}

int hl_kernels_threads(void) {
    int n = atomic_load(&P.threads);
    if (n == 0) {
        int expected = 0;
        atomic_compare_exchange_strong(&P.threads, &expected, default_threads());
        n = atomic_load(&P.threads);
    }
    return n;
}

void hl_kernels_set_threads(int n) {
    if (n < 1) n = 1;
    if (n > HL_MAX_THREADS) n = HL_MAX_THREADS;
    atomic_store(&P.threads, n);
}

/// Runs fn(ctx, i, thread) for i in 0..<n on the pool (the caller participates) and returns when
/// all are done. `blas1`: the tasks call OpenBLAS, which is held to one thread meanwhile (only
/// by the pool's owner, so concurrent callers cannot interleave the save/restore).
static void hl_parallel_ex(int n, hl_task_fn fn, void *ctx, int blas1) {
    int threads = hl_kernels_threads();
    if (n <= 0) return;
    if (n == 1 || threads <= 1 || pthread_mutex_trylock(&P.run_lock) != 0) {
        for (int i = 0; i < n; i++) fn(ctx, i, 0);
        return;
    }
    int savedBlas = blas1 ? openblas_get_num_threads() : 1;
    if (savedBlas != 1) openblas_set_num_threads(1);
    while (P.started < threads - 1) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 1 << 20);
        int rc = pthread_create(&th, &attr, pool_worker, (void *)(intptr_t)(P.started + 1));
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        P.started++;
    }
    if (P.started == 0) {
        if (savedBlas != 1) openblas_set_num_threads(savedBlas);
        pthread_mutex_unlock(&P.run_lock);
        for (int i = 0; i < n; i++) fn(ctx, i, 0);
        return;
    }
    uint32_t gen = (uint32_t)(atomic_load(&P.state) >> 32) + 1;
    pool_slot *sl = &P.slot[gen & 1];
    atomic_store_explicit(&sl->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&sl->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&sl->n, n, memory_order_relaxed);
    atomic_store_explicit(&P.done, 0, memory_order_relaxed);
    atomic_store(&P.state, (uint64_t)gen << 32);   // seq_cst: pairs with the sleepers check below
    if (atomic_load(&P.sleepers) > 0) {
        pthread_mutex_lock(&P.m);
        pthread_cond_broadcast(&P.cv);
        pthread_mutex_unlock(&P.m);
    }
    pool_run_tasks(gen, 0);
    // Wait for tasks claimed by workers; on a busy machine a worker may have been descheduled
    // mid-task, so stop burning the time slice after a short spin.
    for (int spins = 0; atomic_load_explicit(&P.done, memory_order_acquire) < n; spins++) {
        if (spins < 4096) cpu_relax();
        else sched_yield();
    }
    if (savedBlas != 1) openblas_set_num_threads(savedBlas);
    pthread_mutex_unlock(&P.run_lock);
}

static void hl_parallel(int n, hl_task_fn fn, void *ctx) { hl_parallel_ex(n, fn, ctx, 0); }

void hl_parallel_blas1(int n, void (*fn)(void *ctx, int i, int thread), void *ctx) { hl_parallel_ex(n, fn, ctx, 1); }

// MARK: - Thread-local scratch

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
typedef struct { float *p; size_t cap; } scratch_buf;

static void scratch_free(void *v) {
    scratch_buf *b = v;
    if (b) { free(b->p); free(b); }
}
static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_free); }

/// A per-thread buffer of at least n floats (64-byte aligned), kept between calls.
static float *scratch(size_t n) {
    pthread_once(&scratch_once, scratch_init);
    scratch_buf *b = pthread_getspecific(scratch_key);
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b) abort();
        pthread_setspecific(scratch_key, b);
    }
    if (b->cap < n) {
        free(b->p);
        void *p = NULL;
        if (posix_memalign(&p, 64, n * sizeof(float) + 64) != 0) abort();
        b->p = p;
        b->cap = n;
    }
    return b->p;
}

// MARK: - Public entry points

typedef struct {
    int type, rows, cols, t, chunk;
    const uint8_t *w;
    size_t rb, xs, ys;
    const float *x;
    float *y;
    const hl_impl *im;
    const hl_q8_act *xa;   // [t] quantized activation rows (int8 path), or NULL (float path)
} qmm_job;

static void qmm_task(void *c, int i, int thread) {
    (void)thread;
    qmm_job *j = c;
    int r0 = i * j->chunk, r1 = r0 + j->chunk;
    if (r1 > j->rows) r1 = j->rows;
    if (j->xa) j->im->q8rows(j->type, j->w, j->rb, r0, r1, j->cols / 32, j->xa, j->t, j->y, j->ys);
    else j->im->qmm(j->type, j->w, j->rb, r0, r1, j->cols, j->x, j->xs, j->t, j->y, j->ys);
}

/// Activation rows quantized per call of the int8 path (more rows: several passes).
#define HL_Q8_MAX_T 16

void hl_qmatmul(int type, const void *w, size_t row_bytes, int rows, int cols, const float *x, size_t x_stride,
                int t, float *y, size_t y_stride) {
    if (rows <= 0 || t <= 0 || !hl_qtype_supported(type) || cols % qtype_block_size(type) != 0) return;
    const int mode = hl_qdot_mode();
    const int integer = mode != HL_QDOT_FLOAT && hl_qdot_int8_supported(type), two = mode == HL_QDOT_INT16;
    if (t > HL_Q8_MAX_T && integer) {
        for (int i = 0; i < t; i += HL_Q8_MAX_T)
            hl_qmatmul(type, w, row_bytes, rows, cols, x + (size_t)i * x_stride, x_stride,
                       t - i < HL_Q8_MAX_T ? t - i : HL_Q8_MAX_T, y + (size_t)i * y_stride, y_stride);
        return;
    }
    qmm_job j = {type, rows, cols, t, rows, w, row_bytes, x_stride, y_stride, x, y, impl(), NULL};
    hl_q8_act acts[HL_Q8_MAX_T];
    if (integer) {
        // The caller's scratch, per row: q [cols] int8 | q2 [cols] int8 (int16 path) | d [nb] |
        // s [nb] | isum [nb] (floats; cols is a multiple of 32, so every part stays 4-byte aligned).
        int nb = cols / 32;
        size_t per = (size_t)cols / (two ? 2 : 4) + 3 * (size_t)nb;
        float *buf = scratch(per * (size_t)t);
        for (int i = 0; i < t; i++) {
            float *base = buf + per * (size_t)i;
            int8_t *q = (int8_t *)base, *q2 = two ? q + cols : NULL;
            float *d = base + cols / (two ? 2 : 4), *s = d + nb;
            int32_t *isum = (int32_t *)(s + nb);
            hl_q8_quantize(x + (size_t)i * x_stride, cols, q, q2, d, s, isum);
            acts[i] = (hl_q8_act){q, q2, d, s, isum};
        }
        j.xa = acts;
    }
    int threads = hl_kernels_threads();
    double work = (double)rows * (double)cols * (double)t;
    int tasks = 1;
    if (threads > 1 && work >= 65536) {
        // Several chunks per thread (multiples of 4 rows) so a late or busy thread costs little.
        int want = threads * 4;
        int chunk = (rows + want - 1) / want;
        chunk = (chunk + 3) & ~3;
        if (chunk < 16) chunk = 16;
        j.chunk = chunk;
        tasks = (rows + chunk - 1) / chunk;
    }
    hl_parallel(tasks, qmm_task, &j);
}

// Batched decoding: every row as hl_qmatmul with t == 1, each weight block read once per call.

typedef struct {
    int type, rows, cols, t, chunk;
    const uint8_t *w;
    size_t rb, xs, ys;
    const float *x;
    float *y;
    qmm_rows_fn fn;
} qmm_rows_job;

static void qmm_rows_task(void *c, int i, int thread) {
    (void)thread;
    qmm_rows_job *j = c;
    int r0 = i * j->chunk, r1 = r0 + j->chunk > j->rows ? j->rows : r0 + j->chunk;
    j->fn(j->type, j->w, j->rb, r0, r1, j->cols, j->x, j->xs, j->t, j->y, j->ys);
}

void hl_qmatmul_rows(int type, const void *w, size_t row_bytes, int rows, int cols, const float *x, size_t x_stride,
                     int t, float *y, size_t y_stride) {
    if (rows <= 0 || t <= 0 || !hl_qtype_supported(type) || cols % qtype_block_size(type) != 0) return;
    const int mode = hl_qdot_mode();
    if (t == 1 || (mode != HL_QDOT_FLOAT && hl_qdot_int8_supported(type))) {
        // int8 / int16: hl_qmatmul quantizes each activation row on its own and its row kernels
        // (q8rows) give every (weight row, activation row) pair the operations of t == 1.
        hl_qmatmul(type, w, row_bytes, rows, cols, x, x_stride, t, y, y_stride);
        return;
    }
    qmm_rows_job j = {type, rows, cols, t, rows, w, row_bytes, x_stride, y_stride, x, y,
                      qmm_rows_impls[hl_kernels_level()]};
    int threads = hl_kernels_threads();
    int tasks = 1;
    if (threads > 1 && (double)rows * (double)cols >= 65536) {
        // As hl_qmatmul: several chunks per thread, multiples of 4 rows, at least 16.
        int want = threads * 4;
        int chunk = (rows + want - 1) / want;
        chunk = (chunk + 3) & ~3;
        if (chunk < 16) chunk = 16;
        j.chunk = chunk;
        tasks = (rows + chunk - 1) / chunk;
    }
    hl_parallel(tasks, qmm_rows_task, &j);
}

// Float32 linear layers: sgemm split over the pool.

typedef struct {
    int m, n, k, chunk;
    const float *a, *b;
    float *c;
    int lda, ldb, ldc;
} sgemm_job;

static void sgemm_task(void *c, int i, int thread) {
    (void)thread;
    sgemm_job *j = c;
    int n0 = i * j->chunk, n1 = n0 + j->chunk > j->n ? j->n : n0 + j->chunk;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->m, n1 - n0, j->k, 1.0f, j->a, j->lda,
                j->b + (size_t)n0 * j->ldb, j->ldb, 0.0f, j->c + n0, j->ldc);
}

void hl_sgemm_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
    int threads = hl_kernels_threads();
    if (threads <= 1 || (double)m * n * k < 4e6 || n < 64 * threads) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
        return;
    }
    sgemm_job j = {m, n, k, 0, a, b, c, lda, ldb, ldc};
    int chunk = (n + threads - 1) / threads;
    j.chunk = (chunk + 15) & ~15;
    hl_parallel_ex((n + j.chunk - 1) / j.chunk, sgemm_task, &j, 1);
}

// Linear layers on weights kept in ggml blocks: each task decodes a panel of weight rows into the
// thread's scratch (the caller's fill function) and multiplies it with sgemm.

typedef struct {
    int m, n, k, panel;
    const float *a;
    int lda;
    hl_rows_fn fill;
    const void *ctx;
    float *c;
    int ldc;
} panel_job;

static void panel_task(void *c, int i, int thread) {
    (void)thread;
    panel_job *j = c;
    int n0 = i * j->panel, n1 = n0 + j->panel > j->n ? j->n : n0 + j->panel;
    float *w = scratch((size_t)j->panel * (size_t)j->k); // [panel, k]
    j->fill(j->ctx, n0, n1 - n0, w);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->m, n1 - n0, j->k, 1.0f, j->a, j->lda, w, j->k, 0.0f,
                j->c + n0, j->ldc);
}

int hl_sgemm_nt_panel_rows(int m, int n, int k, int panel) {
    int threads = hl_kernels_threads();
    if (panel <= 0) {
        // hl_sgemm_nt's split: one column block per thread (multiple of 16), or all of n.
        if (threads <= 1 || (double)m * n * k < 4e6 || n < 64 * threads) return n > 0 ? n : 1;
        int chunk = (n + threads - 1) / threads;
        return (chunk + 15) & ~15;
    }
    return panel;
}

void hl_sgemm_nt_panels(int m, int n, int k, const float *a, int lda, hl_rows_fn fill, const void *ctx, int panel,
                        float *c, int ldc) {
    if (m <= 0 || n <= 0 || k <= 0) return;
    panel_job j = {m, n, k, hl_sgemm_nt_panel_rows(m, n, k, panel), a, lda, fill, ctx, c, ldc};
    int tasks = (n + j.panel - 1) / j.panel;
    if (tasks == 1) {
        // One panel on the calling thread, OpenBLAS threading as hl_sgemm_nt's direct call.
        panel_task(&j, 0, 0);
        return;
    }
    hl_parallel_ex(tasks, panel_task, &j, 1);
}

// Attention, prefill, AVX-512: a fused flash-attention tile without OpenBLAS. The query block is
// kept transposed in panels of 32 rows (Qb [Rp/32][dh][32]), so scores come out key-major
// (St [n][Rp]: a key's scores for 32 rows are two vectors). The per-row max, exp and sum are
// then vertical vector operations, and P·V accumulates into the transposed output
// (Ob [Rp/32][dh][32]) with the rescale by alpha fused into its load. Nothing is packed per key
// tile: keys and values are read as broadcasts straight from the cache rows.
// Profile before (8,000 tokens, SmolLM2): sgemm kernels 72%, OpenBLAS packing 12%, softmax 10%.

#if HL_X86
#define HL_FA_ROWS 32 // query rows per panel (two vectors)

HL_INLINE v16i splat_i(int x) { return (v16i){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }

/// St[c][r0..r0+32) = scale * Qb_panel[.][r] · K[c] for the nk (<= 6) keys c in c0..<c0+nk.
/// `tmax` (non-NULL): running elementwise max over the keys of the panel's 32 rows.
HL_INLINE void fa_qk_block(const float *qp, const float *k, size_t ks, int c0, const int nk,
                                            int dh, float scale, float *st, int ldst, v16f *tmax) {
    v16f a0[6], a1[6];
    for (int j = 0; j < nk; j++) { a0[j] = splat(0); a1[j] = splat(0); }
    const float *kr = k + (size_t)c0 * ks;
    for (int d = 0; d < dh; d++) {
        v16f q0 = ld16f(qp + (size_t)d * HL_FA_ROWS), q1 = ld16f(qp + (size_t)d * HL_FA_ROWS + 16);
        for (int j = 0; j < nk; j++) {
            v16f b = splat(kr[(size_t)j * ks + d]);
            a0[j] += q0 * b;
            a1[j] += q1 * b;
        }
    }
    for (int j = 0; j < nk; j++) {
        v16f s0 = a0[j] * scale, s1 = a1[j] * scale;
        st16f(st + (size_t)(c0 + j) * ldst, s0);
        st16f(st + (size_t)(c0 + j) * ldst + 16, s1);
        if (tmax) {
            tmax[0] = __builtin_elementwise_max(tmax[0], s0);
            tmax[1] = __builtin_elementwise_max(tmax[1], s1);
        }
    }
}

/// Ob_panel[d][r] = alpha[r] * Ob_panel[d][r] + sum_c St[c][r] * V[c][d] for d in d0..<d0+8.
HL_INLINE void fa_pv_block(const float *st, int ldst, int n, const float *v, size_t vs, int d0,
                                            float *op, const float *alpha) {
    v16f al0 = ld16f(alpha), al1 = ld16f(alpha + 16);
    v16f a0[8], a1[8];
    for (int j = 0; j < 8; j++) {
        a0[j] = ld16f(op + (size_t)(d0 + j) * HL_FA_ROWS) * al0;
        a1[j] = ld16f(op + (size_t)(d0 + j) * HL_FA_ROWS + 16) * al1;
    }
    for (int c = 0; c < n; c++) {
        v16f p0 = ld16f(st + (size_t)c * ldst), p1 = ld16f(st + (size_t)c * ldst + 16);
        const float *vr = v + (size_t)c * vs + d0;
        for (int j = 0; j < 8; j++) {
            v16f b = splat(vr[j]);
            a0[j] += p0 * b;
            a1[j] += p1 * b;
        }
    }
    for (int j = 0; j < 8; j++) {
        st16f(op + (size_t)(d0 + j) * HL_FA_ROWS, a0[j]);
        st16f(op + (size_t)(d0 + j) * HL_FA_ROWS + 16, a1[j]);
    }
}

/// One key tile (keys kb..<kb+n, rows k/v `ks` floats apart) for the Rp query rows of Qb:
/// scores, online-softmax update of M, L [Rp] and the output panels Ob. lim [Rp]: row r sees the
/// tile's keys c <= lim[r] (diagonal tiles); `full` (every key visible to every row) skips the mask.
HL_INLINE void fa_tile_body(const float *qb, int rp, int dh, float scale, const float *k, const float *v, size_t ks,
                            int n, const int *lim, int full, float *st, float *m, float *l, float *alpha, float *ob) {
    const int ldst = rp;
    for (int r0 = 0; r0 < rp; r0 += HL_FA_ROWS) {
        const float *qp = qb + (size_t)r0 * dh;
        v16f tmax[2] = {splat(-INFINITY), splat(-INFINITY)};
        v16f *tm = full ? tmax : NULL;
        int c = 0;
        for (; c + 6 <= n; c += 6) fa_qk_block(qp, k, ks, c, 6, dh, scale, st + r0, ldst, tm);
        switch (n - c) {
        case 5: fa_qk_block(qp, k, ks, c, 5, dh, scale, st + r0, ldst, tm); break;
        case 4: fa_qk_block(qp, k, ks, c, 4, dh, scale, st + r0, ldst, tm); break;
        case 3: fa_qk_block(qp, k, ks, c, 3, dh, scale, st + r0, ldst, tm); break;
        case 2: fa_qk_block(qp, k, ks, c, 2, dh, scale, st + r0, ldst, tm); break;
        case 1: fa_qk_block(qp, k, ks, c, 1, dh, scale, st + r0, ldst, tm); break;
        default: break;
        }
        for (int h = 0; h < 2; h++) {
            const int r = r0 + 16 * h;
            float *sc = st + r;
            v16i lv;
            memcpy(&lv, lim + r, sizeof lv);
            if (!full) {
                v16f mx = splat(-INFINITY);
                for (int cc = 0; cc < n; cc++) {
                    v16i vis = (v16i)(splat_i(cc) <= lv); // all ones where key cc is visible
                    v16f s = (v16f)(((v16i)ld16f(sc + (size_t)cc * ldst) & vis) | ((v16i)splat(-INFINITY) & ~vis));
                    mx = __builtin_elementwise_max(mx, s);
                }
                tmax[h] = mx;
            }
            v16f mo = ld16f(m + r), mn = __builtin_elementwise_max(mo, tmax[h]);
            // Rows without a visible key in this tile keep their max (mn = mo, alpha = 1).
            v16f al = vexp(mo - mn);
            al = (v16f)((v16i)al & ~(v16i)(mo == splat(-INFINITY))); // first visible keys: alpha 0
            v16f sum = splat(0);
            if (full) {
                for (int cc = 0; cc < n; cc++) {
                    v16f e = vexp(ld16f(sc + (size_t)cc * ldst) - mn);
                    st16f(sc + (size_t)cc * ldst, e);
                    sum += e;
                }
            } else {
                for (int cc = 0; cc < n; cc++) {
                    v16f e = vexp(ld16f(sc + (size_t)cc * ldst) - mn);
                    e = (v16f)((v16i)e & (v16i)(splat_i(cc) <= lv));
                    st16f(sc + (size_t)cc * ldst, e);
                    sum += e;
                }
            }
            st16f(l + r, ld16f(l + r) * al + sum);
            st16f(m + r, mn);
            st16f(alpha + r, al);
        }
        for (int d0 = 0; d0 < dh; d0 += 8) fa_pv_block(st + r0, ldst, n, v, ks, d0, ob + (size_t)r0 * dh, alpha + r0);
    }
}

HL_TARGET_AVX512 static void fa_tile_avx512(const float *qb, int rp, int dh, float scale, const float *k,
                                            const float *v, size_t ks, int n, const int *lim, int full, float *st,
                                            float *m, float *l, float *alpha, float *ob) {
    fa_tile_body(qb, rp, dh, scale, k, v, ks, n, lim, full, st, m, l, alpha, ob);
}
#endif

// Attention, prefill: blocked, online softmax.

static int g_tile_q = 0, g_tile_k = 0;
static int g_attn_fused = 1;

void hl_attention_set_fused(int on) { g_attn_fused = on != 0; }

void hl_attention_set_tiles(int query_rows, int key_cols) {
    if (query_rows >= 0) g_tile_q = query_rows;
    if (key_cols >= 0) g_tile_k = key_cols;
}

typedef struct {
    const float *q, *k, *v;
    const uint16_t *k16, *v16;  // binary16 cache (hl_attention_prefill_f16), else NULL
    float *z;
    int t, p, h, hkv, g, dh, bq, bk, nqb, window;
    float scale;
    const hl_impl *im;
    const unsigned char *skip; // [hkv] nonzero: the KV group's query heads are not computed (NULL: none)
    const hl_kv16_impl *im16;
    int fused;                 // fa_tile_avx512 instead of sgemm + tile_rows + sgemm
} attn_job;

#if HL_X86
/// attn_task on the fused AVX-512 tile (no window; dh a multiple of 8).
static void attn_task_fused(attn_job *j, int grp, int qb) {
    const int dh = j->dh, G = j->g, bk = j->bk;
    const int qs = j->h * dh, kvs = j->hkv * dh;
    int t0 = qb * j->bq, bq = j->t - t0 < j->bq ? j->t - t0 : j->bq;
    int R = G * bq, rp = (R + HL_FA_ROWS - 1) / HL_FA_ROWS * HL_FA_ROWS;
    // scratch: Qb [rp/32, dh, 32] | Ob [rp/32, dh, 32] | St [bk, rp] | M, L, A [rp] | lim [rp] (int)
    //          (binary16 cache: | Kt [bk, dh] | Vt [bk, dh] widened tiles)
    const int half = j->k16 != NULL;
    size_t need = 2 * (size_t)rp * dh + (size_t)bk * rp + 4 * (size_t)rp + 32 + (half ? 2 * (size_t)bk * dh : 0);
    float *buf = scratch(need);
    float *Qb = buf, *Ob = Qb + (size_t)rp * dh, *St = Ob + (size_t)rp * dh, *M = St + (size_t)bk * rp;
    float *L = M + rp, *A = L + rp;
    int *lim = (int *)(A + rp);
    float *Kt = A + 2 * (size_t)rp + 32, *Vt = Kt + (size_t)bk * dh;
    for (int r = 0; r < rp; r++) {
        float *dst = Qb + (size_t)(r / HL_FA_ROWS) * dh * HL_FA_ROWS + r % HL_FA_ROWS;
        if (r < R) {
            const float *src = j->q + (size_t)(t0 + r % bq) * qs + (size_t)(grp * G + r / bq) * dh;
            for (int d = 0; d < dh; d++) dst[(size_t)d * HL_FA_ROWS] = src[d];
        } else {
            for (int d = 0; d < dh; d++) dst[(size_t)d * HL_FA_ROWS] = 0;
        }
        M[r] = -INFINITY;
        L[r] = 0;
    }
    memset(Ob, 0, (size_t)rp * dh * 4);
    const float *kg = half ? NULL : j->k + (size_t)grp * dh, *vg = half ? NULL : j->v + (size_t)grp * dh;
    int first = j->p + t0; // position of the block's first query
    int kend = first + bq; // keys 0..<kend are visible to some row
    for (int kb = 0; kb < kend; kb += bk) {
        int n = kend - kb < bk ? kend - kb : bk;
        int full = kb + n - 1 <= first;
        for (int r = 0; r < rp; r++) lim[r] = r < R ? first + r % bq - kb : n; // last visible key of the tile
        const float *kt = kg + (size_t)kb * kvs, *vt = vg + (size_t)kb * kvs;
        size_t ks = (size_t)kvs;
        if (half) {
            j->im16->widen_rows(j->k16 + (size_t)kb * kvs + (size_t)grp * dh, (size_t)kvs, n, dh, Kt); // [n, dh]
            j->im16->widen_rows(j->v16 + (size_t)kb * kvs + (size_t)grp * dh, (size_t)kvs, n, dh, Vt); // [n, dh]
            kt = Kt;
            vt = Vt;
            ks = (size_t)dh;
        }
        fa_tile_avx512(Qb, rp, dh, j->scale, kt, vt, ks, n, lim, full, St, M, L, A, Ob);
    }
    for (int r = 0; r < R; r++) {
        float inv = 1.0f / L[r];
        float *zr = j->z + (size_t)(t0 + r % bq) * qs + (size_t)(grp * G + r / bq) * dh;
        const float *o = Ob + (size_t)(r / HL_FA_ROWS) * dh * HL_FA_ROWS + r % HL_FA_ROWS;
        for (int d = 0; d < dh; d++) zr[d] = o[(size_t)d * HL_FA_ROWS] * inv;
    }
}
#endif

static void attn_task(void *c, int task, int thread) {
    (void)thread;
    attn_job *j = c;
    const int dh = j->dh, G = j->g, bk = j->bk;
    const int qs = j->h * dh, kvs = j->hkv * dh;
    int grp = task / j->nqb, qb = task % j->nqb;
    if (j->skip && j->skip[grp]) return;
#if HL_X86
    if (j->fused) {
        attn_task_fused(j, grp, qb);
        return;
    }
#endif
    int t0 = qb * j->bq, bq = j->t - t0 < j->bq ? j->t - t0 : j->bq;
    int R = G * bq;
    // scratch: Qp [R, dh] | S [R, bk] | O [R, dh] | m [R] | l [R] | valid [R]
    //          (binary16 cache: | Kt [bk, dh] | Vt [bk, dh] widened tiles)
    const int half = j->k16 != NULL;
    size_t need = (size_t)R * dh * 2 + (size_t)R * bk + 3 * (size_t)R + 64 + (half ? 2 * (size_t)bk * dh : 0);
    float *buf = scratch(need);
    float *Qp = buf, *S = Qp + (size_t)R * dh, *O = S + (size_t)R * bk, *M = O + (size_t)R * dh, *L = M + R;
    int *valid = (int *)(L + R);
    float *Kt = L + R + R + 16, *Vt = Kt + (size_t)bk * dh;
    for (int hj = 0; hj < G; hj++)
        for (int i = 0; i < bq; i++) {
            memcpy(Qp + ((size_t)hj * bq + i) * dh, j->q + (size_t)(t0 + i) * qs + (size_t)(grp * G + hj) * dh,
                   (size_t)dh * 4);
        }
    memset(O, 0, (size_t)R * dh * 4);
    for (int r = 0; r < R; r++) { M[r] = -INFINITY; L[r] = 0; }
    const float *kg = half ? NULL : j->k + (size_t)grp * dh, *vg = half ? NULL : j->v + (size_t)grp * dh;
    int first = j->p + t0;              // position of the block's first query
    int kend = first + bq;              // keys 0..<kend are visible to some row
    const int win = j->window;          // sliding window n_swa (query at q sees keys k > q - n_swa), 0: none
    int kbeg = win > 0 && first - win + 1 > 0 ? first - win + 1 : 0; // keys before kbeg are visible to no row
    for (int kb = kbeg; kb < kend; kb += bk) {
        int n = kend - kb < bk ? kend - kb : bk;
        if (half) {
            j->im16->widen_rows(j->k16 + (size_t)kb * kvs + (size_t)grp * dh, (size_t)kvs, n, dh, Kt); // [n, dh]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, n, dh, j->scale, Qp, dh, Kt, dh, 0.0f, S, bk);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, n, dh, j->scale, Qp, dh,
                        kg + (size_t)kb * kvs, kvs, 0.0f, S, bk);
        }
        if (kb + n - 1 <= first) {
            for (int r = 0; r < R; r++) valid[r] = n;
        } else {
            for (int hj = 0; hj < G; hj++)
                for (int i = 0; i < bq; i++) {
                    int c = first + i - kb + 1;
                    valid[hj * bq + i] = c < 0 ? 0 : (c > n ? n : c);
                }
        }
        if (win > 0) {
            // Keys before the window of row i (index lo in the tile) are masked with a large negative
            // score (exp underflows to ~0 in the running sum) and zeroed again after the update, so
            // P·V never reads them; rows whose window starts after this tile get no valid keys.
            for (int hj = 0; hj < G; hj++)
                for (int i = 0; i < bq; i++) {
                    int r = hj * bq + i, lo = first + i - win + 1 - kb;
                    if (lo <= 0) continue;
                    if (lo >= valid[r]) { valid[r] = 0; continue; }
                    float *sr = S + (size_t)r * bk;
                    for (int c = 0; c < lo; c++) sr[c] = -1e30f;
                }
        }
        j->im->tile_rows(S, bk, R, n, valid, M, L, O, dh);
        if (win > 0) {
            for (int hj = 0; hj < G; hj++)
                for (int i = 0; i < bq; i++) {
                    int r = hj * bq + i, lo = first + i - win + 1 - kb;
                    if (lo > 0 && valid[r] > 0) memset(S + (size_t)r * bk, 0, (size_t)lo * 4);
                }
        }
        if (half) {
            j->im16->widen_rows(j->v16 + (size_t)kb * kvs + (size_t)grp * dh, (size_t)kvs, n, dh, Vt); // [n, dh]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, dh, n, 1.0f, S, bk, Vt, dh, 1.0f, O, dh);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, dh, n, 1.0f, S, bk,
                        vg + (size_t)kb * kvs, kvs, 1.0f, O, dh);
        }
    }
    for (int hj = 0; hj < G; hj++)
        for (int i = 0; i < bq; i++) {
            int r = hj * bq + i;
            float inv = 1.0f / L[r];
            float *zr = j->z + (size_t)(t0 + i) * qs + (size_t)(grp * G + hj) * dh;
            const float *o = O + (size_t)r * dh;
            for (int d = 0; d < dh; d++) zr[d] = o[d] * inv;
        }
}

void hl_attention_prefill(const float *q, const float *k, const float *v, float *z, int t, int p, int h, int hkv,
                          int dh, float scale) {
    hl_attention_prefill_window(q, k, v, z, t, p, h, hkv, dh, scale, 0);
}

/// The blocked prefill over a Float32 (k, v) or binary16 (k16, v16) cache; `skip` [hkv] nonzero:
/// the KV group's query heads are not computed (NULL: none).
static void attention_prefill(const float *q, const float *k, const float *v, const uint16_t *k16,
                              const uint16_t *v16, float *z, int t, int p, int h, int hkv, int dh, float scale,
                              int window, const unsigned char *skip) {
    if (t <= 0) return;
    int G = h / hkv;
    // Tiles: ~384 query rows (G heads x bq queries) against 512 keys; measured on Zen 5 with
    // OpenBLAS SkylakeX/Cooperlake kernels (CPU time, t = 512 at p = 7488): 64x256 63 ms,
    // 128x512 56 ms, 32x512 69 ms.
    int bq = g_tile_q > 0 ? g_tile_q : (G >= 3 ? 128 : G == 2 ? 192 : 256);
    if (G > 3 && g_tile_q <= 0) bq = 384 / G < 32 ? 32 : 384 / G;
    int level = hl_kernels_level();
    // The fused AVX-512 tile (no OpenBLAS packing; softmax on key-major score vectors): its score
    // tile [bk, rp] stays in L2 at 256 keys.
    int fused = g_attn_fused && window <= 0 && dh % 8 == 0 &&
                (level == HL_KERNELS_AVX512 || level == HL_KERNELS_AVX512_VNNI);
    int bk = g_tile_k > 0 ? g_tile_k : fused ? 256 : 512;
    int threads = hl_kernels_threads();
    // Short chunks: smaller query blocks so that every thread gets work items.
    while (g_tile_q <= 0 && bq > 16 && hkv * ((t + bq - 1) / bq) < 3 * threads) bq /= 2;
    // The tiling depends on hkv only (not on `skip`), so the groups computed get the same bits as without it.
    attn_job j = {q,  k,  v,  k16, v16, z, t, p, h, hkv, G, dh, bq, bk, (t + bq - 1) / bq, window > 0 ? window : 0,
                  scale, impl(), skip, impl16(), fused};
    hl_parallel_ex(hkv * j.nqb, attn_task, &j, 1);
}

void hl_attention_prefill_window(const float *q, const float *k, const float *v, float *z, int t, int p, int h,
                                 int hkv, int dh, float scale, int window) {
    attention_prefill(q, k, v, NULL, NULL, z, t, p, h, hkv, dh, scale, window, NULL);
}

void hl_attention_prefill_skip(const float *q, const float *k, const float *v, float *z, int t, int p, int h,
                               int hkv, int dh, float scale, int window, const unsigned char *skip) {
    attention_prefill(q, k, v, NULL, NULL, z, t, p, h, hkv, dh, scale, window, skip);
}

void hl_attention_prefill_f16(const float *q, const uint16_t *k, const uint16_t *v, float *z, int t, int p, int h,
                              int hkv, int dh, float scale, int window) {
    attention_prefill(q, NULL, NULL, k, v, z, t, p, h, hkv, dh, scale, window, NULL);
}

// Attention, decoding with the probabilities materialized (captures of hook_pattern at a decode
// step): the same products as the materializing reference path (scores by sgemm per KV group,
// softmax per head, P·V by sgemm), split over the kernel pool instead of run on one thread.

typedef struct {
    const float *q, *k, *v;
    float *z, *probs; // z [h, dh]; probs [h, s]
    int s, h, hkv, dh, nsplit, splitlen;
    float scale;
    const hl_impl *im;
} decp_job;

/// Scores of the G query heads of one KV group over one key range: probs[g*G + j][k0..<k1].
static void decp_scores_task(void *c, int task, int thread) {
    (void)thread;
    decp_job *j = c;
    int G = j->h / j->hkv, kvs = j->hkv * j->dh, g = task / j->nsplit, sp = task % j->nsplit;
    int k0 = sp * j->splitlen, k1 = k0 + j->splitlen > j->s ? j->s : k0 + j->splitlen;
    if (k1 <= k0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, G, k1 - k0, j->dh, j->scale, j->q + (size_t)g * G * j->dh,
                j->dh, j->k + (size_t)k0 * kvs + (size_t)g * j->dh, kvs, 0.0f, j->probs + (size_t)g * G * j->s + k0,
                j->s);
}

static void decp_softmax_task(void *c, int head, int thread) {
    (void)thread;
    decp_job *j = c;
    j->im->softmax(j->probs + (size_t)head * j->s, j->s);
}

/// z rows of one KV group's G heads, output columns [d0, d0 + dh/2) (halves: each reads half of
/// every value row, so the two tasks of a group move its values once).
static void decp_values_task(void *c, int task, int thread) {
    (void)thread;
    decp_job *j = c;
    int G = j->h / j->hkv, kvs = j->hkv * j->dh, g = task / 2, half = j->dh / 2;
    int d0 = task % 2 == 0 ? 0 : half, nd = task % 2 == 0 ? half : j->dh - half;
    if (nd <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, G, nd, j->s, 1.0f, j->probs + (size_t)g * G * j->s, j->s,
                j->v + (size_t)g * j->dh + d0, kvs, 0.0f, j->z + (size_t)g * G * j->dh + d0, j->dh);
}

void hl_attention_decode_probs(const float *q, const float *k, const float *v, float *z, int s, int h, int hkv,
                               int dh, float scale, float *probs) {
    if (s <= 0) return;
    int threads = hl_kernels_threads();
    // Key ranges per KV group: enough tasks for every thread, at least 256 keys each.
    int nsplit = 1;
    while (hkv * nsplit < 2 * threads && s / (nsplit * 2) >= 256) nsplit *= 2;
    decp_job j = {q, k, v, z, probs, s, h, hkv, dh, nsplit, (s + nsplit - 1) / nsplit, scale, impl()};
    hl_parallel_ex(hkv * nsplit, decp_scores_task, &j, 1);
    hl_parallel_ex(h, decp_softmax_task, &j, 1);
    hl_parallel_ex(hkv * 2, decp_values_task, &j, 1);
}

// Attention, decoding: per (KV head, key range) task the partial softmax state of its G query
// heads (flash-decoding), merged afterwards, so two threads share even 3 KV heads evenly.

typedef struct {
    const float *q, *k, *v;
    const uint16_t *k16, *v16;  // binary16 cache (hl_attention_decode_f16), else NULL
    int s, h, hkv, dh, nsplit, splitlen;
    float scale;
    float *part;   // [hkv * nsplit][G][dh + 2]
    const hl_impl *im;
    const unsigned char *skip; // [hkv] nonzero: not computed (NULL: none)
    const hl_kv16_impl *im16;
} dec_job;

/// One KV group over one key range.
static void dec_group(dec_job *j, int g, int sp, int pf) {
    int G = j->h / j->hkv, stride = j->hkv * j->dh;
    if (j->skip && j->skip[g]) return;
    int k0 = sp * j->splitlen, k1 = k0 + j->splitlen > j->s ? j->s : k0 + j->splitlen;
    float *part = j->part + (size_t)(g * j->nsplit + sp) * G * (j->dh + 2);
    if (k1 <= k0) {
        for (int h = 0; h < G; h++) { part[(size_t)h * (j->dh + 2)] = -INFINITY; part[(size_t)h * (j->dh + 2) + 1] = 0; }
        return;
    }
    if (j->k16) {
        // scratch: scores [G, n] | widened rows [HL_KV16_BLOCK, dh] | accumulators [G, 2, dh]
        size_t ns = ((size_t)G * (k1 - k0) + 15) & ~(size_t)15;
        float *scores = scratch(ns + (size_t)HL_KV16_BLOCK * j->dh + 2 * (size_t)G * j->dh + 16);
        j->im16->decode_group(j->q + (size_t)g * G * j->dh, j->k16 + (size_t)k0 * stride + (size_t)g * j->dh,
                              j->v16 + (size_t)k0 * stride + (size_t)g * j->dh, k1 - k0, stride, j->dh, G, j->scale,
                              scores, part, scores + ns);
        return;
    }
    float *scores = scratch((size_t)G * (k1 - k0) + 16);
    j->im->decode_group(j->q + (size_t)g * G * j->dh, j->k + (size_t)k0 * stride + (size_t)g * j->dh,
                        j->v + (size_t)k0 * stride + (size_t)g * j->dh, k1 - k0, stride, j->dh, G, j->scale, scores,
                        part, pf);
}

/// Float32 cache: a task is one key range for every KV group in turn, and the first computed
/// group prefetches whole rows (all groups' keys and values), so the cache streams in row order
/// instead of one group's slice of every row at a time (1.6x faster from DRAM on Zen 4).
/// Binary16 cache: a task is one (group, key range).
static void dec_task(void *c, int task, int thread) {
    (void)thread;
    dec_job *j = c;
    if (j->k16) {
        dec_group(j, task / j->nsplit, task % j->nsplit, 0);
        return;
    }
    int first = 1;
    for (int g = 0; g < j->hkv; g++) {
        if (j->skip && j->skip[g]) continue;
        dec_group(j, g, task, first ? j->hkv * j->dh : 0);
        first = 0;
    }
}

/// Decoding over a Float32 (k, v) or binary16 (k16, v16) cache; `skip` [hkv] nonzero: not
/// computed (NULL: none).
static void attention_decode(const float *q, const float *k, const float *v, const uint16_t *k16,
                             const uint16_t *v16, float *z, int s, int h, int hkv, int dh, float scale,
                             const unsigned char *skip) {
    int G = h / hkv, threads = hl_kernels_threads();
    int nsplit = 1;
    // Enough (group, key range) pieces for every thread (several per thread), each at least 128
    // keys. The split alone decides the arithmetic (the merge below), so Float32 and binary16 caches
    // split alike; a Float32 task then takes every group of one key range, a binary16 task one piece.
    while (threads > 1 && hkv * nsplit < 2 * threads && s / (nsplit * 2) >= 128) nsplit *= 2;
    const int perSplit = k16 ? hkv : 1;
    if ((double)s * h * dh < 32768) nsplit = 1;
    int splitlen = (s + nsplit - 1) / nsplit;
    size_t partSize = (size_t)hkv * nsplit * G * (dh + 2);
    float stackPart[4096];
    float *part = partSize <= 4096 ? stackPart : malloc(partSize * sizeof(float));
    if (!part) abort();
    dec_job j = {q, k, v, k16, v16, s, h, hkv, dh, nsplit, splitlen, scale, part, impl(), skip, impl16()};
    const int tasks = perSplit * nsplit;
    if (tasks == 1 || (double)s * h * dh < 32768) {
        for (int i = 0; i < tasks; i++) dec_task(&j, i, 0);
    } else {
        hl_parallel(tasks, dec_task, &j);
    }
    // Merge the splits of every head: z = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M).
    for (int g = 0; g < hkv; g++)
        for (int hj = 0; hj < G && !(skip && skip[g]); hj++) {
            float M = -INFINITY;
            for (int sp = 0; sp < nsplit; sp++) {
                float m = part[((size_t)(g * nsplit + sp) * G + hj) * (dh + 2)];
                M = m > M ? m : M;
            }
            float *zr = z + (size_t)(g * G + hj) * dh;
            float L = 0;
            for (int d = 0; d < dh; d++) zr[d] = 0;
            for (int sp = 0; sp < nsplit; sp++) {
                const float *ps = part + ((size_t)(g * nsplit + sp) * G + hj) * (dh + 2);
                if (ps[0] == -INFINITY) continue;
                float w = nsplit == 1 ? 1.0f : expf(ps[0] - M);
                L += ps[1] * w;
                for (int d = 0; d < dh; d++) zr[d] += ps[2 + d] * w;
            }
            float inv = 1.0f / L;
            for (int d = 0; d < dh; d++) zr[d] *= inv;
        }
    if (part != stackPart) free(part);
}

void hl_attention_decode(const float *q, const float *k, const float *v, float *z, int s, int h, int hkv, int dh,
                         float scale) {
    attention_decode(q, k, v, NULL, NULL, z, s, h, hkv, dh, scale, NULL);
}

void hl_attention_decode_skip(const float *q, const float *k, const float *v, float *z, int s, int h, int hkv,
                              int dh, float scale, const unsigned char *skip) {
    attention_decode(q, k, v, NULL, NULL, z, s, h, hkv, dh, scale, skip);
}

void hl_attention_decode_f16(const float *q, const uint16_t *k, const uint16_t *v, float *z, int s, int h, int hkv,
                             int dh, float scale) {
    attention_decode(q, NULL, NULL, k, v, z, s, h, hkv, dh, scale, NULL);
}

void hl_f32_to_f16(const float *x, uint16_t *y, size_t n) { impl16()->narrow(x, y, n); }
void hl_f16_to_f32(const uint16_t *x, float *y, size_t n) { impl16()->widen(x, y, n); }
void hl_f16_to_f32_rows(const uint16_t *src, size_t stride, int rows, int width, float *dst) {
    impl16()->widen_rows(src, stride, rows, width, dst);
}

// Vector helpers.

void hl_softmax(float *x, int n) { impl()->softmax(x, n); }
void hl_exp(const float *x, float *y, size_t n) { impl()->exp(x, y, n); }
void hl_add(float *y, const float *x, size_t n) { impl()->add(y, x, n); }

typedef struct {
    const float *x, *w;
    float *y;
    int rows, d, chunk;
    float eps;
    const hl_impl *im;
} rms_job;

static void rms_task(void *c, int i, int thread) {
    (void)thread;
    rms_job *j = c;
    int r0 = i * j->chunk, r1 = r0 + j->chunk > j->rows ? j->rows : r0 + j->chunk;
    j->im->rmsnorm(j->x + (size_t)r0 * j->d, r1 - r0, j->d, j->w, j->eps, j->y + (size_t)r0 * j->d);
}

void hl_rmsnorm(const float *x, int rows, int d, const float *w, float eps, float *y) {
    rms_job j = {x, w, y, rows, d, rows, eps, impl()};
    int threads = hl_kernels_threads();
    if (threads > 1 && (size_t)rows * d >= 65536) {
        j.chunk = (rows + 2 * threads - 1) / (2 * threads);
        hl_parallel((rows + j.chunk - 1) / j.chunk, rms_task, &j);
    } else {
        j.im->rmsnorm(x, rows, d, w, eps, y);
    }
}

typedef struct {
    float *g;
    const float *u;
    size_t n, chunk;
    const hl_impl *im;
} swiglu_job;

static void swiglu_task(void *c, int i, int thread) {
    (void)thread;
    swiglu_job *j = c;
    size_t a = (size_t)i * j->chunk, b = a + j->chunk > j->n ? j->n : a + j->chunk;
    j->im->swiglu(j->g + a, j->u + a, b - a);
}

void hl_swiglu(float *gate, const float *up, size_t n) {
    swiglu_job j = {gate, up, n, n, impl()};
    int threads = hl_kernels_threads();
    if (threads > 1 && n >= 65536) {
        size_t chunk = (n + 2 * (size_t)threads - 1) / (2 * (size_t)threads);
        chunk = (chunk + 15) & ~(size_t)15;
        j.chunk = chunk;
        hl_parallel((int)((n + chunk - 1) / chunk), swiglu_task, &j);
    } else {
        j.im->swiglu(gate, up, n);
    }
}
