// 3×3 stride-2 max pooling of one plane on AVX-512, with or without the argmax (see Pooling.swift).

#include "MaxPool3x3s2.h"
#include "KernelSupport.h"
#include "KernelsAVX2.h"
#include <math.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

// ---------------------------------------------------------------- 3×3 stride-2 max pooling (no indices)

// Input columns first + 2l + {0, 1} for sixteen lanes l from 32 consecutive floats, −∞ outside the row.
__attribute__((target("avx512f"), always_inline))
static inline void pool_columns(const float *row, long first, long w, __m512 *even, __m512 *odd) {
    const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const __m512 minus_inf = _mm512_set1_ps(-INFINITY);
    __mmask16 m0 = span_mask(first, w, 16), m1 = span_mask(first + 16, w, 16);
    __m512 lo = _mm512_mask_loadu_ps(minus_inf, m0, m0 ? row + first : row);
    __m512 hi = _mm512_mask_loadu_ps(minus_inf, m1, m1 ? row + first + 16 : row);
    *even = _mm512_permutex2var_ps(lo, ie, hi);
    *odd = _mm512_permutex2var_ps(lo, io, hi);
}

// PyTorch's scan step: move on a greater value or a NaN (a NaN already held stays).
__attribute__((target("avx512f"), always_inline))
static inline __m512 pool_take(__m512 best, __m512 v) {
    __mmask16 take = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_blend_ps(take, best, v);
}

// The same step for the argmax: the index of the value `pool_take` kept.
__attribute__((target("avx512f"), always_inline))
static inline void pool_take_at(__m512 *best, __m512i *at, __m512 v, __m512i v_at) {
    __mmask16 take = _mm512_cmp_ps_mask(v, *best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    *best = _mm512_mask_blend_ps(take, *best, v);
    *at = _mm512_mask_blend_epi32(take, *at, v_at);
}

__attribute__((target("avx512f")))
static void max_pool3x3s2_16(const float *plane, long h, long w, long pt, long pl, long ho, long wo, float *out,
                             int32_t *indices) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (long oh = 0; oh < ho; oh++) {
        for (long ow0 = 0; ow0 < wo; ow0 += 16) {
            __m512 best = _mm512_set1_ps(-INFINITY);
            const long first = 2 * ow0 - pl;
            // Before any comparison the argmax is the window's first element inside the plane.
            const long top = 2 * oh - pt < 0 ? 0 : 2 * oh - pt;
            __m512i at = _mm512_add_epi32(_mm512_set1_epi32((int)(top * w)),
                                          _mm512_max_epi32(_mm512_add_epi32(_mm512_set1_epi32((int)first), even),
                                                           _mm512_setzero_si512()));
            for (long i = 0; i < 3; i++) {
                const long r = 2 * oh - pt + i;
                if (r < 0 || r >= h) continue;
                __m512 c0, c1, c2, unused;
                pool_columns(plane + r * w, first, w, &c0, &c1);
                pool_columns(plane + r * w, first + 2, w, &c2, &unused);
                if (indices) {
                    const __m512i base = _mm512_add_epi32(_mm512_set1_epi32((int)(r * w + first)), even);
                    pool_take_at(&best, &at, c0, base);
                    pool_take_at(&best, &at, c1, _mm512_add_epi32(base, _mm512_set1_epi32(1)));
                    pool_take_at(&best, &at, c2, _mm512_add_epi32(base, _mm512_set1_epi32(2)));
                } else {
                    best = pool_take(pool_take(pool_take(best, c0), c1), c2);
                }
            }
            const __mmask16 lanes = first_lanes(wo - ow0);
            _mm512_mask_storeu_ps(out + oh * wo + ow0, lanes, best);
            if (indices) _mm512_mask_storeu_epi32(indices + oh * wo + ow0, lanes, at);
        }
    }
}

int finch_max_pool3x3s2(const float *plane, long h, long w, long pt, long pl, long ho, long wo, float *out,
                        int32_t *indices) {
    if (finch_avx2_selected()) {
        finch_max_pool3x3s2_avx2(plane, h, w, pt, pl, ho, wo, out, indices);
        return 1;
    }
    if (!finch_avx512_selected()) return 0;
    max_pool3x3s2_16(plane, h, w, pt, pl, ho, wo, out, indices);
    return 1;
}
#else
int finch_max_pool3x3s2(const float *plane, long h, long w, long pt, long pl, long ho, long wo, float *out,
                        int32_t *indices) {
    (void)plane; (void)h; (void)w; (void)pt; (void)pl; (void)ho; (void)wo; (void)out; (void)indices;
    return 0;
}
#endif
