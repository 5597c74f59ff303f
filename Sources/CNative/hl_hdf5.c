// HDF5 shim for Headlight's TraceStore. See include/hl_hdf5.h for the contract.
//
// Ownership: every hid_t created inside a function is closed before it returns, except the
// id it returns. The cached datatypes (half floats, vlen UTF-8 string) are created once,
// locked (H5Tlock) and never closed.
#include "hl_hdf5.h"
#include <hdf5.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

_Static_assert(sizeof(hid_t) == sizeof(int64_t), "hid_t must be 64-bit (HDF5 >= 1.10)");

#if H5_VERSION_GE(1, 12, 0)
#define HL_RECLAIM(type, space, buf) H5Treclaim((type), (space), H5P_DEFAULT, (buf))
#else
#define HL_RECLAIM(type, space, buf) H5Dvlen_reclaim((type), (space), H5P_DEFAULT, (buf))
#endif

// ---- library lifetime -------------------------------------------------------------------------

/// HDF5 registers H5_term_library with atexit on its first call; at exit that closes every file
/// still open and flushes it. After a failed close (ENOSPC while flushing) the file stays in
/// HDF5's list in a half-closed state and that exit-time flush dereferences freed memory
/// (SIGSEGV in H5F__close_cb). Headlight closes its files itself (H5File.close/deinit,
/// RunFileWriter), so it tells HDF5 not to run the exit hook at all; this must happen before any
/// other HDF5 call, hence a load-time constructor.
__attribute__((constructor)) static void hl_h5_no_atexit(void) {
    H5dont_atexit();
}

// ---- errors -----------------------------------------------------------------------------------

static __thread char g_err[2048];
static __thread int g_quiet;

/// Turns off HDF5's automatic error printing for the calling thread (the setting is per thread
/// in thread-safe builds).
static void quiet(void) {
    if (!g_quiet) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        g_quiet = 1;
    }
}

static void set_err(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
}

typedef struct {
    char first[768];
    char last[768];
    char minor[160];
    unsigned n;
} walk_t;

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    walk_t *w = (walk_t *)data;
    char *dst = w->n == 0 ? w->first : w->last;
    size_t cap = w->n == 0 ? sizeof w->first : sizeof w->last;
    snprintf(dst, cap, "%s(): %s", e->func_name ? e->func_name : "?", e->desc ? e->desc : "");
    w->minor[0] = 0;
    if (H5Eget_msg(e->min_num, NULL, w->minor, sizeof w->minor) < 0) w->minor[0] = 0;
    w->n++;
    return 0;
}

/// Builds g_err from the thread's HDF5 error stack (outermost call ... innermost cause [minor
/// message]) and clears the stack. `what` names the operation if the stack is empty.
static void capture(const char *what) {
    walk_t w;
    memset(&w, 0, sizeof w);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, &w);
    if (w.n == 0)
        set_err("%s failed", what);
    else if (w.n == 1)
        set_err("%s%s%s%s", w.first, w.minor[0] ? " [" : "", w.minor, w.minor[0] ? "]" : "");
    else
        set_err("%s ... %s%s%s%s", w.first, w.last, w.minor[0] ? " [" : "", w.minor, w.minor[0] ? "]" : "");
    H5Eclear2(H5E_DEFAULT);
}

const char *hl_h5_last_error(void) { return g_err; }

int hl_h5_version(char *buf, int len) {
    unsigned maj, min, rel;
    if (H5get_libversion(&maj, &min, &rel) < 0) return -1;
    snprintf(buf, (size_t)len, "%u.%u.%u", maj, min, rel);
    return 0;
}

int hl_h5_is_threadsafe(void) {
#ifdef H5_HAVE_THREADSAFE
    return 1;
#else
    return 0;
#endif
}

// ---- datatypes --------------------------------------------------------------------------------

static pthread_once_t g_types_once = PTHREAD_ONCE_INIT;
static hid_t g_f16_le = -1, g_f16_native = -1, g_vlen_str = -1;

/// IEEE binary16 built the way h5py builds H5PY_IEEE_F16LE, so h5py maps it to numpy float16 and
/// h5dump describes it as a 16-bit float (HDF5 1.10 has no predefined half type).
static hid_t make_half(hid_t base) {
    hid_t t = H5Tcopy(base);
    if (t < 0) return -1;
    if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 15) < 0 ||
        H5Tlock(t) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

static void init_types(void) {
    quiet();
    g_f16_le = make_half(H5T_IEEE_F32LE);
    g_f16_native = make_half(H5T_NATIVE_FLOAT);
    hid_t s = H5Tcopy(H5T_C_S1);
    if (s >= 0 && H5Tset_size(s, H5T_VARIABLE) >= 0 && H5Tset_cset(s, H5T_CSET_UTF8) >= 0 &&
        H5Tset_strpad(s, H5T_STR_NULLTERM) >= 0 && H5Tlock(s) >= 0)
        g_vlen_str = s;
    else if (s >= 0)
        H5Tclose(s);
}

