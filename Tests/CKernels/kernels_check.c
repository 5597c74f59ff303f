// Cross-level check of the native kernels in plain C, for machines where the Swift test suite
// cannot run (aarch64 under qemu-user): every kernel level the CPU supports against a Double
// reference (quantized products: float, int8 and int16 paths) and against the generic level
// (attention). See README.md for the build commands. Exit status 1 on any failure.
#include "hl_kernels.h"
#include "hl_kernels_q8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HL_NAIVE_BLAS
// No OpenBLAS for the target: a plain sgemm (row-major only, as hl_kernels.c calls it).
#include <cblas.h>
void cblas_sgemm(OPENBLAS_CONST enum CBLAS_ORDER order, OPENBLAS_CONST enum CBLAS_TRANSPOSE ta,
                 OPENBLAS_CONST enum CBLAS_TRANSPOSE tb, OPENBLAS_CONST blasint m, OPENBLAS_CONST blasint n,
                 OPENBLAS_CONST blasint k, OPENBLAS_CONST float alpha, OPENBLAS_CONST float *a,
                 OPENBLAS_CONST blasint lda, OPENBLAS_CONST float *b, OPENBLAS_CONST blasint ldb,
                 OPENBLAS_CONST float beta, float *c, OPENBLAS_CONST blasint ldc) {
    (void)order;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) {
                float av = ta == CblasNoTrans ? a[(size_t)i * lda + p] : a[(size_t)p * lda + i];
                float bv = tb == CblasNoTrans ? b[(size_t)p * ldb + j] : b[(size_t)j * ldb + p];
                s += (double)av * bv;
            }
            c[(size_t)i * ldc + j] = (float)(alpha * s + (beta == 0 ? 0 : beta * c[(size_t)i * ldc + j]));
        }
}
int openblas_get_num_threads(void) { return 1; }
void openblas_set_num_threads(int n) { (void)n; }
#endif

static uint64_t rng = 88172645463325252ULL;
static uint32_t next_u32(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)(next_u32() & 0xffffff) / 16777216.0f; }

static uint16_t f2h(float f) {   // round to nearest binary16 (normal range only: the scales used here)
    uint32_t u; memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int e = (int)((u >> 23) & 0xff) - 127 + 15;
    uint32_t mant = u & 0x7fffff;
    if (e <= 0) return (uint16_t)sign;
    uint32_t h = sign | ((uint32_t)e << 10) | (mant >> 13);
    if ((mant & 0x1fff) > 0x1000 || ((mant & 0x1fff) == 0x1000 && (h & 1))) h++;
    return (uint16_t)h;
}
static double h2d(const uint8_t *p) {
    uint16_t h = (uint16_t)(p[0] | p[1] << 8);
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}
static void put_half(uint8_t *p, float v) { uint16_t h = f2h(v); p[0] = (uint8_t)h; p[1] = (uint8_t)(h >> 8); }

static int block_bytes(int type) {
    switch (type) { case HL_Q4_0: return 18; case HL_Q4_1: return 20; case HL_Q5_0: return 22;
                    case HL_Q5_1: return 24; case HL_Q4_K: return 144; case HL_Q6_K: return 210; default: return 34; }
}
static int block_size(int type) { return type == HL_Q4_K || type == HL_Q6_K ? 256 : 32; }
static const char *type_name(int type) {
    switch (type) { case HL_Q4_0: return "Q4_0"; case HL_Q4_1: return "Q4_1"; case HL_Q5_0: return "Q5_0";
                    case HL_Q5_1: return "Q5_1"; case HL_Q4_K: return "Q4_K"; case HL_Q6_K: return "Q6_K";
                    default: return "Q8_0"; }
}

