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

/// Rows r0..<r1 of a weight matrix of ggml type `type` (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K or
/// Q6_K; rows `rb` bytes apart, nb 32-weight blocks each, i.e. nb / 8 superblocks for the
/// K-quants) times t quantized activation rows: y[i * ys + r] = sum_b (d_w d_x) * sum(q_w q_x)
/// (+ m_w s_x); K-quants: per 32-weight block the sub-block scale(s) d * sc take the place of d_w
/// and Q4_K's minimum is -dmin * m (see hl_kernels_q8.c).
typedef void (*hl_q8_rows_fn)(int type, const uint8_t *w, size_t rb, int r0, int r1, int nb, const hl_q8_act *x,
                              int t, float *y, size_t ys);

/// Quantizes x [n] (n % 32 == 0): q [n], d [n / 32], and optionally s and isum [n / 32]. With q2
/// (non-NULL, [n]) the values are 16-bit (the int16 path, see hl_q8_act): q as without q2,
/// q2 = the rounded remainder in units of d / 256, d = max|x| / 32512 and isum = sum(256 q + q2).
void hl_q8_quantize(const float *x, int n, int8_t *q, int8_t *q2, float *d, float *s, int32_t *isum);

/// Bytes per 32-weight block of the int8-path types with 32-weight blocks (0: other types; the
/// K-quants: hl_q8_super_bytes).
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

/// Bytes per 256-weight superblock of the K-quants on the integer paths (0: not a K-quant).
static inline int hl_q8_super_bytes(int type) {
    switch (type) {
    case 12: return 144;  // Q4_K: f16 d, dmin | u8 scales[12] (6-bit scale, min per 32) | u8 qs[128]
    case 14: return 210;  // Q6_K: u8 ql[128] | u8 qh[64] | i8 scales[16] (one per 16) | f16 d
    default: return 0;
    }
}

/// Whether the int8 / int16 paths cover ggml type `type`.
static inline int hl_q8_supported(int type) { return hl_q8_block_bytes(type) != 0 || hl_q8_super_bytes(type) != 0; }

/// One case of a level's type switch (inside a hl_q8_rows_fn, whose parameters it uses): the row
/// function FN(type, two, ...) instantiated for type T and both paths (int16: x[0].q2 non-NULL),
/// so the inner loops carry no run-time branches.
#define HL_Q8_CASE(T, FN)                                                                                              \
    case T:                                                                                                            \
        if (x[0].q2) FN(T, 1, w, rb, r0, r1, nb, x, t, y, ys);                                                         \
        else FN(T, 0, w, rb, r0, r1, nb, x, t, y, ys);                                                                 \
        break;

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

/// The scales of one K-quant superblock `blk` in Float32, as the dequantizers form them
/// (llama.cpp dequantize_row_q4_K / _q6_K, get_scale_min_k4). Q4_K: sc[k] = d * scale_k and
/// mn[k] = dmin * min_k for the 32-weight sub-blocks k < 8 (weight = sc[k] q - mn[k], q in 0..15).
/// Q6_K: sc[k] = d * scales[k] for the 16-weight sub-blocks k < 16 (weight = sc[k] (q - 32), q in
/// 0..63); mn is not written.
static inline void hl_q8_kscales(int type, const uint8_t *blk, float *sc, float *mn) {
    if (type == 12) {
        const float d = hl_q8_h2f(blk), dmin = hl_q8_h2f(blk + 2);
        // The 12 bytes of 6-bit values, unpacked four at a time (get_scale_min_k4 for k < 4: the low
        // 6 bits of bytes k and k + 4; k >= 4: low / high nibble of byte k + 4 with the top 2 bits of
        // byte k - 4 / k): u bytes 0..7 = scale_k, bytes 8..15 = min_k.
        uint32_t v[3], u[4];
        memcpy(v, blk + 4, 12);
        u[0] = v[0] & 0x3f3f3f3fu;
        u[1] = (v[2] & 0x0f0f0f0fu) | ((v[0] >> 6) & 0x03030303u) << 4;
        u[2] = v[1] & 0x3f3f3f3fu;
        u[3] = ((v[2] >> 4) & 0x0f0f0f0fu) | ((v[1] >> 6) & 0x03030303u) << 4;
        uint8_t q[16];
        memcpy(q, u, 16);   // little-endian byte order, as the blocks
        for (int k = 0; k < 8; k++) {
            sc[k] = d * (float)q[k];
            mn[k] = dmin * (float)q[8 + k];
        }
    } else {
        const float d = hl_q8_h2f(blk + 208);
        const int8_t *q = (const int8_t *)(blk + 192);
        for (int k = 0; k < 16; k++) sc[k] = d * (float)q[k];
    }
}

/// Bytes per 32 weights for hl_prefetch_rows (K-quants: the row's bytes per 32 weights rounded up,
/// so the prefetches of a group cover its rows).
static inline int hl_q8_prefetch_bytes(int type, size_t rb, int nb) {
    int bb = hl_q8_block_bytes(type);
    return bb ? bb : (int)((rb + (size_t)nb - 1) / (size_t)nb);
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
