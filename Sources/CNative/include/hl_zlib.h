#ifndef HEADLIGHT_HL_ZLIB_H
#define HEADLIGHT_HL_ZLIB_H
#include <stddef.h>

/// Compresses `len` bytes with zlib's compress2() at `level` (-1 = Z_DEFAULT_COMPRESSION, which
/// zlib maps to 6 — the same stream Python's zlib.compress(data) writes: zlib header, deflate
/// data, Adler-32 trailer) and returns the compressed length in bytes.
/// Returns -1 if memory could not be allocated, -2 for an invalid level, -3 for any other zlib
/// error. `data` may be NULL when `len` is 0.
long hl_zlib_compressed_length(const unsigned char *data, size_t len, int level);

#endif
