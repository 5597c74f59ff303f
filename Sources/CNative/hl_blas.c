#include "hl_blas.h"
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

char *openblas_get_corename(void);
char *openblas_get_config(void);
int openblas_get_num_threads(void);
void openblas_set_num_threads(int);

const char *hl_blas_corename(void) { return openblas_get_corename(); }
const char *hl_blas_config(void) { return openblas_get_config(); }
int hl_blas_num_threads(void) { return openblas_get_num_threads(); }
void hl_blas_set_num_threads(int n) { openblas_set_num_threads(n); }

hl_cpu_features hl_cpu_probe(void) {
    hl_cpu_features f;
    memset(&f, 0, sizeof f);
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
    unsigned maxLeaf = a;
    char vendor[13];
    memcpy(vendor, &b, 4); memcpy(vendor + 4, &d, 4); memcpy(vendor + 8, &c, 4); vendor[12] = 0;
    f.vendor_intel = strcmp(vendor, "GenuineIntel") == 0;
    f.vendor_amd = strcmp(vendor, "AuthenticAMD") == 0;
    __get_cpuid(1, &a, &b, &c, &d);
    unsigned baseFamily = (a >> 8) & 0xf, baseModel = (a >> 4) & 0xf;
    f.family = (int)(baseFamily == 0xf ? baseFamily + ((a >> 20) & 0xff) : baseFamily);
    f.model = (int)((baseFamily == 0x6 || baseFamily == 0xf) ? (((a >> 16) & 0xf) << 4) + baseModel : baseModel);
    f.sse3 = (c >> 0) & 1;
    f.fma = (c >> 12) & 1;
    f.avx = (c >> 28) & 1;
    f.f16c = (c >> 29) & 1;
    int osxsave = (c >> 27) & 1;
    unsigned long long xcr0 = 0;
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((unsigned long long)hi << 32) | lo;
    }
    int ymmOS = (xcr0 & 0x6) == 0x6, zmmOS = (xcr0 & 0xe6) == 0xe6;
    if (!ymmOS) { f.avx = 0; f.fma = 0; f.f16c = 0; }
    if (maxLeaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        f.avx2 = ymmOS && ((b >> 5) & 1);
        if (zmmOS) {
            f.avx512f = (b >> 16) & 1;
            f.avx512dq = (b >> 17) & 1;
            f.avx512cd = (b >> 28) & 1;
            f.avx512bw = (b >> 30) & 1;
            f.avx512vl = (b >> 31) & 1;
            f.avx512_vnni = (c >> 11) & 1;
            __cpuid_count(7, 1, a, b, c, d);
            f.avx512_bf16 = (a >> 5) & 1;
        }
    }
#endif
    return f;
}
