// Softmax and log-softmax over short contiguous rows on AVX-512 (on AVX2: SoftmaxRowsAVX2.c), with
// Exponentials.c's exponential.

#include "SoftmaxRows.h"
#include "Exponential16.h"
#include "KernelSupport.h"
#include "KernelsAVX2.h"
#include <math.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

// ---------------------------------------------------------------- softmax over contiguous rows

// Attention's rows are short (64, 16 or 4 keys in MobileViT-XXS at 128 px), so the per-row calls
// of a max pass, an exp pass and a scaling pass cost more than the arithmetic; here a row of up
// to sixteen keys is one vector from load to store.
__attribute__((target("avx512f")))
static void softmax_rows16(const float *src, float *dst, size_t rows, size_t r, int log_softmax) {
    const __m512 minus_inf = _mm512_set1_ps(-INFINITY);
    for (size_t row = 0; row < rows; row++) {
        const float *x = src + row * r;
        float *y = dst + row * r;
        __m512 mv = minus_inf;
        for (size_t i = 0; i < r; i += 16) {
            __mmask16 k = first_lanes((long)(r - i));
            mv = _mm512_max_ps(_mm512_mask_loadu_ps(minus_inf, k, x + i), mv);
        }
        float m = _mm512_reduce_max_ps(mv);
        if (!isfinite(m)) m = 0.0f;
        const __m512 shift = _mm512_set1_ps(m);
        __m512 sv = _mm512_setzero_ps();
        for (size_t i = 0; i < r; i += 16) {
            __mmask16 k = first_lanes((long)(r - i));
            __m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), shift)));
            if (!log_softmax) _mm512_mask_storeu_ps(y + i, k, e);
            sv = _mm512_add_ps(sv, e);
        }
        float sum = _mm512_reduce_add_ps(sv);
        if (log_softmax) {
            const __m512 ls = _mm512_set1_ps(logf(sum) + m);
            for (size_t i = 0; i < r; i += 16) {
                __mmask16 k = first_lanes((long)(r - i));
                _mm512_mask_storeu_ps(y + i, k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), ls));
            }
        } else {
            const __m512 inv = _mm512_set1_ps(1.0f / sum);
            for (size_t i = 0; i < r; i += 16) {
                __mmask16 k = first_lanes((long)(r - i));
                _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, y + i), inv));
            }
        }
    }
}

int finch_softmax_rows(const float *src, float *dst, size_t rows, size_t r, int log_softmax) {
    if (finch_avx2_selected()) {
        finch_softmax_rows_avx2(src, dst, rows, r, log_softmax);
        return 1;
    }
    if (!finch_avx512_selected()) return 0;
    softmax_rows16(src, dst, rows, r, log_softmax);
    return 1;
}
#else
int finch_softmax_rows(const float *src, float *dst, size_t rows, size_t r, int log_softmax) {
    (void)src; (void)dst; (void)rows; (void)r; (void)log_softmax;
    return 0;
}
#endif
