// The AVX2 + FMA form of the small-plane 1×1 convolution (SmallPlanePointwise.c): eight pixels per
// vector, blocks of output channels sized for sixteen registers, the same units (block-major, as
// finch_pointwise_small_units counts them on this path) and weight packing. Each output starts from
// its bias and takes one FMA per input channel in order, as in the AVX-512 kernel: the same bits.
// Whole vectors load and store plainly and only a plane's partial last vector is masked: masked
// stores are microcoded and slow on the AVX2-only AMD cores (as in DepthwiseConvKernelsAVX2.c).

#include "KernelsAVX2.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))

// rows × vectors accumulators, vectors input vectors and a broadcast weight within sixteen registers.
// Two vectors of six rows at most (two loads of the input per six broadcast weights and twelve FMAs):
// four vectors of three rows loaded twice the input per FMA and ran at half the speed (single-thread
// loop over MobileNetV3-Small's layers at 7×7 to 14×14, batch 32, shared machine: 1.8–2.3×).
#define ROWS(v) ((v) == 1 ? 12 : 6)
#define MAX_VECTORS 2
long finch_pointwise_small_rows_avx2(long hw) {
    long vectors = (hw + 7) / 8;
    return ROWS(vectors < MAX_VECTORS ? vectors : MAX_VECTORS);
}

// whole: every vector of the block lies inside the plane (a constant: the loop over input channels then
// has no test per vector; in the plane's last block masked loads, as a test there cost more).
__attribute__((target("avx2,fma"), always_inline))
static inline void pointwise_lanes8(const float *x, const float *packed, const float *bias, float *out, long c,
                                    long hw, long co0, long p0, const long rows, const long vectors, long rows_used,
                                    const int whole) {
    __m256 acc[12][2];
    __m256i keep[2];
    long live[2], full[2];
#pragma clang loop unroll(full)
    for (long v = 0; v < vectors; v++) {
        long left = hw - p0 - 8 * v;
        keep[v] = finch_avx2_span(0, left, 8);
        live[v] = left > 0;
        full[v] = whole || left >= 8;
    }
#pragma clang loop unroll(full)
    for (long k = 0; k < rows; k++) {
        __m256 b = _mm256_set1_ps(bias && k < rows_used ? bias[co0 + k] : 0.0f);
#pragma clang loop unroll(full)
        for (long v = 0; v < vectors; v++) acc[k][v] = b;
    }
    for (long ci = 0; ci < c; ci++) {
        __m256 xv[2];
#pragma clang loop unroll(full)
        for (long v = 0; v < vectors; v++) {
            const float *p = x + ci * hw + p0 + 8 * v;
            xv[v] = whole ? _mm256_loadu_ps(p) : (live[v] ? _mm256_maskload_ps(p, keep[v]) : _mm256_setzero_ps());
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
        for (long v = 0; v < vectors; v++) {
            float *o = out + (co0 + k) * hw + p0 + 8 * v;
            if (full[v]) _mm256_storeu_ps(o, acc[k][v]);
            else if (live[v]) _mm256_maskstore_ps(o, keep[v], acc[k][v]);
        }
    }
}

__attribute__((target("avx2,fma"), always_inline))
static inline void pointwise_block8(const float *x, const float *packed, const float *bias, float *out, long c,
                                    long hw, long co0, long p0, const long rows, const long vectors, long rows_used) {
    if (hw - p0 >= 8 * vectors) pointwise_lanes8(x, packed, bias, out, c, hw, co0, p0, rows, vectors, rows_used, 1);
    else pointwise_lanes8(x, packed, bias, out, c, hw, co0, p0, rows, vectors, rows_used, 0);
}

#define INLINE __attribute__((target("avx2,fma"), always_inline)) static inline
#define LANES 8
#define BLOCK pointwise_block8
// Samples grouped by 256 KiB of input, a quarter of the EPYC cores' L2: over the whole batch at once,
// each block of three to twelve output channels read every sample's input again from farther out
// (single-thread loops over MobileNetV3-Small's c = 96 → 576, 576 → 96 and 48 → 288 layers at 4×4,
// 7×7 and 14×14, batch 32: 1.1–1.5× faster grouped, with the plain stores; 2¹⁵ floats repacked the
// weights too often on wide inputs, 2¹⁷ gained less on the larger planes).
#define GROUP_FLOATS (1L << 16)
#include "SmallPlanePointwiseUnits.h"

__attribute__((target("avx2,fma")))
void finch_pointwise_small_avx2(const float *x, const float *weight, const float *bias, float *out, long n, long c,
                                long cout, long hw, long unit_begin, long unit_end, float *packed) {
    pointwise_units(x, weight, bias, out, n, c, cout, hw, unit_begin, unit_end, packed);
}
#endif
