// Depthwise convolution on AVX-512 (see DepthwiseConv.swift and DepthwiseConvChannelTiles.swift):
// the forward on channel tiles of sixteen lanes, and per plane the forward and backward on packed
// input rows and the column-stride-1 forward straight from the input plane.

#include "DepthwiseConvKernels.h"
#include "KernelSupport.h"
#include "KernelsAVX2.h"
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

// ---------------------------------------------------------------- depthwise convolution, 16 channels per vector

long finch_depthwise_tiles16_scratch(const long *g) {
    long kh = g[4], kw = g[5], sh = g[6], sw = g[7], dh = g[10], dw = g[11], ho = g[12], wo = g[13];
    long hp = (ho - 1) * sh + (kh - 1) * dh + 1, wp = (wo - 1) * sw + (kw - 1) * dw + 1;
    return 16 * (hp * wp + kh * kw + wo);
}

__attribute__((target("avx512f")))
static void depthwise16(const float *x, const float *weight, const float *bias, float *out, const long *g,
                        long unit_begin, long unit_end, float *scratch) {
    const long n = g[0], c = g[1], h = g[2], w = g[3], kh = g[4], kw = g[5], sh = g[6], sw = g[7];
    const long pt = g[8], pl = g[9], dh = g[10], dw = g[11], ho = g[12], wo = g[13];
    const long hp = (ho - 1) * sh + (kh - 1) * dh + 1, wp = (wo - 1) * sw + (kw - 1) * dw + 1, khw = kh * kw;
    float *tile = scratch, *wt = tile + 16 * hp * wp, *row = wt + 16 * khw;
    long rows = h < hp - pt ? h : hp - pt, cols = w < wp - pl ? w : wp - pl;
    if (rows < 0) rows = 0;
    if (cols < 0) cols = 0;
    long loaded = -1;
    __m512 b = _mm512_setzero_ps();
    for (long u = unit_begin; u < unit_end; u++) {
        long block = u / n, s = u % n, c0 = block * 16;
        long lanes = c - c0 < 16 ? c - c0 : 16;
        memset(tile, 0, sizeof(float) * 16 * hp * wp);
        // One gather per pixel across the block's channel planes: a store per channel into the
        // interleaved tile compiles to scatters, which took a quarter of this kernel's time.
        const __m512i planes = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                                  _mm512_set1_epi32((int)(h * w)));
        const __mmask16 present = first_lanes(lanes);
        const float *first = x + (s * c + c0) * h * w;
        for (long ih = 0; ih < rows; ih++) {
            float *dst = tile + ((ih + pt) * wp + pl) * 16;
            for (long iw = 0; iw < cols; iw++)
                _mm512_store_ps(dst + iw * 16, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), present, planes,
                                                                        first + ih * w + iw, 4));
        }
        if (block != loaded) {
            memset(wt, 0, sizeof(float) * 16 * khw);
            float bb[16] = {0};
            for (long k = 0; k < lanes; k++) {
                for (long t = 0; t < khw; t++) wt[t * 16 + k] = weight[(c0 + k) * khw + t];
                if (bias) bb[k] = bias[c0 + k];
            }
            b = _mm512_loadu_ps(bb);
            loaded = block;
        }
        for (long oh = 0; oh < ho; oh++) {
            for (long ow = 0; ow < wo; ow++) {
                __m512 acc = b;
                for (long i = 0; i < kh; i++) {
                    const float *r = tile + ((oh * sh + i * dh) * wp + ow * sw) * 16;
                    const float *wr = wt + i * kw * 16;
                    for (long j = 0; j < kw; j++)
                        acc = _mm512_fmadd_ps(_mm512_load_ps(wr + j * 16), _mm512_load_ps(r + j * dw * 16), acc);
                }
                _mm512_store_ps(row + ow * 16, acc);
            }
            for (long k = 0; k < lanes; k++) {
                float *dst = out + (s * c + c0 + k) * ho * wo + oh * wo;
                for (long ow = 0; ow < wo; ow++) dst[ow] = row[ow * 16 + k];
            }
        }
    }
}

