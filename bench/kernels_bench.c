// Single-thread timing of the quantized matrix-vector product (hl_qmatmul, t = 1) at every
// kernel level the CPU supports, float, int8 and int16 paths, in thread CPU time (robust on a busy
// machine). Shapes of SmolLM2-135M: the FFN up/gate projection (1536 x 576) and down (576 x 1536).
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

int main(void) {
    hl_kernels_set_threads(1);
    const int types[] = {HL_Q4_1, HL_Q4_0, HL_Q8_0};
    const char *names[] = {"Q4_1", "Q4_0", "Q8_0"};
    const int bytes[] = {20, 18, 34};
    const int shapes[][2] = {{1536, 576}, {576, 1536}};
    uint32_t s = 12345;
    for (int ti = 0; ti < 3; ti++)
        for (int si = 0; si < 2; si++) {
            int rows = shapes[si][0], cols = shapes[si][1], nb = cols / 32;
            size_t rb = (size_t)nb * bytes[ti];
            uint8_t *w = malloc(rb * rows);
            for (size_t i = 0; i < rb * rows; i++) { s = s * 1664525u + 1013904223u; w[i] = (uint8_t)(s >> 24); }
            for (int r = 0; r < rows * nb; r++) { w[(size_t)r * bytes[ti]] = 0x00; w[(size_t)r * bytes[ti] + 1] = 0x20; }
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
                        for (int k = 0; k < n; k++) hl_qmatmul(types[ti], w, rb, rows, cols, x, cols, 1, y, rows);
                        med[rep] = (cpu_now() - t0) / n;
                    }
                    qsort(med, 7, sizeof med[0], cmp);
                    printf("%s %4dx%-4d %-12s %-5s %7.2f us  %6.2f GB/s of weights\n", names[ti], rows, cols,
                           hl_kernels_level_name(level), hl_qdot_mode_name(mode), med[3] * 1e6,
                           (double)rb * rows / med[3] * 1e-9);
                }
            }
            free(w); free(x); free(y);
        }
    return 0;
}
