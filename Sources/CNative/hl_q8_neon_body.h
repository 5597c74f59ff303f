// Template of the aarch64 int8 row kernel, included by hl_kernels_q8_neon.c once per instruction
// set. Expects Q8_SUF, Q8_TGT and Q8_DOT(acc, a, b): acc (int32x4) plus the sum of the 16
// products a[j] b[j] of two int8x16 vectors, spread over the four lanes.

#define Q8_CAT2(a, b) a##_##b
#define Q8_CAT(a, b) Q8_CAT2(a, b)
#define Q8_FN(name) Q8_CAT(name, Q8_SUF)

Q8_TGT Q8_INLINE float Q8_FN(q8_h2f)(const uint8_t *p) {
    __fp16 h;
    memcpy(&h, p, 2);
    return (float)h;
}

/// 16 bits -> 16 bytes, 16 where bit j is set, else 0 (the fifth bit of Q5 weights).
Q8_TGT Q8_INLINE uint8x16_t Q8_FN(q8_bits)(uint32_t bits16) {
    static const uint8_t sel[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint8x16_t b = vcombine_u8(vdup_n_u8((uint8_t)(bits16 & 0xff)), vdup_n_u8((uint8_t)((bits16 >> 8) & 0xff)));
    return vandq_u8(vtstq_u8(b, vld1q_u8(sel)), vdupq_n_u8(16));
}

/// One block of one row against the activation halves x0, x1 (int8 path) or the 16-bit values
/// 256 x + x2 (int16 path, `two`): acc += d_w d_x * lanes; *corr += m_w s_x (Q4_1 / Q5_1).
Q8_TGT Q8_INLINE void Q8_FN(q8_block)(const int type, const int two, const uint8_t *blk, int8x16_t x0, int8x16_t x1,
                                      int8x16_t x20, int8x16_t x21, float dx, float sx, float32x4_t *acc,
                                      float *corr) {
    const float dw = Q8_FN(q8_h2f)(blk);
    const uint8x16_t m4 = vdupq_n_u8(15);
    int8x16_t a0, a1;
    switch (type) {
    case HL_Q4_0: {
        uint8x16_t v = vld1q_u8(blk + 2);
        a0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, m4)), vdupq_n_s8(8));
        a1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), vdupq_n_s8(8));
        break;
    }
    case HL_Q4_1: {
        uint8x16_t v = vld1q_u8(blk + 4);
        a0 = vreinterpretq_s8_u8(vandq_u8(v, m4));
        a1 = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
        *corr += Q8_FN(q8_h2f)(blk + 2) * sx;
        break;
    }
    case HL_Q5_0: case HL_Q5_1: {
        const int five1 = type == HL_Q5_1;
        uint32_t qh;
        memcpy(&qh, blk + (five1 ? 4 : 2), 4);
        uint8x16_t v = vld1q_u8(blk + (five1 ? 8 : 6));
        uint8x16_t lo = vorrq_u8(vandq_u8(v, m4), Q8_FN(q8_bits)(qh & 0xffff));
        uint8x16_t hi = vorrq_u8(vshrq_n_u8(v, 4), Q8_FN(q8_bits)(qh >> 16));
        a0 = vreinterpretq_s8_u8(lo);
        a1 = vreinterpretq_s8_u8(hi);
        if (five1) {
            *corr += Q8_FN(q8_h2f)(blk + 2) * sx;
        } else {
            a0 = vsubq_s8(a0, vdupq_n_s8(16));
            a1 = vsubq_s8(a1, vdupq_n_s8(16));
        }
        break;
    }
    default:
        a0 = vld1q_s8((const int8_t *)(blk + 2));
        a1 = vld1q_s8((const int8_t *)(blk + 18));
        break;
    }
    int32x4_t p = Q8_DOT(Q8_DOT(vdupq_n_s32(0), a0, x0), a1, x1);
    if (two) p = Q8_DOT(Q8_DOT(vshlq_n_s32(p, 8), a0, x20), a1, x21);
    *acc = vfmaq_f32(*acc, vcvtq_f32_s32(p), vdupq_n_f32(dw * dx));
}