int finch_depthwise_tiles16(const float *x, const float *weight, const float *bias, float *out,
                            const long *geometry, long unit_begin, long unit_end, float *scratch) {
    if (finch_avx2_selected()) {
        finch_depthwise_tiles16_avx2(x, weight, bias, out, geometry, unit_begin, unit_end, scratch);
        return 1;
    }
    if (!finch_avx512_selected()) return 0;
    depthwise16(x, weight, bias, out, geometry, unit_begin, unit_end, scratch);
    return 1;
}

// ---------------------------------------------------------------- depthwise convolution backward, packed rows

// a[o] += v[o]·s[o] for three taps at once: the weight-gradient partial sums of one kernel row.
__attribute__((target("avx512f")))
static inline void multiply_accumulate3(float *a0, float *a1, float *a2, const float *v, const float *s0,
                                        const float *s1, const float *s2, long n) {
    for (long o = 0; o < n; o += 16) {
        __mmask16 k = first_lanes(n - o);
        __m512 d = _mm512_maskz_loadu_ps(k, v + o);
        _mm512_mask_storeu_ps(a0 + o, k, _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(k, s0 + o), _mm512_maskz_loadu_ps(k, a0 + o)));
        _mm512_mask_storeu_ps(a1 + o, k, _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(k, s1 + o), _mm512_maskz_loadu_ps(k, a1 + o)));
        _mm512_mask_storeu_ps(a2 + o, k, _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(k, s2 + o), _mm512_maskz_loadu_ps(k, a2 + o)));
    }
}

__attribute__((target("avx512f")))
static inline void multiply_accumulate(float *a, const float *v, const float *s, long n) {
    for (long o = 0; o < n; o += 16) {
        __mmask16 k = first_lanes(n - o);
        _mm512_mask_storeu_ps(a + o, k, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, v + o), _mm512_maskz_loadu_ps(k, s + o),
                                                        _mm512_maskz_loadu_ps(k, a + o)));
    }
}

// Three taps of one packed row, (w0·s0 + w1·s1) + w2·s2, in the order the Swift rows kernel adds them.
__attribute__((target("avx512f")))
static inline __m512 masked_three_taps(const float *s0, const float *s1, const float *s2, __mmask16 k0, __mmask16 k1,
                                       __mmask16 k2, __m512 w0, __m512 w1, __m512 w2) {
    return _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(w0, _mm512_maskz_loadu_ps(k0, s0)), _mm512_mul_ps(w1, _mm512_maskz_loadu_ps(k1, s1))),
                         _mm512_mul_ps(w2, _mm512_maskz_loadu_ps(k2, s2)));
}

__attribute__((target("avx512f"), always_inline))
static inline __m512 three_taps(const float *s0, const float *s1, const float *s2, __m512 w0, __m512 w1, __m512 w2,
                                __mmask16 k) {
    return masked_three_taps(s0, s1, s2, k, k, k, w0, w1, w2);
}

// t[x] += w0·q0[x] + w1·q1[x] + w2·q2[x]: one kernel row's three taps per pass over the row.
__attribute__((target("avx512f")))
static inline void scaled_add3(float *t, const float *q0, const float *q1, const float *q2, float w0, float w1, float w2,
                               long n) {
    const __m512 v0 = _mm512_set1_ps(w0), v1 = _mm512_set1_ps(w1), v2 = _mm512_set1_ps(w2);
    for (long x = 0; x < n; x += 16) {
        __mmask16 k = first_lanes(n - x);
        _mm512_mask_storeu_ps(t + x, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, t + x), three_taps(q0 + x, q1 + x, q2 + x, v0, v1, v2, k)));
    }
}

__attribute__((target("avx512f")))
static inline void scaled_add(float *t, const float *q, float w, long n) {
    const __m512 v = _mm512_set1_ps(w);
    for (long x = 0; x < n; x += 16) {
        __mmask16 k = first_lanes(n - x);
        _mm512_mask_storeu_ps(t + x, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, t + x), _mm512_mul_ps(v, _mm512_maskz_loadu_ps(k, q + x))));
    }
}

