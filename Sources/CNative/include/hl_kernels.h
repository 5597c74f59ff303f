#ifndef HEADLIGHT_HL_KERNELS_H
#define HEADLIGHT_HL_KERNELS_H
// Hot numeric kernels of the forward pass (Sources/Inference/Model/Kernels.swift calls them).
//
// Every kernel exists in three builds of the same source: AVX-512 (x86-64-v4 subset), AVX2+FMA
// (x86-64-v3) and portable C. The level is chosen once at first use from the CPU (cpuid + XCR0,
// see hl_cpu_probe); HEADLIGHT_KERNELS=scalar|avx2|avx512 lowers it, and tests can switch with
// hl_kernels_set_level. Work is split over a small thread pool (hl_kernels_set_threads).
#include <stddef.h>
#include <stdint.h>

enum { HL_KERNELS_SCALAR = 0, HL_KERNELS_AVX2 = 1, HL_KERNELS_AVX512 = 2 };

/// The active kernel level (HL_KERNELS_*).
int hl_kernels_level(void);
/// The highest level this CPU supports.
int hl_kernels_max_level(void);
/// Sets the level (clamped to what the CPU supports); returns the level now active.
int hl_kernels_set_level(int level);
/// "scalar", "avx2" or "avx512".
const char *hl_kernels_level_name(int level);

/// Threads used by the kernels (the calling thread plus n - 1 pool workers). Default: the number
/// of online CPUs, at most 8. Pool workers spin briefly after a job, then sleep.
int hl_kernels_threads(void);
void hl_kernels_set_threads(int n);

// MARK: Quantized matrix products

/// ggml type ids of the quantized weight formats with direct matrix-vector kernels.
enum { HL_Q4_0 = 2, HL_Q4_1 = 3, HL_Q8_0 = 8, HL_Q4_K = 12, HL_Q6_K = 14 };

/// Whether `hl_qmatmul` supports ggml type `type`.
int hl_qtype_supported(int type);

/// y[i, r] = sum_c W[r, c] * x[i, c] for i < t, r < rows: a linear layer on t activation rows
/// (x rows `x_stride` floats apart, y rows `y_stride` apart) with W [rows, cols] kept in ggml block
/// format `type`, rows `row_bytes` apart. Each weight is decoded to exactly the Float32 value the
/// dequantizer gives (GGUF/Dequantize.swift), so results differ from an f32 product only by the
/// order of summation. Multithreaded over rows. cols must be a multiple of the block size.
void hl_qmatmul(int type, const void *w, size_t row_bytes, int rows, int cols,
                const float *x, size_t x_stride, int t, float *y, size_t y_stride);

/// C[m, n] = A[m, k] · B[n, k]ᵀ (row-major sgemm, no transposes of A), split over the kernel pool
/// by columns with OpenBLAS held to one thread during the call (one pool for all parallel work,
/// so OpenBLAS's own threads never compete with it). Small products run directly.
void hl_sgemm_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc);

// MARK: Attention

/// Causal grouped-query attention of t queries at positions p..<p+t over the s = p + t cached keys,
/// without materializing the [t, s] probabilities: per (KV head, block of queries) it multiplies
/// query and key tiles with sgemm, keeps a running max and sum per row (online softmax) and adds
/// P·V tiles with sgemm; tiles entirely above the diagonal are skipped. Work items run on the
/// kernel pool with OpenBLAS held to one thread. Layouts as Kernels.causalAttention:
/// q, z [t, h, dh]; k, v [>= s, hkv, dh]. Memory: per thread O(rows * (block + dh)) floats.
void hl_attention_prefill(const float *q, const float *k, const float *v, float *z,
                          int t, int p, int h, int hkv, int dh, float scale);

/// One query row (t = 1) at position s - 1 over s keys, every head in parallel.
void hl_attention_decode(const float *q, const float *k, const float *v, float *z,
                         int s, int h, int hkv, int dh, float scale);

/// Query tile rows per work item and key tile width of hl_attention_prefill (0: keep). For tests
/// and tuning.
void hl_attention_set_tiles(int query_rows, int key_cols);

// MARK: Vector helpers

/// Softmax of x[0..<n] in place (max-subtracted; exp as Kernels.fastExp).
void hl_softmax(float *x, int n);
/// y = x / sqrt(mean(x^2) + eps) * w per row (sum of squares in double), rows `d` floats wide; y may alias x.
void hl_rmsnorm(const float *x, int rows, int d, const float *w, float eps, float *y);
/// gate[i] = silu(gate[i]) * up[i].
void hl_swiglu(float *gate, const float *up, size_t n);
/// y[i] += x[i].
void hl_add(float *y, const float *x, size_t n);
/// exp of n floats (Cephes, as Kernels.fastExp), for tests.
void hl_exp(const float *x, float *y, size_t n);

#endif
