// Memory bandwidth probe for the roofline figures of bench/roofline.py (`headlight bench
// --bandwidth`): how fast the kernel pool can stream memory in, the bound of decoding.
#ifndef HEADLIGHT_HL_MEMBW_H
#define HEADLIGHT_HL_MEMBW_H
#include <stddef.h>

/// Streaming-read bandwidth in GB/s (1e9 bytes/s): a fresh buffer of `bytes` (written once, so
/// every page is resident) is read `reps` times, split over the kernel pool's threads
/// (hl_kernels_set_threads); returns the median pass's rate, or -1 if the buffer cannot be had.
double hl_read_bandwidth(size_t bytes, int reps);
#endif
