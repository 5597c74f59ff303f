#ifndef HEADLIGHT_HL_HDF5_H
#define HEADLIGHT_HL_HDF5_H
/// HDF5 library version as "major.minor.release" into buf. Returns 0 on success.
int hl_h5_version(char *buf, int len);
#endif