/// Predefined or cached type id for `t` (never close it). file != 0: little-endian file type.
static hid_t type_id(hl_h5_dtype t, int file) {
    pthread_once(&g_types_once, init_types);
    switch (t) {
    case HL_H5_F16: return file ? g_f16_le : g_f16_native;
    case HL_H5_F32: return file ? H5T_IEEE_F32LE : H5T_NATIVE_FLOAT;
    case HL_H5_F64: return file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE;
    case HL_H5_I8: return file ? H5T_STD_I8LE : H5T_NATIVE_INT8;
    case HL_H5_U8: return file ? H5T_STD_U8LE : H5T_NATIVE_UINT8;
    case HL_H5_I16: return file ? H5T_STD_I16LE : H5T_NATIVE_INT16;
    case HL_H5_U16: return file ? H5T_STD_U16LE : H5T_NATIVE_UINT16;
    case HL_H5_I32: return file ? H5T_STD_I32LE : H5T_NATIVE_INT32;
    case HL_H5_U32: return file ? H5T_STD_U32LE : H5T_NATIVE_UINT32;
    case HL_H5_I64: return file ? H5T_STD_I64LE : H5T_NATIVE_INT64;
    case HL_H5_U64: return file ? H5T_STD_U64LE : H5T_NATIVE_UINT64;
    case HL_H5_STR: return g_vlen_str;
    default: return -1;
    }
}

static hid_t type_or_err(hl_h5_dtype t, int file) {
    hid_t id = type_id(t, file);
    if (id < 0) set_err("unsupported element type code %d", (int)t);
    return id;
}

/// Classifies an HDF5 datatype into the element types Headlight understands.
static hl_h5_dtype classify(hid_t t) {
    H5T_class_t c = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    switch (c) {
    case H5T_FLOAT: {
        if (size == 4) return HL_H5_F32;
        if (size == 8) return HL_H5_F64;
        if (size == 2) {
            size_t spos, epos, esize, mpos, msize;
            if (H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize) < 0) return HL_H5_OTHER;
            // binary16, not bfloat16 (which has an 8-bit exponent)
            if (esize == 5 && msize == 10 && H5Tget_ebias(t) == 15) return HL_H5_F16;
        }
        return HL_H5_OTHER;
    }
    case H5T_INTEGER: {
        int sgn = H5Tget_sign(t) == H5T_SGN_2;
        switch (size) {
        case 1: return sgn ? HL_H5_I8 : HL_H5_U8;
        case 2: return sgn ? HL_H5_I16 : HL_H5_U16;
        case 4: return sgn ? HL_H5_I32 : HL_H5_U32;
        case 8: return sgn ? HL_H5_I64 : HL_H5_U64;
        default: return HL_H5_OTHER;
        }
    }
    case H5T_STRING: return H5Tis_variable_str(t) > 0 ? HL_H5_STR : HL_H5_STR_FIXED;
    default: return HL_H5_OTHER;
    }
}

// ---- generic ----------------------------------------------------------------------------------

int hl_h5_close(int64_t id) {
    quiet();
    if (id < 0 || H5Iis_valid(id) <= 0) return 0;
    herr_t r;
    switch (H5Iget_type(id)) {
    case H5I_FILE: r = H5Fclose(id); break;
    case H5I_GROUP: r = H5Gclose(id); break;
    case H5I_DATASET: r = H5Dclose(id); break;
    case H5I_DATATYPE: r = H5Tclose(id); break;
    case H5I_DATASPACE: r = H5Sclose(id); break;
    case H5I_ATTR: r = H5Aclose(id); break;
    case H5I_GENPROP_LST: r = H5Pclose(id); break;
    default: r = H5Idec_ref(id) < 0 ? -1 : 0; break;
    }
    if (r < 0) capture("close");
    return r < 0 ? -1 : 0;
}