__attribute__((target("avx512f")))
static void depthwise_backward_plane16(const float *dy, const float *packed, const float *weight, float *acc,
                                       float *dpacked, float *dy_pad, const long *g, const long *taps) {
    const long kh = g[0], kw = g[1], sh = g[2], dh = g[3], dw = g[4], pt = g[5], h = g[6], ho = g[7], wo = g[8];
    const long prow = g[9], wpad = g[10], edge = g[11], gather = g[12];
    for (long oh = 0; oh < ho; oh++) {
        const float *d = dy + oh * wo;
        if (dpacked && gather) memcpy(dy_pad + edge, d, sizeof(float) * (size_t)wo);
        for (long i = 0; i < kh; i++) {
            const long ih = oh * sh - pt + i * dh;
            if (ih < 0 || ih >= h) continue;
            const long row = ih * prow;
            if (acc) {
                long j = 0;
                for (; j + 3 <= kw; j += 3) {
                    float *a0 = acc + (i * kw + j) * wo;
                    multiply_accumulate3(a0, a0 + wo, a0 + 2 * wo, d, packed + row + taps[j], packed + row + taps[j + 1],
                                         packed + row + taps[j + 2], wo);
                }
                for (; j < kw; j++) multiply_accumulate(acc + (i * kw + j) * wo, d, packed + row + taps[j], wo);
            }
            if (!dpacked) continue;
            float *t = dpacked + row;
            const float *wi = weight + i * kw;
            if (gather) {
                long j = 0;
                for (; j + 3 <= kw; j += 3) {
                    const float *q0 = dy_pad + edge - j * dw;
                    scaled_add3(t, q0, q0 - dw, q0 - 2 * dw, wi[j], wi[j + 1], wi[j + 2], wpad);
                }
                for (; j < kw; j++) scaled_add(t, dy_pad + edge - j * dw, wi[j], wpad);
            } else {
                for (long j = 0; j < kw; j++) scaled_add(t + taps[j], d, wi[j], wo);
            }
        }
    }
}

__attribute__((target("avx512f")))
static void depthwise_forward_plane16(const float *packed, const float *weight, float bias, float *out, const long *g,
                                      const long *taps) {
    const long kh = g[0], kw = g[1], sh = g[2], dh = g[3], pt = g[5], h = g[6], ho = g[7], wo = g[8], prow = g[9];
    const __m512 b = _mm512_set1_ps(bias);
    for (long oh = 0; oh < ho; oh++) {
        float *o = out + oh * wo;
        const long ih0 = oh * sh - pt;
        if (kh == 3 && kw == 3 && ih0 >= 0 && ih0 + 2 * dh < h) {
            // Interior rows of a 3×3 kernel: all nine taps in one pass, one store per output.
            const float *r0 = packed + ih0 * prow, *r1 = r0 + dh * prow, *r2 = r1 + dh * prow;
            const __m512 w0 = _mm512_set1_ps(weight[0]), w1 = _mm512_set1_ps(weight[1]), w2 = _mm512_set1_ps(weight[2]);
            const __m512 w3 = _mm512_set1_ps(weight[3]), w4 = _mm512_set1_ps(weight[4]), w5 = _mm512_set1_ps(weight[5]);
            const __m512 w6 = _mm512_set1_ps(weight[6]), w7 = _mm512_set1_ps(weight[7]), w8 = _mm512_set1_ps(weight[8]);
            for (long x = 0; x < wo; x += 16) {
                __mmask16 k = first_lanes(wo - x);
                __m512 top = three_taps(r0 + taps[0] + x, r0 + taps[1] + x, r0 + taps[2] + x, w0, w1, w2, k);
                __m512 mid = three_taps(r1 + taps[0] + x, r1 + taps[1] + x, r1 + taps[2] + x, w3, w4, w5, k);
                __m512 bot = three_taps(r2 + taps[0] + x, r2 + taps[1] + x, r2 + taps[2] + x, w6, w7, w8, k);
                _mm512_mask_storeu_ps(o + x, k, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(b, top), mid), bot));
            }
            continue;
        }
        for (long x = 0; x < wo; x++) o[x] = bias;
        for (long i = 0; i < kh; i++) {
            const long ih = ih0 + i * dh;
            if (ih < 0 || ih >= h) continue;
            const float *row = packed + ih * prow, *wi = weight + i * kw;
            long j = 0;
            for (; j + 3 <= kw; j += 3) scaled_add3(o, row + taps[j], row + taps[j + 1], row + taps[j + 2], wi[j], wi[j + 1], wi[j + 2], wo);
            for (; j < kw; j++) scaled_add(o, row + taps[j], wi[j], wo);
        }
    }
}

