#ifndef HEADLIGHT_HL_KERNELS_H
#define HEADLIGHT_HL_KERNELS_H
// Hot numeric kernels of the forward pass (Sources/Inference/Model/Kernels.swift calls them).
//
// Every kernel exists in several builds of the same source, one per instruction-set level, chosen
// once at first use from the CPU (x86: cpuid + XCR0, see hl_cpu_probe; aarch64: getauxval(AT_HWCAP)
// or sysctl on macOS). HEADLIGHT_KERNELS=<level name> lowers it (a level the CPU lacks falls back
// to the best one below it), and tests can switch with hl_kernels_set_level. Per-function target
// attributes select the instructions, so the file compiles for baseline x86-64 / armv8-a.
// Work is split over a small thread pool (hl_kernels_set_threads).
#include <stddef.h>
#include <stdint.h>

/// Kernel levels. The ids are stable; which ones a CPU supports: hl_kernels_level_supported.
/// Fallback order when a level is unsupported: avx512-vnni > avx512 > avx2 > generic,
/// avx2-vnni > avx2, neon-dotprod > neon > generic.
enum {
    HL_KERNELS_SCALAR = 0,          // "generic": portable C (the compiler's baseline vectorization)
    HL_KERNELS_GENERIC = 0,
    HL_KERNELS_AVX2 = 1,            // AVX2 + FMA + F16C (x86-64-v3: Haswell, Zen 1)
    HL_KERNELS_AVX512 = 2,          // AVX-512 F/BW/DQ/VL
    HL_KERNELS_AVX512_VNNI = 3,     // AVX-512 + VNNI (vpdpbusd)
    HL_KERNELS_NEON = 4,            // aarch64 Advanced SIMD
    HL_KERNELS_NEON_DOTPROD = 5,    // aarch64 + dot product (sdot, HWCAP_ASIMDDP)
    HL_KERNELS_AVX2_VNNI = 6,       // AVX2 + AVX-VNNI (VEX vpdpbusd; Alder Lake without AVX-512)
    HL_KERNELS_LEVELS = 7
};

/// The active kernel level (HL_KERNELS_*).
int hl_kernels_level(void);
/// The best level this CPU supports.
int hl_kernels_max_level(void);
/// Whether this CPU (and OS) supports `level`.
int hl_kernels_level_supported(int level);
/// Sets the level (an unsupported level falls back as above); returns the level now active.
int hl_kernels_set_level(int level);
/// "generic", "avx2", "avx2-vnni", "avx512", "avx512-vnni", "neon" or "neon-dotprod"
/// ("?" for an unknown id).
const char *hl_kernels_level_name(int level);
/// The active kernel set in one line for `headlight doctor`, e.g.
/// "avx512-vnni (best: avx512-vnni), quantized products: int8 activations, 2 threads".
const char *hl_kernels_summary(void);

/// Threads used by the kernels (the calling thread plus n - 1 pool workers). Default: the number
/// of online CPUs, at most 8. Pool workers spin briefly after a job, then sleep.
int hl_kernels_threads(void);
void hl_kernels_set_threads(int n);

// MARK: Quantized matrix products

/// ggml type ids of the quantized weight formats with direct matrix-vector kernels.
enum { HL_Q4_0 = 2, HL_Q4_1 = 3, HL_Q5_0 = 6, HL_Q5_1 = 7, HL_Q8_0 = 8, HL_Q4_K = 12, HL_Q6_K = 14 };

/// Whether `hl_qmatmul` supports ggml type `type`.
int hl_qtype_supported(int type);

/// y[i, r] = sum_c W[r, c] * x[i, c] for i < t, r < rows: a linear layer on t activation rows
/// (x rows `x_stride` floats apart, y rows `y_stride` apart) with W [rows, cols] kept in ggml block
/// format `type`, rows `row_bytes` apart. Multithreaded over rows. cols must be a multiple of the
/// block size. Two arithmetic paths (hl_qdot_set_mode):
/// - float: each weight is decoded to exactly the Float32 value the dequantizer gives
///   (GGUF/Dequantize.swift), so results differ from an f32 product only by the order of summation.
/// - int8 (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K; other types use the float path): each
///   32-value block of x is quantized to 8 bits (hl_quantize_q8_32) and multiplied with integer dot
///   products, as llama.cpp's ggml_vec_dot_q4_1_q8_1 and friends: per block (d_w d_x) *
///   sum(q_w q_x), plus m_w * d_x * sum(q_x) for the formats with a minimum (K-quants: the
///   sub-block scale d * sc in place of d_w, one per 16 weights for Q6_K, and Q4_K's -dmin * m).
///   The error against the float path is bounded by sum over blocks of (max|x_b| / 254) *
///   sum_{c in b} |W[r, c]| (plus float rounding).
/// - int16 (same types): x to 16 bits per 32-value block, multiplied as two int8 dot products;
///   the bound becomes sum over blocks of (max|x_b| / 32512) * sum_{c in b} |W[r, c]|.
void hl_qmatmul(int type, const void *w, size_t row_bytes, int rows, int cols,
                const float *x, size_t x_stride, int t, float *y, size_t y_stride);

