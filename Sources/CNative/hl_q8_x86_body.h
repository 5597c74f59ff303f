// Template of the x86 int8 row kernel, included by hl_kernels_q8_x86.c once per instruction set.
// Expects Q8_SUF (name suffix), Q8_TGT (target attribute) and Q8_DOT(a, b): the eight int32 sums
// a[4k] b[4k] + ... + a[4k+3] b[4k+3] of the unsigned bytes a and signed bytes b of two __m256i
// (vpmaddubsw + vpmaddwd, or vpdpbusd; pairs stay below 2^15 since |a| <= 128, |b| <= 127), and
// Q8_DOT8, the same for the Q8_0 weights (vpmaddubsw measured faster there on Zen 4: 31 vs 37 us
// for a 1536 x 576 product; both give identical lanes).
//
// Per 32-weight block and row: the weights as 32 unsigned bytes (Q4/Q5: 0..31; Q8_0: |q_w| with
// the sign moved onto q_x), one integer dot product into eight int32 lanes, converted and
// multiplied-added with d_w d_x into eight Float32 lanes. The Q4_0 / Q5_0 offsets (-8 / -16) and
// the Q4_1 / Q5_1 minimums are applied once per row from the sums sum_b d_w s_x / m_w s_x.
// Four rows at a time share each activation block load.
//
// K-quants (Q4_K, Q6_K): per superblock and row the sub-block scales are decoded once
// (hl_q8_kscales), then each of its 8 activation blocks as above with the unsigned weights q
// (Q4_K: 0..15, Q6_K: 0..63). Q4_K: lanes * (sc d_x), minimum -mn s_x per row. Q6_K: its offset
// -32 is taken off the lanes as 32 * (sums of 4 activations), one Q8_DOT per activation block shared
// by the rows, and the lanes are scaled per 16-weight sub-block (lanes 0-3: sc0 d_x, 4-7: sc1 d_x).

#define Q8_CAT2(a, b) a##_##b
#define Q8_CAT(a, b) Q8_CAT2(a, b)
#define Q8_FN(name) Q8_CAT(name, Q8_SUF)

Q8_TGT Q8_INLINE float Q8_FN(q8_hsum)(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

Q8_TGT Q8_INLINE float Q8_FN(q8_h2f)(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/// 16 bytes of nibbles -> 32 bytes: low nibbles (weights 0..15), then high nibbles (16..31).
Q8_TGT Q8_INLINE __m256i Q8_FN(q8_nibbles)(const uint8_t *qs) {
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(15));
}

/// The 32 bits at p -> 32 bytes, 16 where bit j is set, else 0 (the fifth bit of Q5 weights).
Q8_TGT Q8_INLINE __m256i Q8_FN(q8_bits)(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    const __m256i spread = _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)v), spread);
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(16));
}

/// One block of one row against the activation block xv (int8 path) or the 16-bit values
/// 256 xv + xv2 (int16 path, `two`): acc += d_w d_x * lanes; *corr += the row's offset / minimum
/// term.
Q8_TGT Q8_INLINE void Q8_FN(q8_block)(const int type, const int two, const uint8_t *blk, __m256i xv, __m256i xv2,
                                      float dx, float sx, __m256 *acc, float *corr) {
    const float dw = Q8_FN(q8_h2f)(blk);
    __m256i a;
    switch (type) {
    case HL_Q4_0:
        a = Q8_FN(q8_nibbles)(blk + 2);
        *corr += dw * sx;
        break;
    case HL_Q4_1:
        a = Q8_FN(q8_nibbles)(blk + 4);
        *corr += Q8_FN(q8_h2f)(blk + 2) * sx;
        break;
    case HL_Q5_0:
        a = _mm256_or_si256(Q8_FN(q8_nibbles)(blk + 6), Q8_FN(q8_bits)(blk + 2));
        *corr += dw * sx;
        break;
    case HL_Q5_1:
        a = _mm256_or_si256(Q8_FN(q8_nibbles)(blk + 8), Q8_FN(q8_bits)(blk + 4));
        *corr += Q8_FN(q8_h2f)(blk + 2) * sx;
        break;
    default: {
        // Q8_0: |q_w| as the unsigned operand, its sign moved onto the activation.
        __m256i wv = _mm256_loadu_si256((const __m256i *)(blk + 2));
        a = _mm256_sign_epi8(wv, wv);
        xv = _mm256_sign_epi8(xv, wv);
        if (two) xv2 = _mm256_sign_epi8(xv2, wv);
        break;
    }
    }
    __m256i p = type == HL_Q8_0 ? Q8_DOT8(a, xv) : Q8_DOT(a, xv);
    if (two) {
        __m256i p2 = type == HL_Q8_0 ? Q8_DOT8(a, xv2) : Q8_DOT(a, xv2);
        p = _mm256_add_epi32(_mm256_slli_epi32(p, 8), p2);
    }
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * dx), *acc);
}

