#ifndef FINCH_HDF5_PROBE_H
#define FINCH_HDF5_PROBE_H

#include <stdint.h>

/// How a child process fared reading a whole HDF5 file with libhdf5.
typedef enum {
    FINCH_HDF5_PROBE_OK = 0,
    /// libhdf5 returned an error on some object, but survived reading all it could reach.
    FINCH_HDF5_PROBE_REFUSED = 1,
    /// The child ended by a signal (`detail`) or an unexpected exit status (`detail`, negated),
    /// such as a sanitizer's report.
    FINCH_HDF5_PROBE_CRASHED = 2,
    /// Still running at the deadline, or past its CPU-time limit: killed.
    FINCH_HDF5_PROBE_HUNG = 3,
    /// Killed by the system while within its deadline (the kernel's out-of-memory killer).
    FINCH_HDF5_PROBE_OUT_OF_MEMORY = 4,
    /// No child could be started or waited for (`detail` is errno).
    FINCH_HDF5_PROBE_UNAVAILABLE = 5,
} finch_hdf5_probe_verdict;

/// What the child does; anything but `NORMAL` exists for tests of the parent's side.
typedef enum {
    FINCH_HDF5_PROBE_MODE_NORMAL = 0,
    FINCH_HDF5_PROBE_MODE_SEGFAULT = 1,
    FINCH_HDF5_PROBE_MODE_SPIN = 2,
} finch_hdf5_probe_mode;

typedef struct {
    finch_hdf5_probe_verdict verdict;
    int detail;
} finch_hdf5_probe_result;

/// Reads every object, attribute and dataset of the HDF5 file at `path` (`file_size` bytes) in a
/// forked child with bounded address space and CPU time, and waits at most `timeout_seconds`.
/// The child runs only libc and libhdf5 and ends with `_exit`; the caller's libhdf5 state is
/// never touched. Call it while no other thread is inside libhdf5.
finch_hdf5_probe_result finch_hdf5_probe(const char *path, int64_t file_size, double timeout_seconds,
                                         finch_hdf5_probe_mode mode);

#endif
