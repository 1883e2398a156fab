// Softmax and log-softmax over short contiguous rows on AVX2 + FMA (SoftmaxRows.h), for CPUs
// without AVX-512. Before this kernel the avx2 path ran Swift's per-row loop: a max loop, a
// finch_exp_shifted call, an eight-lane sum and a scaling loop per row, which for attention's rows
// (4 to 196 keys in MobileViT-XXS) cost more in calls than in arithmetic. Here each row is one pass
// of loads per step, and the result is that loop's, bit for bit: the same exponential (exp8, as
// finch_exp_shifted on this path), and the sum in ReduceKernels.sumContiguous's order (eight lanes
// in blocks of 256 values, the lanes added first to last, then the tail one by one).

#include "KernelsAVX2.h"
#include "Exponential8.h"
#include <math.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))

__attribute__((target("avx2,fma")))
void finch_softmax_rows_avx2(const float *src, float *dst, size_t rows, size_t r, int log_softmax) {
    const __m256 minus_inf = _mm256_set1_ps(-INFINITY);
    const size_t full = r & ~(size_t)7, tail = r - full;
    const __m256i tail_lanes = finch_avx2_span(0, (long)tail, 8);
    for (size_t row = 0; row < rows; row++) {
        const float *x = src + row * r;
        float *y = dst + row * r;
        // A NaN key is passed over (max's second operand wins), as Swift.max(m, x) does.
        __m256 mv = minus_inf;
        for (size_t i = 0; i < full; i += 8) mv = _mm256_max_ps(_mm256_loadu_ps(x + i), mv);
        float lanes[8];
        _mm256_storeu_ps(lanes, mv);
        float m = -INFINITY;
        for (int l = 0; l < 8; l++) m = lanes[l] > m ? lanes[l] : m;
        for (size_t i = full; i < r; i++) m = x[i] > m ? x[i] : m;
        if (!isfinite(m)) m = 0.0f;
        const __m256 shift = _mm256_set1_ps(m);
        __m256 acc = _mm256_setzero_ps();
        size_t i = 0;
        while (i < full) {
            __m256 block = _mm256_setzero_ps();
            size_t end = i + 256 < full ? i + 256 : full;
            for (; i < end; i += 8) {
                __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), shift));
                _mm256_storeu_ps(y + i, e);
                block = _mm256_add_ps(block, e);
            }
            acc = _mm256_add_ps(acc, block);
        }
        _mm256_storeu_ps(lanes, acc);
        float sum = 0.0f;
        for (int l = 0; l < 8; l++) sum += lanes[l];
        if (tail) {
            __m256 e = exp8(_mm256_sub_ps(_mm256_maskload_ps(x + full, tail_lanes), shift));
            _mm256_maskstore_ps(y + full, tail_lanes, e);
            for (size_t t = full; t < r; t++) sum += y[t];
        }
        if (log_softmax) {
            const __m256 ls = _mm256_set1_ps(logf(sum) + m);
            for (size_t k = 0; k < full; k += 8) _mm256_storeu_ps(y + k, _mm256_sub_ps(_mm256_loadu_ps(x + k), ls));
            if (tail) _mm256_maskstore_ps(y + full, tail_lanes, _mm256_sub_ps(_mm256_maskload_ps(x + full, tail_lanes), ls));
        } else {
            const __m256 inv = _mm256_set1_ps(1.0f / sum);
            for (size_t k = 0; k < full; k += 8) _mm256_storeu_ps(y + k, _mm256_mul_ps(_mm256_loadu_ps(y + k), inv));
            if (tail) _mm256_maskstore_ps(y + full, tail_lanes, _mm256_mul_ps(_mm256_maskload_ps(y + full, tail_lanes), inv));
        }
    }
}
#endif