Q8_TGT Q8_INLINE float Q8_FN(q8_finish)(const int type, __m256 acc, float corr) {
    float s = Q8_FN(q8_hsum)(acc);
    switch (type) {
    case HL_Q4_0: return s - 8.0f * corr;
    case HL_Q5_0: return s - 16.0f * corr;
    case HL_Q4_1: case HL_Q5_1: return s + corr;
    default: return s;
    }
}

Q8_TGT Q8_INLINE void Q8_FN(q8_rows_type)(const int type, const int two, const uint8_t *w, size_t rb, int r0,
                                          int r1, int nb, const hl_q8_act *xa, int t, float *y, size_t ys) {
    const int bb = hl_q8_block_bytes(type);
    const __m256i zero = _mm256_setzero_si256();
    const uint8_t *end = w + (size_t)r1 * rb;
    for (int i = 0; i < t; i++) {
        const int8_t *xq = xa[i].q, *xq2 = xa[i].q2;
        const float *xd = xa[i].d, *xs = xa[i].s;
        float *yi = y + (size_t)i * ys;
        int r = r0;
        for (; r + 4 <= r1; r += 4) {
            __m256 acc[4];
            float corr[4];
            for (int j = 0; j < 4; j++) {
                acc[j] = _mm256_setzero_ps();
                corr[j] = 0;
            }
            const uint8_t *row = w + (size_t)r * rb;
            for (int b = 0; b < nb; b++) {
                __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + 32 * b));
                __m256i xv2 = two ? _mm256_loadu_si256((const __m256i *)(xq2 + 32 * b)) : zero;
                hl_prefetch_rows(row, rb, bb, b, end);
                for (int j = 0; j < 4; j++)
                    Q8_FN(q8_block)(type, two, row + (size_t)j * rb + (size_t)b * bb, xv, xv2, xd[b], xs[b], &acc[j],
                                    &corr[j]);
            }
            for (int j = 0; j < 4; j++) yi[r + j] = Q8_FN(q8_finish)(type, acc[j], corr[j]);
        }
        for (; r < r1; r++) {
            __m256 acc = _mm256_setzero_ps();
            float corr = 0;
            const uint8_t *row = w + (size_t)r * rb;
            for (int b = 0; b < nb; b++) {
                __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + 32 * b));
                __m256i xv2 = two ? _mm256_loadu_si256((const __m256i *)(xq2 + 32 * b)) : zero;
                Q8_FN(q8_block)(type, two, row + (size_t)b * bb, xv, xv2, xd[b], xs[b], &acc, &corr);
            }
            yi[r] = Q8_FN(q8_finish)(type, acc, corr);
        }
    }
}

/// Activation block k (< 8) of the K-quant superblock blk of one row against xv (int8) or 256 xv +
/// xv2 (int16, `two`); off, off2: Q8_DOT(32, xv / xv2) (Q6_K). sc, mn: the row's hl_q8_kscales.
Q8_TGT Q8_INLINE void Q8_FN(q8_kblock)(const int type, const int two, const uint8_t *blk, int k, __m256i xv,
                                       __m256i xv2, __m256i off, __m256i off2, float dx, float sx, const float *sc,
                                       const float *mn, __m256 *acc, float *corr) {
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256i a;
    __m256 scale;
    if (type == HL_Q4_K) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * (k >> 1)));
        a = _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(4 * (k & 1))), m4);
        scale = _mm256_set1_ps(sc[k] * dx);
        *corr += mn[k] * sx;
    } else {
        const int half = k >> 2, kk = k & 3;
        __m256i ql = _mm256_loadu_si256((const __m256i *)(blk + 64 * half + 32 * (kk & 1)));
        __m256i qh = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * half));
        __m256i lo = _mm256_and_si256(_mm256_srl_epi16(ql, _mm_cvtsi32_si128(4 * (kk >> 1))), m4);
        // Bits 2kk, 2kk+1 of each qh byte to bits 4, 5: one 16-bit shift by 4 - 2kk (left) or 2kk - 4
        // (right); the mask drops the bits that crossed between the two bytes of a word.
        __m256i hs = kk >= 2 ? _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * kk - 4))
                             : _mm256_sll_epi16(qh, _mm_cvtsi32_si128(4 - 2 * kk));
        __m256i hi = _mm256_and_si256(hs, _mm256_set1_epi8(0x30));
        a = _mm256_or_si256(lo, hi);
        scale = _mm256_set_m128(_mm_set1_ps(sc[2 * k + 1] * dx), _mm_set1_ps(sc[2 * k] * dx));
    }
    __m256i p = Q8_DOT(a, xv);
    if (type == HL_Q6_K) p = _mm256_sub_epi32(p, off);
    if (two) {
        __m256i p2 = Q8_DOT(a, xv2);
        if (type == HL_Q6_K) p2 = _mm256_sub_epi32(p2, off2);
        p = _mm256_add_epi32(_mm256_slli_epi32(p, 8), p2);
    }
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, *acc);
}

