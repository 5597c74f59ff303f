// x86 int8 row kernels (see hl_kernels_q8.c for the arithmetic): one body, hl_q8_x86_body.h,
// instantiated for AVX2 (vpmaddubsw + vpmaddwd), AVX-VNNI (VEX vpdpbusd) and AVX-512 VNNI
// (EVEX vpdpbusd on 256-bit vectors; on Zen 4 512-bit operations run as two 256-bit halves).
// Function-level target attributes: the file compiles for baseline x86-64.

#include "hl_kernels.h"
#include "hl_kernels_q8.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define Q8_INLINE static inline __attribute__((always_inline))

#define Q8_SUF avx2
#define Q8_TGT __attribute__((target("avx2,fma,f16c")))
#define Q8_DOT(a, b) _mm256_madd_epi16(_mm256_maddubs_epi16((a), (b)), _mm256_set1_epi16(1))
#define Q8_DOT8 Q8_DOT
#include "hl_q8_x86_body.h"
#undef Q8_SUF
#undef Q8_TGT
#undef Q8_DOT
#undef Q8_DOT8

#define Q8_SUF avx2vnni
#define Q8_TGT __attribute__((target("avx2,fma,f16c,avxvnni")))
#define Q8_DOT(a, b) _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), (a), (b))
#define Q8_DOT8(a, b) _mm256_madd_epi16(_mm256_maddubs_epi16((a), (b)), _mm256_set1_epi16(1))
#include "hl_q8_x86_body.h"
#undef Q8_SUF
#undef Q8_TGT
#undef Q8_DOT
#undef Q8_DOT8

#define Q8_SUF avx512vnni
#define Q8_TGT __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")))
#define Q8_DOT(a, b) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (a), (b))
#define Q8_DOT8(a, b) _mm256_madd_epi16(_mm256_maddubs_epi16((a), (b)), _mm256_set1_epi16(1))
#include "hl_q8_x86_body.h"
#undef Q8_SUF
#undef Q8_TGT
#undef Q8_DOT
#undef Q8_DOT8

#endif
