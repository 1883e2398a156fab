// Depthwise convolution per plane on AVX2 + FMA (see DepthwiseConvKernels.c, whose operations and
// order these repeat on eight lanes, so the two paths give the same bits): the forward on packed input
// rows, the column-stride-1 forward straight from the input plane, and the backward on packed rows.
// Masked stores are microcoded and slow on the AVX2-only AMD cores, so whole vectors store plainly
// and only a row's last, partial vector is masked.

#include "KernelsAVX2.h"
#include "KernelSupport.h"
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE __attribute__((target("avx2,fma"), always_inline)) static inline

INLINE __m256i first(long n) { return finch_avx2_span(0, n, 8); }

// Loads and stores of the lanes under k: plain when all eight are (full), masked otherwise.
INLINE __m256 load(const float *p, __m256i k, int full) { return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, k); }
INLINE void store(float *p, __m256i k, int full, __m256 v) {
    if (full) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, k, v);
}

INLINE void multiply_accumulate3(float *a0, float *a1, float *a2, const float *v, const float *s0, const float *s1,
                                 const float *s2, long n) {
    for (long o = 0; o < n; o += 8) {
        const int full = n - o >= 8;
        const __m256i k = first(n - o);
        __m256 d = load(v + o, k, full);
        store(a0 + o, k, full, _mm256_fmadd_ps(d, load(s0 + o, k, full), load(a0 + o, k, full)));
        store(a1 + o, k, full, _mm256_fmadd_ps(d, load(s1 + o, k, full), load(a1 + o, k, full)));
        store(a2 + o, k, full, _mm256_fmadd_ps(d, load(s2 + o, k, full), load(a2 + o, k, full)));
    }
}

INLINE void multiply_accumulate(float *a, const float *v, const float *s, long n) {
    for (long o = 0; o < n; o += 8) {
        const int full = n - o >= 8;
        const __m256i k = first(n - o);
        store(a + o, k, full, _mm256_fmadd_ps(load(v + o, k, full), load(s + o, k, full), load(a + o, k, full)));
    }
}

// (w0·s0 + w1·s1) + w2·s2, each load under its own mask (zero elsewhere).
INLINE __m256 masked_three_taps(const float *s0, const float *s1, const float *s2, __m256i k0, __m256i k1, __m256i k2,
                                __m256 w0, __m256 w1, __m256 w2) {
    return _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(w0, _mm256_maskload_ps(s0, k0)),
                                       _mm256_mul_ps(w1, _mm256_maskload_ps(s1, k1))),
                         _mm256_mul_ps(w2, _mm256_maskload_ps(s2, k2)));
}

INLINE __m256 three_taps(const float *s0, const float *s1, const float *s2, __m256 w0, __m256 w1, __m256 w2, __m256i k,
                         int full) {
    return _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(w0, load(s0, k, full)), _mm256_mul_ps(w1, load(s1, k, full))),
                         _mm256_mul_ps(w2, load(s2, k, full)));
}

// A 3×3 filter's nine weights, each broadcast to all lanes, for the kernels that unroll it.
struct nine_weights { __m256 w[9]; };
INLINE struct nine_weights broadcast_nine(const float *weight) {
    struct nine_weights n;
    for (int i = 0; i < 9; i++) n.w[i] = _mm256_set1_ps(weight[i]);
    return n;
}

INLINE void scaled_add3(float *t, const float *q0, const float *q1, const float *q2, float w0, float w1, float w2,
                        long n) {
    const __m256 v0 = _mm256_set1_ps(w0), v1 = _mm256_set1_ps(w1), v2 = _mm256_set1_ps(w2);
    for (long x = 0; x < n; x += 8) {
        const int full = n - x >= 8;
        const __m256i k = first(n - x);
        __m256 taps = three_taps(q0 + x, q1 + x, q2 + x, v0, v1, v2, k, full);
        store(t + x, k, full, _mm256_add_ps(load(t + x, k, full), taps));
    }
}

INLINE void scaled_add(float *t, const float *q, float w, long n) {
    const __m256 v = _mm256_set1_ps(w);
    for (long x = 0; x < n; x += 8) {
        const int full = n - x >= 8;
        const __m256i k = first(n - x);
        store(t + x, k, full, _mm256_add_ps(load(t + x, k, full), _mm256_mul_ps(v, load(q + x, k, full))));
    }
}

