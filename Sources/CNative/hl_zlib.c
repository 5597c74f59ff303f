// hl_zlib: zlib's compress2, reduced to the one number the membership baselines need.
#include "hl_zlib.h"
#include <stdlib.h>
#include <zlib.h>

long hl_zlib_compressed_length(const unsigned char *data, size_t len, int level) {
    static const unsigned char empty = 0;
    if (level < -1 || level > 9) return -2;
    if (data == NULL) {
        if (len != 0) return -3;
        data = &empty;
    }
    uLong bound = compressBound((uLong)len);
    unsigned char *out = (unsigned char *)malloc(bound > 0 ? bound : 1);
    if (!out) return -1;
    uLongf outLen = bound;
    int rc = compress2(out, &outLen, data, (uLong)len, level);
    free(out);
    if (rc == Z_MEM_ERROR) return -1;
    if (rc != Z_OK) return -3;
    return (long)outLen;
}
