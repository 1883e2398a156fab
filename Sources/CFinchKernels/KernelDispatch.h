// Shared between the kernel files: which instruction set the dispatcher chose.

#ifndef FINCH_KERNEL_DISPATCH_H
#define FINCH_KERNEL_DISPATCH_H

/// 1 when the AVX-512 kernels are selected (the CPU has them and no test switched them off).
int finch_avx512_selected(void);

#endif
