// 1×1 convolution on small planes (4×4 to 15×15 pixels) on AVX2 + FMA: SmallPlanePointwise.c's
// kernel with eight pixels per vector. Without it an AVX2 CPU ran the batched column path there
// (gather the batch into [C, N·H·W], one GEMM, scatter back), MobileNetV3-Small's and MobileViT's
// late stages. Each output is bias + Σ_ci w·x accumulated by FMA in input-channel order, as on
// AVX-512, so the two paths give the same bits.

#include "KernelsAVX2.h"
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))

// Sixteen ymm registers: rows × vectors accumulators, the vectors of x and one broadcast weight.
static inline long block_rows8(long vectors) { return vectors == 2 ? 6 : 4; }

// Two or three vectors a block: two where the plane is a whole number of pairs (4×4, 8×8), three
// otherwise (fewer partly empty blocks on 7×7, 12×12, 14×14).
static inline long block_vectors8(long hw) {
    long total = (hw + 7) / 8;
    return total <= 2 || total % 2 == 0 ? 2 : 3;
}

// One block: rows output channels × vectors of eight pixels from p0, over all input channels.
// packed holds the block's weights as [c][rows] (zero past the last output channel).
__attribute__((target("avx2,fma"), always_inline))
static inline void pointwise_block8(const float *x, const float *packed, const float *bias, float *out, long c,
                                    long hw, long co0, long p0, const long rows, const long vectors, long rows_used) {
    __m256 acc[6][3];
    __m256i keep[3];
    long lanes[3];
#pragma clang loop unroll(full)
    for (long v = 0; v < vectors; v++) {
        long left = hw - p0 - 8 * v;
        lanes[v] = left < 0 ? 0 : (left > 8 ? 8 : left);
        keep[v] = finch_avx2_span(0, lanes[v], 8);
    }
#pragma clang loop unroll(full)
    for (long k = 0; k < rows; k++) {
        __m256 b = _mm256_set1_ps(bias && k < rows_used ? bias[co0 + k] : 0.0f);
#pragma clang loop unroll(full)
        for (long v = 0; v < vectors; v++) acc[k][v] = b;
    }
    for (long ci = 0; ci < c; ci++) {
        __m256 xv[3];
        // Masked loads are fast on every AVX2 core (only masked stores are microcoded on AMD's).
#pragma clang loop unroll(full)
        for (long v = 0; v < vectors; v++) xv[v] = _mm256_maskload_ps(x + ci * hw + p0 + 8 * v, keep[v]);
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
            float *dst = out + (co0 + k) * hw + p0 + 8 * v;
            if (lanes[v] == 8) {
                _mm256_storeu_ps(dst, acc[k][v]);
            } else if (lanes[v] > 0) {
                float t[8];
                _mm256_storeu_ps(t, acc[k][v]);
                memcpy(dst, t, (size_t)lanes[v] * sizeof(float));
            }
        }
    }
}

long finch_pointwise_small_units_avx2(long n, long cout, long hw) {
    long rows = block_rows8(block_vectors8(hw));
    return n * ((cout + rows - 1) / rows);
}

// Units are block-major (unit = block · n + sample), so a thread's run of units repacks the
// weights only when the block changes.
__attribute__((target("avx2,fma")))
void finch_pointwise_small_avx2(const float *x, const float *weight, const float *bias, float *out, long n, long c,
                                long cout, long hw, long unit_begin, long unit_end, float *packed) {
    const long vectors = block_vectors8(hw), rows = block_rows8(vectors);
    long loaded = -1;
    for (long u = unit_begin; u < unit_end; u++) {
        long s = u % n, block = u / n, co0 = block * rows;
        long used = cout - co0 < rows ? cout - co0 : rows;
        if (block != loaded) {
            for (long ci = 0; ci < c; ci++)
                for (long k = 0; k < rows; k++) packed[ci * rows + k] = k < used ? weight[(co0 + k) * c + ci] : 0.0f;
            loaded = block;
        }
        const float *xs = x + s * c * hw;
        float *ys = out + s * cout * hw;
        for (long p0 = 0; p0 < hw; p0 += 8 * vectors) {
            if (vectors == 2) pointwise_block8(xs, packed, bias, ys, c, hw, co0, p0, 6, 2, used);
            else pointwise_block8(xs, packed, bias, ys, c, hw, co0, p0, 4, 3, used);
        }
    }
}
#endif
