// The AVX2 + FMA form of the few-channel (RGB stem) convolution (FewChannelConv.c): eight output
// columns per vector instead of sixteen, the same units, packed weights and scratch. Each output
// lane starts from its bias and takes one FMA per tap in the AVX-512 kernel's order (channel, row,
// column), so the two give the same bits. The sixteen channels of a block go in two halves of eight
// accumulators (sixteen would not leave a register for the input vector and the broadcast weight),
// both fed from input vectors gathered once per eight output columns.

#include "KernelsAVX2.h"
#include "FewChannelConvUnits.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))

// Input vectors gathered before their FMAs: the stem's 27 taps in one pass.
enum { GATHERED = 36 };

// acc[half] += the gathered taps' products, for the block's first `halves` eight-channel halves: each
// input vector is loaded (and for stride 2 de-interleaved) once for both halves.
__attribute__((target("avx2,fma"), always_inline))
static inline void few_channel_fmas(__m256 acc[2][8], const __m256 *v, const long *offset, long count, const float *wt,
                                    long halves) {
    for (long half = 0; half < halves; half++) {
        __m256 a[8];
        for (long k = 0; k < 8; k++) a[k] = acc[half][k];
        for (long t = 0; t < count; t++) {
            const float *wp = wt + offset[t] + 8 * half;
            for (long k = 0; k < 8; k++) a[k] = _mm256_fmadd_ps(_mm256_broadcast_ss(wp + k), v[t], a[k]);
        }
        for (long k = 0; k < 8; k++) acc[half][k] = a[k];
    }
}

__attribute__((target("avx2,fma")))
void finch_few_channel_conv_avx2(const float *x, const float *weight, const float *bias, float *out, const long *g,
                                 long unit_begin, long unit_end, float *scratch) {
    const long c = g[1], w = g[3], cout = g[4], kh = g[5], kw = g[6];
    const long sw = g[8], pl = g[10], ho = g[11], wo = g[12];
    const long taps = c * kh * kw;
    float *wt = scratch, *bt = scratch + 16 * taps;
    long packed = -1;
    __m256 v[GATHERED];
    long offset[GATHERED];
    for (long u = unit_begin; u < unit_end; u++) {
        const struct few_channel_unit unit = few_channel_unit(weight, bias, g, u, wt, bt, &packed);
        const long s = unit.s, oh = unit.oh, co0 = unit.co0, lanes_co = unit.lanes_co;
        const long halves = lanes_co > 8 ? 2 : 1;
        for (long ow0 = 0; ow0 < wo; ow0 += 8) {
            const long lanes = wo - ow0 < 8 ? wo - ow0 : 8;
            __m256 acc[2][8];
            for (long k = 0; k < 16; k++) acc[k / 8][k % 8] = _mm256_set1_ps(bt[k]);
            long count = 0;
            for (long ci = 0; ci < c; ci++) {
                for (long i = 0; i < kh; i++) {
                    const float *row = few_channel_row(x, g, s, ci, oh, i);
                    if (!row) continue;
                    for (long j = 0, col = ow0 * sw - pl; j < kw; j++, col++) {
                        if (sw == 1) {
                            v[count] = col >= 0 && col + 8 <= w ? _mm256_loadu_ps(row + col)
                                                                : _mm256_maskload_ps(row + col, finch_avx2_span(col, w, lanes));
                        } else {
                            // Stride 2: the even lanes of sixteen consecutive columns.
                            __m256 lo, hi;
                            if (col >= 0 && col + 16 <= w) {
                                lo = _mm256_loadu_ps(row + col);
                                hi = _mm256_loadu_ps(row + col + 8);
                            } else {
                                lo = _mm256_maskload_ps(row + col, finch_avx2_span(col, w, 8));
                                hi = _mm256_maskload_ps(row + col + 8, finch_avx2_span(col + 8, w, 8));
                            }
                            __m256 mixed = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
                            v[count] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(mixed), _MM_SHUFFLE(3, 1, 2, 0)));
                        }
                        offset[count++] = ((ci * kh + i) * kw + j) * 16;
                        if (count == GATHERED) {
                            few_channel_fmas(acc, v, offset, count, wt, halves);
                            count = 0;
                        }
                    }
                }
            }
            few_channel_fmas(acc, v, offset, count, wt, halves);
            // Whole vectors store plainly: masked stores are microcoded and slow on the AVX2-only AMD cores.
            const __m256i keep = finch_avx2_span(0, lanes, 8);
            for (long k = 0; k < lanes_co; k++) {
                float *o = out + ((s * cout + co0 + k) * ho + oh) * wo + ow0;
                if (lanes == 8) _mm256_storeu_ps(o, acc[k / 8][k % 8]);
                else _mm256_maskstore_ps(o, keep, acc[k / 8][k % 8]);
            }
        }
    }
}
#endif