Q8_TGT Q8_INLINE void Q8_FN(q8_rows_k)(const int type, const int two, const uint8_t *w, size_t rb, int r0, int r1,
                                       int nb, const hl_q8_act *xa, int t, float *y, size_t ys) {
    const int sbb = hl_q8_super_bytes(type), bb = hl_q8_prefetch_bytes(type, rb, nb);
    const __m256i zero = _mm256_setzero_si256(), m32 = _mm256_set1_epi8(32);
    const uint8_t *end = w + (size_t)r1 * rb;
    for (int i = 0; i < t; i++) {
        const int8_t *xq = xa[i].q, *xq2 = xa[i].q2;
        const float *xd = xa[i].d, *xs = xa[i].s;
        float *yi = y + (size_t)i * ys;
        int r = r0;
        for (; r + 4 <= r1; r += 4) {
            __m256 acc[4];
            float corr[4];
            float sc[4][16], mn[4][8];   // [row][sub-block] scales of the current superblock
            for (int j = 0; j < 4; j++) {
                acc[j] = _mm256_setzero_ps();
                corr[j] = 0;
            }
            const uint8_t *row = w + (size_t)r * rb;
            for (int sb = 0; sb < nb / 8; sb++) {
                for (int j = 0; j < 4; j++) hl_q8_kscales(type, row + (size_t)j * rb + (size_t)sb * sbb, sc[j], mn[j]);
                for (int k = 0; k < 8; k++) {
                    const int b = 8 * sb + k;
                    __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + 32 * b));
                    __m256i xv2 = two ? _mm256_loadu_si256((const __m256i *)(xq2 + 32 * b)) : zero;
                    __m256i off = type == HL_Q6_K ? Q8_DOT(m32, xv) : zero;
                    __m256i off2 = type == HL_Q6_K && two ? Q8_DOT(m32, xv2) : zero;
                    hl_prefetch_rows(row, rb, bb, b, end);
                    for (int j = 0; j < 4; j++)
                        Q8_FN(q8_kblock)(type, two, row + (size_t)j * rb + (size_t)sb * sbb, k, xv, xv2, off, off2,
                                         xd[b], xs[b], sc[j], mn[j], &acc[j], &corr[j]);
                }
            }
            for (int j = 0; j < 4; j++) yi[r + j] = Q8_FN(q8_hsum)(acc[j]) - corr[j];
        }
        for (; r < r1; r++) {
            __m256 acc = _mm256_setzero_ps();
            float corr = 0, sc[16], mn[8];
            const uint8_t *row = w + (size_t)r * rb;
            for (int sb = 0; sb < nb / 8; sb++) {
                hl_q8_kscales(type, row + (size_t)sb * sbb, sc, mn);
                for (int k = 0; k < 8; k++) {
                    const int b = 8 * sb + k;
                    __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + 32 * b));
                    __m256i xv2 = two ? _mm256_loadu_si256((const __m256i *)(xq2 + 32 * b)) : zero;
                    __m256i off = type == HL_Q6_K ? Q8_DOT(m32, xv) : zero;
                    __m256i off2 = type == HL_Q6_K && two ? Q8_DOT(m32, xv2) : zero;
                    Q8_FN(q8_kblock)(type, two, row + (size_t)sb * sbb, k, xv, xv2, off, off2, xd[b], xs[b], sc, mn,
                                     &acc, &corr);
                }
            }
            yi[r] = Q8_FN(q8_hsum)(acc) - corr;
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
