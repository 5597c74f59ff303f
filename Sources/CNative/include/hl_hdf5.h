#ifndef HEADLIGHT_HL_HDF5_H
#define HEADLIGHT_HL_HDF5_H
// Thin C layer over HDF5 for Headlight's TraceStore.
//
// Why it exists: HDF5's type ids (H5T_NATIVE_FLOAT, ...), property-list defaults (H5P_DEFAULT),
// access flags (H5F_ACC_TRUNC, ...) and H5S_ALL/H5S_UNLIMITED are macros that Swift cannot import,
// and its API drifts between 1.10, 1.12 and 1.14. This header does not include <hdf5.h>: Swift
// sees only the functions below, with ids as plain int64_t.
//
// Conventions
// - Every function returns a negative value on failure (ids: < 0; status: < 0) and then
//   hl_h5_last_error() holds a message built from HDF5's error stack (outermost API call first,
//   innermost cause last) or from the shim's own checks. The message is per thread and valid
//   until the next failing hl_h5_* call on that thread.
// - HDF5's automatic printing of error stacks to stderr is switched off (per thread, on first use).
// - Ids returned here must be released with hl_h5_close (files, groups, datasets). Files are
//   opened with the "strong" close degree: closing a file also closes every object opened in it.
// - Paths are HDF5 paths relative to `loc` ("a/b/c") or absolute ("/a/b/c").
// - Strings are UTF-8; vlen strings on disk are variable-length, NUL-terminated, UTF-8 cset
//   (h5py reads them as str for attributes and as bytes/str via .asstr() for datasets).
#include <stddef.h>
#include <stdint.h>

/// HDF5 library version as "major.minor.release" into buf. Returns 0 on success.
int hl_h5_version(char *buf, int len);
/// 1 if the HDF5 library was built thread-safe (calls may come from any thread), else 0.
int hl_h5_is_threadsafe(void);
/// Message describing the last failure of an hl_h5_* call on this thread ("" if none).
const char *hl_h5_last_error(void);

/// Element types Headlight stores. File representation is little-endian; memory is native.
typedef enum hl_h5_dtype {
    HL_H5_UNKNOWN = 0,
    HL_H5_F16 = 1,   ///< IEEE half: file type built like h5py's (copy of F32LE, fields 15/10/5/0/10, size 2, bias 15)
    HL_H5_F32 = 2,
    HL_H5_F64 = 3,
    HL_H5_I8 = 4,
    HL_H5_U8 = 5,
    HL_H5_I16 = 6,
    HL_H5_U16 = 7,
    HL_H5_I32 = 8,
    HL_H5_U32 = 9,
    HL_H5_I64 = 10,
    HL_H5_U64 = 11,
    HL_H5_STR = 12,       ///< variable-length UTF-8 string
    HL_H5_STR_FIXED = 13, ///< fixed-length string (read-only support, written by other tools)
    HL_H5_OTHER = 14      ///< compound, enum, array, reference, ... (not supported)
} hl_h5_dtype;

/// Object kinds returned by hl_h5_object_kind.
enum { HL_H5_KIND_MISSING = 0, HL_H5_KIND_GROUP = 1, HL_H5_KIND_DATASET = 2, HL_H5_KIND_DATATYPE = 3, HL_H5_KIND_OTHER = 4 };

/// Largest dataset rank the shim accepts.
#define HL_H5_MAX_RANK 16

// ---- files ------------------------------------------------------------------------------------

/// Creates a file. exclusive != 0: fail if it exists; otherwise truncate.
int64_t hl_h5f_create(const char *path, int exclusive);
/// Opens an existing file read-only (readwrite == 0) or read-write.
int64_t hl_h5f_open(const char *path, int readwrite);
/// 1 if path has an HDF5 signature, 0 if not, < 0 if it could not be checked (e.g. missing).
int hl_h5f_is_hdf5(const char *path);
/// Flushes all buffers of the file to the operating system.
int hl_h5f_flush(int64_t file);

/// Closes any id (file, group, dataset, datatype, dataspace, property list, attribute).
/// An id that is no longer valid (e.g. closed by a strong file close) is ignored: returns 0.
int hl_h5_close(int64_t id);

// ---- groups and links -------------------------------------------------------------------------

/// Creates a group, creating missing intermediate groups.
int64_t hl_h5g_create(int64_t loc, const char *path);
/// Opens a group.
int64_t hl_h5g_open(int64_t loc, const char *path);
/// HL_H5_KIND_* of the object at path (checking every path component), or < 0 on error.
int hl_h5_object_kind(int64_t loc, const char *path);
/// Number of links in a group.
int64_t hl_h5g_count(int64_t group);
/// Name of the idx-th link (by name, increasing) into buf (truncated to len-1 bytes);
/// returns the full name length.
int64_t hl_h5g_child_name(int64_t group, int64_t idx, char *buf, size_t len);
/// Deletes a link (the object's space is not reclaimed in the file).
int hl_h5l_delete(int64_t loc, const char *path);

// ---- datasets ---------------------------------------------------------------------------------

