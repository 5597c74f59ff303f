// Single-thread timing of the quantized matrix-vector product (hl_qmatmul, t = 1) at every
// kernel level the CPU supports, float, int8 and int16 paths, in thread CPU time (robust on a busy
// machine). Shapes (rows x cols of the product, as Headlight stores the weights): SmolLM2-135M's
// FFN up/gate projection (1536 x 576) and down (576 x 1536) in Q4_1 / Q4_0 / Q8_0, and Gemma 3
// 270M's K-quant matrices: attn_output (640 x 1024, Q4_K) and ffn_down (640 x 2048, Q6_K).
// Optional argument: a type name (Q4_1, Q4_0, Q8_0, Q4_K, Q6_K) to time only that type.
// Build (x86-64):
//   S=Sources/CNative; clang -O2 -I$S/include -I/usr/include/x86_64-linux-gnu/openblas-pthread \
//     bench/kernels_bench.c $S/hl_kernels.c $S/hl_kernels_q8.c $S/hl_kernels_q8_x86.c \
//     $S/hl_kernels_q8_neon.c $S/hl_blas.c -lopenblas -lpthread -lm -o /tmp/kbench && /tmp/kbench
#include "hl_kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    hl_kernels_set_threads(1);
    // Per case: type, name, bytes and weights per block, rows, cols.
    const struct { int type; const char *name; int bytes, per, rows, cols; } cases[] = {
        {HL_Q4_1, "Q4_1", 20, 32, 1536, 576}, {HL_Q4_1, "Q4_1", 20, 32, 576, 1536},
        {HL_Q4_0, "Q4_0", 18, 32, 1536, 576}, {HL_Q4_0, "Q4_0", 18, 32, 576, 1536},
        {HL_Q8_0, "Q8_0", 34, 32, 1536, 576}, {HL_Q8_0, "Q8_0", 34, 32, 576, 1536},
        {HL_Q4_K, "Q4_K", 144, 256, 640, 1024}, {HL_Q6_K, "Q6_K", 210, 256, 640, 2048},
    };
    uint32_t s = 12345;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        if (argc > 1 && strcmp(argv[1], cases[ci].name) != 0) continue;
        int type = cases[ci].type, rows = cases[ci].rows, cols = cases[ci].cols, nw = cols / cases[ci].per;
        size_t rb = (size_t)nw * cases[ci].bytes;
        uint8_t *w = malloc(rb * rows);
        for (size_t i = 0; i < rb * rows; i++) { s = s * 1664525u + 1013904223u; w[i] = (uint8_t)(s >> 24); }
        // f16 scales 2^-7 (Q6_K: d at byte 208; Q4_K: d and dmin at 0 and 2).
        int at = type == HL_Q6_K ? 208 : 0;
        for (int r = 0; r < rows * nw; r++) {
            uint8_t *blk = w + (size_t)r * cases[ci].bytes;
            blk[at] = 0x00;
            blk[at + 1] = 0x20;
            if (type == HL_Q4_K) { blk[2] = 0x00; blk[3] = 0x20; }
        }
        float *x = malloc(sizeof(float) * cols), *y = malloc(sizeof(float) * rows);
        for (int i = 0; i < cols; i++) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
        for (int level = 0; level < HL_KERNELS_LEVELS; level++) {
            if (!hl_kernels_level_supported(level)) continue;
            hl_kernels_set_level(level);
            for (int mode = 0; mode < 3; mode++) {
                hl_qdot_set_mode(mode);
                double med[7];
                for (int rep = 0; rep < 7; rep++) {
                    int n = 400;
                    double t0 = cpu_now();
                    for (int k = 0; k < n; k++) hl_qmatmul(type, w, rb, rows, cols, x, cols, 1, y, rows);
                    med[rep] = (cpu_now() - t0) / n;
                }
                qsort(med, 7, sizeof med[0], cmp);
                printf("%s %4dx%-4d %-12s %-5s %7.2f us  %6.2f GB/s of weights\n", cases[ci].name, rows, cols,
                       hl_kernels_level_name(level), hl_qdot_mode_name(mode), med[3] * 1e6,
                       (double)rb * rows / med[3] * 1e-9);
            }
        }
        free(w); free(x); free(y);
    }
    return 0;
}