static hid_t fapl_strong(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    if (H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

// ---- files ------------------------------------------------------------------------------------

int64_t hl_h5f_create(const char *path, int exclusive) {
    quiet();
    hid_t fapl = fapl_strong();
    if (fapl < 0) { capture("H5Pcreate"); return -1; }
    hid_t f = H5Fcreate(path, exclusive ? H5F_ACC_EXCL : H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (f < 0) capture("H5Fcreate");
    H5Pclose(fapl);
    return f;
}

int64_t hl_h5f_open(const char *path, int readwrite) {
    quiet();
    hid_t fapl = fapl_strong();
    if (fapl < 0) { capture("H5Pcreate"); return -1; }
    hid_t f = H5Fopen(path, readwrite ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
    if (f < 0) capture("H5Fopen");
    H5Pclose(fapl);
    return f;
}

int hl_h5f_is_hdf5(const char *path) {
    quiet();
#if H5_VERSION_GE(1, 12, 0)
    htri_t r = H5Fis_accessible(path, H5P_DEFAULT);
#else
    htri_t r = H5Fis_hdf5(path);
#endif
    if (r < 0) capture("H5Fis_hdf5");
    return r < 0 ? -1 : (r > 0);
}

int hl_h5f_flush(int64_t file) {
    quiet();
    if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) { capture("H5Fflush"); return -1; }
    return 0;
}

// ---- groups -----------------------------------------------------------------------------------

static hid_t lcpl_intermediate(void) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl < 0) return -1;
    if (H5Pset_create_intermediate_group(lcpl, 1) < 0 || H5Pset_char_encoding(lcpl, H5T_CSET_UTF8) < 0) {
        H5Pclose(lcpl);
        return -1;
    }
    return lcpl;
}

int64_t hl_h5g_create(int64_t loc, const char *path) {
    quiet();
    hid_t lcpl = lcpl_intermediate();
    if (lcpl < 0) { capture("H5Pcreate"); return -1; }
    hid_t g = H5Gcreate2(loc, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) capture("H5Gcreate2");
    H5Pclose(lcpl);
    return g;
}

int64_t hl_h5g_open(int64_t loc, const char *path) {
    quiet();
    hid_t g = H5Gopen2(loc, path, H5P_DEFAULT);
    if (g < 0) capture("H5Gopen2");
    return g;
}

int hl_h5_object_kind(int64_t loc, const char *path) {
    quiet();
    size_t len = strlen(path);
    if (len == 0) { set_err("empty object path"); return -1; }
    char *buf = malloc(len + 1);
    if (!buf) { set_err("out of memory"); return -1; }
    memcpy(buf, path, len + 1);
    // H5Lexists fails (rather than returning 0) when an intermediate group is missing, so test
    // every prefix "a", "a/b", "a/b/c" in turn.
    size_t i = 0;
    if (buf[0] == '/') {
        while (buf[i] == '/') i++;
        if (buf[i] == 0) { free(buf); return HL_H5_KIND_GROUP; } // "/" is the root group
    }
    int result = -2;
    while (result == -2) {
        while (buf[i] && buf[i] != '/') i++;
        char saved = buf[i];
        buf[i] = 0;
        const char *last = strrchr(buf, '/');
        last = last ? last + 1 : buf;
        if (strcmp(last, ".") != 0) {
            htri_t e = H5Lexists(loc, buf, H5P_DEFAULT);
            if (e < 0) { capture("H5Lexists"); result = -1; break; }
            if (e == 0) { result = HL_H5_KIND_MISSING; break; }
        }
        buf[i] = saved;
        while (buf[i] == '/') i++;
        if (buf[i] == 0) result = -3; // all components exist
    }
    if (result == -3) {
        htri_t e = H5Oexists_by_name(loc, buf, H5P_DEFAULT); // false for a dangling soft link
        if (e < 0) { capture("H5Oexists_by_name"); result = -1; }
        else if (e == 0) result = HL_H5_KIND_MISSING;
        else {
            hid_t o = H5Oopen(loc, buf, H5P_DEFAULT);
            if (o < 0) { capture("H5Oopen"); result = -1; }
            else {
                switch (H5Iget_type(o)) {
                case H5I_GROUP: result = HL_H5_KIND_GROUP; break;
                case H5I_DATASET: result = HL_H5_KIND_DATASET; break;
                case H5I_DATATYPE: result = HL_H5_KIND_DATATYPE; break;
                default: result = HL_H5_KIND_OTHER; break;
                }
                H5Oclose(o);
            }
        }
    }
    free(buf);
    return result;
}

int64_t hl_h5g_count(int64_t group) {
    quiet();
    H5G_info_t info;
    if (H5Gget_info(group, &info) < 0) { capture("H5Gget_info"); return -1; }
    return (int64_t)info.nlinks;
}

int64_t hl_h5g_child_name(int64_t group, int64_t idx, char *buf, size_t len) {
    quiet();
    ssize_t n = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, (hsize_t)idx, buf, len, H5P_DEFAULT);
    if (n < 0) capture("H5Lget_name_by_idx");
    return (int64_t)n;
}

int hl_h5l_delete(int64_t loc, const char *path) {
    quiet();
    if (H5Ldelete(loc, path, H5P_DEFAULT) < 0) { capture("H5Ldelete"); return -1; }
    return 0;
}

// ---- datasets ---------------------------------------------------------------------------------