/// Creates a dataset (missing intermediate groups are created).
/// dims[rank]: current shape. maxdims: NULL for fixed shape, else per-dimension maximum with -1
/// meaning unlimited. chunk: NULL for contiguous layout (allowed only if fixed and unfiltered).
/// gzip: -1 none, 0...9 deflate level. shuffle: non-zero adds the byte-shuffle filter first.
int64_t hl_h5d_create(int64_t loc, const char *path, hl_h5_dtype dtype, int rank, const int64_t *dims,
                      const int64_t *maxdims, const int64_t *chunk, int gzip, int shuffle);
int64_t hl_h5d_open(int64_t loc, const char *path);
/// Element type of a dataset on disk.
hl_h5_dtype hl_h5d_dtype(int64_t dset);
/// Rank of a dataset (0 for scalar).
int hl_h5d_rank(int64_t dset);
/// Current and maximum shape (maxdims entries -1 = unlimited); either pointer may be NULL.
int hl_h5d_shape(int64_t dset, int64_t *dims, int64_t *maxdims);
/// Chunk shape into chunk[rank]; returns 1 if chunked, 0 if not (chunk untouched), < 0 on error.
int hl_h5d_chunk(int64_t dset, int64_t *chunk);
/// Filters: *gzip = deflate level or -1, *shuffle = 0/1.
int hl_h5d_filters(int64_t dset, int *gzip, int *shuffle);
/// Bytes allocated in the file for the raw data (after compression).
int64_t hl_h5d_storage_size(int64_t dset);
/// Changes the current shape (within maxdims).
int hl_h5d_set_extent(int64_t dset, int rank, const int64_t *dims);
/// Writes/reads numeric data. mem: element type of buf (HDF5 converts to/from the file type).
/// start == NULL: the whole dataset; else the block start[rank], count[rank] (buf holds
/// prod(count) elements, row-major).
int hl_h5d_write(int64_t dset, hl_h5_dtype mem, int rank, const int64_t *start, const int64_t *count,
                 const void *buf);
int hl_h5d_read(int64_t dset, hl_h5_dtype mem, int rank, const int64_t *start, const int64_t *count,
                void *buf);
/// Writes NUL-terminated UTF-8 strings to a string dataset (selection as above).
int hl_h5d_write_strings(int64_t dset, int rank, const int64_t *start, const int64_t *count,
                         const char *const *strings);
/// Read-size check for damaged files, done before anything is allocated for a read: `n`
/// elements of `elem_size` bytes on disk. An attribute (attribute != 0; never compressed) must
/// fit in the file's size on disk. A dataset read of more than HL_H5_READ_ALWAYS_OK bytes must
/// fit in HL_H5_MAX_EXPANSION times the file's size (deflate's largest expansion is 1032:1;
/// smaller reads are always allowed, so unallocated chunks read as fill values still work).
/// 0 if allowed, -1 (with hl_h5_last_error) if not. hl_h5d_read_strings, hl_h5a_read_strings
/// and hl_h5a_info check themselves; numeric dataset reads are checked by the caller, which
/// allocates the buffer.
#define HL_H5_READ_ALWAYS_OK (INT64_C(1) << 30)
#define HL_H5_MAX_EXPANSION 1032
int hl_h5_check_read(int64_t obj, int64_t n, int64_t elem_size, int attribute);
/// Reads strings (vlen or fixed-length) into out[prod(count)] (or out[number of elements]):
/// each entry is malloc'd; release them with hl_h5_free_strings.
int hl_h5d_read_strings(int64_t dset, int rank, const int64_t *start, const int64_t *count, char **out);
void hl_h5_free_strings(char **strings, int64_t n);

// ---- attributes -------------------------------------------------------------------------------
// `obj` is a file (attributes go to its root group), group or dataset id.

/// Writes (replacing any existing attribute of that name) a numeric attribute: rank 0 is a
/// scalar (n must be 1), rank 1 an array of n elements (n may be 0). dtype is both the memory
/// and (little-endian) file type.
int hl_h5a_write(int64_t obj, const char *name, hl_h5_dtype dtype, int rank, int64_t n, const void *buf);
/// Same for vlen UTF-8 strings.
int hl_h5a_write_strings(int64_t obj, const char *name, int rank, int64_t n, const char *const *strings);
/// 1 if the attribute exists (then fills type, rank and element count), 0 if not, < 0 on error
/// (also when the element count is more than the file can hold: hl_h5_check_read).
int hl_h5a_info(int64_t obj, const char *name, hl_h5_dtype *dtype, int *rank, int64_t *n);
/// Reads all elements of a numeric attribute converted to `mem`.
int hl_h5a_read(int64_t obj, const char *name, hl_h5_dtype mem, void *buf);
/// Reads a string attribute (vlen or fixed) into out[n] malloc'd strings (see hl_h5_free_strings).
int hl_h5a_read_strings(int64_t obj, const char *name, char **out);
/// Number of attributes and name of the idx-th (by name, increasing; length returned).
int64_t hl_h5a_count(int64_t obj);
int64_t hl_h5a_name(int64_t obj, int64_t idx, char *buf, size_t len);
int hl_h5a_delete(int64_t obj, const char *name);

#endif
