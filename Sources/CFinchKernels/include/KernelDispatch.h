// Which of the kernels' paths runs (KernelDispatch.c): the CPU's best, or the one FINCH_KERNELS names.

#ifndef FINCH_KERNEL_DISPATCH_H
#define FINCH_KERNEL_DISPATCH_H

/// The kernel paths, in order: each runs on every CPU that runs the next.
enum finch_kernel_path { FINCH_KERNELS_GENERIC = 0, FINCH_KERNELS_AVX2 = 1, FINCH_KERNELS_AVX512 = 2 };

/// The path the kernels take now: the best this CPU has, or what FINCH_KERNELS asked for (clamped
/// to the best), chosen when the library is loaded; tests switch it with finch_kernels_use.
int finch_kernels_path(void);
/// The best path this CPU can run.
int finch_kernels_best(void);
/// The path FINCH_KERNELS named when the library was loaded (before clamping), −1 when unset or empty.
int finch_kernels_requested(void);
/// The path a FINCH_KERNELS value names ("generic", "avx2", "avx512", exactly), −1 for any other.
int finch_kernels_parse(const char *value);
/// A path's name: "generic", "avx2" or "avx512".
const char *finch_kernels_name(int path);
/// The name of the path the kernels take now.
const char *finch_kernels_isa(void);
/// Switches to the named path ("avx512", "avx2", "generic") if this CPU has it; returns 1 on
/// success, 0 otherwise (nothing changes). For tests, which run every path the CPU can run; call it
/// between operations, never while one runs.
int finch_kernels_use(const char *isa);

#endif
