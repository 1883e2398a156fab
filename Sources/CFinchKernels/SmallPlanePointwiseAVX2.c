// The AVX2 + FMA form of the small-plane 1×1 convolution (SmallPlanePointwise.c): eight pixels per
// vector, blocks of output channels sized for sixteen registers, the same units (block-major, as
// finch_pointwise_small_units counts them on this path) and weight packing. Each output starts from
// its bias and takes one FMA per input channel in order, as in the AVX-512 kernel: the same bits.

#include "KernelsAVX2.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))

// rows × vectors accumulators, vectors input vectors and a broadcast weight within sixteen registers.
#define ROWS(v) ((v) == 1 ? 12 : ((v) == 2 ? 6 : ((v) == 3 ? 4 : 3)))
long finch_pointwise_small_rows_avx2(long vectors) { return ROWS(vectors); }

__attribute__((target("avx2,fma"), always_inline))
static inline void pointwise_block8(const float *x, const float *packed, const float *bias, float *out, long c,
                                    long hw, long co0, long p0, const long rows, const long vectors, long rows_used) {
    __m256 acc[12][4];
    __m256i keep[4];
    long live[4];
#pragma clang loop unroll(full)
    for (long v = 0; v < vectors; v++) {
        long left = hw - p0 - 8 * v;
        keep[v] = finch_avx2_span(0, left, 8);
        live[v] = left > 0;
    }
#pragma clang loop unroll(full)
    for (long k = 0; k < rows; k++) {
        __m256 b = _mm256_set1_ps(bias && k < rows_used ? bias[co0 + k] : 0.0f);
#pragma clang loop unroll(full)
        for (long v = 0; v < vectors; v++) acc[k][v] = b;
    }
    for (long ci = 0; ci < c; ci++) {
        __m256 xv[4];
#pragma clang loop unroll(full)
        for (long v = 0; v < vectors; v++) {
            const float *p = x + ci * hw + p0 + 8 * v;
            xv[v] = live[v] ? _mm256_maskload_ps(p, keep[v]) : _mm256_setzero_ps();
        }
        const float *wc = packed + ci * rows;
#pragma clang loop unroll(full)
        for (long k = 0; k < rows; k++) {
            __m256 wk = _mm256_broadcast_ss(wc + k);
#pragma clang loop unroll(full)
            for (long v = 0; v < vectors; v++) acc[k][v] = _mm256_fmadd_ps(wk, xv[v], acc[k][v]);
        }
    }
#pragma clang loop unroll(full)
    for (long k = 0; k < rows; k++) {
        if (k >= rows_used) break;
#pragma clang loop unroll(full)
        for (long v = 0; v < vectors; v++)
            if (live[v]) _mm256_maskstore_ps(out + (co0 + k) * hw + p0 + 8 * v, keep[v], acc[k][v]);
    }
}

#define INLINE __attribute__((target("avx2,fma"), always_inline)) static inline
#define LANES 8
#define BLOCK pointwise_block8
#include "SmallPlanePointwiseUnits.h"

__attribute__((target("avx2,fma")))
void finch_pointwise_small_avx2(const float *x, const float *weight, const float *bias, float *out, long n, long c,
                                long cout, long hw, long unit_begin, long unit_end, float *packed) {
    pointwise_units(x, weight, bias, out, n, c, cout, hw, unit_begin, unit_end, packed);
}
#endif