int64_t hl_h5d_create(int64_t loc, const char *path, hl_h5_dtype dtype, int rank, const int64_t *dims,
                      const int64_t *maxdims, const int64_t *chunk, int gzip, int shuffle) {
    quiet();
    if (rank < 0 || rank > HL_H5_MAX_RANK) { set_err("rank %d out of range 0...%d", rank, HL_H5_MAX_RANK); return -1; }
    if (gzip > 9) { set_err("gzip level %d out of range 0...9", gzip); return -1; }
    hid_t ftype = type_or_err(dtype, 1);
    if (ftype < 0) return -1;
    hsize_t d[HL_H5_MAX_RANK], m[HL_H5_MAX_RANK], c[HL_H5_MAX_RANK];
    int resizable = 0;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) { set_err("negative dimension %lld", (long long)dims[i]); return -1; }
        d[i] = (hsize_t)dims[i];
        m[i] = maxdims ? (maxdims[i] < 0 ? H5S_UNLIMITED : (hsize_t)maxdims[i]) : d[i];
        if (m[i] != H5S_UNLIMITED && m[i] < d[i]) { set_err("maximum dimension %d below current size", i); return -1; }
        if (m[i] != d[i]) resizable = 1;
        if (chunk) {
            if (chunk[i] <= 0) { set_err("chunk dimensions must be positive"); return -1; }
            c[i] = (hsize_t)chunk[i];
        }
    }
    if (!chunk && (resizable || gzip >= 0 || shuffle)) {
        set_err("a chunk shape is required for extendible or compressed datasets");
        return -1;
    }
    if (gzip >= 0 && H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0) { set_err("the HDF5 library has no gzip (deflate) filter"); return -1; }
    hid_t space = -1, dcpl = -1, lcpl = -1, ds = -1;
    space = H5Screate_simple(rank, d, m);
    if (space < 0) { capture("H5Screate_simple"); goto done; }
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl < 0) { capture("H5Pcreate"); goto done; }
    if (chunk && rank > 0) {
        if (H5Pset_chunk(dcpl, rank, c) < 0) { capture("H5Pset_chunk"); goto done; }
        if (shuffle && H5Pset_shuffle(dcpl) < 0) { capture("H5Pset_shuffle"); goto done; }
        if (gzip >= 0 && H5Pset_deflate(dcpl, (unsigned)gzip) < 0) { capture("H5Pset_deflate"); goto done; }
    }
    lcpl = lcpl_intermediate();
    if (lcpl < 0) { capture("H5Pcreate"); goto done; }
    ds = H5Dcreate2(loc, path, ftype, space, lcpl, dcpl, H5P_DEFAULT);
    if (ds < 0) capture("H5Dcreate2");
done:
    if (lcpl >= 0) H5Pclose(lcpl);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    return ds;
}

int64_t hl_h5d_open(int64_t loc, const char *path) {
    quiet();
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
    if (d < 0) capture("H5Dopen2");
    return d;
}

hl_h5_dtype hl_h5d_dtype(int64_t dset) {
    quiet();
    hid_t t = H5Dget_type(dset);
    if (t < 0) { capture("H5Dget_type"); return HL_H5_UNKNOWN; }
    hl_h5_dtype r = classify(t);
    H5Tclose(t);
    return r;
}

int hl_h5d_rank(int64_t dset) {
    quiet();
    hid_t s = H5Dget_space(dset);
    if (s < 0) { capture("H5Dget_space"); return -1; }
    int r = H5Sget_simple_extent_ndims(s);
    if (r < 0) capture("H5Sget_simple_extent_ndims");
    H5Sclose(s);
    return r;
}

int hl_h5d_shape(int64_t dset, int64_t *dims, int64_t *maxdims) {
    quiet();
    hid_t s = H5Dget_space(dset);
    if (s < 0) { capture("H5Dget_space"); return -1; }
    hsize_t d[HL_H5_MAX_RANK], m[HL_H5_MAX_RANK];
    int r = H5Sget_simple_extent_ndims(s);
    if (r > HL_H5_MAX_RANK) { set_err("rank %d exceeds %d", r, HL_H5_MAX_RANK); H5Sclose(s); return -1; }
    if (r < 0 || H5Sget_simple_extent_dims(s, d, m) < 0) { capture("H5Sget_simple_extent_dims"); H5Sclose(s); return -1; }
    for (int i = 0; i < r; i++) {
        // A damaged dataspace message can claim sizes no file holds; they must not wrap negative.
        if (d[i] > (hsize_t)INT64_MAX || (m[i] != H5S_UNLIMITED && m[i] > (hsize_t)INT64_MAX)) {
            set_err("dimension %d has an impossible size %llu (damaged dataspace)", i, (unsigned long long)d[i]);
            H5Sclose(s);
            return -1;
        }
        if (dims) dims[i] = (int64_t)d[i];
        if (maxdims) maxdims[i] = m[i] == H5S_UNLIMITED ? -1 : (int64_t)m[i];
    }
    H5Sclose(s);
    return r;
}

