// The AVX2 + FMA form of the few-channel (RGB stem) convolution (FewChannelConv.c): eight output
// columns per vector instead of sixteen, the same units, packed weights and scratch. Each output
// lane starts from its bias and takes one FMA per tap in the AVX-512 kernel's order (channel, row,
// column), so the two give the same bits. The sixteen channels of a block go in two halves of eight
// accumulators: sixteen would not leave a register for the input vector and the broadcast weight.

#include "KernelsAVX2.h"
#include "FewChannelConvUnits.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))

__attribute__((target("avx2,fma")))
void finch_few_channel_conv_avx2(const float *x, const float *weight, const float *bias, float *out, const long *g,
                                 long unit_begin, long unit_end, float *scratch) {
    const long c = g[1], h = g[2], w = g[3], cout = g[4], kh = g[5], kw = g[6];
    const long sh = g[7], sw = g[8], pt = g[9], pl = g[10], ho = g[11], wo = g[12];
    const long taps = c * kh * kw;
    float *wt = scratch, *bt = scratch + 16 * taps;
    long packed = -1;
    for (long u = unit_begin; u < unit_end; u++) {
        const struct few_channel_unit unit = few_channel_unit(weight, bias, g, u, wt, bt, &packed);
        const long s = unit.s, oh = unit.oh, co0 = unit.co0, lanes_co = unit.lanes_co;
        for (long ow0 = 0; ow0 < wo; ow0 += 8) {
            long lanes = wo - ow0 < 8 ? wo - ow0 : 8;
            const __m256i keep = finch_avx2_span(0, lanes, 8);
            for (long half = 0; half < 16 && half < lanes_co; half += 8) {
                __m256 acc[8];
                for (long k = 0; k < 8; k++) acc[k] = _mm256_set1_ps(bt[half + k]);
                for (long ci = 0; ci < c; ci++) {
                    for (long i = 0; i < kh; i++) {
                        long r = oh * sh - pt + i;
                        if (r < 0 || r >= h) continue;
                        const float *row = x + ((s * c + ci) * h + r) * w;
                        for (long j = 0; j < kw; j++) {
                            long col = ow0 * sw - pl + j;
                            __m256 v;
                            if (sw == 1) {
                                v = _mm256_maskload_ps(row + col, finch_avx2_span(col, w, lanes));
                            } else {
                                // Stride 2: the even lanes of sixteen consecutive columns.
                                __m256 lo = _mm256_maskload_ps(row + col, finch_avx2_span(col, w, 8));
                                __m256 hi = _mm256_maskload_ps(row + col + 8, finch_avx2_span(col + 8, w, 8));
                                __m256 mixed = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
                                v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(mixed), _MM_SHUFFLE(3, 1, 2, 0)));
                            }
                            const float *wp = wt + ((ci * kh + i) * kw + j) * 16 + half;
                            for (long k = 0; k < 8; k++) acc[k] = _mm256_fmadd_ps(_mm256_broadcast_ss(wp + k), v, acc[k]);
                        }
                    }
                }
                long used = lanes_co - half < 8 ? lanes_co - half : 8;
                for (long k = 0; k < used; k++)
                    _mm256_maskstore_ps(out + ((s * cout + co0 + half + k) * ho + oh) * wo + ow0, keep, acc[k]);
            }
        }
    }
}
#endif
