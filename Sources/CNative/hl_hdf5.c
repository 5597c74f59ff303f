#include "hl_hdf5.h"
#include <hdf5.h>
#include <stdio.h>

int hl_h5_version(char *buf, int len) {
    unsigned maj, min, rel;
    if (H5get_libversion(&maj, &min, &rel) < 0) return -1;
    snprintf(buf, (size_t)len, "%u.%u.%u", maj, min, rel);
    return 0;
}