int hl_h5d_chunk(int64_t dset, int64_t *chunk) {
    quiet();
    hid_t p = H5Dget_create_plist(dset);
    if (p < 0) { capture("H5Dget_create_plist"); return -1; }
    int result = 0;
    if (H5Pget_layout(p) == H5D_CHUNKED) {
        hsize_t c[HL_H5_MAX_RANK];
        int r = H5Pget_chunk(p, HL_H5_MAX_RANK, c);
        if (r < 0) { capture("H5Pget_chunk"); result = -1; }
        else {
            for (int i = 0; i < r; i++) chunk[i] = (int64_t)c[i];
            result = 1;
        }
    }
    H5Pclose(p);
    return result;
}

int hl_h5d_filters(int64_t dset, int *gzip, int *shuffle) {
    quiet();
    *gzip = -1;
    *shuffle = 0;
    hid_t p = H5Dget_create_plist(dset);
    if (p < 0) { capture("H5Dget_create_plist"); return -1; }
    int n = H5Pget_nfilters(p);
    for (int i = 0; i < n; i++) {
        unsigned flags, cd[8];
        size_t ncd = 8;
        char name[64];
        unsigned config;
        H5Z_filter_t f = H5Pget_filter2(p, (unsigned)i, &flags, &ncd, cd, sizeof name, name, &config);
        if (f == H5Z_FILTER_DEFLATE) *gzip = ncd > 0 ? (int)cd[0] : 6;
        else if (f == H5Z_FILTER_SHUFFLE) *shuffle = 1;
    }
    H5Pclose(p);
    return n < 0 ? -1 : 0;
}

int64_t hl_h5d_storage_size(int64_t dset) {
    quiet();
    return (int64_t)H5Dget_storage_size(dset);
}

int hl_h5d_set_extent(int64_t dset, int rank, const int64_t *dims) {
    quiet();
    if (rank < 0 || rank > HL_H5_MAX_RANK) { set_err("rank %d out of range", rank); return -1; }
    hsize_t d[HL_H5_MAX_RANK];
    for (int i = 0; i < rank; i++) d[i] = (hsize_t)dims[i];
    if (H5Dset_extent(dset, d) < 0) { capture("H5Dset_extent"); return -1; }
    return 0;
}

// ---- read-size checks --------------------------------------------------------------------------
// A damaged file can claim any extent. Before anything is allocated for a read, its size is
// checked against the bytes the file could possibly hold (see hl_hdf5.h).

/// Bytes of the file holding `obj` on disk (fstat of the sec2 driver's descriptor; the HDF5 end
/// of file is read from the superblock and could be damaged too), or -1 if unknown.
static int64_t file_bytes(hid_t obj) {
    hid_t f = H5Iget_file_id(obj);
    if (f < 0) return -1;
    int64_t size = -1;
    void *handle = NULL;
    if (H5Fget_vfd_handle(f, H5P_DEFAULT, &handle) >= 0 && handle) {
        struct stat st;
        if (fstat(*(int *)handle, &st) == 0) size = (int64_t)st.st_size;
    }
    H5Fclose(f); // releases only the extra reference H5Iget_file_id took
    H5Eclear2(H5E_DEFAULT);
    return size;
}

/// n * size, or -1 on overflow (n, size >= 0).
static int64_t mul_or_neg(int64_t n, int64_t size) {
    if (n < 0 || size < 0) return -1;
    if (size > 0 && n > INT64_MAX / size) return -1;
    return n * size;
}

int hl_h5_check_read(int64_t obj, int64_t n, int64_t elem_size, int attribute) {
    quiet();
    int64_t bytes = mul_or_neg(n, elem_size);
    if (bytes < 0) {
        set_err("%lld elements of %lld bytes overflow a 64-bit size (damaged file)", (long long)n,
                (long long)elem_size);
        return -1;
    }
    if (!attribute && bytes <= HL_H5_READ_ALWAYS_OK) return 0;
    int64_t size = file_bytes(obj);
    if (size < 0) return 0; // another driver: nothing to compare with
    int64_t limit = attribute ? size : mul_or_neg(size, HL_H5_MAX_EXPANSION);
    if (limit >= 0 && bytes > limit) {
        set_err("claims %lld elements (%lld bytes), more than the %lld-byte file can hold (damaged file)",
                (long long)n, (long long)bytes, (long long)size);
        return -1;
    }
    return 0;
}