TARGET void finch_depthwise_backward_plane_avx2(const float *dy, const float *packed, const float *weight, float *acc,
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
                    const float *p = packed + row;
                    multiply_accumulate3(a0, a0 + wo, a0 + 2 * wo, d, p + taps[j], p + taps[j + 1], p + taps[j + 2], wo);
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

TARGET void finch_depthwise_forward_plane_avx2(const float *packed, const float *weight, float bias, float *out,
                                               const long *g, const long *taps) {
    const long kh = g[0], kw = g[1], sh = g[2], dh = g[3], pt = g[5], h = g[6], ho = g[7], wo = g[8], prow = g[9];
    const __m256 b = _mm256_set1_ps(bias);
    const struct nine_weights n = kh == 3 && kw == 3 ? broadcast_nine(weight) : (struct nine_weights){0};
    for (long oh = 0; oh < ho; oh++) {
        float *o = out + oh * wo;
        const long ih0 = oh * sh - pt;
        if (kh == 3 && kw == 3 && ih0 >= 0 && ih0 + 2 * dh < h) {
            const float *r0 = packed + ih0 * prow, *r1 = r0 + dh * prow, *r2 = r1 + dh * prow;
            for (long x = 0; x < wo; x += 8) {
                const int full = wo - x >= 8;
                const __m256i k = first(wo - x);
                __m256 top = three_taps(r0 + taps[0] + x, r0 + taps[1] + x, r0 + taps[2] + x, n.w[0], n.w[1], n.w[2], k, full);
                __m256 mid = three_taps(r1 + taps[0] + x, r1 + taps[1] + x, r1 + taps[2] + x, n.w[3], n.w[4], n.w[5], k, full);
                __m256 bot = three_taps(r2 + taps[0] + x, r2 + taps[1] + x, r2 + taps[2] + x, n.w[6], n.w[7], n.w[8], k, full);
                store(o + x, k, full, _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(b, top), mid), bot));
            }
            continue;
        }
        for (long x = 0; x < wo; x++) o[x] = bias;
        for (long i = 0; i < kh; i++) {
            const long ih = ih0 + i * dh;
            if (ih < 0 || ih >= h) continue;
            const float *row = packed + ih * prow, *wi = weight + i * kw;
            long j = 0;
            for (; j + 3 <= kw; j += 3)
                scaled_add3(o, row + taps[j], row + taps[j + 1], row + taps[j + 2], wi[j], wi[j + 1], wi[j + 2], wo);
            for (; j < kw; j++) scaled_add(o, row + taps[j], wi[j], wo);
        }
    }
}

// Lanes (under k) of input columns col … col + 7 inside a row of w, and where to load them from
// (masked lanes are never read, but the address stays inside the row when none is left).
INLINE __m256i column_mask(long col, long w, __m256i k, long *start) {
    __m256i m = _mm256_and_si256(k, finch_avx2_span(col, w, 8));
    *start = _mm256_testz_si256(m, m) ? 0 : col;
    return m;
}

TARGET void finch_depthwise_forward_direct_avx2(const float *plane, const float *weight, float bias, float *out,
                                                const long *g) {
    const long kh = g[0], kw = g[1], sh = g[2], dh = g[3], dw = g[4], pt = g[5], h = g[6], ho = g[7], wo = g[8];
    const long w = g[13], pl = g[14];
    const __m256 b = _mm256_set1_ps(bias);
    const int nine = kh == 3 && kw == 3;
    if (nine) {
        const struct nine_weights n = broadcast_nine(weight);
        for (long x = 0; x < wo; x += 8) {
            const int full = wo - x >= 8;
            const __m256i k = first(wo - x);
            long a0, a1, a2;
            const __m256i m0 = column_mask(x - pl, w, k, &a0), m1 = column_mask(x - pl + dw, w, k, &a1);
            const __m256i m2 = column_mask(x - pl + 2 * dw, w, k, &a2);
            for (long oh = 0; oh < ho; oh++) {
                const long ih0 = oh * sh - pt;
                if (ih0 < 0 || ih0 + 2 * dh >= h) continue;
                const float *r0 = plane + ih0 * w, *r1 = r0 + dh * w, *r2 = r1 + dh * w;
                __m256 top = masked_three_taps(r0 + a0, r0 + a1, r0 + a2, m0, m1, m2, n.w[0], n.w[1], n.w[2]);
                __m256 mid = masked_three_taps(r1 + a0, r1 + a1, r1 + a2, m0, m1, m2, n.w[3], n.w[4], n.w[5]);
                __m256 bot = masked_three_taps(r2 + a0, r2 + a1, r2 + a2, m0, m1, m2, n.w[6], n.w[7], n.w[8]);
                store(out + oh * wo + x, k, full, _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(b, top), mid), bot));
            }
        }
    }
    for (long oh = 0; oh < ho; oh++) {
        const long ih0 = oh * sh - pt;
        if (nine && ih0 >= 0 && ih0 + 2 * dh < h) continue;
        for (long x = 0; x < wo; x += 8) {
            const int full = wo - x >= 8;
            const __m256i k = first(wo - x);
            __m256 acc = b;
            for (long i = 0; i < kh; i++) {
                const long ih = ih0 + i * dh;
                if (ih < 0 || ih >= h) continue;
                const float *row = plane + ih * w, *wi = weight + i * kw;
                long j = 0;
                for (; j + 3 <= kw; j += 3) {
                    const long c = x - pl + j * dw;
                    long a0, a1, a2;
                    __m256i m0 = column_mask(c, w, k, &a0), m1 = column_mask(c + dw, w, k, &a1);
                    __m256i m2 = column_mask(c + 2 * dw, w, k, &a2);
                    acc = _mm256_add_ps(acc, masked_three_taps(row + a0, row + a1, row + a2, m0, m1, m2,
                                                               _mm256_set1_ps(wi[j]), _mm256_set1_ps(wi[j + 1]),
                                                               _mm256_set1_ps(wi[j + 2])));
                }
                for (; j < kw; j++) {
                    long a;
                    __m256i m = column_mask(x - pl + j * dw, w, k, &a);
                    acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(wi[j]), _mm256_maskload_ps(row + a, m)));
                }
            }
            store(out + oh * wo + x, k, full, acc);
        }
    }
}
#endif
