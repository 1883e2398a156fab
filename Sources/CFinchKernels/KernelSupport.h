// Shared by the kernel files: which instruction set the dispatcher chose, and lane masks.

#ifndef FINCH_KERNEL_SUPPORT_H
#define FINCH_KERNEL_SUPPORT_H

#include "KernelDispatch.h"

/// 1 when the AVX-512 kernels are selected (the CPU has them, FINCH_KERNELS asked for no lower
/// path, and no test switched to one).
int finch_avx512_selected(void);

/// 1 when the AVX2 + FMA kernels are selected (KernelsAVX2.h): the CPU's best path, or the one
/// FINCH_KERNELS or a test chose below AVX-512.
static inline int finch_avx2_selected(void) { return finch_kernels_path() == FINCH_KERNELS_AVX2; }

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

/// Lanes 0 ..< count of a sixteen-lane vector (none for count ≤ 0, all for count ≥ 16).
static inline __mmask16 first_lanes(long count) {
    return count >= 16 ? (__mmask16)0xFFFF : (count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1u));
}

/// Lanes l < count with 0 ≤ start + l < limit: the in-bounds columns of a load at `start`.
static inline __mmask16 span_mask(long start, long limit, long count) {
    long lo = start < 0 ? -start : 0, hi = limit - start;
    if (hi > count) hi = count;
    if (hi <= lo) return 0;
    return (__mmask16)(first_lanes(hi) & ~first_lanes(lo));
}

/// 0, 9, 18, …, 135: lane k's offset to filter k of sixteen consecutive 3×3 filters.
__attribute__((target("avx512f")))
static inline __m512i filter_offsets(void) {
    return _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                              _mm512_set1_epi32(9));
}
#endif

// `body` with ACT the activation code (BatchNormActivation.h) as a constant, so each activation
// gets its own loop and none is chosen per vector: shared by the AVX-512 and AVX2 forms.
#define PER_ACTIVATION(code, body)                  \
    switch (code) {                                 \
    case 1: { enum { ACT = 1 }; body; } break;      \
    case 2: { enum { ACT = 2 }; body; } break;      \
    case 3: { enum { ACT = 3 }; body; } break;      \
    case 4: { enum { ACT = 4 }; body; } break;      \
    case 5: { enum { ACT = 5 }; body; } break;      \
    case 6: { enum { ACT = 6 }; body; } break;      \
    default: { enum { ACT = 0 }; body; } break;     \
    }

#endif
