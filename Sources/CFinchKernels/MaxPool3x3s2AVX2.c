// 3×3 stride-2 max pooling of one plane on AVX2, with or without the argmax: MaxPool3x3s2.c's scan
// (PyTorch's order, NaN kept) on eight output columns per vector, so the paths agree bit for bit.

#include "KernelsAVX2.h"
#include "KernelSupport.h"
#include <math.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

#define INLINE __attribute__((target("avx2,fma"), always_inline)) static inline

// Eight floats of `row` from column `first`, −∞ outside the row (masked lanes are not read).
INLINE __m256 pool_load(const float *row, long first, long w) {
    const __m256 minus_inf = _mm256_set1_ps(-INFINITY);
    __m256i m = finch_avx2_span(first, w, 8);
    if (_mm256_testz_si256(m, m)) return minus_inf;
    __m256 v = _mm256_maskload_ps((const float *)((const char *)row + first * (long)sizeof(float)), m);
    return _mm256_blendv_ps(minus_inf, v, _mm256_castsi256_ps(m));
}

// Input columns first + 2l + {0, 1} for eight lanes l.
INLINE void pool_columns(const float *row, long first, long w, __m256 *even, __m256 *odd) {
    __m256 lo = pool_load(row, first, w), hi = pool_load(row, first + 8, w);
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xD8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)), 0xD8));
}

// PyTorch's scan step: move on a greater value or a NaN (a NaN already held stays).
INLINE __m256 take_mask(__m256 best, __m256 v) {
    return _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

INLINE void take_at(__m256 *best, __m256i *at, __m256 v, __m256i v_at) {
    __m256 take = take_mask(*best, v);
    *best = _mm256_blendv_ps(*best, v, take);
    *at = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(*at), _mm256_castsi256_ps(v_at), take));
}

__attribute__((target("avx2,fma")))
void finch_max_pool3x3s2_avx2(const float *plane, long h, long w, long pt, long pl, long ho, long wo, float *out,
                              int32_t *indices) {
    const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    for (long oh = 0; oh < ho; oh++) {
        for (long ow0 = 0; ow0 < wo; ow0 += 8) {
            __m256 best = _mm256_set1_ps(-INFINITY);
            const long first = 2 * ow0 - pl;
            // Before any comparison the argmax is the window's first element inside the plane.
            const long top = 2 * oh - pt < 0 ? 0 : 2 * oh - pt;
            __m256i at = _mm256_add_epi32(_mm256_set1_epi32((int)(top * w)),
                                          _mm256_max_epi32(_mm256_add_epi32(_mm256_set1_epi32((int)first), even),
                                                           _mm256_setzero_si256()));
            for (long i = 0; i < 3; i++) {
                const long r = 2 * oh - pt + i;
                if (r < 0 || r >= h) continue;
                __m256 c0, c1, c2, unused;
                pool_columns(plane + r * w, first, w, &c0, &c1);
                pool_columns(plane + r * w, first + 2, w, &c2, &unused);
                if (indices) {
                    const __m256i base = _mm256_add_epi32(_mm256_set1_epi32((int)(r * w + first)), even);
                    take_at(&best, &at, c0, base);
                    take_at(&best, &at, c1, _mm256_add_epi32(base, _mm256_set1_epi32(1)));
                    take_at(&best, &at, c2, _mm256_add_epi32(base, _mm256_set1_epi32(2)));
                } else {
                    best = _mm256_blendv_ps(best, c0, take_mask(best, c0));
                    best = _mm256_blendv_ps(best, c1, take_mask(best, c1));
                    best = _mm256_blendv_ps(best, c2, take_mask(best, c2));
                }
            }
            const __m256i lanes = finch_avx2_span(0, wo - ow0, 8);
            // Masked stores are microcoded and slow on the AVX2-only AMD cores: only for the last vector.
            if (wo - ow0 >= 8) {
                _mm256_storeu_ps(out + oh * wo + ow0, best);
                if (indices) _mm256_storeu_si256((__m256i *)(indices + oh * wo + ow0), at);
            } else {
                _mm256_maskstore_ps(out + oh * wo + ow0, lanes, best);
                if (indices) _mm256_maskstore_epi32(indices + oh * wo + ow0, lanes, at);
            }
        }
    }
}
#endif
