// aarch64 int8 row kernels (see hl_kernels_q8.c for the arithmetic): one body, hl_q8_neon_body.h,
// instantiated for plain NEON (vmull_s8 + vmlal_s8 + vpadalq_s16) and the ARMv8.2 dot product
// (vdotq_s32, under a function-level target attribute, chosen at run time from HWCAP_ASIMDDP).
// Q4_0 / Q5_0 weights are made signed (q - 8, q - 16) before the product, so every block's
// integer sum is the exact sum((q_w - offset) q_x).

#include "hl_kernels.h"
#include "hl_kernels_q8.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define Q8_INLINE static inline __attribute__((always_inline))

/// acc + the pairwise products of a and b summed into four int32 lanes (any grouping: only the
/// total of the lanes matters). Pairs stay within int16: |a| <= 128, |b| <= 127.
Q8_INLINE int32x4_t q8_dot_mull(int32x4_t acc, int8x16_t a, int8x16_t b) {
    int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    p = vmlal_s8(p, vget_high_s8(a), vget_high_s8(b));
    return vpadalq_s16(acc, p);
}

#define Q8_SUF neon
#define Q8_TGT
#define Q8_DOT(acc, a, b) q8_dot_mull((acc), (a), (b))
#include "hl_q8_neon_body.h"
#undef Q8_SUF
#undef Q8_TGT
#undef Q8_DOT

#define Q8_SUF neondot
#define Q8_TGT __attribute__((target("dotprod")))
#define Q8_DOT(acc, a, b) vdotq_s32((acc), (a), (b))
#include "hl_q8_neon_body.h"
#undef Q8_SUF
#undef Q8_TGT
#undef Q8_DOT

#endif