Q8_TGT Q8_INLINE void Q8_FN(q8_rows_type)(const int type, const int two, const uint8_t *w, size_t rb, int r0,
                                          int r1, int nb, const hl_q8_act *xa, int t, float *y, size_t ys) {
    const int bb = hl_q8_block_bytes(type);
    const int8x16_t zero = vdupq_n_s8(0);
    const uint8_t *end = w + (size_t)r1 * rb;
    for (int i = 0; i < t; i++) {
        const int8_t *xq = xa[i].q, *xq2 = xa[i].q2;
        const float *xd = xa[i].d, *xs = xa[i].s;
        float *yi = y + (size_t)i * ys;
        int r = r0;
        for (; r + 4 <= r1; r += 4) {
            float32x4_t acc[4];
            float corr[4];
            for (int j = 0; j < 4; j++) {
                acc[j] = vdupq_n_f32(0);
                corr[j] = 0;
            }
            const uint8_t *row = w + (size_t)r * rb;
            for (int b = 0; b < nb; b++) {
                int8x16_t x0 = vld1q_s8(xq + 32 * b), x1 = vld1q_s8(xq + 32 * b + 16);
                int8x16_t x20 = two ? vld1q_s8(xq2 + 32 * b) : zero, x21 = two ? vld1q_s8(xq2 + 32 * b + 16) : zero;
                hl_prefetch_rows(row, rb, bb, b, end);
                for (int j = 0; j < 4; j++)
                    Q8_FN(q8_block)(type, two, row + (size_t)j * rb + (size_t)b * bb, x0, x1, x20, x21, xd[b], xs[b],
                                    &acc[j], &corr[j]);
            }
            for (int j = 0; j < 4; j++) yi[r + j] = vaddvq_f32(acc[j]) + corr[j];
        }
        for (; r < r1; r++) {
            float32x4_t acc = vdupq_n_f32(0);
            float corr = 0;
            const uint8_t *row = w + (size_t)r * rb;
            for (int b = 0; b < nb; b++) {
                int8x16_t x0 = vld1q_s8(xq + 32 * b), x1 = vld1q_s8(xq + 32 * b + 16);
                int8x16_t x20 = two ? vld1q_s8(xq2 + 32 * b) : zero, x21 = two ? vld1q_s8(xq2 + 32 * b + 16) : zero;
                Q8_FN(q8_block)(type, two, row + (size_t)b * bb, x0, x1, x20, x21, xd[b], xs[b], &acc, &corr);
            }
            yi[r] = vaddvq_f32(acc) + corr;
        }
    }
}

/// Activation block k (< 8) of the K-quant superblock blk of one row against the halves x0, x1
/// (int8) or 256 x + x2 (int16, `two`); sc, mn: the row's hl_q8_kscales. Q4_K: lanes * (sc d_x),
/// *corr += mn s_x. Q6_K: signed weights q - 32, one integer sum per 16-weight sub-block, each
/// scaled by its sc d_x.
Q8_TGT Q8_INLINE void Q8_FN(q8_kblock)(const int type, const int two, const uint8_t *blk, int k, int8x16_t x0,
                                       int8x16_t x1, int8x16_t x20, int8x16_t x21, float dx, float sx,
                                       const float *sc, const float *mn, float32x4_t *acc, float *corr) {
    const uint8x16_t m4 = vdupq_n_u8(15);
    if (type == HL_Q4_K) {
        const uint8_t *qs = blk + 16 + 32 * (k >> 1);
        uint8x16_t v0 = vld1q_u8(qs), v1 = vld1q_u8(qs + 16);
        int8x16_t a0, a1;
        if (k & 1) {
            a0 = vreinterpretq_s8_u8(vshrq_n_u8(v0, 4));
            a1 = vreinterpretq_s8_u8(vshrq_n_u8(v1, 4));
        } else {
            a0 = vreinterpretq_s8_u8(vandq_u8(v0, m4));
            a1 = vreinterpretq_s8_u8(vandq_u8(v1, m4));
        }
        int32x4_t p = Q8_DOT(Q8_DOT(vdupq_n_s32(0), a0, x0), a1, x1);
        if (two) p = Q8_DOT(Q8_DOT(vshlq_n_s32(p, 8), a0, x20), a1, x21);
        *acc = vfmaq_f32(*acc, vcvtq_f32_s32(p), vdupq_n_f32(sc[k] * dx));
        *corr += mn[k] * sx;
    } else {
        const int half = k >> 2, kk = k & 3;
        const uint8_t *ql = blk + 64 * half + 32 * (kk & 1), *qh = blk + 128 + 32 * half;
        const int8x16_t lshift = vdupq_n_s8((int8_t)(-4 * (kk >> 1))), hshift = vdupq_n_s8((int8_t)(-2 * kk));
        uint8x16_t l0 = vandq_u8(vshlq_u8(vld1q_u8(ql), lshift), m4);
        uint8x16_t l1 = vandq_u8(vshlq_u8(vld1q_u8(ql + 16), lshift), m4);
        uint8x16_t h0 = vshlq_n_u8(vandq_u8(vshlq_u8(vld1q_u8(qh), hshift), vdupq_n_u8(3)), 4);
        uint8x16_t h1 = vshlq_n_u8(vandq_u8(vshlq_u8(vld1q_u8(qh + 16), hshift), vdupq_n_u8(3)), 4);
        int8x16_t a0 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(l0, h0)), vdupq_n_s8(32));
        int8x16_t a1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(l1, h1)), vdupq_n_s8(32));
        int32x4_t p0 = Q8_DOT(vdupq_n_s32(0), a0, x0), p1 = Q8_DOT(vdupq_n_s32(0), a1, x1);
        if (two) {
            p0 = Q8_DOT(vshlq_n_s32(p0, 8), a0, x20);
            p1 = Q8_DOT(vshlq_n_s32(p1, 8), a1, x21);
        }
        *acc = vfmaq_f32(*acc, vcvtq_f32_s32(p0), vdupq_n_f32(sc[2 * k] * dx));
        *acc = vfmaq_f32(*acc, vcvtq_f32_s32(p1), vdupq_n_f32(sc[2 * k + 1] * dx));
    }
}

