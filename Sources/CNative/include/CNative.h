// CNative: Headlight's thin C layer over OpenBLAS, HDF5 and Graphviz.
// Each library has its own header; handles are opaque, errors are status codes.
#ifndef HEADLIGHT_CNATIVE_H
#define HEADLIGHT_CNATIVE_H
#include "hl_blas.h"
#include "hl_blas_check.h"
#include "hl_hdf5.h"
#include "hl_graphviz.h"
#include "hl_zlib.h"
#include "hl_kernels.h"
#include "hl_fs.h"
#include "hl_membw.h"
#endif
