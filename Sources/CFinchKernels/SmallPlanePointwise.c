// 1×1 convolution on small planes (4×4 to 15×15 pixels), sixteen pixels per AVX-512 vector and a
// block of output channels in registers (see SmallPlanePointwiseConv.swift); the AVX2 form is
// SmallPlanePointwiseAVX2.c.

#include "SmallPlanePointwise.h"
#include "KernelSupport.h"
#include "KernelsAVX2.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

// One block: rows output channels × vectors of sixteen pixels, accumulated over all input channels.
// Both are constants at each call and the loops over them unroll, so the accumulators stay in
// registers. packed holds the block's weights as [c][rows] (zero past the last output channel).
__attribute__((target("avx512f"), always_inline))
static inline void pointwise_block(const float *x, const float *packed, const float *bias, float *out, long c,
                                   long hw, long co0, long p0, const long rows, const long vectors, long rows_used) {
    __m512 acc[16][4];
    __mmask16 keep[4];
#pragma clang loop unroll(full)
    for (long v = 0; v < vectors; v++) {
        long left = hw - p0 - 16 * v;
        keep[v] = first_lanes(left);
    }
#pragma clang loop unroll(full)
    for (long k = 0; k < rows; k++) {
        __m512 b = _mm512_set1_ps(bias && k < rows_used ? bias[co0 + k] : 0.0f);
#pragma clang loop unroll(full)
        for (long v = 0; v < vectors; v++) acc[k][v] = b;
    }
    for (long ci = 0; ci < c; ci++) {
        __m512 xv[4];
#pragma clang loop unroll(full)
        for (long v = 0; v < vectors; v++) xv[v] = _mm512_maskz_loadu_ps(keep[v], x + ci * hw + p0 + 16 * v);
        const float *wc = packed + ci * rows;
#pragma clang loop unroll(full)
        for (long k = 0; k < rows; k++) {
            __m512 wk = _mm512_set1_ps(wc[k]);
#pragma clang loop unroll(full)
            for (long v = 0; v < vectors; v++) acc[k][v] = _mm512_fmadd_ps(wk, xv[v], acc[k][v]);
        }
    }
#pragma clang loop unroll(full)
    for (long k = 0; k < rows; k++) {
        if (k >= rows_used) break;
#pragma clang loop unroll(full)
        for (long v = 0; v < vectors; v++)
            if (keep[v]) _mm512_mask_storeu_ps(out + (co0 + k) * hw + p0 + 16 * v, keep[v], acc[k][v]);
    }
}

// Output channels per block for a given number of pixel vectors: about 24 accumulators.
#define ROWS(v) ((v) == 1 ? 16 : ((v) == 2 ? 12 : ((v) == 3 ? 8 : 6)))
#define MAX_VECTORS 4

#define INLINE __attribute__((target("avx512f"), always_inline)) static inline
#define LANES 16
#define BLOCK pointwise_block
// The whole batch in one group: with twice AVX2's rows per block each input is re-read half as often,
// and grouping as AVX2 does measured no gain (0.77× on 576 → 96 at 4×4, the weights repacked 5× as often).
#define GROUP_FLOATS 0L
#include "SmallPlanePointwiseUnits.h"

__attribute__((target("avx512f")))
static void pointwise_small16(const float *x, const float *weight, const float *bias, float *out, long n, long c,
                              long cout, long hw, long unit_begin, long unit_end, float *packed) {
    pointwise_units(x, weight, bias, out, n, c, cout, hw, unit_begin, unit_end, packed);
}

long finch_pointwise_small_units(long n, long cout, long hw) {
    if (finch_avx2_selected()) {
        long rows8 = finch_pointwise_small_rows_avx2(hw);
        return n * ((cout + rows8 - 1) / rows8);
    }
    long vectors_total = (hw + 15) / 16, vectors = vectors_total < MAX_VECTORS ? vectors_total : MAX_VECTORS;
    long rows = ROWS(vectors);
    return n * ((cout + rows - 1) / rows);
}

int finch_pointwise_small(const float *x, const float *weight, const float *bias, float *out, long n, long c,
                          long cout, long hw, long unit_begin, long unit_end, float *scratch) {
    if (finch_avx2_selected()) {
        finch_pointwise_small_avx2(x, weight, bias, out, n, c, cout, hw, unit_begin, unit_end, scratch);
        return 1;
    }
    if (!finch_avx512_selected()) return 0;
    pointwise_small16(x, weight, bias, out, n, c, cout, hw, unit_begin, unit_end, scratch);
    return 1;
}

#else
long finch_pointwise_small_units(long n, long cout, long hw) { (void)n; (void)cout; (void)hw; return 0; }
int finch_pointwise_small(const float *x, const float *weight, const float *bias, float *out, long n, long c,
                          long cout, long hw, long unit_begin, long unit_end, float *scratch) {
    (void)scratch;
    (void)x; (void)weight; (void)bias; (void)out; (void)n; (void)c; (void)cout; (void)hw;
    (void)unit_begin; (void)unit_end;
    return 0;
}
#endif