/// Builds file and memory dataspaces for a whole-dataset (start == NULL) or block selection;
/// *n = number of selected elements. Spaces set to H5S_ALL need no closing.
static int select_block(hid_t dset, int rank, const int64_t *start, const int64_t *count, hid_t *fspace,
                        hid_t *mspace, hssize_t *n) {
    *fspace = H5S_ALL;
    *mspace = H5S_ALL;
    hid_t s = H5Dget_space(dset);
    if (s < 0) { capture("H5Dget_space"); return -1; }
    if (!start) {
        *n = H5Sget_simple_extent_npoints(s);
        H5Sclose(s);
        return *n < 0 ? -1 : 0;
    }
    hsize_t dims[HL_H5_MAX_RANK], st[HL_H5_MAX_RANK], ct[HL_H5_MAX_RANK];
    int r = H5Sget_simple_extent_ndims(s);
    if (r != rank || r > HL_H5_MAX_RANK) {
        set_err("selection has rank %d but the dataset has rank %d", rank, r);
        H5Sclose(s);
        return -1;
    }
    H5Sget_simple_extent_dims(s, dims, NULL);
    hssize_t total = 1;
    for (int i = 0; i < r; i++) {
        if (start[i] < 0 || count[i] < 0 || (hsize_t)(start[i] + count[i]) > dims[i]) {
            set_err("selection start %lld count %lld in dimension %d exceeds its size %llu", (long long)start[i],
                    (long long)count[i], i, (unsigned long long)dims[i]);
            H5Sclose(s);
            return -1;
        }
        st[i] = (hsize_t)start[i];
        ct[i] = (hsize_t)count[i];
        total *= (hssize_t)count[i];
    }
    *n = total;
    if (total == 0) { H5Sclose(s); return 0; }
    if (H5Sselect_hyperslab(s, H5S_SELECT_SET, st, NULL, ct, NULL) < 0) {
        capture("H5Sselect_hyperslab");
        H5Sclose(s);
        return -1;
    }
    hid_t m = H5Screate_simple(r, ct, NULL);
    if (m < 0) { capture("H5Screate_simple"); H5Sclose(s); return -1; }
    *fspace = s;
    *mspace = m;
    return 0;
}

static void close_spaces(hid_t f, hid_t m) {
    if (f != H5S_ALL) H5Sclose(f);
    if (m != H5S_ALL) H5Sclose(m);
}

/// Writes (`write` != 0) or reads the block start[..]+count[..] of `dset` through memory type `mem`.
static int transfer_block(int64_t dset, hl_h5_dtype mem, int rank, const int64_t *start, const int64_t *count,
                          void *buf, int write) {
    hid_t mt = type_or_err(mem, 0);
    if (mt < 0) return -1;
    hid_t fs, ms;
    hssize_t n;
    if (select_block(dset, rank, start, count, &fs, &ms, &n) < 0) return -1;
    int r = 0;
    if (n > 0) {
        herr_t e = write ? H5Dwrite(dset, mt, ms, fs, H5P_DEFAULT, buf) : H5Dread(dset, mt, ms, fs, H5P_DEFAULT, buf);
        if (e < 0) { capture(write ? "H5Dwrite" : "H5Dread"); r = -1; }
    }
    close_spaces(fs, ms);
    return r;
}

int hl_h5d_write(int64_t dset, hl_h5_dtype mem, int rank, const int64_t *start, const int64_t *count,
                 const void *buf) {
    quiet();
    return transfer_block(dset, mem, rank, start, count, (void *)buf, 1);
}

int hl_h5d_read(int64_t dset, hl_h5_dtype mem, int rank, const int64_t *start, const int64_t *count, void *buf) {
    quiet();
    return transfer_block(dset, mem, rank, start, count, buf, 0);
}

int hl_h5d_write_strings(int64_t dset, int rank, const int64_t *start, const int64_t *count,
                         const char *const *strings) {
    quiet();
    if (hl_h5d_dtype(dset) != HL_H5_STR) { set_err("not a variable-length string dataset"); return -1; }
    return transfer_block(dset, HL_H5_STR, rank, start, count, (void *)strings, 1);
}

/// Where `read_strings` reads from: a dataset selection (H5Dread) or a whole attribute (H5Aread).
typedef struct {
    hid_t obj;
    int attribute;
    hid_t mspace, fspace; // datasets: the selection (H5S_ALL for the whole dataset)
} str_source;

static herr_t source_read(const str_source *src, hid_t mt, void *buf) {
    if (src->attribute) return H5Aread(src->obj, mt, buf);
    return H5Dread(src->obj, mt, src->mspace, src->fspace, H5P_DEFAULT, buf);
}

/// A malloc'd copy of a fixed-length string of `size` bytes (padding removed).
static char *dup_fixed(const char *p, size_t size, H5T_str_t pad) {
    size_t len = strnlen(p, size);
    if (pad == H5T_STR_SPACEPAD)
        while (len > 0 && p[len - 1] == ' ') len--;
    char *s = malloc(len + 1);
    if (s) { memcpy(s, p, len); s[len] = 0; }
    return s;
}