/// hl_qmatmul for batched decoding: y[i, :] is bit for bit what hl_qmatmul gives for activation row
/// i alone (t == 1), at every kernel level and in every mode, while each weight block is read once
/// for all t rows (decoding is bound by streaming the weights). Float path: the level's t == 1
/// arithmetic (Q4_0 / Q4_1 / Q8_0 on AVX-512 and AVX2: q32_rows_avx512's / q32_rows_avx2's, each
/// block decoded once for two activation rows); int8 / int16: hl_qmatmul itself (its rows are
/// quantized and multiplied one by one).
void hl_qmatmul_rows(int type, const void *w, size_t row_bytes, int rows, int cols,
                     const float *x, size_t x_stride, int t, float *y, size_t y_stride);

/// Arithmetic of the quantized products: HL_QDOT_FLOAT (the reference), HL_QDOT_INT8 or
/// HL_QDOT_INT16 (activations to 16 bits per 32-value block, as two int8 dot products; see
/// hl_kernels_q8.c). Default: HEADLIGHT_QDOT=float|int8|int16 at first use, else float. The int8
/// path is 1.7-4x faster per product but fails the model-fidelity bar (logits within 1e-2 of
/// transformers, identical greedy continuations) on SmolLM2-135M, so it is opt-in (see
/// hl_kernels.c, hl_qdot_mode).
enum { HL_QDOT_FLOAT = 0, HL_QDOT_INT8 = 1, HL_QDOT_INT16 = 2 };
int hl_qdot_mode(void);
/// Sets the mode (0, 1 or 2); returns the mode now active.
int hl_qdot_set_mode(int mode);
/// "float", "int8" or "int16".
const char *hl_qdot_mode_name(int mode);
/// Whether the int8 and int16 paths cover ggml type `type`.
int hl_qdot_int8_supported(int type);

/// The int8 activation quantizer of the int8 path (n a multiple of 32): per block b of 32 values,
/// d[b] = max|x| / 127 and q = round-half-even(x * 127 / max|x|) in [-127, 127] (q = 0, d = 0 for
/// an all-zero block; d = NaN when the block holds an Inf or NaN). The same on every level.
void hl_quantize_q8_32(const float *x, int n, int8_t *q, float *d);
/// The activation quantizer of the int16 path (n a multiple of 32): per block b, the 16-bit values
/// v = 256 q + q2 with q as hl_quantize_q8_32 gives, q2 the rounded remainder in units of 1/256
/// (clamped to [-127, 127]), and d[b] = max|x| / 32512, so that x ~ d[b] * v (each value off by at
/// most max|x| / 32512).
void hl_quantize_q16_32(const float *x, int n, int8_t *q, int8_t *q2, float *d);

/// C[m, n] = A[m, k] · B[n, k]ᵀ (row-major sgemm, no transposes of A), split over the kernel pool
/// by columns with OpenBLAS held to one thread during the call (one pool for all parallel work,
/// so OpenBLAS's own threads never compete with it). Small products run directly.
void hl_sgemm_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc);

/// Fills dst [rows, k] (row-major, k = the product's inner dimension) with Float32 weight rows
/// row0 ..< row0 + rows of a matrix stored in another format. Called from pool threads.
typedef void (*hl_rows_fn)(const void *ctx, int row0, int rows, float *dst);

/// C[m, n] = A[m, k] · W[n, k]ᵀ for a weight matrix W that is not kept as Float32: W is produced
/// `panel` rows at a time by `fill` into a per-thread scratch buffer ([panel, k] floats) and each
/// panel is multiplied with one sgemm (OpenBLAS held to one thread), panels spread over the kernel
/// pool. panel <= 0 uses hl_sgemm_nt's split (one block per thread), so the sgemm calls are exactly
/// those hl_sgemm_nt makes on the Float32 matrix.
void hl_sgemm_nt_panels(int m, int n, int k, const float *a, int lda, hl_rows_fn fill, const void *ctx, int panel,
                        float *c, int ldc);
/// The panel height hl_sgemm_nt_panels uses for `panel` (resolves panel <= 0).
int hl_sgemm_nt_panel_rows(int m, int n, int k, int panel);

