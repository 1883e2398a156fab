// Direct convolution for inputs with few channels (the RGB stems), sixteen output columns per
// AVX-512 vector and sixteen output channels in registers (see FewChannelConv.swift); the AVX2 form
// is FewChannelConvAVX2.c.
//
// An RGB stem has K = 3·kh·kw ≤ 147, so im2col writes kh·kw/stride² copies of the image for a GEMM
// that is short in K; here each input vector is loaded once per tap and feeds sixteen FMAs.

#include "FewChannelConv.h"
#include "KernelSupport.h"
#include "KernelsAVX2.h"
#include "FewChannelConvUnits.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

long finch_few_channel_conv_scratch(const long *g) {
    long c = g[1], kh = g[5], kw = g[6];
    return 16 * c * kh * kw + 16;
}

__attribute__((target("avx512f")))
static void few_channel_conv16(const float *x, const float *weight, const float *bias, float *out, const long *g,
                               long unit_begin, long unit_end, float *scratch) {
    const long c = g[1], w = g[3], cout = g[4], kh = g[5], kw = g[6];
    const long sw = g[8], pl = g[10], ho = g[11], wo = g[12];
    const long taps = c * kh * kw;
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    float *wt = scratch, *bt = scratch + 16 * taps;
    long packed = -1;
    for (long u = unit_begin; u < unit_end; u++) {
        const struct few_channel_unit unit = few_channel_unit(weight, bias, g, u, wt, bt, &packed);
        const long s = unit.s, oh = unit.oh, co0 = unit.co0, lanes_co = unit.lanes_co;
        for (long ow0 = 0; ow0 < wo; ow0 += 16) {
            long lanes = wo - ow0 < 16 ? wo - ow0 : 16;
            __m512 acc[16];
            for (long k = 0; k < 16; k++) acc[k] = _mm512_set1_ps(bt[k]);
            for (long ci = 0; ci < c; ci++) {
                for (long i = 0; i < kh; i++) {
                    const float *row = few_channel_row(x, g, s, ci, oh, i);
                    if (!row) continue;
                    for (long j = 0; j < kw; j++) {
                        long col = ow0 * sw - pl + j;
                        __m512 v;
                        if (sw == 1) {
                            __mmask16 m = span_mask(col, w, lanes);
                            v = _mm512_maskz_loadu_ps(m, m ? row + col : row);
                        } else {
                            // Stride 2: the even lanes of 32 consecutive columns.
                            __mmask16 m0 = span_mask(col, w, 16), m1 = span_mask(col + 16, w, 16);
                            __m512 lo = _mm512_maskz_loadu_ps(m0, m0 ? row + col : row);
                            __m512 hi = _mm512_maskz_loadu_ps(m1, m1 ? row + col + 16 : row);
                            v = _mm512_permutex2var_ps(lo, even, hi);
                        }
                        const float *wp = wt + ((ci * kh + i) * kw + j) * 16;
                        for (long k = 0; k < 16; k++) acc[k] = _mm512_fmadd_ps(_mm512_set1_ps(wp[k]), v, acc[k]);
                    }
                }
            }
            __mmask16 keep = first_lanes(lanes);
            for (long k = 0; k < lanes_co; k++)
                _mm512_mask_storeu_ps(out + ((s * cout + co0 + k) * ho + oh) * wo + ow0, keep, acc[k]);
        }
    }
}

int finch_few_channel_conv(const float *x, const float *weight, const float *bias, float *out, const long *geometry,
                           long unit_begin, long unit_end, float *scratch) {
    if (finch_avx2_selected()) {
        finch_few_channel_conv_avx2(x, weight, bias, out, geometry, unit_begin, unit_end, scratch);
        return 1;
    }
    if (!finch_avx512_selected()) return 0;
    few_channel_conv16(x, weight, bias, out, geometry, unit_begin, unit_end, scratch);
    return 1;
}

#else
long finch_few_channel_conv_scratch(const long *g) { (void)g; return 0; }
int finch_few_channel_conv(const float *x, const float *weight, const float *bias, float *out, const long *geometry,
                           long unit_begin, long unit_end, float *scratch) {
    (void)x; (void)weight; (void)bias; (void)out; (void)geometry; (void)unit_begin; (void)unit_end; (void)scratch;
    return 0;
}
#endif