/// Reads the n strings of `src` (file type `ft`, vlen or fixed-length) into malloc'd copies in
/// out[0..<n]; on failure nothing is left allocated in `out`. Defensive against damaged files:
/// n is checked against what the file can hold before anything is allocated, a missing vlen
/// string (NULL) reads as "", and an allocation failure is an error, never a NULL entry.
/// `space` is the memory dataspace HDF5 reclaims vlen buffers with.
static int read_strings(const str_source *src, hid_t ft, hssize_t n, hid_t space, char **out) {
    const char *op = src->attribute ? "H5Aread" : "H5Dread";
    int vlen = H5Tis_variable_str(ft) > 0;
    size_t size = vlen ? sizeof(char *) : H5Tget_size(ft);
    // On disk a vlen string is a 16-byte global heap reference; a fixed string is `size` bytes.
    if (hl_h5_check_read(src->obj, (int64_t)n, vlen ? 16 : (int64_t)size, src->attribute) < 0) return -1;
    if (size == 0 || (size_t)n > (SIZE_MAX - 1) / size) { set_err("string array too large"); return -1; }
    hid_t mt = vlen ? type_id(HL_H5_STR, 0) : H5Tcopy(ft);
    char *tmp = calloc((size_t)n * size + 1, 1);
    if (mt < 0 || !tmp) {
        set_err("out of memory reading %lld strings", (long long)n);
        free(tmp);
        if (!vlen && mt >= 0) H5Tclose(mt);
        return -1;
    }
    int r = 0;
    if (source_read(src, mt, tmp) < 0) {
        capture(op);
        r = -1;
    } else {
        H5T_str_t pad = vlen ? H5T_STR_NULLTERM : H5Tget_strpad(ft);
        for (hssize_t i = 0; i < n && r == 0; i++) {
            const char *v = vlen ? ((char **)tmp)[i] : NULL;
            out[i] = vlen ? strdup(v ? v : "") : dup_fixed(tmp + (size_t)i * size, size, pad);
            if (!out[i]) {
                set_err("out of memory copying string %lld", (long long)i);
                hl_h5_free_strings(out, i);
                r = -1;
            }
        }
        if (vlen) HL_RECLAIM(mt, space, tmp);
    }
    free(tmp);
    if (!vlen) H5Tclose(mt);
    return r;
}

int hl_h5d_read_strings(int64_t dset, int rank, const int64_t *start, const int64_t *count, char **out) {
    quiet();
    hid_t ft = H5Dget_type(dset);
    if (ft < 0) { capture("H5Dget_type"); return -1; }
    if (H5Tget_class(ft) != H5T_STRING) { H5Tclose(ft); set_err("not a string dataset"); return -1; }
    str_source src = {dset, 0, H5S_ALL, H5S_ALL};
    hssize_t n;
    if (select_block(dset, rank, start, count, &src.fspace, &src.mspace, &n) < 0) { H5Tclose(ft); return -1; }
    int r = 0;
    if (n > 0) {
        hid_t space = src.mspace != H5S_ALL ? src.mspace : H5Dget_space(dset);
        r = space < 0 ? (capture("H5Dget_space"), -1) : read_strings(&src, ft, n, space, out);
        if (space >= 0 && space != src.mspace) H5Sclose(space);
    }
    close_spaces(src.fspace, src.mspace);
    H5Tclose(ft);
    return r;
}

void hl_h5_free_strings(char **strings, int64_t n) {
    for (int64_t i = 0; i < n; i++) free(strings[i]);
}

// ---- attributes -------------------------------------------------------------------------------

static int attr_write(int64_t obj, const char *name, hid_t ftype, hid_t mtype, int rank, int64_t n, const void *buf) {
    if (rank != 0 && rank != 1) { set_err("attribute rank must be 0 (scalar) or 1"); return -1; }
    if (rank == 0 && n != 1) { set_err("a scalar attribute has exactly one element"); return -1; }
    if (n < 0) { set_err("negative attribute length"); return -1; }
    htri_t e = H5Aexists(obj, name);
    if (e < 0) { capture("H5Aexists"); return -1; }
    if (e > 0 && H5Adelete(obj, name) < 0) { capture("H5Adelete"); return -1; }
    hsize_t len = (hsize_t)n;
    hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &len, NULL);
    if (space < 0) { capture("H5Screate"); return -1; }
    hid_t acpl = H5Pcreate(H5P_ATTRIBUTE_CREATE);
    if (acpl >= 0) H5Pset_char_encoding(acpl, H5T_CSET_UTF8); // UTF-8 attribute names
    hid_t a = H5Acreate2(obj, name, ftype, space, acpl >= 0 ? acpl : H5P_DEFAULT, H5P_DEFAULT);
    int r = 0;
    if (a < 0) { capture("H5Acreate2"); r = -1; }
    else {
        if (n > 0 && H5Awrite(a, mtype, buf) < 0) { capture("H5Awrite"); r = -1; }
        H5Aclose(a);
    }
    if (acpl >= 0) H5Pclose(acpl);
    H5Sclose(space);
    return r;
}