// Lanes (under k) of input columns col … col + 15 that lie in a row of w, and where to load them
// from: zero outside the row, exactly as a packed row's padding. A masked-off lane is never read,
// but the address must stay inside the row.
__attribute__((always_inline))
static inline __mmask16 column_mask(long col, long w, __mmask16 k, long *start) {
    __mmask16 m = k & span_mask(col, w, 16);
    *start = m ? col : 0;
    return m;
}

// depthwise_forward_plane16 for column stride 1 straight from the input plane: no packed copy (its
// row copies were as costly as the convolution on MobileViT-XXS). Every output gets the same
// operations in the same order as from the packed rows, so the results are identical.
__attribute__((target("avx512f")))
static void depthwise_forward_direct16(const float *plane, const float *weight, float bias, float *out, const long *g) {
    const long kh = g[0], kw = g[1], sh = g[2], dh = g[3], dw = g[4], pt = g[5], h = g[6], ho = g[7], wo = g[8];
    const long w = g[13], pl = g[14];
    const __m512 b = _mm512_set1_ps(bias);
    const int nine = kh == 3 && kw == 3;
    if (nine) {
        // Interior rows of a 3×3 kernel, column block by column block: a block's three load masks
        // (zero lanes left and right of the row) are built once for all its rows.
        const __m512 w0 = _mm512_set1_ps(weight[0]), w1 = _mm512_set1_ps(weight[1]), w2 = _mm512_set1_ps(weight[2]);
        const __m512 w3 = _mm512_set1_ps(weight[3]), w4 = _mm512_set1_ps(weight[4]), w5 = _mm512_set1_ps(weight[5]);
        const __m512 w6 = _mm512_set1_ps(weight[6]), w7 = _mm512_set1_ps(weight[7]), w8 = _mm512_set1_ps(weight[8]);
        for (long x = 0; x < wo; x += 16) {
            const __mmask16 k = first_lanes(wo - x);
            long a0, a1, a2;
            const __mmask16 m0 = column_mask(x - pl, w, k, &a0), m1 = column_mask(x - pl + dw, w, k, &a1);
            const __mmask16 m2 = column_mask(x - pl + 2 * dw, w, k, &a2);
            for (long oh = 0; oh < ho; oh++) {
                const long ih0 = oh * sh - pt;
                if (ih0 < 0 || ih0 + 2 * dh >= h) continue;
                const float *r0 = plane + ih0 * w, *r1 = r0 + dh * w, *r2 = r1 + dh * w;
                __m512 top = masked_three_taps(r0 + a0, r0 + a1, r0 + a2, m0, m1, m2, w0, w1, w2);
                __m512 mid = masked_three_taps(r1 + a0, r1 + a1, r1 + a2, m0, m1, m2, w3, w4, w5);
                __m512 bot = masked_three_taps(r2 + a0, r2 + a1, r2 + a2, m0, m1, m2, w6, w7, w8);
                _mm512_mask_storeu_ps(out + oh * wo + x, k, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(b, top), mid), bot));
            }
        }
    }
    // Every other row (all of them for other kernels): bias, then each kernel row's taps in threes.
    for (long oh = 0; oh < ho; oh++) {
        const long ih0 = oh * sh - pt;
        if (nine && ih0 >= 0 && ih0 + 2 * dh < h) continue;
        for (long x = 0; x < wo; x += 16) {
            const __mmask16 k = first_lanes(wo - x);
            __m512 acc = b;
            for (long i = 0; i < kh; i++) {
                const long ih = ih0 + i * dh;
                if (ih < 0 || ih >= h) continue;
                const float *row = plane + ih * w, *wi = weight + i * kw;
                long j = 0;
                for (; j + 3 <= kw; j += 3) {
                    const long c = x - pl + j * dw;
                    long a0, a1, a2;
                    __mmask16 m0 = column_mask(c, w, k, &a0), m1 = column_mask(c + dw, w, k, &a1);
                    __mmask16 m2 = column_mask(c + 2 * dw, w, k, &a2);
                    acc = _mm512_add_ps(acc, masked_three_taps(row + a0, row + a1, row + a2, m0, m1, m2, _mm512_set1_ps(wi[j]),
                                                               _mm512_set1_ps(wi[j + 1]), _mm512_set1_ps(wi[j + 2])));
                }
                for (; j < kw; j++) {
                    long a;
                    __mmask16 m = column_mask(x - pl + j * dw, w, k, &a);
                    acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_set1_ps(wi[j]), _mm512_maskz_loadu_ps(m, row + a)));
                }
            }
            _mm512_mask_storeu_ps(out + oh * wo + x, k, acc);
        }
    }
}
int finch_depthwise_forward_direct(const float *plane, const float *weight, float bias, float *out, const long *geometry) {
    if (geometry[12] != 1) return 0;
    if (finch_avx2_selected()) {
        finch_depthwise_forward_direct_avx2(plane, weight, bias, out, geometry);
        return 1;
    }
    if (!finch_avx512_selected()) return 0;
    depthwise_forward_direct16(plane, weight, bias, out, geometry);
    return 1;
}

