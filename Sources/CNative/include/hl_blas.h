#ifndef HEADLIGHT_HL_BLAS_H
#define HEADLIGHT_HL_BLAS_H
#include <stddef.h>
#include <stdint.h>
#include <cblas.h>

/// Name of the kernel OpenBLAS chose at load time ("Prescott", "Haswell", "SkylakeX", ...).
const char *hl_blas_corename(void);
/// OpenBLAS build configuration string and thread count.
const char *hl_blas_config(void);
int hl_blas_num_threads(void);
void hl_blas_set_num_threads(int n);

/// CPU feature bits read with cpuid (x86-64; all zero elsewhere).
typedef struct {
    int sse3, avx, fma, avx2, avx512f, avx512dq, avx512cd, avx512bw, avx512vl, avx512_bf16, avx512_vnni, f16c;
    int vendor_intel, vendor_amd;
    int family, model;
} hl_cpu_features;
hl_cpu_features hl_cpu_probe(void);

#endif
