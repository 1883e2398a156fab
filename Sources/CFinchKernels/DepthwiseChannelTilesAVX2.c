// Depthwise convolution forward on channel tiles on AVX2: DepthwiseConvChannelTiles.swift's kernel
// (eight channels a vector, a zero-padded tile [Hp, Wp, 8] per block) in 256-bit registers, where a
// portable Swift build runs its SIMD8 arithmetic as pairs of SSE operations (18% of MobileNetV3-Small's
// eval forward on the avx2 path, the late stages' 8×8 and 4×4 planes with 3×3 and 5×5 kernels).
//
// Units are finch_depthwise_tiles16's (a block of sixteen channels of one sample), each run as two
// halves of eight. Taps accumulate as the Swift kernel does, acc + w·x with the product rounded (no
// FMA), in the same order, so the results are the Swift kernel's bits.

#include "KernelsAVX2.h"
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))

__attribute__((target("avx2,fma")))
void finch_depthwise_tiles16_avx2(const float *x, const float *weight, const float *bias, float *out, const long *g,
                                  long unit_begin, long unit_end, float *scratch) {
    const long n = g[0], c = g[1], h = g[2], w = g[3], kh = g[4], kw = g[5], sh = g[6], sw = g[7];
    const long pt = g[8], pl = g[9], dh = g[10], dw = g[11], ho = g[12], wo = g[13];
    const long hp = (ho - 1) * sh + (kh - 1) * dh + 1, wp = (wo - 1) * sw + (kw - 1) * dw + 1, khw = kh * kw;
    // finch_depthwise_tiles16_scratch sized these for sixteen lanes; eight use half.
    float *tile = scratch, *wt = tile + 8 * hp * wp, *row = wt + 8 * khw;
    long rows = h < hp - pt ? h : hp - pt, cols = w < wp - pl ? w : wp - pl;
    if (rows < 0) rows = 0;
    if (cols < 0) cols = 0;
    for (long u = unit_begin; u < unit_end; u++) {
        const long block = u / n, s = u % n;
        for (long c0 = block * 16; c0 < block * 16 + 16 && c0 < c; c0 += 8) {
            const long lanes = c - c0 < 8 ? c - c0 : 8;
            memset(tile, 0, sizeof(float) * 8 * hp * wp);
            for (long k = 0; k < lanes; k++) {
                const float *plane = x + (s * c + c0 + k) * h * w;
                for (long ih = 0; ih < rows; ih++) {
                    float *dst = tile + ((ih + pt) * wp + pl) * 8 + k;
                    const float *src = plane + ih * w;
                    for (long iw = 0; iw < cols; iw++) dst[iw * 8] = src[iw];
                }
            }
            // The two halves alternate, so the weights are laid out per half (8·kh·kw values).
            memset(wt, 0, sizeof(float) * 8 * khw);
            float bb[8] = {0};
            for (long k = 0; k < lanes; k++) {
                for (long t = 0; t < khw; t++) wt[t * 8 + k] = weight[(c0 + k) * khw + t];
                if (bias) bb[k] = bias[c0 + k];
            }
            const __m256 b = _mm256_loadu_ps(bb);
            for (long oh = 0; oh < ho; oh++) {
                // Four outputs at a time: each is one chain of dependent adds, whose latency, not the
                // arithmetic, bounded a single chain (each output still sums its taps in order).
                long ow = 0;
                for (; ow + 4 <= wo; ow += 4) {
                    __m256 a0 = b, a1 = b, a2 = b, a3 = b;
                    for (long i = 0; i < kh; i++) {
                        const float *r = tile + ((oh * sh + i * dh) * wp + ow * sw) * 8;
                        const float *wr = wt + i * kw * 8;
                        for (long j = 0; j < kw; j++) {
                            const __m256 wj = _mm256_loadu_ps(wr + j * 8);
                            const float *rj = r + j * dw * 8;
                            a0 = _mm256_add_ps(a0, _mm256_mul_ps(wj, _mm256_loadu_ps(rj)));
                            a1 = _mm256_add_ps(a1, _mm256_mul_ps(wj, _mm256_loadu_ps(rj + sw * 8)));
                            a2 = _mm256_add_ps(a2, _mm256_mul_ps(wj, _mm256_loadu_ps(rj + 2 * sw * 8)));
                            a3 = _mm256_add_ps(a3, _mm256_mul_ps(wj, _mm256_loadu_ps(rj + 3 * sw * 8)));
                        }
                    }
                    _mm256_storeu_ps(row + ow * 8, a0);
                    _mm256_storeu_ps(row + ow * 8 + 8, a1);
                    _mm256_storeu_ps(row + ow * 8 + 16, a2);
                    _mm256_storeu_ps(row + ow * 8 + 24, a3);
                }
                for (; ow < wo; ow++) {
                    __m256 acc = b;
                    for (long i = 0; i < kh; i++) {
                        const float *r = tile + ((oh * sh + i * dh) * wp + ow * sw) * 8;
                        const float *wr = wt + i * kw * 8;
                        for (long j = 0; j < kw; j++)
                            acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(wr + j * 8), _mm256_loadu_ps(r + j * dw * 8)));
                    }
                    _mm256_storeu_ps(row + ow * 8, acc);
                }
                for (long k = 0; k < lanes; k++) {
                    float *dst = out + (s * c + c0 + k) * ho * wo + oh * wo;
                    for (long ow = 0; ow < wo; ow++) dst[ow] = row[ow * 8 + k];
                }
            }
        }
    }
}
#endif