int hl_h5a_write(int64_t obj, const char *name, hl_h5_dtype dtype, int rank, int64_t n, const void *buf) {
    quiet();
    if (dtype == HL_H5_STR || dtype == HL_H5_STR_FIXED) { set_err("use hl_h5a_write_strings for strings"); return -1; }
    hid_t ft = type_or_err(dtype, 1), mt = type_or_err(dtype, 0);
    if (ft < 0 || mt < 0) return -1;
    return attr_write(obj, name, ft, mt, rank, n, buf);
}

int hl_h5a_write_strings(int64_t obj, const char *name, int rank, int64_t n, const char *const *strings) {
    quiet();
    hid_t t = type_or_err(HL_H5_STR, 1);
    if (t < 0) return -1;
    return attr_write(obj, name, t, t, rank, n, strings);
}

static hid_t attr_open(int64_t obj, const char *name) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) capture("H5Aopen");
    return a;
}

int hl_h5a_info(int64_t obj, const char *name, hl_h5_dtype *dtype, int *rank, int64_t *n) {
    quiet();
    htri_t e = H5Aexists(obj, name);
    if (e < 0) { capture("H5Aexists"); return -1; }
    if (e == 0) return 0;
    hid_t a = attr_open(obj, name);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    int r = 1;
    if (t < 0 || s < 0) { capture("H5Aget_type"); r = -1; }
    else {
        *dtype = classify(t);
        switch (H5Sget_simple_extent_type(s)) {
        case H5S_SCALAR: *rank = 0; *n = 1; break;
        case H5S_SIMPLE: *rank = H5Sget_simple_extent_ndims(s); *n = (int64_t)H5Sget_simple_extent_npoints(s); break;
        default: *rank = 1; *n = 0; break; // H5S_NULL: no elements
        }
        // Callers allocate n elements: a damaged dataspace must not make that absurd.
        size_t size = H5Tget_size(t);
        if (*rank < 0 || hl_h5_check_read(a, *n, size > 0 ? (int64_t)size : 1, 1) < 0) {
            if (*rank < 0) capture("H5Sget_simple_extent_ndims");
            r = -1;
        }
    }
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    H5Aclose(a);
    return r;
}

int hl_h5a_read(int64_t obj, const char *name, hl_h5_dtype mem, void *buf) {
    quiet();
    hid_t mt = type_or_err(mem, 0);
    if (mt < 0) return -1;
    hid_t a = attr_open(obj, name);
    if (a < 0) return -1;
    hid_t s = H5Aget_space(a);
    int r = 0;
    if (H5Sget_simple_extent_npoints(s) > 0 && H5Aread(a, mt, buf) < 0) { capture("H5Aread"); r = -1; }
    H5Sclose(s);
    H5Aclose(a);
    return r;
}

int hl_h5a_read_strings(int64_t obj, const char *name, char **out) {
    quiet();
    hid_t a = attr_open(obj, name);
    if (a < 0) return -1;
    hid_t ft = H5Aget_type(a), s = H5Aget_space(a);
    int r = 0;
    hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
    if (ft < 0 || s < 0 || n < 0) { capture("H5Aget_type"); r = -1; }
    else if (H5Tget_class(ft) != H5T_STRING) { set_err("attribute '%s' is not a string", name); r = -1; }
    else if (n > 0) {
        str_source src = {a, 1, H5S_ALL, H5S_ALL};
        r = read_strings(&src, ft, n, s, out);
    }
    if (ft >= 0) H5Tclose(ft);
    if (s >= 0) H5Sclose(s);
    H5Aclose(a);
    return r;
}

static herr_t count_cb(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
    (void)loc; (void)name; (void)info;
    (*(int64_t *)data)++;
    return 0;
}

int64_t hl_h5a_count(int64_t obj) {
    quiet();
    int64_t n = 0;
    hsize_t idx = 0;
    if (H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, count_cb, &n) < 0) { capture("H5Aiterate2"); return -1; }
    return n;
}

int64_t hl_h5a_name(int64_t obj, int64_t idx, char *buf, size_t len) {
    quiet();
    ssize_t n = H5Aget_name_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, (hsize_t)idx, buf, len, H5P_DEFAULT);
    if (n < 0) capture("H5Aget_name_by_idx");
    return (int64_t)n;
}

int hl_h5a_delete(int64_t obj, const char *name) {
    quiet();
    if (H5Adelete(obj, name) < 0) { capture("H5Adelete"); return -1; }
    return 0;
}
