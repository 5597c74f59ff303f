#ifndef HEADLIGHT_HL_BLAS_CHECK_H
#define HEADLIGHT_HL_BLAS_CHECK_H
#include <stdint.h>

/// Runs one row-major cblas_sgemm, C = alpha * op(A) * op(B) + beta * C0, with op(A) m×k and
/// op(B) k×n, on deterministic pseudo-random inputs in [-1, 1) (from `seed`), and compares
/// it with a double-precision reference computed from the same float inputs.
/// Returns the normalized componentwise error
///     max_ij |C_ij - R_ij| / (|alpha| (|op(A)| |op(B)|)_ij + |beta| |C0_ij|),
/// which any correct float32 implementation keeps below gamma_(k+2) ~ (k+2) * 2^-24,
/// whatever its summation order or use of FMA. Returns INFINITY if the result has a
/// NaN/Inf, and -1 if memory could not be allocated.
double hl_sgemm_check(int m, int n, int k, int transA, int transB,
                      float alpha, float beta, uint64_t seed);

/// Times `repeats` (>= 1) calls of an n×n×n row-major sgemm (no transposes) after one
/// untimed warm-up call; writes wall-clock seconds per call into seconds[0..repeats).
/// Returns 0 on success, -1 if memory could not be allocated.
int hl_sgemm_time(int n, int repeats, double *seconds);

#endif
