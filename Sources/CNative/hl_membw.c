// See include/hl_membw.h.
#include "hl_membw.h"
#include "hl_kernels.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const uint64_t *p;
    size_t words, chunk;   // words per task
    uint64_t sums[256];    // per task, so the loads cannot be optimized away
} bw_job;

static void bw_task(void *c, int i, int thread) {
    (void)thread;
    bw_job *j = c;
    size_t a = (size_t)i * j->chunk, b = a + j->chunk > j->words ? j->words : a + j->chunk;
    // Eight independent integer sums: associative, so the compiler vectorizes the loop.
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    size_t k = a;
    for (; k + 8 <= b; k += 8) {
        s0 += j->p[k]; s1 += j->p[k + 1]; s2 += j->p[k + 2]; s3 += j->p[k + 3];
        s4 += j->p[k + 4]; s5 += j->p[k + 5]; s6 += j->p[k + 6]; s7 += j->p[k + 7];
    }
    for (; k < b; k++) s0 += j->p[k];
    j->sums[i] = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double hl_read_bandwidth(size_t bytes, int reps) {
    if (reps < 1) reps = 1;
    if (reps > 64) reps = 64;
    size_t words = bytes / 8;
    if (words < 1024) words = 1024;
    void *mem = NULL;
    if (posix_memalign(&mem, 64, words * 8) != 0) return -1;
    memset(mem, 1, words * 8);
    // Four tasks per thread (at most 256) so a descheduled thread costs little.
    int tasks = 4 * hl_kernels_threads();
    if (tasks > 256) tasks = 256;
    bw_job j = {mem, words, (words + (size_t)tasks - 1) / (size_t)tasks, {0}};
    double rates[64];
    for (int r = 0; r < reps; r++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        hl_parallel_blas1(tasks, bw_task, &j);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        rates[r] = (double)(words * 8) / (s > 0 ? s : 1e-9) * 1e-9;
    }
    uint64_t total = 0;
    for (int i = 0; i < tasks; i++) total += j.sums[i];
    free(mem);
    qsort(rates, (size_t)reps, sizeof rates[0], cmp_double);
    // Every word is 0x0101010101010101, so the sum is known: a check that all of it was read.
    if (total != (uint64_t)words * 0x0101010101010101ULL) return -1;
    return rates[reps / 2];
}
