// File-system helpers Swift cannot reach portably (Glibc's module hides the GNU extensions).
#ifndef HL_FS_H
#define HL_FS_H
#include <stdint.h>

/// Reserves disk blocks for [offset, offset + length) of the open file `fd` without changing its
/// size (Linux fallocate with FALLOC_FL_KEEP_SIZE). Returns 0 on success, else an errno value:
/// ENOSPC/EDQUOT/EFBIG when the space cannot be had, EOPNOTSUPP (or ENOSYS) where the file
/// system or platform cannot reserve (the caller then checks free space instead).
int hl_fs_reserve(int fd, int64_t offset, int64_t length);

#endif
