// Verification and timing helpers for BLASRuntime (Sources/Inference/BLAS).
// Compiled with -O2 in every configuration, so the double-precision reference
// stays cheap enough to run at process start even in debug builds.
#include "hl_blas_check.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void fill(float *p, size_t count, uint64_t *seed) {
    // 24 random bits -> exactly representable floats in [-1, 1).
    for (size_t i = 0; i < count; i++)
        p[i] = (float)((double)(splitmix(seed) >> 40) / 8388608.0 - 1.0);
}

double hl_sgemm_check(int m, int n, int k, int transA, int transB,
                      float alpha, float beta, uint64_t seed) {
    if (m < 1 || n < 1 || k < 1) return -1;
    // Storage: A is m×k (lda = k) or, transposed, k×m (lda = m); likewise B.
    float *a = malloc(sizeof(float) * (size_t)m * k);
    float *b = malloc(sizeof(float) * (size_t)k * n);
    float *c = malloc(sizeof(float) * (size_t)m * n);
    float *c0 = malloc(sizeof(float) * (size_t)m * n);
    if (!a || !b || !c || !c0) { free(a); free(b); free(c); free(c0); return -1; }
    uint64_t s = seed;
    fill(a, (size_t)m * k, &s);
    fill(b, (size_t)k * n, &s);
    fill(c0, (size_t)m * n, &s);
    for (size_t i = 0; i < (size_t)m * n; i++) c[i] = c0[i];
    int lda = transA ? m : k, ldb = transB ? k : n;
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                m, n, k, alpha, a, lda, b, ldb, beta, c, n);
    double worst = 0;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double ref = 0, mag = 0;
            for (int p = 0; p < k; p++) {
                double x = transA ? a[(size_t)p * m + i] : a[(size_t)i * k + p];
                double y = transB ? b[(size_t)j * k + p] : b[(size_t)p * n + j];
                ref += x * y;
                mag += fabs(x * y);
            }
            double c0ij = c0[(size_t)i * n + j];
            ref = (double)alpha * ref + (double)beta * c0ij;
            mag = fabs((double)alpha) * mag + fabs((double)beta) * fabs(c0ij);
            double got = c[(size_t)i * n + j];
            if (!isfinite(got)) { worst = INFINITY; goto done; }
            double err = fabs(got - ref);
            double rel = mag > 0 ? err / mag : err;
            if (rel > worst) worst = rel;
        }
    }
done:
    free(a); free(b); free(c); free(c0);
    return worst;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int hl_sgemm_time(int n, int repeats, double *seconds) {
    if (n < 1 || repeats < 1) return -1;
    size_t count = (size_t)n * n;
    float *a = NULL, *b = NULL, *c = NULL;
    if (posix_memalign((void **)&a, 64, sizeof(float) * count) ||
        posix_memalign((void **)&b, 64, sizeof(float) * count) ||
        posix_memalign((void **)&c, 64, sizeof(float) * count)) {
        free(a); free(b); free(c);
        return -1;
    }
    uint64_t s = 42;
    fill(a, count, &s);
    fill(b, count, &s);
    for (int r = -1; r < repeats; r++) {
        double t0 = now_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n,
                    1.0f, a, n, b, n, 0.0f, c, n);
        double t1 = now_seconds();
        if (r >= 0) seconds[r] = t1 - t0;
    }
    free(a); free(b); free(c);
    return 0;
}