int finch_depthwise_forward_plane(const float *packed, const float *weight, float bias, float *out, const long *geometry,
                                  const long *taps) {
    if (finch_avx2_selected()) {
        finch_depthwise_forward_plane_avx2(packed, weight, bias, out, geometry, taps);
        return 1;
    }
    if (!finch_avx512_selected()) return 0;
    depthwise_forward_plane16(packed, weight, bias, out, geometry, taps);
    return 1;
}

int finch_depthwise_backward_plane(const float *dy, const float *packed, const float *weight, float *acc,
                                   float *dpacked, float *dy_pad, const long *geometry, const long *taps) {
    if (finch_avx2_selected()) {
        finch_depthwise_backward_plane_avx2(dy, packed, weight, acc, dpacked, dy_pad, geometry, taps);
        return 1;
    }
    if (!finch_avx512_selected()) return 0;
    depthwise_backward_plane16(dy, packed, weight, acc, dpacked, dy_pad, geometry, taps);
    return 1;
}
#else
long finch_depthwise_tiles16_scratch(const long *g) { (void)g; return 0; }
int finch_depthwise_tiles16(const float *x, const float *weight, const float *bias, float *out,
                            const long *geometry, long unit_begin, long unit_end, float *scratch) {
    (void)x; (void)weight; (void)bias; (void)out; (void)geometry; (void)unit_begin; (void)unit_end; (void)scratch;
    return 0;
}
int finch_depthwise_forward_plane(const float *packed, const float *weight, float bias, float *out, const long *geometry,
                                  const long *taps) {
    (void)packed; (void)weight; (void)bias; (void)out; (void)geometry; (void)taps;
    return 0;
}
int finch_depthwise_forward_direct(const float *plane, const float *weight, float bias, float *out, const long *geometry) {
    (void)plane; (void)weight; (void)bias; (void)out; (void)geometry;
    return 0;
}
int finch_depthwise_backward_plane(const float *dy, const float *packed, const float *weight, float *acc,
                                   float *dpacked, float *dy_pad, const long *geometry, const long *taps) {
    (void)dy; (void)packed; (void)weight; (void)acc; (void)dpacked; (void)dy_pad; (void)geometry; (void)taps;
    return 0;
}
#endif