Q8_TGT Q8_INLINE void Q8_FN(q8_rows_k)(const int type, const int two, const uint8_t *w, size_t rb, int r0, int r1,
                                       int nb, const hl_q8_act *xa, int t, float *y, size_t ys) {
    const int sbb = hl_q8_super_bytes(type), bb = hl_q8_prefetch_bytes(type, rb, nb);
    const int8x16_t zero = vdupq_n_s8(0);
    const uint8_t *end = w + (size_t)r1 * rb;
    for (int i = 0; i < t; i++) {
        const int8_t *xq = xa[i].q, *xq2 = xa[i].q2;
        const float *xd = xa[i].d, *xs = xa[i].s;
        float *yi = y + (size_t)i * ys;
        int r = r0;
        for (; r + 4 <= r1; r += 4) {
            float32x4_t acc[4];
            float corr[4];
            float sc[4][16], mn[4][8];   // [row][sub-block] scales of the current superblock
            for (int j = 0; j < 4; j++) {
                acc[j] = vdupq_n_f32(0);
                corr[j] = 0;
            }
            const uint8_t *row = w + (size_t)r * rb;
            for (int sb = 0; sb < nb / 8; sb++) {
                for (int j = 0; j < 4; j++) hl_q8_kscales(type, row + (size_t)j * rb + (size_t)sb * sbb, sc[j], mn[j]);
                for (int k = 0; k < 8; k++) {
                    const int b = 8 * sb + k;
                    int8x16_t x0 = vld1q_s8(xq + 32 * b), x1 = vld1q_s8(xq + 32 * b + 16);
                    int8x16_t x20 = two ? vld1q_s8(xq2 + 32 * b) : zero;
                    int8x16_t x21 = two ? vld1q_s8(xq2 + 32 * b + 16) : zero;
                    hl_prefetch_rows(row, rb, bb, b, end);
                    for (int j = 0; j < 4; j++)
                        Q8_FN(q8_kblock)(type, two, row + (size_t)j * rb + (size_t)sb * sbb, k, x0, x1, x20, x21,
                                         xd[b], xs[b], sc[j], mn[j], &acc[j], &corr[j]);
                }
            }
            for (int j = 0; j < 4; j++) yi[r + j] = vaddvq_f32(acc[j]) - corr[j];
        }
        for (; r < r1; r++) {
            float32x4_t acc = vdupq_n_f32(0);
            float corr = 0, sc[16], mn[8];
            const uint8_t *row = w + (size_t)r * rb;
            for (int sb = 0; sb < nb / 8; sb++) {
                hl_q8_kscales(type, row + (size_t)sb * sbb, sc, mn);
                for (int k = 0; k < 8; k++) {
                    const int b = 8 * sb + k;
                    int8x16_t x0 = vld1q_s8(xq + 32 * b), x1 = vld1q_s8(xq + 32 * b + 16);
                    int8x16_t x20 = two ? vld1q_s8(xq2 + 32 * b) : zero;
                    int8x16_t x21 = two ? vld1q_s8(xq2 + 32 * b + 16) : zero;
                    Q8_FN(q8_kblock)(type, two, row + (size_t)sb * sbb, k, x0, x1, x20, x21, xd[b], xs[b], sc, mn,
                                     &acc, &corr);
                }
            }
            yi[r] = vaddvq_f32(acc) - corr;
        }
    }
}

Q8_TGT void Q8_CAT(hl_q8_rows, Q8_SUF)(int type, const uint8_t *w, size_t rb, int r0, int r1, int nb,
                                       const hl_q8_act *x, int t, float *y, size_t ys) {
    switch (type) {
        HL_Q8_CASE(HL_Q4_0, Q8_FN(q8_rows_type))
        HL_Q8_CASE(HL_Q4_1, Q8_FN(q8_rows_type))
        HL_Q8_CASE(HL_Q5_0, Q8_FN(q8_rows_type))
        HL_Q8_CASE(HL_Q5_1, Q8_FN(q8_rows_type))
        HL_Q8_CASE(HL_Q8_0, Q8_FN(q8_rows_type))
        HL_Q8_CASE(HL_Q4_K, Q8_FN(q8_rows_k))
        HL_Q8_CASE(HL_Q6_K, Q8_FN(q8_rows_k))
    default: hl_q8_rows_generic(type, w, rb, r0, r1, nb, x, t, y, ys); break;
    }
}

#undef Q8_CAT2
#undef Q8_CAT
#undef Q8_FN
