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

Q8_TGT void Q8_CAT(hl_q8_rows, Q8_SUF)(int type, const uint8_t *w, size_t rb, int r0, int r1, int nb,
                                       const hl_q8_act *x, int t, float *y, size_t ys) {
    // One instantiation per type and path, so the inner loops carry no run-time branches.
#define Q8_CASE(T)                                                                                                     \
    case T:                                                                                                            \
        if (x[0].q2) Q8_FN(q8_rows_type)(T, 1, w, rb, r0, r1, nb, x, t, y, ys);                                        \
        else Q8_FN(q8_rows_type)(T, 0, w, rb, r0, r1, nb, x, t, y, ys);                                                \
        break;
    switch (type) {
        Q8_CASE(HL_Q4_0)
        Q8_CASE(HL_Q4_1)
        Q8_CASE(HL_Q5_0)
        Q8_CASE(HL_Q5_1)
        Q8_CASE(HL_Q8_0)
    default: hl_q8_rows_generic(type, w, rb, r0, r1, nb, x, t, y, ys); break;
    }
#undef Q8_CASE
}

#undef Q8_CAT2
#undef Q8_CAT
#undef Q8_FN