/// The block_size(type) weights of one block in Double (ggml's dequantization, llama.cpp's
/// dequantize_row_q4_K / _q6_K for the K-quants; exact).
static void dequant(int type, const uint8_t *b, double *w) {
    double d = h2d(b);
    uint32_t qh = 0;
    switch (type) {
    case HL_Q4_K: {
        const uint8_t *sc = b + 4;
        for (int j = 0; j < 8; j++) {
            int s = j < 4 ? sc[j] & 63 : (sc[j + 4] & 15) | (sc[j - 4] >> 6) << 4;
            int m = j < 4 ? sc[j + 4] & 63 : (sc[j + 4] >> 4) | (sc[j] >> 6) << 4;
            for (int l = 0; l < 32; l++) {
                int q = j & 1 ? b[16 + 32 * (j / 2) + l] >> 4 : b[16 + 32 * (j / 2) + l] & 15;
                w[32 * j + l] = d * s * q - h2d(b + 2) * m;
            }
        }
        break;
    }
    case HL_Q6_K:
        d = h2d(b + 208);
        for (int n = 0; n < 2; n++) {
            const uint8_t *ql = b + 64 * n, *qh6 = b + 128 + 32 * n;
            const int8_t *sc = (const int8_t *)(b + 192 + 8 * n);
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                w[128 * n + l] = d * sc[is] * (((ql[l] & 15) | ((qh6[l] >> 0) & 3) << 4) - 32);
                w[128 * n + l + 32] = d * sc[is + 2] * (((ql[l + 32] & 15) | ((qh6[l] >> 2) & 3) << 4) - 32);
                w[128 * n + l + 64] = d * sc[is + 4] * (((ql[l] >> 4) | ((qh6[l] >> 4) & 3) << 4) - 32);
                w[128 * n + l + 96] = d * sc[is + 6] * (((ql[l + 32] >> 4) | ((qh6[l] >> 6) & 3) << 4) - 32);
            }
        }
        break;
    case HL_Q4_0: for (int j = 0; j < 16; j++) { w[j] = ((b[2 + j] & 15) - 8) * d; w[j + 16] = ((b[2 + j] >> 4) - 8) * d; } break;
    case HL_Q4_1: for (int j = 0; j < 16; j++) { w[j] = (b[4 + j] & 15) * d + h2d(b + 2); w[j + 16] = (b[4 + j] >> 4) * d + h2d(b + 2); } break;
    case HL_Q5_0:
        memcpy(&qh, b + 2, 4);
        for (int j = 0; j < 16; j++) {
            w[j] = ((int)((b[6 + j] & 15) | ((qh >> j) & 1) << 4) - 16) * d;
            w[j + 16] = ((int)((b[6 + j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16) * d;
        }
        break;
    case HL_Q5_1:
        memcpy(&qh, b + 4, 4);
        for (int j = 0; j < 16; j++) {
            w[j] = ((b[8 + j] & 15) | ((qh >> j) & 1) << 4) * d + h2d(b + 2);
            w[j + 16] = ((b[8 + j] >> 4) | ((qh >> (j + 16)) & 1) << 4) * d + h2d(b + 2);
        }
        break;
    default: for (int j = 0; j < 32; j++) w[j] = (int8_t)b[2 + j] * d; break;
    }
}

static int failures = 0;

static void check_qmatmul(int type, int rows, int cols) {
    const int nb = cols / 32, bb = block_bytes(type), nw = cols / block_size(type);   // nw blocks per row
    uint8_t *w = malloc((size_t)rows * nw * bb);
    for (int i = 0; i < rows * nw * bb; i++) w[i] = (uint8_t)next_u32();
    for (int b = 0; b < rows * nw; b++) {
        uint8_t *blk = w + (size_t)b * bb;
        if (type == HL_Q4_K) {   // scales of the size real models have (KernelTests.randomBlocks)
            put_half(blk, uniform(0.0005f, 0.005f));
            put_half(blk + 2, uniform(0.0005f, 0.005f));
        } else if (type == HL_Q6_K) {
            put_half(blk + 208, uniform(-0.002f, 0.002f));
        } else {
            put_half(blk, type == HL_Q4_1 || type == HL_Q5_1 ? uniform(0.001f, 0.05f) : uniform(-0.05f, 0.05f));
        }
        if (type == HL_Q4_1 || type == HL_Q5_1) put_half(blk + 2, uniform(-0.4f, 0));
    }
    double *wrow = malloc(sizeof(double) * cols);   // [cols] one dequantized row
    for (int t = 1; t <= 5; t += 2) {
        float *x = malloc(sizeof(float) * t * cols), *y = malloc(sizeof(float) * t * rows);
        for (int i = 0; i < t * cols; i++) x[i] = uniform(-1, 1) * (i % 7 == 0 ? 4.0f : 1.0f);
        int8_t *xq = malloc((size_t)t * cols), *yq = malloc((size_t)t * cols), *yq2 = malloc((size_t)t * cols);
        float *xd = malloc(sizeof(float) * t * nb), *yd = malloc(sizeof(float) * t * nb);
        hl_quantize_q8_32(x, t * cols, xq, xd);
        hl_q8_quantize(x, t * cols, yq, yq2, yd, NULL, NULL);
        for (int mode = 0; mode < 3; mode++) {
            hl_qdot_set_mode(mode);
            for (int level = 0; level < HL_KERNELS_LEVELS; level++) {
                if (!hl_kernels_level_supported(level)) continue;
                hl_kernels_set_level(level);
                hl_qmatmul(type, w, (size_t)nw * bb, rows, cols, x, cols, t, y, rows);
                double worst = 0, worst_bound = 0;
                for (int i = 0; i < t; i++)
                    for (int r = 0; r < rows; r++) {
                        double ref = 0, mag = 0, exact = 0, bound = 0;
                        for (int b = 0; b < nw; b++)
                            dequant(type, w + ((size_t)r * nw + b) * bb, wrow + (size_t)b * block_size(type));
                        for (int b = 0; b < nb; b++) {
                            const double *wq = wrow + 32 * b;
                            double amax = 0, wsum = 0;
                            for (int j = 0; j < 32; j++) {
                                int c = 32 * b + j;
                                double xv = mode == HL_QDOT_INT8    ? xd[i * nb + b] * xq[i * cols + c]
                                            : mode == HL_QDOT_INT16 ? yd[i * nb + b] * (256.0 * yq[i * cols + c] +
                                                                                        yq2[i * cols + c])
                                                                    : x[i * cols + c];
                                ref += wq[j] * xv;
                                mag += fabs(wq[j] * xv);
                                exact += wq[j] * x[i * cols + c];
                                amax = fmax(amax, fabs(x[i * cols + c]));
                                wsum += fabs(wq[j]);
                            }
                            bound += amax / (mode == HL_QDOT_INT16 ? 32512.0 : 254.0) * wsum;
                        }
                        double e = fabs(y[i * rows + r] - ref) / (mag > 1e-30 ? mag : 1e-30);
                        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
                        // The documented bound against the unquantized activations (hl_qmatmul).
                        if (mode != HL_QDOT_FLOAT) {
                            double eb = fabs(y[i * rows + r] - exact) / (bound + 1e-5 * mag);
                            if (!(eb <= worst_bound)) worst_bound = isnan(eb) ? INFINITY : eb;
                        }
                    }
                int ok = worst <= 1e-5 && worst_bound <= 1;
                failures += !ok;
                printf("%-4s qmatmul %s %dx%d %-5s t %d: max error / magnitude %.2e %s\n", ok ? "ok" : "FAIL",
                       type_name(type), rows, cols, hl_qdot_mode_name(mode), t, worst, hl_kernels_level_name(level));
            }
        }
        free(x); free(y); free(xq); free(xd); free(yq); free(yq2); free(yd);
    }
    free(w); free(wrow);
}

static void check_attention(void) {
    const int h = 6, hkv = 2, dh = 64, p = 300, t = 1, s = p + t;
    float *q = malloc(sizeof(float) * 33 * h * dh), *k = malloc(sizeof(float) * (p + 33) * hkv * dh);
    float *v = malloc(sizeof(float) * (p + 33) * hkv * dh), *z = malloc(sizeof(float) * 33 * h * dh);
    float *zref = malloc(sizeof(float) * 33 * h * dh);
    for (int i = 0; i < 33 * h * dh; i++) q[i] = uniform(-2, 2);
    for (int i = 0; i < (p + 33) * hkv * dh; i++) { k[i] = uniform(-2, 2); v[i] = uniform(-1, 1); }
    for (int kind = 0; kind < 2; kind++) {
        int tt = kind ? 33 : t;
        for (int level = 0; level < HL_KERNELS_LEVELS; level++) {
            if (!hl_kernels_level_supported(level)) continue;
            hl_kernels_set_level(level);
            float *out = level == 0 ? zref : z;
            if (kind) hl_attention_prefill(q, k, v, out, tt, p, h, hkv, dh, 0.125f);
            else hl_attention_decode(q, k, v, out, s, h, hkv, dh, 0.125f);
            double worst = 0;
            for (int i = 0; i < tt * h * dh; i++) {
                double e = fabs((double)out[i] - zref[i]);
                if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
            }
            int ok = worst <= 1e-5;
            failures += !ok;
            printf("%-4s attention %s vs generic: max |diff| %.2e %s\n", ok ? "ok" : "FAIL",
                   kind ? "prefill" : "decode", worst, hl_kernels_level_name(level));
        }
    }
    free(q); free(k); free(v); free(z); free(zref);
}

int main(void) {
    printf("kernel levels:");
    for (int l = 0; l < HL_KERNELS_LEVELS; l++)
        printf(" %s%s", hl_kernels_level_name(l), hl_kernels_level_supported(l) ? "" : " (unsupported, skipped)");
    printf("\nbest: %s\n", hl_kernels_level_name(hl_kernels_max_level()));
    hl_kernels_set_threads(2);
    const int types[] = {HL_Q4_0, HL_Q4_1, HL_Q5_0, HL_Q5_1, HL_Q8_0};
    for (int i = 0; i < 5; i++) {
        check_qmatmul(types[i], 37, 320);
        check_qmatmul(types[i], 1536, 576);   // SmolLM2's FFN shape: split over the thread pool
    }
    // K-quants: odd rows (the 4-row kernel's remainder) and Gemma 3 270M's attn_output (Q4_K) and
    // ffn_down (Q6_K) shapes, split over the thread pool.
    check_qmatmul(HL_Q4_K, 37, 512);
    check_qmatmul(HL_Q4_K, 640, 1024);
    check_qmatmul(HL_Q6_K, 37, 512);
    check_qmatmul(HL_Q6_K, 640, 2048);
    check_attention();
    printf("%s: %d failures\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}