// MARK: Attention

/// Causal grouped-query attention of t queries at positions p..<p+t over the s = p + t cached keys,
/// without materializing the [t, s] probabilities: per (KV head, block of queries) it multiplies
/// query and key tiles with sgemm, keeps a running max and sum per row (online softmax) and adds
/// P·V tiles with sgemm; tiles entirely above the diagonal are skipped. Work items run on the
/// kernel pool with OpenBLAS held to one thread. Layouts as Kernels.causalAttention:
/// q, z [t, h, dh]; k, v [>= s, hkv, dh]. Memory: per thread O(rows * (block + dh)) floats.
void hl_attention_prefill(const float *q, const float *k, const float *v, float *z,
                          int t, int p, int h, int hkv, int dh, float scale);

/// hl_attention_prefill with a sliding window: the query at position q sees keys k with
/// q - k < window (window <= 0: full causal attention). Key tiles before every row's window are skipped.
void hl_attention_prefill_window(const float *q, const float *k, const float *v, float *z,
                                 int t, int p, int h, int hkv, int dh, float scale, int window);

/// hl_attention_prefill_window without the query heads of the KV groups g with skip[g] != 0 (their
/// z rows are left as they are; skip NULL: none). The groups computed get the same bits as without it.
void hl_attention_prefill_skip(const float *q, const float *k, const float *v, float *z,
                               int t, int p, int h, int hkv, int dh, float scale, int window,
                               const unsigned char *skip);

/// One query row (t = 1) at position s - 1 over s keys, every head in parallel.
void hl_attention_decode(const float *q, const float *k, const float *v, float *z,
                         int s, int h, int hkv, int dh, float scale);

/// hl_attention_decode without the KV groups g with skip[g] != 0 (skip NULL: none).
void hl_attention_decode_skip(const float *q, const float *k, const float *v, float *z,
                              int s, int h, int hkv, int dh, float scale, const unsigned char *skip);
/// Decoding attention that also returns every head's probabilities: probs [h, s] (row h = query
/// head h over keys 0..<s), z [h, dh]. The materializing reference path's products (sgemm scores
/// per KV group, softmax per head, sgemm P·V) on the kernel pool; for captures at decode steps.
void hl_attention_decode_probs(const float *q, const float *k, const float *v, float *z, int s, int h, int hkv,
                               int dh, float scale, float *probs);

/// Runs fn(ctx, i, thread) for i in 0..<n on the kernel pool (the caller participates; thread in
/// 0..<hl_kernels_threads()), OpenBLAS held to one thread meanwhile; returns when all are done.
/// A nested call (a task calling it again) runs its tasks serially on the calling thread.
void hl_parallel_blas1(int n, void (*fn)(void *ctx, int i, int thread), void *ctx);

// MARK: Attention over a binary16 KV cache

/// IEEE binary16 storage of the KV cache (Inference/Model/KVCache.swift, `--kv f16`). Narrowing
/// rounds to nearest even (overflow to Inf; NaN stays NaN, quiet, with its top payload bits), as
/// vcvtps2ph / fcvtn; widening is exact. Both give the same bits on every level.
void hl_f32_to_f16(const float *x, uint16_t *y, size_t n);
void hl_f16_to_f32(const uint16_t *x, float *y, size_t n);
/// dst[r, 0..<width] = src[r * stride + 0..<width] widened, for r < rows (dst rows contiguous).
void hl_f16_to_f32_rows(const uint16_t *src, size_t stride, int rows, int width, float *dst);

/// hl_attention_prefill_window over binary16 k, v [>= s, hkv, dh]: key and value tiles are widened
/// to Float32 and multiplied as in the Float32 kernel, so the result equals
/// hl_attention_prefill_window on the widened cache bit for bit (same level and tiles).
void hl_attention_prefill_f16(const float *q, const uint16_t *k, const uint16_t *v, float *z,
                              int t, int p, int h, int hkv, int dh, float scale, int window);
/// hl_attention_decode over binary16 k, v [>= s, hkv, dh] (blocks of 32 rows widened as they are
/// read); equals hl_attention_decode on the widened cache bit for bit (same level and threads).
void hl_attention_decode_f16(const float *q, const uint16_t *k, const uint16_t *v, float *z,
                             int s, int h, int hkv, int dh, float scale);

/// 1 (default): on AVX-512, hl_attention_prefill* without a window run the fused tile (scores,
/// online softmax and P·V without OpenBLAS); 0: the sgemm + softmax + sgemm tiles (tests, benchmarks).
void hl_attention_set_fused(int on);

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
