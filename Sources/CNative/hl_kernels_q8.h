#ifndef HEADLIGHT_HL_KERNELS_Q8_H
#define HEADLIGHT_HL_KERNELS_Q8_H
// Internal interface of the int8 (quantized-activation) matrix-vector kernels: hl_kernels_q8.c
// (quantizer, portable kernel), hl_kernels_q8_x86.c (AVX2, AVX-VNNI, AVX-512 VNNI) and
// hl_kernels_q8_neon.c (NEON, NEON dot product). hl_kernels.c dispatches to them.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/// One activation row quantized per 32-value block b: q [cols] int8 values, d [nb] scales,
/// s [nb] = d[b] * isum[b] (Float32), isum [nb] = sum of the block's quantized values.
/// int16 path: q2 [cols] holds the low parts of 16-bit values v = 256 q + q2 (|q2| <= 127), d is
/// the scale of one unit of v and isum the sum of the v; the kernels form each block's integer sum
/// as 256 sum(q_w q) + sum(q_w q2) from two int8 dot products. int8 path: q2 == NULL.
typedef struct {
    const int8_t *q, *q2;
    const float *d, *s;
    const int32_t *isum;
} hl_q8_act;

/// Rows r0..<r1 of a weight matrix of ggml type `type` (Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0; rows
/// `rb` bytes apart, nb 32-weight blocks each) times t quantized activation rows:
/// y[i * ys + r] = sum_b (d_w d_x) * sum(q_w q_x) (+ m_w s_x).
typedef void (*hl_q8_rows_fn)(int type, const uint8_t *w, size_t rb, int r0, int r1, int nb, const hl_q8_act *x,
                              int t, float *y, size_t ys);

/// Quantizes x [n] (n % 32 == 0): q [n], d [n / 32], and optionally s and isum [n / 32]. With q2
/// (non-NULL, [n]) the values are 16-bit (the int16 path, see hl_q8_act): q as without q2,
/// q2 = the rounded remainder in units of d / 256, d = max|x| / 32512 and isum = sum(256 q + q2).
void hl_q8_quantize(const float *x, int n, int8_t *q, int8_t *q2, float *d, float *s, int32_t *isum);

/// Bytes per 32-weight block of the int8-path types (0: not covered).
static inline int hl_q8_block_bytes(int type) {
    switch (type) {
    case 2: return 18;    // Q4_0: f16 d | u8 qs[16]
    case 3: return 20;    // Q4_1: f16 d, m | u8 qs[16]
    case 6: return 22;    // Q5_0: f16 d | u32 qh | u8 qs[16]
    case 7: return 24;    // Q5_1: f16 d, m | u32 qh | u8 qs[16]
    case 8: return 34;    // Q8_0: f16 d | i8 qs[32]
    default: return 0;
    }
}

/// Groups of 4 weight rows that the matrix-vector kernels prefetch ahead (software prefetch: on
/// Zen 4 it takes the streaming Q4_1 product from 40.7 to 30.7 us per 1536 x 576 matrix with 2
/// threads, bench/README.md).
#define HL_PF_ROW_GROUPS 1

/// Called at block b (of `bb` bytes) of the 4-row group starting at `row` (rows `rb` bytes apart):
/// prefetches the bytes of the group HL_PF_ROW_GROUPS ahead that its block b covers, so a
/// group's prefetches are spread over the blocks of the current one; nothing at or past `end`.
static inline void hl_prefetch_rows(const uint8_t *row, size_t rb, int bb, int b, const uint8_t *end) {
    const uint8_t *p = row + (size_t)HL_PF_ROW_GROUPS * 4 * rb + (size_t)4 * bb * b;
    for (int o = 0; o < 4 * bb && p + o < end; o += 64) __builtin_prefetch(p + o, 0, 3);
}

/// IEEE binary16 at p -> binary32 (portable, exact for every input).
static inline float hl_q8_h2f(const uint8_t *p) {
    uint16_t h = (uint16_t)(p[0] | (p[1] << 8));
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = h & 0x7fff, bits;
    if (e >= 0x7c00) {
        bits = (e << 13) | 0x7f800000;
    } else {
        float f;
        uint32_t u = e << 13;
        memcpy(&f, &u, 4);
        f *= 0x1p112f;
        memcpy(&bits, &f, 4);
    }
    bits |= sign;
    float r;
    memcpy(&r, &bits, 4);
    return r;
}

void hl_q8_rows_generic(int type, const uint8_t *w, size_t rb, int r0, int r1, int nb, const hl_q8_act *x, int t,
                        float *y, size_t ys);
#if defined(__x86_64__) || defined(__i386__)
void hl_q8_rows_avx2(int type, const uint8_t *w, size_t rb, int r0, int r1, int nb, const hl_q8_act *x, int t,
                     float *y, size_t ys);
void hl_q8_rows_avx2vnni(int type, const uint8_t *w, size_t rb, int r0, int r1, int nb, const hl_q8_act *x, int t,
                         float *y, size_t ys);
void hl_q8_rows_avx512vnni(int type, const uint8_t *w, size_t rb, int r0, int r1, int nb, const hl_q8_act *x, int t,
                           float *y, size_t ys);
#endif
#if defined(__aarch64__)
void hl_q8_rows_neon(int type, const uint8_t *w, size_t rb, int r0, int r1, int nb, const hl_q8_act *x, int t,
                     float *y, size_t ys);
void hl_q8_rows_neondot(int type, const uint8_t *w, size_t rb, int r0, int r1, int nb, const hl_q8_act *x, int t,
                        float *y, size_t ys);
#endif

#endif
